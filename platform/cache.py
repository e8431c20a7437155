"""The platform's on-disk cache (generated phantoms, glua's stage-1 networks) and atomic writes into it.

Root: ``data.cache_dir`` if given, else ``$SEGSWEEP_CACHE``, else ``~/.cache/segsweep``. Every write is made under
a temporary name in the destination's directory and then renamed, so a concurrent reader (another trial of the
same sweep) sees either nothing or a complete file or directory, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def cache_root(cache_dir: str | None = None) -> Path:
    """Where cached data lives (see the module docstring)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SEGSWEEP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segsweep"


def atomic_file(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` then rename it to ``path`` (replacing an older file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_directory(path: Path, complete: Path) -> Iterator[Path | None]:
    """A temporary directory to fill, renamed to ``path`` on success; None when ``complete`` (a file inside
    ``path``) exists already. If another process finished first, its copy is kept."""
    if complete.is_file():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        temporary.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        yield temporary
        try:
            os.replace(temporary, path)
        except OSError:
            # Renaming onto a non-empty directory fails: another process finished first, so keep its copy.
            if not complete.is_file():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
