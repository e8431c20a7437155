"""End to end: the CLI runs real sweeps on a local Ray and fills the results tables (slow, run in CI)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from platform.results import read_table
from tests.conftest import REPO_ROOT, TINY_ADVNORM

pytestmark = pytest.mark.slow

DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 3, "size": 24, "patch_size": 16, "batch_size": 2,
        "patches_per_epoch": 4}


def write_spec(tmp_path: Path, **fields) -> Path:
    spec = {"name": "e2e", "trainer": "advnorm", "data": DATA, "fixed": dict(TINY_ADVNORM),
            "objective": {"metric": "val/dice", "mode": "max"}, "storage": str(tmp_path / "runs"),
            "resources": {"workers_per_trial": 1, "cpus_per_worker": 1}}
    for key, value in fields.items():
        if key == "fixed":
            spec["fixed"].update(value)
        else:
            spec[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def env(cache_dir: Path) -> dict[str, str]:
    return {**os.environ, "SEGSWEEP_CACHE": str(cache_dir), "RAY_DISABLE_USAGE_STATS": "1"}


def run_cli(args: list[str], cache_dir: Path, timeout: float = 600,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "platform.sweep", *args], capture_output=True, text=True,
                            cwd=REPO_ROOT, env={**env(cache_dir), **(extra_env or {})}, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_conditional_search_with_repeats_fills_tables(tmp_path: Path, cache_dir: Path) -> None:
    spec = write_spec(
        tmp_path,
        search={"lambda": {"loguniform": [0.01, 10.0]},
                "discriminator": {"choice": ["dcgan", "none"]},
                "n_steps": {"int": [1, 2], "when": {"discriminator": "dcgan"}}},
        searcher={"sampler": "random", "seed": 3, "points_to_evaluate": [{"discriminator": "dcgan", "lambda": 1.5}]},
        budget={"trials": 2, "concurrent": 2},
        repeats={"seeds": [0, 1]},
    )
    result = run_cli([str(spec)], cache_dir)
    experiment = tmp_path / "runs" / "e2e"
    assert f"Results: {experiment}/tables" in result.stdout
    assert "best/val/dice" in result.stdout

    trials = read_table(str(experiment), "trials").to_pylist()
    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    assert sorted(t["seed"] for t in trials) == [0, 0, 1, 1]
    for seed_pair in ([t for t in trials if t["repeat"] == r] for r in (0, 1)):
        assert len(seed_pair) == 2
    for trial in trials:
        conditional = trial["config/n_steps"]
        assert (conditional is not None and not (isinstance(conditional, float) and math.isnan(conditional))) == (
            trial["config/discriminator"] == "dcgan")
        assert trial["epochs"] == TINY_ADVNORM["epochs"]
        assert 0 <= trial["best/val/dice"] <= 1
        assert trial["overhead_s"] > 0 and trial["wall_s"] > trial["time_in_epochs_s"]
    first = next(t for t in trials if t["repeat"] == 0 and t["config/lambda"] == 1.5)
    assert first["config/discriminator"] == "dcgan"  # the point to evaluate ran first

    epochs = read_table(str(experiment), "epochs").to_pylist()
    assert len(epochs) == 4 * TINY_ADVNORM["epochs"]
    assert all("val/dice" in row and "val/jsd_norm" in row and "val/hd95" in row for row in epochs)
    artifacts = read_table(str(experiment), "artifacts").to_pylist()
    assert all(Path(a["path"]).is_file() for a in artifacts)
    # The cases table: one row per trial x epoch x validation volume, with per-class scores, and at the end of
    # each trial one per test volume for each of the two checkpoints (best on val, last).
    cases = read_table(str(experiment), "cases").to_pylist()
    val = [c for c in cases if c["split"] == "val"]
    test = [c for c in cases if c["split"] == "test"]
    val_volumes = len({(c["domain"], c["subject"]) for c in val})
    test_volumes = len({(c["domain"], c["subject"]) for c in test})
    # Pictures: one per domain of the last validation (with its volumes for the slice viewer), and one per test
    # volume of the selected networks.
    assert len([a for a in artifacts if a["split"] == "val" and a["kind"] != "volume"]) == 4 * 2
    assert len([a for a in artifacts if a["split"] == "val" and a["kind"] == "volume"]) == 4 * 2
    assert len([a for a in artifacts if a["split"] == "test"]) == 4 * test_volumes
    assert val_volumes >= 2 and len(val) == 4 * TINY_ADVNORM["epochs"] * val_volumes
    assert test_volumes >= 2 and len(test) == 4 * 2 * test_volumes and len(val) + len(test) == len(cases)
    assert all(c["checkpoint"] == "epoch" and "dice/wm" in c and "hd95" in c for c in val)
    assert {c["checkpoint"] for c in test} == {"best", "last"}
    assert not {(c["domain"], c["subject"]) for c in val} & {(c["domain"], c["subject"]) for c in test}
    assert all(t["test/best/dice"] is not None and t["test/last/dice"] is not None for t in trials)
    # The sweep table: objectives and the metadata the explorer reads instead of guessing from names.
    (sweep,) = read_table(str(experiment), "sweep").to_pylist()
    metrics, axes = json.loads(sweep["metrics"]), json.loads(sweep["axes"])
    assert metrics["dice"]["direction"] == "max" and metrics["hd95"]["direction"] == "min"
    assert axes["lambda"] == {"kind": "loguniform", "log": True}
    assert axes["discriminator"]["values"] == ["dcgan", "none"]


def test_nan_trial_errors_with_reason_and_others_finish(tmp_path: Path, cache_dir: Path) -> None:
    spec = write_spec(tmp_path, fixed={"discriminator": "none", "epochs": 3},
                      search={"lr_s": {"grid": [1e-3, 1e30]}},
                      searcher={"sampler": "grid"}, budget={"concurrent": 2})
    result = run_cli([str(spec)], cache_dir)
    trials = {t["config/lr_s"]: t for t in read_table(str(tmp_path / "runs" / "e2e"), "trials").to_pylist()}
    assert trials[1e30]["status"] == "ERROR"
    assert "became nan" in trials[1e30]["error"]
    assert trials[1e-3]["status"] == "TERMINATED" and trials[1e-3]["epochs"] == 3
    assert "errored trials" in result.stdout


def test_two_worker_trial_trains_on_both_workers(tmp_path: Path, cache_dir: Path) -> None:
    spec = write_spec(tmp_path, resources={"workers_per_trial": 2, "cpus_per_worker": 0.5},
                      budget={"trials": 1, "concurrent": 1})
    run_cli([str(spec)], cache_dir)
    experiment = str(tmp_path / "runs" / "e2e")
    epochs = read_table(experiment, "epochs").to_pylist()
    assert [row["epoch"] for row in epochs] == [1, 2]
    for row in epochs:
        assert row["train/workers"] == 2
        assert row["train/iterations_all_workers"] == 2 * row["train/iterations"]
        assert 0 <= row["val/dice"] <= 1  # rank 0's evaluation reached Tune
    (trial,) = read_table(experiment, "trials").to_pylist()
    assert trial["status"] == "TERMINATED"


def test_sigkill_then_resume_keeps_every_trial_once(tmp_path: Path, cache_dir: Path) -> None:
    # The test-only fault trainer (tests/fault_trainer.py), whose epochs last epoch_s each: a trial takes as long
    # on any machine, so the kill lands mid-sweep. With the advnorm smoke trainer a whole trial took under a second
    # on a quiet 2-core machine, and the sweep could end between two polls.
    epoch_s = 1.0
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "e2e", "trainer": "fault", "data": DATA, "storage": str(tmp_path / "runs"),
        "objective": {"metric": "val/dice", "mode": "max"}, "fixed": {"epochs": 4, "epoch_s": epoch_s},
        "search": {"iterations": {"int": [1, 5]}}, "searcher": {"sampler": "random"},
        "budget": {"trials": 4, "concurrent": 2}, "resources": {"workers_per_trial": 1, "cpus_per_worker": 1}}))
    experiment = tmp_path / "runs" / "e2e"
    fault_env = {**env(cache_dir), "SEGSWEEP_PLUGINS": "tests.fault_trainer"}
    process = subprocess.Popen([sys.executable, "-m", "platform.sweep", str(spec)], cwd=REPO_ROOT,
                               env=fault_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(epoch_s / 4)
            try:
                statuses = [t["status"] for t in read_table(str(experiment), "trials").to_pylist()]
                if "RUNNING" in statuses and read_table(str(experiment), "epochs").num_rows >= 3:
                    break
            except Exception:  # not written yet, or a part file mid-rename: try again
                continue
        assert process.poll() is None, "the sweep finished before it could be interrupted"
    finally:
        with contextlib.suppress(ProcessLookupError):  # the supervisor and the driver, no chance to clean up
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = read_table(str(experiment), "trials").to_pylist()
    assert sum(t["status"] == "TERMINATED" for t in before) < 4, "nothing was left to resume"

    run_cli([str(spec), "--resume"], cache_dir, extra_env={"SEGSWEEP_PLUGINS": "tests.fault_trainer"})
    trials = read_table(str(experiment), "trials").to_pylist()
    assert len(trials) == 4 and len({t["trial_id"] for t in trials}) == 4
    assert {t["status"] for t in trials} == {"TERMINATED"}
    epochs = read_table(str(experiment), "epochs").to_pylist()
    for trial in trials:
        numbers = sorted(row["epoch"] for row in epochs if row["trial_id"] == trial["trial_id"])
        assert numbers == list(range(1, 5)), (trial["trial_id"], numbers)

    again = subprocess.run([sys.executable, "-m", "platform.sweep", str(spec)], capture_output=True, text=True,
                           cwd=REPO_ROOT, env=fault_env, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_logical_gpus_schedule_fractional_trials_concurrently(tmp_path: Path, cache_dir: Path) -> None:
    """A local Ray with 4 logical GPUs: 0.5 GPU per trial runs all 8 trials at once (CPU fallback in each)."""
    spec = write_spec(tmp_path, fixed={"discriminator": "none", "generator": "none", "epochs": 2},
                      search={"lambda": {"grid": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}},
                      searcher={"sampler": "grid"},
                      resources={"workers_per_trial": 1, "cpus_per_worker": 0.25, "gpus_per_worker": 0.5})
    code = (
        "import sys, ray\n"
        f"ray.init(num_cpus=2, num_gpus=4, include_dashboard=False, runtime_env={{'env_vars': "
        f"{{'PYTHONPATH': {str(REPO_ROOT)!r}}}}})\n"
        "from platform.sweep import main\n"
        f"sys.exit(main([{str(spec)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=env(cache_dir), timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "concurrent 8 (as resources allow: 2 CPU, 4 GPU)" in result.stdout
    trials = read_table(str(tmp_path / "runs" / "e2e"), "trials").to_pylist()
    assert len(trials) == 8 and {t["status"] for t in trials} == {"TERMINATED"}
    # All eight ran at once: every trial started before the first one ended.
    assert max(t["started_at"] for t in trials) < min(t["ended_at"] for t in trials)


# One shipped spec per trainer also runs its smoke sweep in bf16 with channels-last weights (autocast on the CPU).
BF16_SPECS = {"cross_domain.yaml", "dualnorm_lambda.yaml", "loss_weights.yaml"}


@pytest.mark.parametrize("spec_name", sorted(p.name for p in (REPO_ROOT / "search_spaces").glob("*.yaml")))
def test_every_shipped_search_space_runs_in_smoke_mode(tmp_path: Path, cache_dir: Path, spec_name: str) -> None:
    from platform.spec import load_spec

    runtime = ["runtime.precision=bf16", "runtime.channels_last=true"] if spec_name in BF16_SPECS else []
    spec = load_spec(REPO_ROOT / "search_spaces" / spec_name, runtime, smoke=True)
    result = run_cli([f"search_spaces/{spec_name}", "--smoke", "--storage", str(tmp_path / "runs"), *runtime],
                     cache_dir)
    if runtime:
        assert "runtime      precision bf16, channels_last true" in result.stdout
    experiment = str(tmp_path / "runs" / spec.name)
    trials = read_table(experiment, "trials").to_pylist()
    assert len(trials) == spec.trial_count() and {t["status"] for t in trials} == {"TERMINATED"}, result.stdout
    epochs = read_table(experiment, "epochs")
    assert epochs.num_rows >= len(trials) and "val/dice" in epochs.column_names
    # The test split is reported at the end of every trial that ran to its last epoch, beside its val score.
    assert all(t.get("test/best/dice") is not None for t in trials if t["epochs"] == spec.base_config().epochs)
    assert "test/best/dice" in result.stdout
    # Quiet by default: the sweep's own lines, not the libraries' (--verbose brings them back).
    output = result.stdout + result.stderr
    for noise in ("SearchGenerator", "tensorboard", "A new study created", "Token authentication",
                  "Could not fetch metrics"):
        assert noise not in output, noise
