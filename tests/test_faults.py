"""Fault injection: failing trials end errored with their reason while the others finish; a killed Train worker
and a corrupt latest checkpoint cost epochs, never the trial. Faults come from the test-only ``fault`` trainer
(tests/fault_trainer.py), loaded into the sweep's processes with ``SEGSWEEP_PLUGINS``.

The driver-kill case (SIGKILL of the sweep, then ``--resume``) is tests/test_sweep.py::
test_sigkill_then_resume_keeps_every_trial_once; advnorm's own NaN guard is
tests/test_sweep.py::test_nan_trial_errors_with_reason_and_others_finish.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from platform.engine import restore_checkpoint, save_checkpoint
from platform.results import read_table
from platform.worker import memory_limit
from tests.conftest import REPO_ROOT
from tests.fault_trainer import FaultConfig, FaultTrainer

DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8, "batch_size": 1,
        "patches_per_epoch": 1}
ITERATIONS = FaultConfig().iterations
POLL_S = 0.5
linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="the memory cap uses Linux RLIMIT_DATA")


def run_sweep(tmp_path: Path, cache_dir: Path, **fields: Any) -> tuple[str, subprocess.CompletedProcess]:
    """Run ``python -m platform.sweep`` on a ``fault`` trainer spec; (experiment path, finished process)."""
    spec = {"name": "faults", "trainer": "fault", "data": DATA, "storage": str(tmp_path / "runs"),
            "objective": {"metric": "val/dice", "mode": "max"}, "budget": {"trials": 1, "concurrent": 1}, **fields}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    # Train's controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (default 2 s) and takes one report
    # per worker per poll, so tiny epochs would wait on it.
    env = {**os.environ, "SEGSWEEP_CACHE": str(cache_dir), "SEGSWEEP_PLUGINS": "tests.fault_trainer",
           "RAY_DISABLE_USAGE_STATS": "1", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": str(POLL_S)}
    result = subprocess.run([sys.executable, "-m", "platform.sweep", str(path)], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return str(tmp_path / "runs" / "faults"), result


def epoch_rows(experiment: str, trial_id: str) -> list[dict[str, Any]]:
    rows = [r for r in read_table(experiment, "epochs").to_pylist() if r["trial_id"] == trial_id]
    return sorted(rows, key=lambda r: r["epoch"])


# --- failing trials (in-process path, one sweep) -----------------------------------------------------------

# fault -> (status, the reason in `error`, epochs reported before it); every fault fires at epoch 2 of 3.
OUTCOMES = {
    "none": ("TERMINATED", None, 3),
    "raise": ("ERROR", "RuntimeError: injected failure at epoch 2", 1),
    "nan": ("ERROR", "FloatingPointError: train/loss became nan at epoch 2", 1),
    "memory": ("ERROR", "MemoryError: the trial exceeded its memory limit (resources.memory_gb=0.25)", 1),
}


@pytest.mark.slow
@linux_only
def test_failing_trials_error_with_their_reason_and_the_others_finish(tmp_path: Path, cache_dir: Path) -> None:
    experiment, result = run_sweep(
        tmp_path, cache_dir, fixed={"epochs": 3, "fault_epoch": 2, "memory_mb": 2048},
        search={"fault": {"grid": list(OUTCOMES)}}, searcher={"sampler": "grid"}, budget={"concurrent": 2},
        resources={"workers_per_trial": 1, "cpus_per_worker": 1, "memory_gb": 0.25})
    trials = {t["config/fault"]: t for t in read_table(experiment, "trials").to_pylist()}
    assert sorted(trials) == sorted(OUTCOMES)
    for fault, (status, reason, epochs) in OUTCOMES.items():
        trial = trials[fault]
        assert trial["status"] == status, (fault, trial["error"])
        assert (trial["error"] is None) if reason is None else trial["error"].startswith(reason), trial["error"]
        assert [r["epoch"] for r in epoch_rows(experiment, trial["trial_id"])] == list(range(1, epochs + 1))
        assert trial["epochs"] == epochs
    assert trials["none"]["last/val/dice"] == 1.0
    assert "errored trials" in result.stdout


# --- a Train worker killed, a corrupt latest checkpoint (Ray Train path, 2 workers, one sweep) --------------

# fault -> the epoch the restarted workers start from; both fire on rank 1 at the start of epoch 3 of 4.
RESTARTS = {
    "kill": 2,  # SIGKILL of the worker process: the worker group restarts from the last checkpoint (epoch 2)
    "corrupt": 1,  # the newest checkpoint (epoch 2) overwritten, then an exception: the restart falls back to epoch 1
}


@pytest.mark.slow
def test_train_worker_failures_restart_from_a_checkpoint(tmp_path: Path, cache_dir: Path) -> None:
    fired = tmp_path / "fired"
    # The delay lets the controller poll the workers' epoch-2 reports (a worker's queue holds one) before the fault.
    fixed = {"epochs": 4, "fault_epoch": 3, "fault_rank": 1, "once_dir": str(fired), "fault_delay_s": 4 * POLL_S,
             "checkpoints": str(tmp_path / "runs" / "faults" / "train")}
    # Two 2-worker trials at once on 2 CPUs: 2 x (2 x 0.45 + 0.01 for the Train driver).
    experiment, result = run_sweep(tmp_path, cache_dir, fixed=fixed, search={"fault": {"grid": list(RESTARTS)}},
                                   searcher={"sampler": "grid"}, budget={"concurrent": 2},
                                   resources={"workers_per_trial": 2, "cpus_per_worker": 0.45},
                                   runtime={"checkpoint_every": 1})
    assert sorted(p.name for p in fired.iterdir()) == sorted(RESTARTS), "a fault never fired"
    trials = {t["config/fault"]: t for t in read_table(experiment, "trials").to_pylist()}
    for fault, start in RESTARTS.items():
        trial = trials[fault]
        assert trial["status"] == "TERMINATED", (fault, trial["error"])
        rows = epoch_rows(experiment, trial["trial_id"])
        assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and trial["epochs"] == 4, fault
        # Epochs after the restart ran in workers restored from the checkpoint of epoch `start`, not from scratch.
        assert [r["train/start_epoch"] for r in rows] == [0.0] * start + [float(start)] * (4 - start), fault
        assert all(r["train/workers"] == 2 for r in rows)
        # The optimizer state came back too: every epoch's steps are counted exactly once.
        assert rows[-1]["train/steps"] == 4 * ITERATIONS and rows[-1]["val/dice"] == 1.0, fault
    assert "continuing from the earlier checkpoint" in result.stdout + result.stderr


# --- checkpoint fallback and the memory cap, without Ray -----------------------------------------------------

# Which of three checkpoints (epochs 1, 2, 3) are damaged -> the epoch restored, or None for a clear error.
FALLBACKS = [
    ((), 3),
    ((3,), 2),
    ((2, 3), 1),
    ((1, 2, 3), None),
]


@pytest.mark.parametrize(("damaged", "restored"), FALLBACKS)
def test_restore_falls_back_to_the_newest_usable_checkpoint(tmp_path: Path, tiny_data, damaged: tuple[int, ...],
                                                            restored: int | None) -> None:
    from ray.train import Checkpoint

    trainer = FaultTrainer(FaultConfig(), tiny_data)
    for epoch in (1, 2, 3):
        trainer.epoch = epoch
        directory = tmp_path / f"checkpoint_00000{epoch}"
        directory.mkdir()
        state = save_checkpoint(trainer, directory)
        if epoch in damaged and epoch % 2:
            state.write_bytes(b"\x80\x02garbage")  # truncated
        elif epoch in damaged:
            state.unlink()  # missing
    fresh = FaultTrainer(FaultConfig(), tiny_data)
    latest = Checkpoint.from_directory(str(tmp_path / "checkpoint_000003"))
    if restored is None:
        with pytest.raises(RuntimeError, match="no usable checkpoint") as info:
            restore_checkpoint(fresh, latest)
        assert all(f"checkpoint_00000{e}" in str(info.value) for e in damaged)
    else:
        loaded = restore_checkpoint(fresh, latest)
        assert fresh.epoch == fresh.start_epoch == restored
        assert loaded.path.endswith(f"checkpoint_00000{restored}")


@linux_only
def test_memory_limit_turns_an_over_allocation_into_a_readable_error() -> None:
    with pytest.raises(MemoryError, match=r"exceeded its memory limit \(resources.memory_gb=0.1\)"), \
            memory_limit(0.1):
        torch.ones(2**28)  # 1 GiB
    assert torch.ones(2**28).numel() == 2**28  # the cap is lifted afterwards (reused actors run other trials)
    with memory_limit(None):
        torch.ones(2**28)
