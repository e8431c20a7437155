"""Tuning pieces that need no running sweep: resources, concurrency, repeats of multi-objective results."""

from __future__ import annotations

from typing import Any

import pytest
import ray

from platform.spec import SweepSpec
from platform.tuning import (
    RepeatSearcher,
    build_scheduler,
    build_searcher,
    default_concurrency,
    trial_resources,
    unschedulable_reason,
)


def spec_of(**fields) -> SweepSpec:
    return SweepSpec.model_validate({"name": "t", "trainer": "advnorm", **fields})


@pytest.mark.parametrize(("resources", "cluster", "expected_trial", "expected_concurrency"), [
    ({"cpus_per_worker": 1}, {"CPU": 2}, {"CPU": 1}, 2),
    ({"cpus_per_worker": 1, "gpus_per_worker": 0.25}, {"CPU": 16, "GPU": 2}, {"CPU": 1, "GPU": 0.25}, 8),
    ({"cpus_per_worker": 2, "gpus_per_worker": 1}, {"CPU": 16, "GPU": 8}, {"CPU": 2, "GPU": 1}, 8),
    ({"workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 1}, {"CPU": 32, "GPU": 8}, {"CPU": 0.01}, 4),
    ({"workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 1}, {"CPU": 8, "GPU": 2}, {"CPU": 0.01}, 1),
    ({"cpus_per_worker": 0.25, "gpus_per_worker": 0.5}, {"CPU": 2, "GPU": 4}, {"CPU": 0.25, "GPU": 0.5}, 8),
    ({"cpus_per_worker": 4}, {"CPU": 2}, {"CPU": 4}, 1),
])
def test_resources_and_default_concurrency(monkeypatch, resources, cluster, expected_trial,
                                           expected_concurrency) -> None:
    spec = spec_of(resources=resources)
    monkeypatch.setattr(ray, "cluster_resources", lambda: cluster)
    assert trial_resources(spec) == expected_trial
    assert default_concurrency(spec) == expected_concurrency


def test_repeats_average_every_objective_before_the_searcher_sees_them() -> None:
    spec = spec_of(objective=[{"metric": "val/dice", "mode": "max"}, {"metric": "val/disc_acc", "mode": "min"}],
                   search={"lambda": {"loguniform": [0.1, 10]}}, repeats={"seeds": [0, 1]})
    searcher = build_searcher(spec)
    assert isinstance(searcher, RepeatSearcher)
    seen: list[dict] = []
    searcher.searcher.on_trial_complete = lambda trial_id, result=None, **kw: seen.append(result)
    first, second = searcher.suggest("t1"), searcher.suggest("t2")
    assert first["lambda"] == second["lambda"] and (first["__trial_index__"], second["__trial_index__"]) == (0, 1)
    searcher.on_trial_complete("t1", {"val/dice": 0.6, "val/disc_acc": 0.2})
    assert seen == []
    searcher.on_trial_complete("t2", {"val/dice": 0.8, "val/disc_acc": 0.4})
    assert seen == [{"val/dice": pytest.approx(0.7), "val/disc_acc": pytest.approx(0.3)}]
    # Two more groups, completing out of order; an errored repeat (no result) counts as NaN, left out of the mean.
    ids = ["t3", "t4", "t5", "t6"]
    configs = [searcher.suggest(trial_id) for trial_id in ids]
    assert [c["__trial_index__"] for c in configs] == [0, 1, 0, 1]
    searcher.on_trial_complete("t5", {"val/dice": 0.1, "val/disc_acc": 0.9})
    searcher.on_trial_complete("t4", None, error=True)
    searcher.on_trial_complete("t3", {"val/dice": 0.5, "val/disc_acc": 0.5})
    assert seen[1] == {"val/dice": pytest.approx(0.5), "val/disc_acc": pytest.approx(0.5)}
    searcher.on_trial_complete("t6", {"val/dice": 0.3, "val/disc_acc": 0.7})
    assert seen[2] == {"val/dice": pytest.approx(0.2), "val/disc_acc": pytest.approx(0.8)}


def test_asha_uses_the_first_objective() -> None:
    spec = spec_of(scheduler={"type": "asha", "grace_period": 2},
                   objective=[{"metric": "val/dice", "mode": "max"}, {"metric": "val/jsd_norm", "mode": "min"}])
    scheduler = build_scheduler(spec, epochs=10)
    assert (scheduler.metric, scheduler._mode) == ("val/dice", "max")


@pytest.mark.parametrize(("resources", "cluster", "fragment"), [
    ({"workers_per_trial": 2, "cpus_per_worker": 1}, {"CPU": 2}, "needs 2.01 CPUs"),
    ({"workers_per_trial": 2, "cpus_per_worker": 0.5}, {"CPU": 2}, None),
    ({"gpus_per_worker": 1}, {"CPU": 2}, "needs 1 GPUs"),
    ({"gpus_per_worker": 0.5}, {"CPU": 2, "GPU": 1}, None),
])
def test_unschedulable_trials_are_named_before_they_hang(resources, cluster, fragment) -> None:
    reason = unschedulable_reason(spec_of(resources=resources), cluster)
    assert reason is None if fragment is None else fragment in reason


def _fake_trial(trial_id: str) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(trial_id=trial_id, config={"lambda": 0.1})


def test_results_callback_summarises_from_seen_epochs_and_from_the_table_after_resume(tmp_path) -> None:
    from platform.results import read_table
    from platform.tuning import ResultsCallback

    spec = spec_of(search={"lambda": {"loguniform": [0.01, 10.0]}})
    experiment = str(tmp_path / "exp")
    first = ResultsCallback(spec, experiment)
    trial = _fake_trial("a")
    first.on_trial_start(0, [], trial)
    for epoch, dice in ((1, 0.2), (2, 0.5)):  # Tune hands metrics over as floats, "epoch" included
        first.on_trial_result(0, [], trial, {"epoch": float(epoch), "val/dice": dice, "time/epoch_s": 1.0})
    first.get_state()  # Tune saves its experiment state here: the rows so far are written first
    # A new driver after --resume sees only the later epochs; the summary must still cover all of them.
    second = ResultsCallback(spec, experiment)
    for epoch, dice in ((3, 0.4), (4, 0.45)):
        second.on_trial_result(0, [], trial, {"epoch": float(epoch), "val/dice": dice, "time/epoch_s": 1.0})
    second.on_trial_complete(0, [], trial)
    second.get_state()
    row = read_table(experiment, "trials").to_pylist()[0]
    assert (row["status"], row["epochs"], row["best/val/dice"], row["last/val/dice"]) == ("TERMINATED", 4, 0.5, 0.45)
    assert row["time_in_epochs_s"] == 4.0
    other = _fake_trial("b")
    second.on_trial_start(0, [], other)
    second.on_trial_result(0, [], other, {"epoch": 1.0, "val/dice": 0.3, "time/epoch_s": 2.0})
    second.on_trial_complete(0, [], other)
    second.on_experiment_end([trial, other])
    rows = {r["trial_id"]: r for r in read_table(experiment, "trials").to_pylist()}
    assert (rows["b"]["epochs"], rows["b"]["best/val/dice"]) == (1, 0.3)
    assert read_table(experiment, "epochs").column("epoch").type == "int64"


def test_results_rows_are_written_together_within_flush_s_and_at_every_tune_state_save(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from platform import tunewriter
    from platform.results import read_table

    spec = spec_of(search={"lambda": {"loguniform": [0.01, 10.0]}})
    experiment = str(tmp_path / "exp")
    callback = tunewriter.ResultsCallback(spec, experiment)
    callback.setup()
    parts = tmp_path / "exp" / "tables"
    trials = [_fake_trial(name) for name in "abc"]
    for trial in trials:
        callback.on_trial_start(0, trials, trial)
        callback.on_trial_result(0, trials, trial, {"epoch": 1.0, "val/dice": 0.5, "time/epoch_s": 1.0})
    callback.on_step_end(0, trials)  # younger than FLUSH_S: still gathered
    assert not (parts / "epochs").exists()
    monkeypatch.setattr(tunewriter, "FLUSH_S", 0.0)
    callback.on_step_end(0, trials)
    assert len(list((parts / "epochs").glob("part-*.parquet"))) == 1  # three trials' rows, one file
    assert sorted(read_table(experiment, "epochs").column("trial_id").to_pylist()) == ["a", "b", "c"]
    callback.on_trial_complete(0, trials, trials[0])
    assert read_table(experiment, "trials").num_rows == 3  # this writer's own reads see its gathered rows
    monkeypatch.setattr(tunewriter, "FLUSH_S", 3600.0)
    callback.on_trial_complete(0, trials, trials[1])
    assert callback.get_state() is None and callback.store.pending_rows() == 0  # a Tune state save writes them


@pytest.mark.parametrize(("present", "keep", "left"), [
    ([1, 2, 3, 4], 2, [3, 4]),
    ([4, 10, 9], 2, [9, 10]),  # by number, not by name
    ([1], 2, [1]),
    ([3, 5], 1, [5]),
])
def test_pruning_keeps_the_newest_checkpoints_and_tolerates_gone_ones(tmp_path, present, keep, left) -> None:
    import pyarrow.fs as pafs

    from platform.tuning import prune_checkpoints

    for n in present:
        (tmp_path / f"checkpoint_{n:06d}").mkdir()
        (tmp_path / f"checkpoint_{n:06d}" / "state.pt").write_text("x")
    (tmp_path / "result.json").write_text("{}")  # not a checkpoint: kept
    newest = str(tmp_path / f"checkpoint_{max(present):06d}")
    prune_checkpoints(pafs.LocalFileSystem(), newest, keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"checkpoint_{n:06d}" for n in left] + ["result.json"]
    assert prune_checkpoints(pafs.LocalFileSystem(), newest, keep) == []  # again: nothing left to delete
    assert prune_checkpoints(pafs.LocalFileSystem(), str(tmp_path / "gone" / "checkpoint_000001"), keep) == []


def test_tune_keeps_every_checkpoint_and_the_pruning_callback_deletes_old_ones(tmp_path) -> None:
    from platform.tuning import PruneCheckpoints, build_run_config

    run_config = build_run_config(spec_of(), str(tmp_path), str(tmp_path / "t"))
    assert run_config.checkpoint_config.num_to_keep is None
    assert any(isinstance(c, PruneCheckpoints) for c in run_config.callbacks)


def test_ray_contract_a_callback_edits_the_result_tune_keeps_after_the_scheduler_saw_it(ray_local, tmp_path) -> None:
    """What ``platform.tunewriter.slim_tune_result`` relies on in Tune: fails when a Ray upgrade changes it."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from platform.tunewriter import slim_tune_result

    seen: list[set[str]] = []

    class Recording(FIFOScheduler):
        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            seen.append(set(result))
            return super().on_trial_result(tune_controller, trial, result)

    class Slim(tune.Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            slim_tune_result(result, ["val/big"])

    def trainable(config: dict) -> None:
        for epoch in (1, 2):
            tune.report({"epoch": epoch, "val/dice": 0.5, "val/big": [0.0] * 100})

    grid = tune.Tuner(trainable, tune_config=tune.TuneConfig(scheduler=Recording(), num_samples=1),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[Slim()], verbose=0)).fit()
    assert len(seen) == 2 and all("val/big" in keys for keys in seen)  # the scheduler saw each result whole
    assert "val/big" not in grid[0].metrics and grid[0].metrics["val/dice"] == 0.5  # Tune kept the edited one


def test_progress_lines_show_parameters_epochs_eta_and_early_stops() -> None:
    import io
    from types import SimpleNamespace

    from platform.spec import load_spec
    from platform.tuning import ProgressCallback
    from tests.conftest import REPO_ROOT

    spec = load_spec(REPO_ROOT / "search_spaces" / "lambda.yaml")  # 6 epochs, ASHA, 8 trials
    out = io.StringIO()
    progress = ProgressCallback(spec, 8, stream=out)

    def trial(trial_id: str, status: str, epoch: int) -> SimpleNamespace:
        return SimpleNamespace(trial_id=trial_id, status=status, config={"lambda": 0.1, "params": {"lambda": 0.1}},
                               last_result={"epoch": epoch})

    a, b = trial("aaaa", "RUNNING", 2), trial("bbbb", "RUNNING", 6)
    progress.on_trial_result(0, [a, b], a, {"epoch": 2, "val/dice": 0.5})
    assert "aaaa (lambda=0.1) epoch 2/6 val/dice 0.5000" in out.getvalue() and "ETA" not in out.getvalue()
    progress.on_trial_complete(0, [a, b], a)
    progress.on_trial_complete(0, [a, b], b)
    first, second = out.getvalue().splitlines()[1:]
    assert "stopped early by ASHA at epoch 2/6" in first and "completed 6 epochs" in second
    assert "trials 2/8 done" in second and ", ETA ~" in second
    # After --resume, trials that finished before are counted by their status.
    earlier = trial("cccc", "TERMINATED", 6)
    progress.on_trial_result(0, [a, b, earlier], a, {"epoch": 3, "val/dice": 0.6})
    assert "trials 3/8 done" in out.getvalue().splitlines()[-1]
    # A --resume that finds every trial finished runs none: the closing line still counts them all.
    resumed = ProgressCallback(spec, 3, stream=out)
    resumed.on_experiment_end([earlier, trial("dddd", "TERMINATED", 6), trial("eeee", "ERROR", 1)])
    assert "trials 3/3 done, 0 running, 1 errored | sweep ended" in out.getvalue().splitlines()[-1]
