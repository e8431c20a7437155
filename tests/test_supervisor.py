"""``platform.supervisor``: a Ray that dies under a running sweep ends in one paragraph and exit code 3, and
``--resume`` then finishes cleanly (no traceback, finished trials not run again, wall time accumulated)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform.localray import MARKER, _session_processes, reap_abandoned
from platform.results import ResultsStore, read_table
from platform.supervisor import EXIT_RAY_DIED, _ErrorFilter, resume_command
from tests.conftest import REPO_ROOT

SHUTDOWN_NOISE = [
    "\x1b[36m(run_trial pid=23241)\x1b[0m Exception ignored in: <function WeakSet.__init__.<locals>._remove>\n",
    "\x1b[36m(run_trial pid=23241)\x1b[0m Traceback (most recent call last):\n",
    "\x1b[36m(run_trial pid=23241)\x1b[0m   File \"ray/_private/worker.py\", line 1063, in sigterm_handler\n",
    "\x1b[36m(run_trial pid=23241)\x1b[0m SystemExit: 1\n",
]


def test_shutdown_noise_is_dropped_and_real_worker_errors_pass() -> None:
    out = io.StringIO()
    errors = _ErrorFilter(out)
    for line in ["before\n", *SHUTDOWN_NOISE, "after\n"]:
        errors.feed(line)
    real = [line.replace("sigterm_handler", "train_epoch") for line in SHUTDOWN_NOISE]
    for line in real:
        errors.feed(line)
    errors.close()
    assert out.getvalue() == "before\nafter\n" + "".join(real)
    assert not errors.ray_died
    errors.feed("[2026 E 1 2] rpc_client.h:204: Failed to connect to GCS within 60 seconds.\n")
    assert errors.ray_died


@pytest.mark.parametrize(("argv", "command"), [
    (["search_spaces/lambda.yaml"], "python -m platform.sweep search_spaces/lambda.yaml --resume"),
    (["s.yaml", "--storage", "/tmp/my runs", "--resume"], "python -m platform.sweep s.yaml --storage '/tmp/my runs' "
                                                         "--resume"),
])
def test_the_resume_command_repeats_the_arguments(argv: list[str], command: str) -> None:
    assert resume_command(argv) == command


LOOPBACK = {"127.0.0.1", "::1"}


def _listening_addresses(pids: list[int]) -> set[str]:
    """The local addresses the processes listen on over TCP: their sockets' inodes (``/proc/PID/fd``) looked up
    in ``/proc/net/tcp`` and ``tcp6`` (state 0A is LISTEN; addresses are little-endian hex words), IPv4-mapped
    IPv6 addresses written as IPv4."""
    import ipaddress

    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(packed)
            found.add(str(getattr(address, "ipv4_mapped", None) or address))  # ::ffff:127.0.0.1 is 127.0.0.1
    return found


@pytest.mark.slow
def test_a_ray_stopped_under_the_sweep_is_one_paragraph_then_resume_finishes(tmp_path: Path,
                                                                             cache_dir: Path) -> None:
    ray_tmp = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))  # short: Ray's socket paths have a length limit
    # Trials of fixed wall-clock length (the fault trainer sleeps epoch_s an epoch): the first ends within a second
    # or two, the third runs at least 12 s after it, so the moment to stop Ray (one trial finished, others running)
    # lasts far longer than the poll, on a fast machine as on a loaded one. (Trials of computed epochs ended within
    # 3 s of each other on a quiet machine, and the poll missed the moment.)
    path = _fault_sweep(tmp_path, "stopped", fixed={"epochs": 8}, search={"epoch_s": {"grid": [0.05, 1.0, 1.5]}},
                        scheduler={"type": "none"}, runtime={})
    env = _fault_env(cache_dir, RAY_TMPDIR=str(ray_tmp))
    experiment = tmp_path / "runs" / "stopped"
    sweep = subprocess.Popen([sys.executable, "-m", "platform.sweep", str(path)], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and sweep.poll() is None:  # one trial finished, another running
            time.sleep(0.5)
            try:
                statuses = [t["status"] for t in read_table(str(experiment), "trials").to_pylist()]
            except Exception:  # not written yet, or a part mid-rename
                continue
            if "TERMINATED" in statuses and "RUNNING" in statuses:
                break
        assert sweep.poll() is None, "the sweep ended before its Ray could be stopped"
        finished_before = {t["trial_id"] for t in read_table(str(experiment), "trials").to_pylist()
                           if t["status"] == "TERMINATED"}
        (marker,) = [m for m in (ray_tmp / "ray").glob(f"session_*/{MARKER}") if not m.parent.is_symlink()]
        driver = json.loads(marker.read_text())["driver_pid"]
        session = _session_processes(marker.parent)
        assert _listening_addresses(session) <= LOOPBACK, _listening_addresses(session)  # nothing off the machine
        for pid in session:  # what `ray stop` does to this Ray alone: not the driver
            if pid != driver:
                os.kill(pid, signal.SIGTERM)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == EXIT_RAY_DIED, err[-3000:]
    assert "the Ray under this sweep stopped while the sweep ran" in err and "Nothing reported is lost" in err
    assert f"python -m platform.sweep {path} --resume" in err
    assert "Traceback" not in err and "ActorDiedError" not in err and "Failed to connect to GCS" not in err

    resumed = subprocess.run([sys.executable, "-m", "platform.sweep", str(path), "--resume"], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=600)
    try:
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
        assert "Traceback" not in resumed.stdout + resumed.stderr, resumed.stderr[-4000:]
        trials = read_table(str(experiment), "trials").to_pylist()
        assert len(trials) == 3 and {t["status"] for t in trials} == {"TERMINATED"}
        assert " 3/3 done" in resumed.stdout, resumed.stdout  # the progress counts the trials finished before
        raw = ResultsStore(str(experiment)).read("epochs", latest=False).to_pylist()
        for trial_id in finished_before:  # a finished trial ran none of its epochs again
            epochs = sorted(row["epoch"] for row in raw if row["trial_id"] == trial_id)
            assert epochs == list(range(1, 9)), (trial_id, epochs)
        for trial in trials:
            assert trial["overhead_s"] >= 0 and trial["wall_s"] >= trial["time_in_epochs_s"], trial
    finally:
        reap_abandoned(ray_tmp / "ray", grace_s=5)
        shutil.rmtree(ray_tmp, ignore_errors=True)


# --- signals: a first SIGINT/SIGTERM stops cleanly, a second at once; --resume then completes ----------------

FAULT_DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8,
              "batch_size": 1, "patches_per_epoch": 1}
SIGNAL_EPOCHS = 5


def _fault_sweep(tmp_path: Path, name: str, **sections: Any) -> Path:
    """A 3-trial grid sweep of the fault trainer, 2 at a time; ``sections`` replace or add top-level spec keys."""
    spec = {"name": name, "trainer": "fault", "data": FAULT_DATA, "storage": str(tmp_path / "runs"),
            "objective": {"metric": "val/dice", "mode": "max"}, "fixed": {"epochs": SIGNAL_EPOCHS, "epoch_s": 0.4},
            "search": {"iterations": {"grid": [3, 4, 5]}}, "searcher": {"sampler": "grid"},
            "budget": {"concurrent": 2}, "resources": {"cpus_per_worker": 1}, "runtime": {"checkpoint_every": 1},
            **sections}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _fault_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SEGSWEEP_CACHE": str(cache_dir), "SEGSWEEP_PLUGINS": "tests.fault_trainer",
            "RAY_DISABLE_USAGE_STATS": "1", **extra}


class _Lines:
    """A stream read line by line in a thread; ``wait_for`` blocks until a line holds a text."""

    def __init__(self, stream: io.TextIOBase) -> None:
        import threading

        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.thread.start()

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return False

    def text(self) -> str:
        self.thread.join(timeout=30)
        return "".join(self.lines)


# signal, times sent, exit code, the words of the stop paragraph
SIGNALS = [
    ("sigint", signal.SIGINT, 1, 130, "stopped by SIGINT (Ctrl-C)."),
    ("sigterm", signal.SIGTERM, 1, 143, "stopped by SIGTERM."),
    ("sigint-twice", signal.SIGINT, 2, 130, "stopped by SIGINT (Ctrl-C) (at once)."),
]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "signum", "times", "code", "words"), SIGNALS, ids=[s[0] for s in SIGNALS])
def test_a_signal_stops_the_sweep_cleanly_and_resume_runs_every_trial_once(
        tmp_path: Path, cache_dir: Path, case: str, signum: int, times: int, code: int, words: str) -> None:
    path = _fault_sweep(tmp_path, case)
    env = _fault_env(cache_dir)
    # Its own session: the signals go to the command's process only, as `kill PID` or a scheduler sends them.
    sweep = subprocess.Popen([sys.executable, "-m", "platform.sweep", str(path)], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out, err = _Lines(sweep.stdout), _Lines(sweep.stderr)
    try:
        assert out.wait_for(f"epoch 2/{SIGNAL_EPOCHS}", timeout=300), out.text()[-2000:] + err.text()[-3000:]
        sweep.send_signal(signum)
        if times == 2:  # the second as soon as the first is being handled: Tune is still saving and stopping
            assert err.wait_for("received: stopping the sweep", timeout=60), err.text()[-3000:]
            sweep.send_signal(signum)
        sweep.wait(timeout=180)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    stderr = err.text()
    assert sweep.returncode == code, stderr[-3000:]
    assert words in stderr and f"python -m platform.sweep {path} --resume" in stderr, stderr[-3000:]
    assert "Traceback" not in stderr and "*** SIGTERM received" not in stderr and "PC: @" not in stderr, stderr
    assert "the Ray under this sweep stopped" not in stderr
    experiment = tmp_path / "runs" / case
    statuses = [t["status"] for t in read_table(str(experiment), "trials").to_pylist()]
    assert "RUNNING" in statuses or len(statuses) < 3, statuses  # stopped before the end: something left to resume

    resumed = subprocess.run([sys.executable, "-m", "platform.sweep", str(path), "--resume"], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
    trials = read_table(str(experiment), "trials").to_pylist()
    assert len(trials) == 3 and {t["status"] for t in trials} == {"TERMINATED"}, trials
    epochs = read_table(str(experiment), "epochs").to_pylist()
    for trial in trials:
        seen = sorted(e["epoch"] for e in epochs if e["trial_id"] == trial["trial_id"])
        assert seen == list(range(1, SIGNAL_EPOCHS + 1)), (trial["trial_id"], seen)


@pytest.mark.slow
def test_a_slow_shutdown_of_its_own_ray_is_not_a_death(tmp_path: Path, cache_dir: Path) -> None:
    """A grace far shorter than any Ray shutdown: the sweep that finished still exits 0 with its table, because
    it said it shuts its Ray down itself before doing so."""
    path = _fault_sweep(tmp_path, "slow-shutdown")
    result = subprocess.run([sys.executable, "-m", "platform.sweep", str(path), "fixed.epoch_s=0"], cwd=REPO_ROOT,
                            env=_fault_env(cache_dir, SEGSWEEP_RAY_DIED_GRACE_S="0.001"), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "3 trials in" in result.stdout and "the Ray under this sweep stopped" not in result.stderr


GRACES = [  # SEGSWEEP_RAY_DIED_GRACE_S, load per CPU -> the grace
    (None, 0.5, 15.0),
    (None, 4.0, 60.0),
    ("40", 4.0, 40.0),
    ("abc", 1.0, 15.0),  # a mistyped value: the default (the sweep's start refuses nothing for it)
]


@pytest.mark.parametrize(("value", "load", "grace"), GRACES)
def test_the_grace_for_a_dead_ray_follows_the_machine(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                                      load: float, grace: float) -> None:
    from platform import localray, supervisor

    if value is None:
        monkeypatch.delenv(supervisor.GRACE_ENV, raising=False)
    else:
        monkeypatch.setenv(supervisor.GRACE_ENV, value)
    monkeypatch.setattr(localray, "machine_load", lambda: load)
    assert supervisor.grace_s() == pytest.approx(grace)


def test_a_session_marked_stopping_says_so(tmp_path: Path) -> None:
    from platform.localray import mark_session, session_stopping

    mark_session(tmp_path)
    assert not session_stopping(tmp_path)
    marker = json.loads((tmp_path / MARKER).read_text())
    (tmp_path / MARKER).write_text(json.dumps({**marker, "stopping": True}))
    assert session_stopping(tmp_path)
    assert not session_stopping(tmp_path / "missing")
