"""Ray Tune around the platform: OptunaSearch (define-by-run), repeats, ASHA, resources, storage, restore and
checkpoint pruning. The driver-side callbacks that write the results tables (``platform.tunewriter``) and show
progress (``platform.progress``) are re-exported here."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.repeater import TRIAL_INDEX

from platform.engine import SELECTION_CLOCK
from platform.interrupts import InterruptCallback
from platform.progress import ProgressCallback, mark_sweep_start
from platform.space import define_by_run, encode_points, make_sampler
from platform.spec import SweepSpec
from platform.trial import run_trial, stop_on_trial_error
from platform.tunewriter import (
    FLUSH_ROWS,
    FLUSH_S,
    STORE_RETRY_S,
    WRITERS_COLUMN,
    ResultsCallback,
    StorageFailed,
    declared_columns,
    error_text,
    error_traceback,
    failed_by_its_code,
    planned_epochs,
    storage_reason,
    sweep_row,
)

__all__ = [
    "FLUSH_ROWS",
    "FLUSH_S",
    "KEEP_CHECKPOINTS",
    "STORE_RETRY_S",
    "WRITERS_COLUMN",
    "ProgressCallback",
    "PruneCheckpoints",
    "RepeatSearcher",
    "ResultsCallback",
    "StorageFailed",
    "TrialOptunaSearch",
    "build_run_config",
    "build_scheduler",
    "build_searcher",
    "build_tuner",
    "declared_columns",
    "default_concurrency",
    "error_text",
    "error_traceback",
    "failed_by_its_code",
    "make_trainable",
    "mark_sweep_start",
    "planned_epochs",
    "prune_checkpoints",
    "restore_tuner",
    "storage_reason",
    "sweep_row",
    "trial_resources",
    "unschedulable_reason",
]


class TrialOptunaSearch(OptunaSearch):
    """``OptunaSearch`` told that a trial whose own code failed failed (not that it scored NaN)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if failed_by_its_code(result):
            result, error = None, True
        super().on_trial_complete(trial_id, result=result, error=error)


class RepeatSearcher(Repeater):
    """``Repeater`` that also averages multi-objective results (a list of metrics) over repeats.

    Its own record of the repeat groups (from the public ``TRIAL_INDEX``: 0 starts a group, whose first trial is
    the one the wrapped searcher knows), not the Repeater's private ones; saved with the searcher's state."""

    def __init__(self, searcher: Searcher, repeat: int) -> None:
        super().__init__(searcher, repeat=repeat, set_index=True)
        self.first_of: dict[str, str] = {}  # trial id -> the first trial of its repeat group
        self.scores: dict[str, list[list[float]]] = {}  # first trial -> the objectives of each reported repeat
        self.latest = ""  # the trial suggested last

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            first = trial_id if config[TRIAL_INDEX] == 0 else self.first_of[self.latest]
            self.first_of[trial_id], self.latest = first, trial_id
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, **kwargs: Any) -> None:
        if failed_by_its_code(result):
            result, kwargs = None, {**kwargs, "error": True}
        metrics = self.searcher.metric
        if isinstance(metrics, str):
            super().on_trial_complete(trial_id, result, **kwargs)
            return
        first = self.first_of[trial_id]
        reported = self.scores.setdefault(first, [])
        reported.append([float(result[m]) if result and m in result else np.nan for m in metrics])
        if len(reported) == self.repeat:
            means = np.nanmean(np.array(reported, dtype=float), axis=0)
            self.searcher.on_trial_complete(first, result=dict(zip(metrics, means.tolist(), strict=True)), **kwargs)


def build_searcher(spec: SweepSpec) -> Searcher:
    objectives = spec.objectives
    multi = len(objectives) > 1
    searcher = TrialOptunaSearch(
        space=define_by_run(spec.search),
        metric=[o.metric for o in objectives] if multi else objectives[0].metric,
        mode=[o.mode for o in objectives] if multi else objectives[0].mode,
        sampler=make_sampler(spec),
        points_to_evaluate=encode_points(spec) or None,
    )
    repeats = len(spec.repeats.combos())
    return RepeatSearcher(searcher, repeat=repeats) if repeats > 1 else searcher


def build_scheduler(spec: SweepSpec, epochs: int) -> Any:
    if spec.scheduler.type == "asha":
        # Multi-objective: ASHA ranks on the first objective.
        first = spec.objectives[0]
        # The trainer's own epoch count, not training_iteration: a trial restored from an earlier checkpoint
        # re-reports epochs, so Tune's iteration count runs ahead of the epochs actually trained. Its selection
        # clock, reported only in epochs eligible for selection (dualnorm's pretraining is not): ASHA skips a
        # result without it, so no trial is ranked or stopped on networks that could never be selected.
        return ASHAScheduler(time_attr=SELECTION_CLOCK, metric=first.metric, mode=first.mode, max_t=epochs,
                             grace_period=spec.scheduler.grace_period,
                             reduction_factor=spec.scheduler.reduction_factor)
    return FIFOScheduler()


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """What a Tune trial reserves: the whole trainer in-process, or a light driver beside Train workers."""
    res = spec.resources
    if res.workers_per_trial == 1:
        resources = {"CPU": res.cpus_per_worker}
        if res.gpus_per_worker:
            resources["GPU"] = res.gpus_per_worker
        if res.memory_gb:
            resources["memory"] = res.memory_gb * 2**30  # Ray counts memory in bytes
        return resources
    # The TorchTrainer schedules its own workers; the driver only waits, so it reserves (almost) nothing.
    return {"CPU": 0.01}


def unschedulable_reason(spec: SweepSpec, available: dict[str, float]) -> str | None:
    """Why one trial can never fit in ``available`` cluster resources (it would wait forever), or None."""
    res = spec.resources
    driver = trial_resources(spec) if res.workers_per_trial > 1 else {}
    cpus = res.cpus_per_worker * res.workers_per_trial + driver.get("CPU", 0.0)
    gpus = res.gpus_per_worker * res.workers_per_trial
    if cpus > available.get("CPU", 0.0) + 1e-9:
        return (f"one trial needs {cpus:g} CPUs ({res.workers_per_trial} workers x {res.cpus_per_worker:g}"
                + (" + 0.01 for the Train driver" if driver else "")
                + f") but the cluster has {available.get('CPU', 0.0):g}. Lower resources.cpus_per_worker "
                "or resources.workers_per_trial.")
    if gpus > available.get("GPU", 0.0) + 1e-9:
        return (f"one trial needs {gpus:g} GPUs but the cluster has {available.get('GPU', 0.0):g}. Lower "
                "resources.gpus_per_worker or use a cluster with GPUs (--address).")
    memory = (res.memory_gb or 0.0) * res.workers_per_trial
    if memory and "memory" in available and memory * 2**30 > available["memory"]:
        return (f"one trial needs {memory:g} GB of memory but the cluster has {available['memory'] / 2**30:.1f}. "
                "Lower resources.memory_gb.")
    return None


def default_concurrency(spec: SweepSpec, available: dict[str, float] | None = None) -> int:
    """How many trials ``available`` resources (default: the connected cluster's) allow at once (at least 1)."""
    available = ray.cluster_resources() if available is None else available
    res = spec.resources
    per_trial_cpus = res.cpus_per_worker * res.workers_per_trial + (0.01 if res.workers_per_trial > 1 else 0.0)
    limits = [math.floor(available.get("CPU", 1) / per_trial_cpus + 1e-9)]
    if res.gpus_per_worker:
        limits.append(math.floor(available.get("GPU", 0) / (res.gpus_per_worker * res.workers_per_trial) + 1e-9))
    if res.memory_gb and "memory" in available:
        limits.append(math.floor(available["memory"] / (res.memory_gb * 2**30 * res.workers_per_trial) + 1e-9))
    return max(1, min(limits))



def _without_tune_logs() -> None:
    """Tune's own per-trial JSON, CSV and TensorBoard logs repeat what the results tables hold, at a cost per
    result on the driver; TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=0 in the environment brings them back. The same for
    a first run and a --resume."""
    if os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1") == "1":
        # Tune's result grid reads those logs after fit and would warn, per trial, that they are missing
        # ("Failed to fetch metrics ... FileNotFoundError").
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def make_trainable(spec: SweepSpec, experiment: str) -> Any:
    trainable = tune.with_parameters(run_trial, spec_json=spec.model_dump_json(), experiment_uri=experiment)
    return tune.with_resources(trainable, trial_resources(spec))


def build_tuner(spec: SweepSpec, storage: str, experiment: str, epochs: int, concurrent: int,
                stream: Any = None, extra_callbacks: list[tune.Callback] | None = None) -> tune.Tuner:
    _without_tune_logs()
    return tune.Tuner(
        make_trainable(spec, experiment),
        tune_config=tune.TuneConfig(
            search_alg=build_searcher(spec),
            scheduler=build_scheduler(spec, epochs),
            num_samples=spec.trial_count(),
            max_concurrent_trials=concurrent,
            # Reusing actors saves ~3 s per trial on the in-process path (measured on 2 CPU cores).
            reuse_actors=spec.resources.workers_per_trial == 1,
            time_budget_s=spec.budget.time_budget_s,
        ),
        run_config=build_run_config(spec, storage, experiment, stream, extra_callbacks),
    )


def build_run_config(spec: SweepSpec, storage: str, experiment: str, stream: Any = None,
                     extra_callbacks: list[tune.Callback] | None = None) -> tune.RunConfig:
    """Where the sweep is stored, its callbacks (results tables, progress, interrupts, checkpoint pruning), when a
    trial stops, which checkpoints Tune keeps and how often an infrastructure failure is retried."""
    # InterruptCallback: a SIGINT or SIGTERM stops the sweep cleanly (platform.interrupts); it does nothing unless the
    # driver installed the sweep's handlers (the command line does).
    callbacks = [ResultsCallback(spec, experiment), ProgressCallback(spec, spec.trial_count(), stream),
                 InterruptCallback(), PruneCheckpoints(), *(extra_callbacks or [])]
    return tune.RunConfig(
        name=spec.name,
        storage_path=storage,
        callbacks=callbacks,
        verbose=0,
        # A trial whose own code failed reports it as its last result (platform.trial.run_trial): stop it there.
        stop=stop_on_trial_error,
        # Tune keeps every checkpoint; PruneCheckpoints deletes the old ones (Tune's own pruning fails on a
        # checkpoint it pruned before an interruption, named again by the older state a --resume reads).
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        # Only what the infrastructure raised reaches Tune (a trial's own errors end it as failed): each such
        # failure restarts the trial from its last checkpoint, up to resources.max_failures times.
        failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
    )


KEEP_CHECKPOINTS = 2  # a trial's newest checkpoints kept in the storage: the one it resumes from, and one before


class PruneCheckpoints(tune.Callback):
    """Keeps each trial's newest ``keep`` checkpoints in the storage and deletes the older ones, after every
    checkpoint Tune persists (the public ``on_checkpoint`` hook; Tune itself keeps them all,
    ``CheckpointConfig(num_to_keep=None)``). Stateless: it lists the trial's ``checkpoint_<n>`` folders each time,
    so after ``--resume`` nothing it remembered can name a checkpoint already gone, and one already gone (deleted
    before an interruption) is no error."""

    def __init__(self, keep: int = KEEP_CHECKPOINTS) -> None:
        self.keep = keep

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        prune_checkpoints(checkpoint.filesystem, checkpoint.path, self.keep)


def prune_checkpoints(fs: pafs.FileSystem, newest: str, keep: int) -> list[str]:
    """Delete the ``checkpoint_<n>`` folders beside ``newest`` (a path in ``fs``) but the ``keep`` with the
    highest n; the paths deleted. A folder already gone is skipped; any other error raises."""
    parent = newest.rstrip("/").rpartition("/")[0]
    infos = fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
    numbered = sorted((int(suffix), info.path) for info in infos if info.type == pafs.FileType.Directory
                      for prefix, _, suffix in [info.base_name.partition("_")]
                      if prefix == "checkpoint" and suffix.isdigit())
    deleted = []
    for _, path in numbered[:-keep] if keep > 0 else numbered:
        with contextlib.suppress(FileNotFoundError):  # deleted by an earlier driver of this experiment
            fs.delete_dir(path)
            deleted.append(path)
    return deleted


def restore_tuner(spec: SweepSpec, experiment: str) -> tune.Tuner:
    """Continue an interrupted experiment: finished trials stay finished, unfinished ones resume."""
    _without_tune_logs()
    return tune.Tuner.restore(experiment, trainable=make_trainable(spec, experiment), resume_unfinished=True,
                              resume_errored=False, restart_errored=False)
