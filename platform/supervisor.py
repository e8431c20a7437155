"""The sweep's command line runs the sweep in a child process and watches the Ray under it.

When the Ray a sweep runs on dies (another process stopped it, the node crashed), Ray's core worker ends the
driver from C++ ("Failed to connect to GCS ... The program will terminate"), a minute later and with exit code 1,
or Tune raises an ``ActorDiedError`` with a long traceback: no Python handler in the driver can turn either into
a message. The parent process can. It runs ``python -m platform.sweep`` again as its child, passes its standard
output through, reads its standard error line by line, and watches the child's local Ray (the session its marker
names): when that Ray's GCS process is gone, or the child's error output says the Ray died, it stops the child
and prints one paragraph (what happened, that nothing reported is lost, and the exact ``--resume`` command) with
exit code ``EXIT_RAY_DIED``. Everything else, the child's exit code included, passes through unchanged.

The child dies with its parent (``PR_SET_PDEATHSIG`` on Linux), so a SIGKILL of the command still leaves the
same state as before: a driver gone, its Ray's processes cleaned up by the next local run.

SIGINT and SIGTERM reach the child exactly once: it runs in a process group of its own (a terminal's Ctrl-C
reaches only this process), and this process forwards them. The child stops the sweep cleanly on the first and
at once on the second (``platform.interrupts``) and exits 130 or 143 with the ``--resume`` command, which passes
through. A Ray the child shuts down itself (at the end of a sweep, or after a signal) is never taken for a Ray that
died: the child marks its session before it shuts down (``platform.localray.mark_session_stopping``), and however
long that shutdown takes on a loaded machine, its exit code passes through.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from platform.localray import LOOPBACK_ENV

EXIT_RAY_DIED = 3
CHILD_ENV = "SEGSWEEP_SUPERVISED"  # set in the child: it runs the sweep itself
# What the child's error output says when the Ray under it is gone (a joined cluster is watched only this way).
# Only Ray's own words about its GCS: a trial's ActorDiedError (an out-of-memory worker) is the trial's error, and
# the sweep goes on without it.
RAY_DIED = re.compile(r"Failed to connect to GCS|GCS may have been killed|GCS server has been shut down")
# A Ray worker told to exit while the sweep shuts down prints this traceback: noise, not an error of the sweep.
_NOISE_START = re.compile(r"^(\x1b\[\d+m)?\((?P<who>[^)]*pid=\d+[^)]*)\)(\x1b\[0m)? Exception ignored in:")
_POLL_S = 1.0
GRACE_ENV = "SEGSWEEP_RAY_DIED_GRACE_S"
GRACE_S = 15.0  # the least time a driver whose Ray is gone gets to end by itself; more on a loaded machine


def grace_s() -> float:
    """How long after its Ray's processes are gone a driver that did not say it was shutting down may still run
    before it counts as stuck on a dead Ray: ``SEGSWEEP_RAY_DIED_GRACE_S`` when set (a positive number), else
    ``GRACE_S`` stretched by the machine's load."""
    from platform.envvars import positive_seconds
    from platform.localray import machine_load

    try:
        configured = positive_seconds(GRACE_ENV)
    except ValueError:
        configured = None  # checked where the sweep starts; here the default is the safe reading
    return configured if configured is not None else GRACE_S * max(1.0, machine_load())


def resume_command(argv: list[str]) -> str:
    """The command that continues this sweep: the same arguments, with ``--resume``."""
    arguments = list(argv) if "--resume" in argv else [*argv, "--resume"]
    return "python -m platform.sweep " + " ".join(shlex.quote(a) for a in arguments)


def died_message(argv: list[str], reason: str) -> str:
    return (f"error: the Ray under this sweep stopped while the sweep ran ({reason}): another process stopped it, "
            "or its node went down. Nothing reported is lost: every epoch reported so far is in the results "
            "tables, and each unfinished trial continues from its last checkpoint. Continue the sweep with:\n"
            f"  {resume_command(argv)}")


class _ErrorFilter:
    """Passes the child's standard error through, line by line, except Ray's shutdown-noise tracebacks and,
    once the Ray is known dead, Ray's own dying words; remembers whether a line said the Ray died."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.ray_died = False
        self.quiet = False  # set when the death is detected: what Ray prints while dying is left out
        self._held: list[str] = []
        self._who: str | None = None

    def feed(self, line: str) -> None:
        if RAY_DIED.search(line):
            self.ray_died = True
            if self.quiet:
                return
        started = _NOISE_START.match(line)
        if started:
            self._flush()
            self._who, self._held = started.group("who"), [line]
            return
        if self._who is not None and f"{self._who})" in line:
            self._held.append(line)
            if "SystemExit" in line:
                text = "".join(self._held)
                if "sigterm_handler" not in text:  # a worker's real exception: shown
                    self.out.write(text)
                self._held, self._who = [], None
            elif len(self._held) > 60:
                self._flush()
            return
        self._flush()
        if not self.quiet:
            self.out.write(line)
            self.out.flush()

    def _flush(self) -> None:
        if self._held:
            self.out.write("".join(self._held))
            self.out.flush()
        self._held, self._who = [], None

    def close(self) -> None:
        self._flush()


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGKILL when the parent dies (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _session_of(child_pid: int) -> Path | None:
    """The local Ray session the child marked as its own, if any yet."""
    from platform.localray import MARKER, ray_temp_dir

    for marker in Path(ray_temp_dir()).glob(f"session_*/{MARKER}"):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(marker.read_text()).get("driver_pid") == child_pid and not marker.parent.is_symlink():
                return marker.parent
    return None


def _daemons_of(session: Path) -> list[int]:
    """The PIDs of the session's GCS server and raylet (their command lines name the session's directory).
    Either gone is the Ray gone: ``ray stop`` ends the raylet at once, while the GCS may linger."""
    from platform.localray import _session_processes

    found = []
    for pid in _session_processes(session):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[0]
            if command.endswith(("/gcs_server", "/raylet")):
                found.append(pid)
    return found


def _stopping(session: Path) -> bool:
    from platform.localray import session_stopping

    return session_stopping(session)


def _alive(pid: int) -> bool:
    from platform.localray import _process_start

    return _process_start(pid) is not None


def _stop(child: subprocess.Popen, grace_s: float = 15.0, first_s: float = 2.0) -> None:
    """Stop a child whose Ray is gone: a first SIGTERM asks for a clean stop, which cannot finish on a dead Ray;
    a second stops it at once (its queued rows written, the experiment's lock released); SIGKILL after
    ``grace_s`` if even that hangs."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=first_s)
        return
    except subprocess.TimeoutExpired:
        child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class _RayWatch:
    """What the supervisor knows of the child's local Ray: its session, its two daemons (GCS and raylet), when they
    went and whether the child said it was shutting them down itself."""

    def __init__(self, child: subprocess.Popen, local: bool, errors: _ErrorFilter, forwarded: list[int]) -> None:
        self.child, self.local, self.errors, self.forwarded = child, local, errors, forwarded
        self.session: Path | None = None
        self.daemons: list[int] = []
        self.gone_at: float | None = None
        self.stopping = False

    def daemons_gone(self) -> bool:
        return len(self.daemons) == 2 and not all(_alive(pid) for pid in self.daemons)

    def poll(self, grace: float) -> str | None:
        """One look at the child's Ray; the reason to stop the child when its Ray died under it, else None."""
        if self.local and len(self.daemons) < 2:
            self.session = self.session or _session_of(self.child.pid)
            self.daemons = _daemons_of(self.session) if self.session is not None else []
        if self.gone_at is None and self.daemons_gone():
            self.gone_at = time.monotonic()  # a sweep that finished shuts its Ray down too: it exits 0 just after
            # The child said it shuts its Ray down itself (it marks that first), or was told to stop.
            self.stopping = bool(self.forwarded) or (self.session is not None and _stopping(self.session))
            # Not a shutdown of its own: what the driver prints now is Ray's dying words (its core worker's
            # "Failed to connect to GCS" a minute on, ActorDiedError tracebacks), left out of the paragraph.
            self.errors.quiet = not self.stopping
        if (self.gone_at is not None and not self.stopping and self.child.poll() is None
                and time.monotonic() - self.gone_at > grace):
            return "its raylet or GCS process exited"
        return None

    def reason_after_exit(self, code: int) -> str | None:
        """Why a child that ended by itself failed, when its Ray died under it (else None: its code passes)."""
        if code in (0, 2) or self.forwarded or self.stopping:
            return None
        # The driver may end itself the moment its Ray goes, before the next poll saw the GCS gone.
        if self.gone_at is not None or self.daemons_gone():
            return "its raylet or GCS process exited"
        return "the sweep's driver lost its connection to Ray" if self.errors.ray_died else None


def supervise(argv: list[str], local: bool) -> int:
    """Run ``python -m platform.sweep argv`` as a child and watch its Ray; the child's exit code, or
    ``EXIT_RAY_DIED`` with one paragraph when the Ray under it died. ``local``: the child starts its own Ray
    (so its GCS process can be watched); otherwise only its error output tells."""
    env = {**os.environ, CHILD_ENV: "1", **(LOOPBACK_ENV if local else {})}
    # A process group of its own: a terminal's Ctrl-C reaches only this process, which forwards it once (the
    # child's second SIGINT means "stop at once").
    child = subprocess.Popen([sys.executable, "-m", "platform.sweep", *argv], env=env, stderr=subprocess.PIPE,
                             text=True, bufsize=1, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                             process_group=0)
    errors = _ErrorFilter(sys.stderr)
    reader = threading.Thread(target=lambda: [errors.feed(line) for line in child.stderr], daemon=True)
    reader.start()
    forwarded: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        forwarded.append(signum)
        with contextlib.suppress(OSError):
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    watch, reason, grace = _RayWatch(child, local, errors, forwarded), None, grace_s()
    try:
        while child.poll() is None and reason is None:
            time.sleep(_POLL_S)
            reason = watch.poll(grace)
        if reason:
            errors.quiet = True
            _stop(child)
        child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reader.join(timeout=10)
        errors.close()
    code = child.returncode
    if forwarded and watch.session is not None and code not in (0,):
        from platform.localray import stop_session

        stop_session(watch.session)  # a child stopped at once left its Ray's processes: they go with it
    reason = reason or watch.reason_after_exit(code)
    if reason is not None:
        if watch.session is not None:
            from platform.localray import stop_session

            stop_session(watch.session)  # what is left of the child's own Ray (a lingering GCS, its monitor)
        print(died_message(argv, reason), file=sys.stderr, flush=True)
        return EXIT_RAY_DIED
    return code if code >= 0 else 128 - code
