"""One writer per experiment (platform.lock): a second taker is refused naming the owner, a stale lock is taken
over, a released lock is gone; the same on a local path (O_EXCL) and on an object store (write, settle, read back).
The end-to-end race of two sweeps for one experiment is at the end (slow: one local Ray)."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
import yaml

from platform.lock import LOCK_NAME, ExperimentLock, LockHeld, lock_owner, pid_space
from platform.results import read_table
from tests.conftest import REPO_ROOT

STALE_S = 30.0


def make_lock(tmp_path: Path, kind: str, **kwargs: Any) -> ExperimentLock:
    """A lock on ``tmp_path/exp``: ``local`` (LocalFileSystem: O_EXCL) or ``object`` (any other pyarrow
    filesystem, here a local directory seen through SubTreeFileSystem: write, settle, read back)."""
    kwargs.setdefault("stale_s", STALE_S)
    kwargs.setdefault("settle_s", 0.05)
    if kind == "local":
        return ExperimentLock(str(tmp_path / "exp"), **kwargs)
    (tmp_path / "exp").mkdir(exist_ok=True)
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    return ExperimentLock("s3://bucket/exp", fs=fs, path=f"exp/{LOCK_NAME}", **kwargs)


def write_lock(tmp_path: Path, **fields: Any) -> None:
    """A lock object as another sweep left it (``fields`` override a live owner's)."""
    now = time.time()
    age = fields.pop("age", 0.0)  # of the heartbeat, in seconds: relative to now, however late the test runs
    data = {"token": "other", "host": "node-7", "pid": 4242, "since": now - 600, "heartbeat": now - age, **fields}
    (tmp_path / "exp").mkdir(parents=True, exist_ok=True)
    temporary = tmp_path / "exp" / "written-elsewhere.tmp"  # whole, as a lock writer writes it
    temporary.write_text(json.dumps(data) if fields.get("raw") is None else fields["raw"])
    os.replace(temporary, tmp_path / "exp" / LOCK_NAME)
    os.utime(tmp_path / "exp" / LOCK_NAME, (now - age, now - age))  # last written when its heartbeat was


KINDS = ["local", "object"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


DEAD_PID = _dead_pid()

# What is at the lock's place before a sweep takes it -> whether it is taken.
TAKERS = [
    ("no lock", None, True),
    ("a live owner", {}, False),
    ("a live owner whose heartbeat is almost stale", {"age": STALE_S - 20}, False),
    ("a stale owner", {"age": STALE_S + 5}, True),
    ("a lock cut short by a crash a minute ago", {"raw": '{"token": "oth', "age": 60}, True),
    ("an empty lock being written now", {"raw": ""}, False),
    ("a fresh lock of a process gone from this machine", {"pid": DEAD_PID, "space": pid_space()}, True),
    ("a fresh lock of a process running on this machine", {"pid": os.getppid(), "space": pid_space(),
                                                           "host": "node-7"}, False),
    ("a fresh lock of that PID in another PID namespace", {"pid": DEAD_PID, "space": "elsewhere:1:2"}, False),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "existing", "taken"), TAKERS, ids=[t[0] for t in TAKERS])
def test_a_lock_is_taken_only_when_free_or_stale(tmp_path: Path, kind: str, case: str, existing: dict | None,
                                                 taken: bool) -> None:
    if existing is not None:
        write_lock(tmp_path, **dict(existing))
    lock = make_lock(tmp_path, kind)
    if not taken:
        with pytest.raises(LockHeld) as info:
            lock.acquire()
        message = str(info.value)
        named = ("host unknown",) if "raw" in existing else ("host node-7", f"PID {existing.get('pid', 4242)}")
        for fragment in ("another sweep", *named, "since ", "SEGSWEEP_LOCK_STALE_S"):
            assert fragment in message, f"{fragment!r} not in: {message}"
        if "raw" not in existing:
            assert json.loads((tmp_path / "exp" / LOCK_NAME).read_text())["token"] == "other", "the owner's stays"
        return
    lock.acquire()
    written = json.loads((tmp_path / "exp" / LOCK_NAME).read_text())
    assert (written["token"], written["host"], written["pid"]) == (lock.token, socket.gethostname(), os.getpid())
    assert lock.held and lock.owner().token == lock.token
    assert not list((tmp_path / "exp").glob(f"{LOCK_NAME}.*")), "nothing left beside the lock"
    with pytest.raises(LockHeld):  # a second taker, now
        make_lock(tmp_path, kind).acquire()
    lock.release()
    assert not (tmp_path / "exp" / LOCK_NAME).exists()
    make_lock(tmp_path, kind).acquire()  # free again


@pytest.mark.parametrize("kind", KINDS)
def test_the_heartbeat_keeps_a_lock_fresh_and_notices_a_lost_one(tmp_path: Path, kind: str) -> None:
    lock = make_lock(tmp_path, kind, stale_s=0.4)
    lock.acquire()
    first = lock.owner().heartbeat
    lock.start_heartbeat(interval_s=0.05)
    time.sleep(0.6)  # longer than stale_s: without the heartbeat a second taker would take it over
    with pytest.raises(LockHeld):
        make_lock(tmp_path, kind, stale_s=0.4).acquire()
    assert lock.owner().heartbeat > first
    write_lock(tmp_path, token="usurper")  # taken over behind its back (a stale rule broken by a clock skew)
    time.sleep(0.3)
    assert lock.lost is not None and lock.lost.token == "usurper" and not lock.held
    lock.release()
    assert json.loads((tmp_path / "exp" / LOCK_NAME).read_text())["token"] == "usurper", "release leaves theirs"


@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale"])
def test_racing_takers_on_a_local_path_get_one_owner(tmp_path: Path, stale: bool) -> None:
    for round_ in range(10):  # the windows are short: race often
        root = tmp_path / f"round{round_}"
        if stale:
            write_lock(root, age=STALE_S + 5)
        locks = [make_lock(root, "local") for _ in range(8)]
        start = threading.Barrier(len(locks))
        outcomes: list[str] = []

        def take(lock: ExperimentLock, start: threading.Barrier = start, outcomes: list[str] = outcomes) -> None:
            start.wait()
            try:
                lock.acquire()
                outcomes.append("owner")
            except LockHeld:
                outcomes.append("refused")

        threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["owner"] + ["refused"] * (len(locks) - 1), f"round {round_}: {outcomes}"
        owner = next(lock for lock in locks if lock.held)
        assert json.loads((root / "exp" / LOCK_NAME).read_text())["token"] == owner.token
        assert sorted(path.name for path in (root / "exp").iterdir()) == [LOCK_NAME], "nothing left beside it"


def test_a_filesystem_without_hard_links_still_gets_one_owner(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted", target)

    monkeypatch.setattr(os, "link", no_link)
    lock = make_lock(tmp_path, "local")
    lock.acquire()
    assert json.loads((tmp_path / "exp" / LOCK_NAME).read_text())["token"] == lock.token
    with pytest.raises(LockHeld):
        make_lock(tmp_path, "local").acquire()
    assert sorted(path.name for path in (tmp_path / "exp").iterdir()) == [LOCK_NAME]


def test_lock_owner_reports_only_a_live_lock(tmp_path: Path) -> None:
    experiment = str(tmp_path / "exp")
    assert lock_owner(experiment) is None
    write_lock(tmp_path)
    owner = lock_owner(experiment)
    assert owner is not None and "host node-7, PID 4242, since " in owner.describe()
    write_lock(tmp_path, age=10_000)
    assert lock_owner(experiment) is None


# --- two sweeps race for one experiment (one local Ray: slow) ------------------------------------------------

EPOCHS = 2


def sweep_env(cache_dir: Path) -> dict[str, str]:
    return {**os.environ, "SEGSWEEP_CACHE": str(cache_dir), "SEGSWEEP_PLUGINS": "tests.fault_trainer",
            "RAY_DISABLE_USAGE_STATS": "1"}


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, Path, list]:
    """Two sweeps of one spec started at once: (spec, experiment, [(exit code, stdout, stderr)] of both)."""
    root = tmp_path_factory.mktemp("race")
    spec = {"name": "race", "trainer": "fault", "storage": str(root / "runs"), "fixed": {"epochs": EPOCHS},
            "objective": {"metric": "val/dice", "mode": "max"}, "budget": {"trials": 2, "concurrent": 2},
            "searcher": {"sampler": "random", "seed": 0}, "search": {"iterations": {"int": [1, 3]}},
            "resources": {"workers_per_trial": 1, "cpus_per_worker": 0.5}}
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    sweeps = [subprocess.Popen([sys.executable, "-m", "platform.sweep", str(path)], cwd=REPO_ROOT,
                               env=sweep_env(cache_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outputs = [sweep.communicate(timeout=600) for sweep in sweeps]
    return path, root / "runs" / "race", [(sweep.returncode, *out) for sweep, out in zip(sweeps, outputs, strict=True)]


@pytest.mark.slow
def test_two_sweeps_racing_for_one_experiment(raced: tuple[Path, Path, list]) -> None:
    _, experiment, results = raced
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [(code, out[-2000:], err[-3000:]) for code, out, err in results]
    _, _, refusal = next(result for result in results if result[0] == 2)
    assert "Traceback" not in refusal and refusal.startswith("error: "), refusal
    # Refused at the lock (naming its owner), or, had the winner finished first, because the experiment exists.
    assert ("another sweep" in refusal and "PID " in refusal and "since " in refusal) or "already exists" in refusal
    trials = read_table(str(experiment), "trials").to_pylist()
    assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}, trials
    epochs = read_table(str(experiment), "epochs").to_pylist()
    for trial in trials:
        assert sorted(r["epoch"] for r in epochs if r["trial_id"] == trial["trial_id"]) == list(range(1, EPOCHS + 1))
    assert not (experiment / LOCK_NAME).exists(), "the winner released its lock"


@pytest.mark.slow
def test_resuming_a_finished_experiment_is_quiet_with_one_clock(raced: tuple[Path, Path, list],
                                                                cache_dir: Path) -> None:
    path, experiment, _ = raced
    before = read_table(str(experiment), "trials").to_pylist()
    result = subprocess.run([sys.executable, "-m", "platform.sweep", str(path), "--resume"], capture_output=True,
                            text=True, cwd=REPO_ROOT, env=sweep_env(cache_dir), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Failed to fetch metrics" not in result.stderr + result.stdout, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    clocks = [int(seconds) for seconds in re.findall(r"^\[\s*(\d+)s\] trials", result.stdout, re.MULTILINE)]
    total = re.search(r"(\d+) trials in (\d+) s", result.stdout)
    assert clocks and total, result.stdout[-3000:]
    assert max(clocks) <= int(total.group(2)) + 1, f"progress {clocks} vs summary {total.group(0)}"
    after = read_table(str(experiment), "trials").to_pylist()
    assert sorted((t["trial_id"], t["status"]) for t in after) == sorted((t["trial_id"], t["status"]) for t in before)


@pytest.mark.parametrize(("text", "expected"), [
    (None, 120.0), ("", 120.0), ("  ", 120.0), ("abc", 120.0), ("-1", 120.0), ("0", 120.0), ("nan", 120.0),
    ("inf", 120.0), ("30", 30.0), (" 2.5 ", 2.5),
])
def test_lock_timings_from_the_environment_fall_back_to_the_default(monkeypatch, text, expected) -> None:
    from platform.envvars import seconds_or

    if text is None:
        monkeypatch.delenv("SEGSWEEP_LOCK_STALE_S", raising=False)
    else:
        monkeypatch.setenv("SEGSWEEP_LOCK_STALE_S", text)
    assert seconds_or("SEGSWEEP_LOCK_STALE_S", 120.0) == expected
