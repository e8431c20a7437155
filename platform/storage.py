"""Where results live: a local path or any pyarrow filesystem URI (``s3://``, ``gs://``), and the bounded check
that a sweep can write there before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

from platform.envvars import positive_seconds


def is_uri(location: str) -> bool:
    return "://" in location


def resolve_storage(location: str) -> str:
    """An absolute local path, or the URI unchanged (Tune and pyarrow need absolute paths)."""
    return location if is_uri(location) else str(Path(location).expanduser().resolve())


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for a local path or URI."""
    if is_uri(location):
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), resolve_storage(location)


def join(location: str, *parts: str) -> str:
    """``location`` (path or URI) with ``parts`` appended to its path. A URI's query holds the filesystem's
    options (``s3://bucket/runs?endpoint_override=HOST:PORT&scheme=http``), so the parts go before it, as Ray
    Tune joins them; text appended after the query would become part of the last option's value."""
    if not is_uri(location):
        return os.path.join(location, *parts)
    split = urlsplit(location)
    path = "/".join([split.path.rstrip("/"), *(part.strip("/") for part in parts)])
    return urlunsplit(split._replace(path=path))


def experiment_uri(storage: str, name: str) -> str:
    return join(resolve_storage(storage), name)


def copy_to_storage(local_file: Path, destination_dir: str) -> str:
    """Copy one local file into ``destination_dir`` (path or URI); returns the stored location. For a URI that is
    the object's name without the query: the query holds how to reach the store (``endpoint_override``), which
    a reader takes from its own storage location, and the name's last segment stays the file name."""
    fs, directory = filesystem(destination_dir)
    fs.create_dir(directory, recursive=True)
    target = f"{directory.rstrip('/')}/{local_file.name}"
    pafs.copy_files(str(local_file), target, destination_filesystem=fs)
    stored = join(destination_dir, local_file.name)
    return urlunsplit(urlsplit(stored)._replace(query="")) if is_uri(stored) else stored


def check_writable(location: str) -> None:
    """Raise OSError (with the reason) if ``location`` cannot be created and written."""
    fs, path = filesystem(location)
    fs.create_dir(path, recursive=True)
    probe = f"{path.rstrip('/')}/.write-probe-{uuid.uuid4().hex}"
    with fs.open_output_stream(probe) as stream:
        stream.write(b"ok")
    fs.delete_file(probe)


STORAGE_TIMEOUT_ENV = "SEGSWEEP_STORAGE_TIMEOUT_S"
STORAGE_TIMEOUT_S = 30.0  # the default of SEGSWEEP_STORAGE_TIMEOUT_S
# The probe of a remote store runs ``check_writable`` in a child process: a client that never answers (gs://
# without a metadata server) blocks inside C++ where no thread can be interrupted, and a child can be killed.
_PROBE = "import sys; from platform.storage import check_writable; check_writable(sys.argv[1])"
_REPO_ROOT = Path(__file__).resolve().parent.parent  # the child imports ``platform`` from here


class StorageError(Exception):
    """The results storage cannot be used; ``str(err)`` says what was tried and how to fix it."""


def storage_timeout_s() -> float:
    """How long the storage probe waits: ``SEGSWEEP_STORAGE_TIMEOUT_S`` (seconds), else ``STORAGE_TIMEOUT_S``.
    Read when used, so a mistyped value is a ``StorageError`` naming the variable, not an import failure."""
    try:
        value = positive_seconds(STORAGE_TIMEOUT_ENV)
    except ValueError as err:
        raise StorageError(f"{err} (default {STORAGE_TIMEOUT_S:g} s)") from None
    return STORAGE_TIMEOUT_S if value is None else value


def check_storage(location: str, timeout_s: float | None = None) -> None:
    """Create ``location`` and write a probe file there within ``timeout_s``; StorageError otherwise."""
    timeout_s = storage_timeout_s() if timeout_s is None else timeout_s
    if not is_uri(location):
        try:
            check_writable(location)
        except OSError as exc:
            raise StorageError(f"storage {location!r} cannot be written ({exc}). Choose a writable path with "
                               "--storage or 'storage:' in the spec.") from None
        return
    fix = ("Check the bucket name and address, and the credentials: for s3:// set AWS_ACCESS_KEY_ID and "
           "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and for MinIO or Ceph add ?endpoint_override=HOST:PORT"
           "&scheme=http to the URI; for gs:// set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file.")
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE, location], capture_output=True, text=True,
                                timeout=timeout_s, stdin=subprocess.DEVNULL, cwd=_REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise StorageError(f"storage {location!r} did not answer within {timeout_s:g} s (tried to create the "
                           f"directory and write a probe file there). {fix}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else f"exit code {result.returncode}"
        raise StorageError(f"storage {location!r} cannot be written ({reason}). {fix}")
