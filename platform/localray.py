"""The local Ray a sweep starts on its own machine, and the clean-up of what a killed earlier run left behind.

A driver killed with SIGKILL cannot stop its Ray: the dashboard agent, the runtime-env agent and the log
monitor live on. Each local run of this platform therefore marks its Ray session directory with its driver's
PID and start time. The next local run looks for marked sessions whose driver is gone and stops the processes
of exactly those sessions: processes are found through the session directory (every Ray process names it on its
command line), never by name, so another user's Ray, or a live sweep, is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform.envvars import positive_seconds

MARKER = "segsweep-driver.json"
# With this set to 0 before Ray is imported, Ray takes the loopback address as the node's address and its
# servers (GCS, raylet, object manager, workers) listen on 127.0.0.1 alone, not on every interface: a local
# sweep needs no other machine to reach it. Ray reads the variable once, when ``ray._private.ray_constants`` is
# first imported, so it is set in the environment of the process that starts the local Ray (the supervisor's
# child) and never for a sweep that joins a cluster.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), or None if it is gone.

    A PID alone may be reused by an unrelated process after the driver died; PID plus start time may not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has exited already


def mark_session(session_dir: str | Path) -> None:
    """Record this driver as the owner of the Ray session at ``session_dir``."""
    marker = {"driver_pid": os.getpid(), "driver_start": _process_start(os.getpid())}
    (Path(session_dir) / MARKER).write_text(json.dumps(marker))


def _session_processes(session_dir: Path) -> list[int]:
    """PIDs of the processes of the Ray session at ``session_dir``: those whose command line names it, or that
    hold a file of it open. Ray's agents rename themselves (``ray::DashboardAgent``), which overwrites their
    command line, but they keep the session's log files open."""
    needle = str(session_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(_inside(arg.split("=", 1)[-1], needle) for arg in cmdline) or _holds_open(entry, needle):
            found.append(int(entry.name))
    return found


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def _holds_open(process: Path, directory: str) -> bool:
    try:
        links = [os.readlink(fd) for fd in (process / "fd").iterdir()]
    except OSError:  # gone, or not ours to inspect
        return False
    return any(_inside(link, directory) for link in links)


def _driver_alive(marker: dict[str, Any]) -> bool:
    pid = marker.get("driver_pid")
    return isinstance(pid, int) and _process_start(pid) == marker.get("driver_start")


def abandoned_sessions(temp_dir: str | Path) -> list[Path]:
    """Marked sessions under Ray's ``temp_dir`` whose driver is no longer running."""
    sessions = []
    for marker_path in Path(temp_dir).glob(f"session_*/{MARKER}"):
        if marker_path.parent.is_symlink():  # session_latest points at one of the others
            continue
        try:
            marker = json.loads(marker_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(marker, dict) and not _driver_alive(marker):
            sessions.append(marker_path.parent)
    return sessions


def reap_abandoned(temp_dir: str | Path, grace_s: float = 3.0) -> list[int]:
    """Stop the processes of abandoned sessions (SIGTERM, then SIGKILL after ``grace_s``); the PIDs stopped.

    Only Linux exposes command lines under /proc; elsewhere nothing is done."""
    if not Path("/proc/self/cmdline").exists():
        return []
    stopped: list[int] = []
    for session in abandoned_sessions(temp_dir):
        stopped += stop_session(session, grace_s)
        (session / MARKER).unlink(missing_ok=True)  # reaped: the next run need not look again
    return stopped


def stop_session(session: Path, grace_s: float = 3.0) -> list[int]:
    """Stop every process of the Ray session at ``session`` (SIGTERM, then SIGKILL); the PIDs signalled.

    What ``ray stop`` does, for one session only: a test or a script that started its own Ray (``ray start
    --temp-dir``) stops exactly that, never another user's Ray on the same machine."""
    pids = []
    for pid in _session_processes(session):
        with contextlib.suppress(OSError):  # it exited in between
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_process_start(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _process_start(pid) is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return pids


def stop_sessions(temp_dir: str | Path, grace_s: float = 3.0) -> list[int]:
    """``stop_session`` for every session under a private Ray temp dir."""
    return [pid for session in sorted(Path(temp_dir).glob("session_*")) if not session.is_symlink()
            for pid in stop_session(session, grace_s)]


def ray_temp_dir() -> str:
    """Where a local Ray keeps its sessions: Ray's default, ``$RAY_TMPDIR/ray``, else ``$TMPDIR/ray`` on Linux, else
    ``/tmp/ray`` (Ray has no public accessor; tests/test_localray.py checks this against the parent of the
    ``session_dir`` a local ``ray.init`` reports, so a Ray that changes its default fails there)."""
    if "RAY_TMPDIR" in os.environ:
        base = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        base = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        base = "/tmp"
    else:
        import tempfile

        base = tempfile.gettempdir()
    return os.path.join(base, "ray")


# The session folder of the local Ray this process started (``ray.init``'s ``address_info["session_dir"]``).
_current_session: list[str] = []


def mark_current_session(session_dir: str | None) -> None:
    """Mark the session of the Ray this process just started, ``ray.init``'s ``address_info["session_dir"]`` (a
    joined cluster is never marked)."""
    if session_dir and os.path.isdir(session_dir):
        _current_session[:] = [session_dir]
        mark_session(session_dir)


START_TIMEOUT_ENV = "SEGSWEEP_RAY_START_TIMEOUT_S"
START_TIMEOUT_S = 120.0  # the least a local Ray is given to start; more on a loaded machine


def machine_load() -> float:
    """The 1-minute load average per CPU (0 where the platform has none)."""
    try:
        return os.getloadavg()[0] / max(1, os.cpu_count() or 1)
    except (OSError, AttributeError):
        return 0.0


def ray_start_timeout_s() -> float:
    """How long a local Ray may take to start, and a cluster to answer: ``SEGSWEEP_RAY_START_TIMEOUT_S`` when set,
    else ``START_TIMEOUT_S`` stretched by the machine's load (a load of 10 per CPU: 10 times as long, at most
    30 minutes)."""
    configured = positive_seconds(START_TIMEOUT_ENV)
    if configured is not None:
        return configured
    return min(1800.0, START_TIMEOUT_S * max(1.0, machine_load()))


def cluster_unreachable(address: str, timeout_s: float) -> str | None:
    """Why nothing answers at a Ray cluster ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``), or None when a
    TCP connection opens within ``timeout_s`` (``ray.init`` on an address where nothing listens retries without
    end). Addresses of other forms (``auto``) are left to Ray."""
    import socket

    text = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout_s, 30.0)):
            return None
    except OSError as exc:
        return f"nothing answers at {host}:{port}: {exc.strerror or type(exc).__name__}"


def mark_session_stopping() -> None:
    """Note in this driver's session marker that it is shutting its Ray down itself: the supervisor then does
    not take the Ray's processes going for a Ray that died under the sweep."""
    marker = Path(_current_session[0]) / MARKER if _current_session else None
    if marker is None or not marker.exists():
        return
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(marker.read_text())
        if data.get("driver_pid") == os.getpid():
            data["stopping"] = True
            marker.write_text(json.dumps(data))


def session_stopping(session: Path) -> bool:
    """Whether the driver of ``session`` said it is shutting its Ray down (``mark_session_stopping``)."""
    try:
        return bool(json.loads((session / MARKER).read_text()).get("stopping"))
    except (OSError, ValueError, AttributeError):
        return False


class HeadStartError(Exception):
    """A private Ray head (``private_head``) did not start; the message says what to try."""


@dataclass(frozen=True)
class PrivateHead:
    """A running private Ray head: its GCS ``address``, the ``env`` a process joining it needs on top of
    ``os.environ``, and its private Ray ``temp_dir`` (its sessions' directories)."""

    address: str
    env: dict[str, str]
    temp_dir: Path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def private_head(num_cpus: int | None = None) -> Iterator[PrivateHead]:
    """Start a Ray head of this process's own on 127.0.0.1, yield it (``PrivateHead``), and stop exactly its
    processes on the way out (also on an exception, Ctrl-C or SIGTERM).

    ``env`` is what a process that joins it (``--address``) needs on top of ``os.environ``: Ray 2.60's token
    authentication (a fresh token, so no file under ``~/.ray`` is read or written) and the loopback address.
    The head has a private temp dir, so its sessions are found and stopped by ``stop_sessions``, never another
    Ray on the machine and never with ``ray stop``. Start-up is given ``ray_start_timeout_s``; a head that does
    not start in it is a ``HeadStartError``."""
    import secrets
    import tempfile

    try:
        timeout = ray_start_timeout_s()
    except ValueError as err:
        raise HeadStartError(str(err)) from None
    repo_root = str(Path(__file__).resolve().parent.parent)
    # Workers inherit the head's environment: they import `platform` from the repository root (before the
    # standard library's module of that name).
    path = os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_DISABLE_USAGE_STATS": "1", "PYTHONPATH": path}
    port = _free_port()
    # Short: Ray's socket paths under it have a length limit.
    temp_dir = Path(tempfile.mkdtemp(prefix="ssh", dir="/tmp"))
    ray_bin = str(Path(sys.executable).parent / "ray")
    command = [ray_bin, "start", "--head", "--temp-dir", str(temp_dir), "--node-ip-address", "127.0.0.1",
               "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats"]
    if num_cpus is not None:
        command += ["--num-cpus", str(num_cpus)]
    # Ray waits for its GCS as long as this says (its own default is shorter than a loaded machine needs).
    start_env = {**os.environ, **env, "RAY_gcs_server_port_wait_time_s": str(int(timeout))}
    previous = None
    try:
        # SIGTERM as an exception, so the `finally` below stops the head (the default action would skip it).
        with contextlib.suppress(ValueError):  # not the main thread: no handler can be set there
            previous = signal.signal(signal.SIGTERM, _raise_system_exit)
        reason = _ray_start(command, start_env, timeout)
        if reason:
            raise HeadStartError(
                f"the private Ray for these sweeps did not start ({reason}). The machine may be loaded or short "
                f"of memory: try again when the load drops, free memory, or allow it longer (e.g. "
                f"{START_TIMEOUT_ENV}={int(max(2 * timeout, 300))}). Nothing was run.")
        yield PrivateHead(f"127.0.0.1:{port}", env, temp_dir)
    finally:
        _stop_head(temp_dir)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _ray_start(command: list[str], env: dict[str, str], timeout: float) -> str | None:
    """Run ``ray start``; None when it started, else why not (one line)."""
    import subprocess

    try:
        started = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"`ray start` did not finish within {timeout:.0f} s"
    except OSError as exc:
        return f"`ray start` could not run: {exc}"
    if started.returncode == 0:
        return None
    last = ((started.stderr or started.stdout).strip().splitlines() or ["no output"])[-1][:300]
    return f"`ray start` exited {started.returncode}: {last}"


def _stop_head(temp_dir: Path) -> None:
    """Stop the processes of the private head under ``temp_dir`` and remove the folder."""
    import shutil

    stopped = stop_sessions(temp_dir, grace_s=10)
    # SIGKILL is not instant: return only once they are gone, so a caller that goes on finds none of them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_process_start(pid) for pid in stopped):
        time.sleep(0.1)
    shutil.rmtree(temp_dir, ignore_errors=True)


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
