"""A full disk under the results tables (slow: one local Ray): the sweep stops in one paragraph with exit code 3
and the ``--resume`` command, no traceback; once space is freed, ``--resume`` completes with every trial once and
epochs 1..N. The disk is made full by ``tests/full_disk.py`` (a plugin) after the sweep's first table write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platform.results import read_table
from tests.conftest import REPO_ROOT

EPOCHS = 3
pytestmark = pytest.mark.slow


def test_a_full_disk_stops_the_sweep_in_one_paragraph_and_resume_completes(tmp_path: Path, cache_dir: Path) -> None:
    spec = {"name": "full", "trainer": "fault", "storage": str(tmp_path / "runs"),
            "fixed": {"epochs": EPOCHS, "iterations": 200}, "objective": {"metric": "val/dice", "mode": "max"},
            "budget": {"trials": 2, "concurrent": 1}, "searcher": {"sampler": "random", "seed": 0},
            "search": {"fault_delay_s": {"uniform": [0.0, 1.0]}},
            "resources": {"workers_per_trial": 1, "cpus_per_worker": 1}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "SEGSWEEP_CACHE": str(cache_dir), "SEGSWEEP_PLUGINS": "tests.fault_trainer,tests.full_disk",
           "SEGSWEEP_STORE_RETRY_S": "2", "RAY_DISABLE_USAGE_STATS": "1"}
    env.pop("SEGSWEEP_TEST_FULL_AFTER_WRITES", None)
    sweep = subprocess.run([sys.executable, "-m", "platform.sweep", str(path)], cwd=REPO_ROOT,
                           env={**env, "SEGSWEEP_TEST_FULL_AFTER_WRITES": "1"}, capture_output=True, text=True,
                           timeout=600)
    experiment = str(tmp_path / "runs" / "full")
    out, err = sweep.stdout, sweep.stderr
    assert sweep.returncode == 3, out[-2000:] + err[-3000:]
    assert "Traceback" not in err, err[-5000:]
    assert "no space left on the device" in err and "--resume" in err, err[-3000:]
    stop = err[err.index("error: the sweep stopped"):]
    assert stop.count("\n") <= 2, f"one paragraph and the command: {stop}"

    # Space freed: the resume runs without the plugin's limit.
    resumed = subprocess.run([sys.executable, "-m", "platform.sweep", str(path), "--resume"], capture_output=True,
                             text=True, cwd=REPO_ROOT, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = read_table(experiment, "trials").to_pylist()
    assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}, trials
    epochs = read_table(experiment, "epochs").to_pylist()
    for trial in trials:
        assert sorted(r["epoch"] for r in epochs if r["trial_id"] == trial["trial_id"]) == list(range(1, EPOCHS + 1))
