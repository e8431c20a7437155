"""`ray job submit` end to end against a head started with `ray start --head` (token auth, as Ray 2.60 defaults)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from platform.localray import ray_start_timeout_s, stop_sessions
from platform.results import read_table
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
NO_AGENT = "No available agent to submit job"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ray_job_submit_runs_a_sweep(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1", "SEGSWEEP_CACHE": str(tmp_path / "cache")}
    ray_bin = str(Path(sys.executable).parent / "ray")
    gcs, dashboard = free_port(), free_port()
    # A private temp dir (short: Ray's socket paths have a length limit): this head's sessions, address file and
    # processes are its own, and the test stops exactly those, never another Ray on the machine.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))
    started = subprocess.run(
        [ray_bin, "start", "--head", "--temp-dir", str(ray_tmp), "--node-ip-address", "127.0.0.1",
         "--num-cpus", "2", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
         "--dashboard-port", str(dashboard), "--include-dashboard", "true", "--disable-usage-stats",
         # The job agent's ports too: Ray's defaults (52365) are taken by any other Ray on the machine (a sweep's
         # private Ray included), and a head whose agent cannot bind answers every submission "No available agent".
         "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=180)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        token = (Path.home() / ".ray" / "auth_token").read_text().strip()
        job_env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        storage = tmp_path / "runs"
        command = [ray_bin, "job", "submit", "--address", f"http://127.0.0.1:{dashboard}", "--working-dir", ".",
                   "--runtime-env-json", '{"excludes": ["runs/", ".git/", ".venv/", "build/"]}', "--",
                   # This interpreter (a venv's, under `make test`): the job's shell would find another `python`.
                   sys.executable, "-m", "platform.sweep", "search_spaces/lambda.yaml", "--smoke", "--storage",
                   str(storage)]
        # The head's job agent registers some time after `ray start` returns, later on a loaded machine; until it
        # does a submission is refused ("No available agent") and starts nothing, so it is repeated, within the
        # start-up limit (SEGSWEEP_RAY_START_TIMEOUT_S stretches it).
        deadline = time.monotonic() + ray_start_timeout_s()
        while True:
            submitted = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=job_env,
                                       timeout=600)
            if NO_AGENT not in submitted.stdout + submitted.stderr or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert submitted.returncode == 0 and "succeeded" in submitted.stdout + submitted.stderr, (
            submitted.stdout[-3000:] + submitted.stderr[-3000:])
        trials = read_table(str(storage / "advnorm-lambda-smoke"), "trials").to_pylist()
        assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}
    finally:
        stop_sessions(ray_tmp, grace_s=10)
        shutil.rmtree(ray_tmp, ignore_errors=True)
