"""A killed local driver's Ray processes are found through its session directory and stopped by the next run;
nothing else is touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from platform.localray import MARKER, _process_start, _session_processes, abandoned_sessions, reap_abandoned
from tests.conftest import REPO_ROOT, TINY_ADVNORM

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _fake_session(root: Path, name: str, driver_pid: int, driver_start: str | None) -> tuple[Path, subprocess.Popen]:
    """A marked session directory and a process whose command line names it, as Ray's agents do."""
    session = root / name
    (session / "logs").mkdir(parents=True)
    (session / MARKER).write_text(json.dumps({"driver_pid": driver_pid, "driver_start": driver_start}))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", f"--logs-dir={session}/logs"])
    return session, process


def test_only_sessions_of_dead_drivers_are_reaped(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_start = _process_start(dead.pid)
    dead.wait()
    abandoned, orphan = _fake_session(tmp_path, "session_a", dead.pid, dead_start)
    live, survivor = _fake_session(tmp_path, "session_b", os.getpid(), _process_start(os.getpid()))
    reused, innocent = _fake_session(tmp_path, "session_c", os.getpid(), "1")  # the PID now belongs to another
    unmarked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(tmp_path / "session_d")])
    try:
        time.sleep(0.3)
        assert sorted(abandoned_sessions(tmp_path)) == [abandoned, reused]
        stopped = reap_abandoned(tmp_path, grace_s=5)
        assert sorted(stopped) == sorted([orphan.pid, innocent.pid])
        assert orphan.wait(timeout=10) == -signal.SIGTERM and innocent.wait(timeout=10) == -signal.SIGTERM
        assert survivor.poll() is None and unmarked.poll() is None, "a live session and an unmarked one stay"
        assert not (abandoned / MARKER).exists() and (live / MARKER).exists()
        assert reap_abandoned(tmp_path) == []
    finally:
        for process in (orphan, survivor, innocent, unmarked):
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_sigkilled_sweep_leaves_nothing_after_the_next_start(tmp_path: Path, cache_dir: Path) -> None:
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths have a length limit
    spec = {"name": "killed", "trainer": "advnorm", "storage": str(tmp_path / "runs"),
            "data": {"domains": ["infant", "adult"], "subjects_per_domain": 3, "size": 24, "patch_size": 16,
                     "batch_size": 2, "patches_per_epoch": 4},
            "fixed": dict(TINY_ADVNORM, epochs=50), "budget": {"trials": 1}, "resources": {"cpus_per_worker": 1}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "SEGSWEEP_CACHE": str(cache_dir), "RAY_DISABLE_USAGE_STATS": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "platform.sweep", str(path)], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in driver.stdout:
            if " epoch " in line:
                break
        markers = [m for m in (ray_tmp / "ray").glob(f"session_*/{MARKER}") if not m.parent.is_symlink()]
        assert len(markers) == 1, "the local run marked its own session"
        session = markers[0].parent
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        time.sleep(2)
        left = _session_processes(session)
        assert left, "a SIGKILLed driver leaves Ray processes behind (the defect this cleans up)"
        stopped = reap_abandoned(ray_tmp / "ray", grace_s=10)
        assert set(left) <= set(stopped) or not _session_processes(session)
        time.sleep(1)
        assert _session_processes(session) == []
    finally:
        driver.kill()
        reap_abandoned(ray_tmp / "ray", grace_s=5)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("variable", ["RAY_TMPDIR", "TMPDIR"])
def test_ray_temp_dir_is_the_parent_of_the_session_a_local_ray_reports(variable: str) -> None:
    """ray_temp_dir mirrors Ray's default without its private API: the session folder ``ray.init`` reports (public
    ``address_info``) lies in it. A Ray upgrade that moves its default fails here."""
    script = (
        "import os, ray\n"
        "from platform.localray import ray_temp_dir\n"
        "context = ray.init(num_cpus=1, include_dashboard=False)\n"
        "session = context.address_info['session_dir']\n"
        "ray.shutdown()\n"
        "print(os.path.dirname(session) == ray_temp_dir(), ray_temp_dir().startswith(os.environ['" + variable + "']))\n"
    )
    base = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths under it have a length limit
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_TMPDIR", "TMPDIR", "RAY_ADDRESS")}
    env.update({variable: str(base), "RAY_DISABLE_USAGE_STATS": "1"})
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
    finally:
        from platform.localray import stop_sessions

        stop_sessions(base / "ray", grace_s=10)  # whatever of that Ray is left, by its private folder
        shutil.rmtree(base, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"], done.stdout
