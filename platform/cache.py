"""The platform's on-disk cache (generated phantoms, glua's stage-1 networks), atomic writes into it, and the code
version of a cached stage (part of its key).

Root: ``data.cache_dir`` if given, else ``$SEGSWEEP_CACHE``, else ``~/.cache/segsweep``. Every write is made under
a temporary name in the destination's directory and then renamed, so a concurrent reader (another trial of the
same sweep) sees either nothing or a complete file or directory, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
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


# --- the code version of a cached stage -----------------------------------------------------------------------------

_PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(name: str, package_dir: Path) -> Path | None:
    """The source file of module ``name`` (``platform.x.y``) inside ``package_dir``, None if it has none."""
    parts = name.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path, name: str, package: str) -> set[str]:
    """Modules of ``package`` that the source at ``path`` (module ``name``) imports anywhere in it (a lazy import
    inside a function counts: the stage may run it), relative imports resolved."""
    import ast

    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import module``
    return {m for m in found if m == package or m.startswith(package + ".")}


def module_closure(modules: tuple[str, ...], package_dir: Path = _PACKAGE_DIR) -> dict[str, Path]:
    """Each module of the package that ``modules`` import, directly or not (read from the sources, nothing is
    imported), with its source file: what a stage computed by ``modules`` can depend on."""
    package = package_dir.name
    seen: dict[str, Path] = {}
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = _module_file(name, package_dir)
        if path is None:
            continue  # an attribute named in a ``from`` import, not a module
        seen[name] = path
        parents = name.split(".")
        pending += [".".join(parents[:i]) for i in range(2, len(parents))]  # a package's __init__ runs first
        pending += sorted(_imported(path, name, package) - seen.keys())
    return dict(sorted(seen.items()))


def code_version(modules: tuple[str, ...], package_dir: Path = _PACKAGE_DIR) -> str:
    """sha256 over the source of ``modules`` and every package module they import (see :func:`module_closure`):
    part of a reusable stage's cache key, so editing the stage's code makes a new entry while an edit elsewhere
    in the package (the explorer, the sweep driver) keeps the cached stage."""
    digest = hashlib.sha256()
    for name, path in module_closure(modules, package_dir).items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
