"""One writer per experiment: a lock object at ``<storage>/<experiment>/.segsweep-lock.json``.

Creating or resuming an experiment takes the lock; a second sweep on the same experiment is refused (exit code 2)
with the owner's host, PID and start time. The lock is a small JSON object: a random owner token, host, PID,
the time it was taken and a heartbeat time. A thread of the owning sweep rewrites the heartbeat every
``STALE_S / 4`` seconds while the sweep runs; the lock is deleted when the sweep ends.

The rule for taking over: a lock whose heartbeat is older than ``STALE_S`` seconds (``SEGSWEEP_LOCK_STALE_S``,
default 120) belongs to a sweep that died without releasing it (SIGKILL, a lost node, a lost mount), and the next
sweep takes it over. A live owner refreshes it far more often than that, so a lock is never taken from a sweep
that runs; machines whose clocks disagree by more than ``STALE_S`` would break this, and the timeout should then be
raised. A lock taken in the same process space as the taker (same host, boot and PID namespace, recorded in the
lock) whose PID no longer runs is stale at once: a sweep killed a moment ago can be resumed without waiting.

How the lock is created, by kind of storage:

- A local path, which includes an NFS mount: the lock is written whole to a file of the taker's own
  (``open(O_CREAT | O_EXCL)``), then published with ``link()`` to the lock's name, which fails if the name exists:
  an atomic create-if-absent on local filesystems and on NFS, and no reader ever sees an empty lock (a lock file
  opened with ``O_EXCL`` in place would be empty until written, and a racing taker would take it for a lock cut
  short). A stale lock is deleted by one taker at a time, under a takeover marker created with ``O_EXCL``,
  after reading it again to check it is still the stale one; then the taker publishes its own. A filesystem without hard
  links gets ``O_EXCL`` in place; a lock that does not parse (empty while being written, or cut short by a crash)
  is therefore stale only ``UNREADABLE_GRACE_S`` (10 s) after it was last written.
- Object stores (``s3://``, ``gs://``): pyarrow has no create-if-absent there. The taker writes its lock object
  (when none exists, or the one there is stale), waits ``SETTLE_S`` seconds (``SEGSWEEP_LOCK_SETTLE_S``, default
  2) and reads it back: the lock is its own only if the owner token read back is its own, otherwise the last
  writer won and this one is refused. Limits: this relies on read-after-write consistency (S3 and GCS give it)
  and on no taker stalling for longer than ``SETTLE_S`` between finding the lock free and writing its own; two
  sweeps started that closely on a store without that consistency could both run. The heartbeat checks the token
  too, so an owner that lost its lock says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from platform.envvars import seconds_or
from platform.storage import filesystem

LOCK_NAME = ".segsweep-lock.json"
STALE_S = seconds_or("SEGSWEEP_LOCK_STALE_S", 120.0)
UNREADABLE_GRACE_S = 10.0  # a lock that does not parse is stale this long after it was last written
NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}
SETTLE_S = seconds_or("SEGSWEEP_LOCK_SETTLE_S", 2.0)


class LockHeld(Exception):
    """Another sweep owns the experiment; ``str(err)`` names it (host, PID, since when) and what to do."""


def pid_space() -> str:
    """This machine's boot and PID namespace: PIDs compare only between processes that share it."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{socket.gethostname()}:{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""  # not Linux: PIDs are never compared, only heartbeats


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process runs under that PID
    return True


@dataclass(frozen=True)
class Owner:
    token: str
    host: str
    pid: int
    since: float
    heartbeat: float
    space: str = ""

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"host {self.host}, PID {self.pid}, since {since}"

    def stale(self, now: float, stale_s: float) -> bool:
        """A heartbeat older than ``stale_s``, or an owner of this PID space whose process is gone."""
        if now - self.heartbeat > stale_s:
            return True
        here = pid_space()
        return bool(here) and self.space == here and self.pid > 0 and not _running(self.pid)


def _parse(text: bytes) -> Owner | None:
    """The owner a lock object names, or None for one that does not parse (a write cut short)."""
    try:
        data = json.loads(text.decode())
        return Owner(str(data["token"]), str(data["host"]), int(data["pid"]), float(data["since"]),
                     float(data["heartbeat"]), str(data.get("space", "")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


class ExperimentLock:
    """The lock of one experiment (``experiment``: its path or URI). ``acquire`` raises LockHeld when another
    live sweep owns it; ``start_heartbeat`` keeps it fresh; ``release`` deletes it if it is still this one's."""

    def __init__(self, experiment: str, stale_s: float | None = None, settle_s: float | None = None,
                 fs: pafs.FileSystem | None = None, path: str | None = None) -> None:
        self.experiment = experiment
        if fs is None:
            fs, root = filesystem(experiment)
            path = f"{root.rstrip('/')}/{LOCK_NAME}"
        self.fs = fs
        self.path = path or LOCK_NAME
        self.local = isinstance(fs, pafs.LocalFileSystem)
        self.stale_s = STALE_S if stale_s is None else stale_s
        self.settle_s = SETTLE_S if settle_s is None else settle_s
        self.token = uuid.uuid4().hex
        self.since = time.time()
        self.held = False
        self.lost: Owner | None = None  # set by the heartbeat when another sweep now owns the lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- reading and writing the lock object ------------------------------------------------------------------
    def _payload(self) -> bytes:
        return json.dumps({"token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                           "since": self.since, "heartbeat": time.time(), "space": pid_space(),
                           "experiment": self.experiment}).encode()

    def owner(self) -> Owner | None:
        """Who holds the lock now (None when nobody does)."""
        text = self._read(self.path)
        if text is None:
            return None
        parsed = _parse(text)
        if parsed is not None:
            return parsed
        # An unparsable lock: a writer killed mid-write, or (where links are not supported) one still writing it.
        # It is stale UNREADABLE_GRACE_S after it was last modified.
        try:
            modified = self.fs.get_file_info(self.path).mtime
            written = modified.timestamp() if modified is not None else 0.0
        except OSError:
            written = 0.0
        return Owner("", "unknown", -1, written, written - self.stale_s + UNREADABLE_GRACE_S)

    def _read(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def _write(self, path: str) -> None:
        """Write the lock object whole: to a temporary name, then moved (an object store's copy appears at once),
        so a reader never sees half of it and takes it for a lock cut short."""
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        temporary = f"{path}.{self.token}.tmp"
        with self.fs.open_output_stream(temporary) as stream:
            stream.write(self._payload())
        self.fs.move(temporary, path)

    def _create_exclusive(self) -> bool:
        """Create the lock file, whole, only if absent (local paths, NFS); False when it exists."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        own = f"{self.path}.{self.token}.new"
        self._write_new(own)
        try:
            os.link(own, self.path)  # atomic, and fails when the lock exists
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in NO_LINKS:
                raise
            # A filesystem without hard links (some FUSE mounts): O_EXCL in place; a reader may see the lock
            # before it is written, which ``owner`` allows for (UNREADABLE_GRACE_S).
            try:
                self._write_new(self.path)
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(own)
        return True

    def _write_new(self, path: str) -> None:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(self._payload())
            stream.flush()
            os.fsync(stream.fileno())

    def _refused(self, owner: Owner) -> LockHeld:
        return LockHeld(f"experiment {self.experiment} is being written by another sweep ({owner.describe()}; "
                        f"last heartbeat {max(0.0, time.time() - owner.heartbeat):.0f} s ago). One sweep writes an "
                        "experiment at a time: wait for it to end, or stop it, or use a different name (e.g. "
                        f"name=my-sweep-2). A lock whose heartbeat is older than {self.stale_s:g} s "
                        "(SEGSWEEP_LOCK_STALE_S) is taken over.")

    # --- taking, refreshing, releasing -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lock, or raise LockHeld naming the live owner. A stale lock is taken over."""
        for _ in range(5):  # each round ends in ownership, a refusal, or a race to try again
            current = self.owner()
            if current is not None and not current.stale(time.time(), self.stale_s):
                raise self._refused(current)
            if self.local:
                if current is not None and not self._remove_stale(current):
                    continue
                if self._create_exclusive():
                    self.held = True
                    return
                continue
            self._write(self.path)
            time.sleep(self.settle_s)  # let a racing writer's object land, then see who won
            now = self.owner()
            if now is not None and now.token == self.token:
                self.held = True
                return
            if now is not None:
                raise self._refused(now)
        current = self.owner()
        raise self._refused(current or Owner("", "unknown", -1, time.time(), time.time()))

    def _remove_stale(self, stale: Owner) -> bool:
        """Delete a stale local lock, one taker at a time: under a takeover marker created exclusively, the lock is
        read again and deleted only if it is still ``stale``. False when another taker holds the marker or the
        lock changed in between. (Moving locks aside without the marker let two takers at once remove the lock a
        third had just created: two owners.) A marker older than ``UNREADABLE_GRACE_S`` was left by a taker that
        died mid-takeover and is removed."""
        marker = f"{self.path}.takeover"
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - os.stat(marker).st_mtime > UNREADABLE_GRACE_S:
                    os.unlink(marker)
            time.sleep(0.05)  # let the taker holding it finish
            return False
        try:
            now = self.owner()
            if now is not None and (now.token != stale.token or not now.stale(time.time(), self.stale_s)):
                return False  # another taker's fresh lock (or one still being written)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return True
        finally:
            os.unlink(marker)

    def refresh(self) -> bool:
        """Rewrite the heartbeat if the lock is still this sweep's; False (and ``lost`` set) otherwise."""
        current = self.owner()
        if current is None or current.token != self.token:
            self.lost = current
            self.held = False
            return False
        if self.local:
            temporary = f"{self.path}.{self.token}.tmp"
            with open(temporary, "wb") as stream:
                stream.write(self._payload())
            os.replace(temporary, self.path)  # atomic: a reader never sees half a lock
        else:
            self._write(self.path)
        return True

    def start_heartbeat(self, interval_s: float | None = None) -> None:
        interval = self.stale_s / 4 if interval_s is None else interval_s

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.refresh():
                        return
                except OSError:  # a store that fails for a moment: the next beat tries again
                    continue

        self._thread = threading.Thread(target=beat, name="segsweep-lock-heartbeat", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and delete the lock if it is still this sweep's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(OSError):
            current = self.owner()
            if current is not None and current.token == self.token:
                self.fs.delete_file(self.path)

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_owner(experiment: str) -> Owner | None:
    """The live owner of an experiment's lock (None when free or stale), without taking it."""
    lock = ExperimentLock(experiment)
    try:
        owner = lock.owner()
    except OSError:
        return None
    return owner if owner is not None and not owner.stale(time.time(), lock.stale_s) else None
