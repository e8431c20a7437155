"""Ray Tune around the platform: OptunaSearch (define-by-run), repeats, ASHA, resources, storage, restore,
and the driver-side callbacks that write the results tables and show progress."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pyarrow as pa
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.repeater import TRIAL_INDEX

from platform.columns import axis_column_type
from platform.engine import SELECTION_CLOCK
from platform.interrupts import InterruptCallback, register_flush
from platform.provenance import provenance
from platform.results import (
    ARTIFACTS_KEY,
    CASES_KEY,
    CONFIG_KEY,
    WARNINGS_KEY,
    WRITER_COLUMN,
    ResultsStore,
    epoch_row,
    listed_rows,
    summary_row,
    trial_row,
    zero_dice_warning,
)
from platform.resume import spec_columns
from platform.space import define_by_run, encode_points, make_sampler, trial_params
from platform.spec import SweepSpec
from platform.trial import TRIAL_ERROR_KEY, TRIAL_TRACEBACK_KEY, resolve, run_trial, stop_on_trial_error


def planned_epochs(config_json: str | None) -> int | None:
    """The ``epochs`` a trial's validated trainer config asked for, or None when it cannot be read."""
    try:
        value = json.loads(config_json or "").get("epochs")
    except (json.JSONDecodeError, AttributeError):
        return None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def failed_by_its_code(result: dict | None) -> bool:
    """Whether a trial's last result says its own code failed (``platform.trial.error_result``)."""
    return bool(result) and TRIAL_ERROR_KEY in result


class TrialOptunaSearch(OptunaSearch):
    """``OptunaSearch`` told that a trial whose own code failed failed (not that it scored NaN)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if failed_by_its_code(result):
            result, error = None, True
        super().on_trial_complete(trial_id, result=result, error=error)


class RepeatSearcher(Repeater):
    """``Repeater`` that also averages multi-objective results (a list of metrics) over repeats."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, **kwargs: Any) -> None:
        if failed_by_its_code(result):
            result, kwargs = None, {**kwargs, "error": True}
        metrics = self.searcher.metric
        if isinstance(metrics, str):
            super().on_trial_complete(trial_id, result, **kwargs)
            return
        group = self._trial_id_to_group[trial_id]
        scores = [float(result[m]) if result and m in result else np.nan for m in metrics]
        group.report(trial_id, scores)
        if group.finished_reporting():
            means = np.nanmean(np.array(group.scores(), dtype=float), axis=0)
            self.searcher.on_trial_complete(group.primary_trial_id,
                                            result=dict(zip(metrics, means.tolist(), strict=True)), **kwargs)


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
    return RepeatSearcher(searcher, repeat=repeats, set_index=True) if repeats > 1 else searcher


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


def declared_columns(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Column types the results tables declare for this sweep: each ``config/<axis>`` from its values."""
    return {"trials": {f"config/{key}": axis_column_type(axis.kind, axis.values_to_check())
                       for key, axis in spec.search.items()}}


def sweep_row(spec: SweepSpec) -> dict[str, Any]:
    """The ``sweep`` table's row: objectives, the trainer's declared metric stems (direction, kind), the axes
    (kind, log scale, values in the spec's order), the spec's ``explore`` block and the provenance (code version,
    libraries, machine, command: :func:`platform.provenance.provenance`)."""
    trainer = spec.trainer_class()
    axes = {key: {"kind": axis.kind, "log": axis.kind == "loguniform",
                  **({"values": axis.values_to_check()} if axis.kind in ("choice", "grid") else {})}
            for key, axis in spec.search.items()}
    return {"experiment": spec.name, "trainer": spec.trainer,
            "objectives": json.dumps([o.model_dump() for o in spec.objectives]),
            "metrics": json.dumps({stem: {"direction": direction, "kind": kind}
                                   for stem, (direction, kind) in trainer.declared_metrics().items()}),
            "axes": json.dumps(axes), "explore": spec.explore.model_dump_json(),
            "provenance": json.dumps(provenance()), **spec_columns(spec)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


FLUSH_S = 2.0  # the longest a reported row waits before it is written (the explorer's lag)
FLUSH_ROWS = 512


class ResultsCallback(tune.Callback):
    """The one writer of the results tables (runs on the Tune driver); the rows come from ``platform.results``.

    Rows are gathered and written together (one part per table) at most ``FLUSH_S`` after the first of them, and
    always when Tune saves its experiment state (``get_state``) and at the end: a part per row cost the driver
    more than Tune's own bookkeeping per trial. A crash loses at most the rows of the last ``FLUSH_S``, all
    newer than the state Tune resumes from: the trials they belong to run those epochs again."""

    def __init__(self, spec: SweepSpec, experiment: str) -> None:
        self.spec = spec
        self.experiment = experiment
        self.store = ResultsStore(experiment, declared=declared_columns(spec))
        self.writers: list[str] = []  # this experiment's drivers, oldest first (the last one is this driver)
        self.store_error: OSError | None = None  # the write that failed, while rows wait for the storage
        self._failing_since = 0.0
        self._started: dict[str, float] = {}
        self._configs: dict[str, str] = {}  # trial id -> its validated trainer config, as the trial reported it
        # Epoch rows of running trials, so a trial's summary need not re-read a table that grows with the sweep.
        self._epochs: dict[str, dict[int, dict[str, Any]]] = {}
        self._objective_metrics = {o.metric for o in spec.objectives}
        self._errors: dict[str, tuple[str, str | None]] = {}  # trial id -> its own code's error and traceback
        self.retries: dict[str, int] = {}  # trial id -> restarts after the infrastructure failed under it

    def setup(self, **info: Any) -> None:
        register_flush(self.store.flush)  # a second SIGINT/SIGTERM writes the queued rows before the driver ends
        # Each driver (a first run, each --resume: Tune unpickles this callback) writes under a token of its own;
        # the sweep row lists every driver of the experiment, the ones whose rows a rewrite may replace.
        self.store.writer = uuid.uuid4().hex[:16]
        hide_storage_failed_tracebacks()
        self.store.declared.setdefault("trials", {})[WRITER_COLUMN] = pa.string()
        earlier = self.store.read("sweep")
        listed = earlier.column(WRITERS_COLUMN).to_pylist()[-1] if WRITERS_COLUMN in earlier.column_names else None
        self.writers = [*json.loads(listed or "[]"), self.store.writer]
        self.store.append("sweep", [{**sweep_row(self.spec), WRITERS_COLUMN: json.dumps(self.writers)}])

    def _trial_base(self, trial: Any) -> dict[str, Any]:
        config = dict(trial.config)
        index = int(config.get(TRIAL_INDEX, 0))
        seed, fold = self.spec.repeats.combos()[index]
        params = trial_params(self.spec.search, config)  # decoded once per row
        row = trial_row(trial.trial_id, self.spec.name, self.spec.trainer, seed, fold, index,
                        [o.model_dump() for o in self.spec.objectives],
                        {key: params.get(key) for key in self.spec.search})
        row[CONFIG_KEY] = self._configs.get(trial.trial_id)
        return row

    def _config_of(self, trial: Any) -> str:
        """A trial's config for a trial that never reported one (it failed first): validated here, once."""
        try:
            trainer_config, _, _ = resolve(self.spec, dict(trial.config))
            return trainer_config.model_dump_json(by_alias=True)
        except Exception as exc:  # a config the trainer rejects is recorded; the trial errored with it
            return f"invalid: {exc}"

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started.setdefault(trial.trial_id, time.time())
        self.store.append("trials", [{**self._trial_base(trial), "status": "RUNNING",
                                      "started_at": self._started[trial.trial_id]}], defer=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if failed_by_its_code(result):  # not an epoch: the trial's own error, recorded when it completes
            self._errors[trial.trial_id] = (result[TRIAL_ERROR_KEY], result.pop(TRIAL_TRACEBACK_KEY, None))
            return
        if isinstance(result.get(CONFIG_KEY), str):
            self._configs[trial.trial_id] = result[CONFIG_KEY]
        row = epoch_row(trial.trial_id, result)
        self.store.append("epochs", [row], defer=True)
        self._epochs.setdefault(trial.trial_id, {})[row["epoch"]] = row
        self.store.append("artifacts", listed_rows(trial.trial_id, result, ARTIFACTS_KEY), defer=True)
        self.store.append("cases", listed_rows(trial.trial_id, result, CASES_KEY, epoch=row["epoch"],
                                               checkpoint="epoch"), defer=True)
        # Tune keeps each trial's last result, and statistics of each of its numbers, for the whole sweep (and
        # writes them into every experiment state save). Everything now in the tables, the per-case scores,
        # pictures and config and every metric but the objectives (which the searcher reads again when the
        # trial ends), would only weigh on the driver. Tune lets callbacks edit the result in place; the
        # scheduler and the searcher have already seen it whole. A class lost (val Dice 0) stays named in it, for
        # the progress line at the trial's end.
        warning = zero_dice_warning(result)
        if warning:
            result[WARNINGS_KEY] = warning
        for key in [k for k in result if k in (CASES_KEY, ARTIFACTS_KEY, CONFIG_KEY)
                    or ("/" in k and k not in self._objective_metrics)]:
            del result[key]

    def _summary(self, trial: Any) -> tuple[dict[str, Any], float]:
        """Best/last metrics and time in epochs, from the epochs this driver saw (the table after --resume),
        and the trial's time before this driver (Tune's ``time_total_s`` at the last epoch a previous driver
        recorded: 0 for a trial that ran here only)."""
        seen = self._epochs.pop(trial.trial_id, {})
        if seen and set(seen) == set(range(1, max(seen) + 1)):
            return summary_row(list(seen.values()), [(o.metric, o.mode) for o in self.spec.objectives]), 0.0
        # A resumed trial's earlier epochs were reported to a previous driver: they are only in the table.
        rows = self.store.read("epochs", where=("trial_id", trial.trial_id)).to_pylist()
        earlier = [r.get("time_total_s") or 0.0 for r in rows if r.get("epoch") not in seen]
        return summary_row(rows, [(o.metric, o.mode) for o in self.spec.objectives]), float(max(earlier, default=0.0))

    def _finish(self, trial: Any, status: str, error: str | None, traceback: str | None = None) -> None:
        ended = time.time()
        started = self._started.get(trial.trial_id, ended)
        if trial.trial_id not in self._configs:
            self._configs[trial.trial_id] = self._config_of(trial)
        summary, before = self._summary(trial)
        # wall_s accumulates over --resume: this driver's time on the trial plus its time before the resume.
        wall = ended - started + before
        row = {**self._trial_base(trial), "status": status, "error": error, "traceback": traceback,
               "retries": self.retries.get(trial.trial_id, 0),
               "started_at": started,
               "ended_at": ended, "wall_s": wall, **summary}
        row["overhead_s"] = wall - summary.get("time_in_epochs_s", 0.0)
        planned = planned_epochs(self._configs.get(trial.trial_id))
        # A finished trial that ran fewer epochs than its config asked was stopped by the scheduler (ASHA): the
        # explorer marks it apart from the trials that completed their budget.
        row["planned_epochs"] = planned
        row["stopped_early"] = status == "TERMINATED" and planned is not None and summary.get("epochs", 0) < planned
        self.store.append("trials", [row], defer=True)

    def _flush(self, must: bool) -> None:
        """Write the waiting rows. A storage that fails (a full disk, a store that does not answer) keeps them
        queued: in the middle of a sweep the next flush tries again, for up to ``STORE_RETRY_S``; where the rows
        must be written (before Tune saves its state, at the end) or after that time, StorageFailed ends the
        sweep, and ``--resume`` continues from the state Tune saved before (whose rows were all written)."""
        try:
            self.store.flush()
        except OSError as exc:
            first = self.store_error is None
            self.store_error = exc
            if first:
                self._failing_since = time.monotonic()
                print(f"warning: the results storage cannot be written ({storage_reason(exc)}); "
                      f"{self.store.pending_rows()} rows wait and are written as soon as it can be. The sweep "
                      f"stops if it still cannot in {STORE_RETRY_S:g} s.", file=sys.stderr, flush=True)
            if must or time.monotonic() - self._failing_since >= STORE_RETRY_S:
                raise StorageFailed(self.experiment, exc, self.store.pending_rows()) from None
            return
        if self.store_error is not None:
            print("the results storage can be written again: every waiting row is written.", file=sys.stderr,
                  flush=True)
        self.store_error = None

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.store.pending_age() >= FLUSH_S or self.store.pending_rows() >= FLUSH_ROWS:
            self._flush(must=False)

    def get_state(self) -> dict | None:
        # Tune calls this while it saves the experiment state (after taking the trials' statuses and checkpoints):
        # the rows of everything that state records are written before it can be read by --resume.
        self._flush(must=True)
        return None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self._errors:
            error, traceback = self._errors.pop(trial.trial_id)
            self._finish(trial, "ERROR", error, traceback)
            return
        self._finish(trial, "TERMINATED", None)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Tune restarts the trial from its last checkpoint: the infrastructure failed under it (a trial's own
        # errors never reach Tune, see platform.trial.run_trial). Its row says so, and the summary names it.
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        self.store.append("trials", [{**self._trial_base(trial), "status": "RUNNING",
                                      "started_at": self._started.get(trial.trial_id, time.time()),
                                      "error": f"retried from its last checkpoint after: {error_text(trial)}"}],
                          defer=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        traceback = error_traceback(trial)
        self._finish(trial, "ERROR", error_text(trial, traceback), traceback)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # A driver killed between starting a trial and saving Tune's state leaves rows of a trial that Tune
        # never recorded (it starts a fresh one on --resume): keep only the trials Tune knows.
        # Only trials this experiment's own drivers wrote are replaced; rows of any other writer are kept.
        known = {trial.trial_id for trial in trials}
        self._flush(must=True)
        replaced = self.store.replaceable_trials(known, set(self.writers))
        for table in ("trials", "epochs", "artifacts", "cases"):
            self.store.compact(table, drop_trials=replaced)


WRITERS_COLUMN = "writers"  # the sweep table's JSON list of the experiment's drivers (their ``_writer`` tokens)
STORE_RETRY_S = float(os.environ.get("SEGSWEEP_STORE_RETRY_S", "60"))


def storage_reason(exc: OSError) -> str:
    """What a failed write says, named for a person: "no space left on device" for ENOSPC and EDQUOT."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc) or "Disk quota" in str(exc):
        return f"no space left on the device: {str(exc).strip()[:200]}"
    return f"{type(exc).__name__}: {str(exc).strip()[:200]}"


class StorageFailed(Exception):
    """The results storage failed for longer than the sweep waits, or when rows had to be written."""

    def __init__(self, experiment: str, exc: OSError, waiting: int) -> None:
        super().__init__(f"the results storage of {experiment} cannot be written ({storage_reason(exc)}); "
                         f"{waiting} rows were waiting")
        self.experiment, self.error, self.waiting = experiment, exc, waiting


class _WithoutStorageFailed(logging.Filter):
    """Drops Tune's traceback of a state save that StorageFailed stopped (on purpose: the state on disk stays the
    last one whose rows were all written); the sweep prints its own paragraph."""

    def filter(self, record: logging.LogRecord) -> bool:
        failure = record.exc_info[1] if record.exc_info else None
        while failure is not None:
            if isinstance(failure, StorageFailed):
                return False
            failure = failure.__cause__ or failure.__context__
        return True


def hide_storage_failed_tracebacks() -> None:
    tune_logger = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, _WithoutStorageFailed) for f in tune_logger.filters):
        tune_logger.addFilter(_WithoutStorageFailed())


def error_text(trial: Any, traceback: str | None = None) -> str:
    """The original exception of a failed trial, one line (Tune wraps it in RayTaskError); ``traceback``: the
    trial's traceback if already read (``error_traceback``), for the fallback to its last line.

    Read from the driver's local copy of the error files: the storage copy is synced later.
    """
    pickled = trial.pickled_error_file
    if pickled and os.path.exists(pickled):
        try:
            with open(pickled, "rb") as stream:
                exc = cloudpickle.load(stream)
            cause = getattr(exc, "cause", None) or exc
            return f"{type(cause).__name__}: {cause}"[:2000]
        except Exception:  # an unpicklable cause: fall back to the text trace
            pass
    text = traceback if traceback is not None else error_traceback(trial) or ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:2000] if lines else "the trial failed without an error message"


TRACEBACK_CHARS = 20_000  # the end of a failed trial's traceback kept in the trials table (its last frames)


def error_traceback(trial: Any) -> str | None:
    """The traceback of a failed trial as Tune wrote it (the worker's frames included), or None."""
    path = trial.error_file
    if not path or not os.path.exists(path):
        return None
    text = Path(path).read_text(errors="replace").strip()
    return text[-TRACEBACK_CHARS:] or None


class ProgressCallback(tune.Callback):
    """A one-line progress display: trials by status and an estimate of the time left, the reporting trial with
    its parameters and ``epoch k/N``, the best so far; a finished trial says whether it completed its epochs or
    the scheduler stopped it early."""

    def __init__(self, spec: SweepSpec, total: int, stream: Any = None) -> None:
        self.spec = spec
        self.total = total
        self.stream = stream  # None means sys.stdout, looked up when printing (the callback is pickled)
        self.best: float | None = None
        self.best_trial = ""
        self.started = time.monotonic()
        self.finished: set[str] = set()
        self.errored: set[str] = set()
        self.running: set[str] = set()
        self.scanned = 0  # Tune's trial list only grows: the entries before this one were looked at
        self.epochs = spec.base_config().epochs

    def setup(self, **info: Any) -> None:
        # After --resume this callback is the one pickled when the experiment began: its clock restarts with
        # this driver, from the time the sweep command started (the summary's clock).
        self.started = _SWEEP_START.get("monotonic", time.monotonic())

    def _done(self, trials: list) -> set[str]:
        # After --resume, the trials finished before are known by their status only: each trial is looked at
        # once, when it first appears, then the callbacks keep count (a scan of every trial per line would cost
        # O(trials) per result).
        for trial in trials[self.scanned:]:
            if trial.status in ("TERMINATED", "ERROR"):
                self.finished.add(trial.trial_id)
            if trial.status == "ERROR" or failed_by_its_code(trial.last_result):
                self.errored.add(trial.trial_id)
        self.scanned = max(self.scanned, len(trials))
        return self.finished

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)

    def _line(self, trials: list, text: str) -> None:
        done = self._done(trials)
        running = len(self.running - done)
        objective = self.spec.objectives[0]
        best = f"best {objective.metric} {self.best:.4f} ({self.best_trial})" if self.best is not None else ""
        elapsed = time.monotonic() - self.started
        # Time per finished trial so far, times the trials left (at most: a scheduler stops some early).
        eta = (f", ETA {_duration(elapsed / len(done) * (self.total - len(done)))}"
               if done and len(done) < self.total else "")
        print(f"[{elapsed:6.0f}s] trials {len(done)}/{self.total} done, {running} running, "
              f"{len(self.errored)} errored{eta} | {text} | {best}", file=self.stream or sys.stdout, flush=True)

    def _label(self, trial: Any) -> str:
        params = (trial.config or {}).get("params") or {}
        shown = ", ".join(f"{key}={_short(value)}" for key, value in params.items())
        return f"{trial.trial_id} ({shown})" if shown else trial.trial_id

    def _planned(self, trial: Any) -> int:
        value = ((trial.config or {}).get("params") or {}).get("epochs", self.epochs)
        return int(value) if _number(value) else self.epochs

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if failed_by_its_code(result):
            return  # its line comes when it completes
        objective = self.spec.objectives[0]
        value = result.get(objective.metric)
        improves = self.best is None or (value > self.best if objective.mode == "max" else value < self.best)
        if _number(value) and math.isfinite(value) and improves:
            self.best, self.best_trial = float(value), trial.trial_id
        shown = f"{value:.4f}" if _number(value) else "-"
        self._line(trials, f"{self._label(trial)} epoch {result.get('epoch', '?')}/{self._planned(trial)} "
                           f"{objective.metric} {shown}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if failed_by_its_code(trial.last_result):
            self.on_trial_error(iteration, trials, trial)
            return
        self.finished.add(trial.trial_id)
        self.running.discard(trial.trial_id)
        ran = (trial.last_result or {}).get("epoch")
        planned = self._planned(trial)
        how = (f"stopped early by {self.spec.scheduler.type.upper()} at epoch {ran}/{planned}"
               if _number(ran) and ran < planned else f"completed {planned} epochs")
        warning = (trial.last_result or {}).get(WARNINGS_KEY)
        self._line(trials, f"{self._label(trial)} {how}" + (f", WARNING {warning}" if warning else ""))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.finished.add(trial.trial_id)
        self.running.discard(trial.trial_id)
        self.errored.add(trial.trial_id)
        self._line(trials, f"{self._label(trial)} ERRORED")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, f"{self._label(trial)} lost its worker or node: retried from its last checkpoint")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # The closing count, also after a --resume that found nothing left to run (then no trial reports, and
        # without this line the progress would end at the count before the interruption, or print nothing).
        self.running.clear()
        self._line(trials, "sweep ended")


_SWEEP_START: dict[str, float] = {}  # this driver's sweep start (``mark_sweep_start``): one clock for every line


def mark_sweep_start() -> float:
    """Start the sweep's clock (``time.monotonic``): the progress lines and the closing summary both count from
    it, also after ``--resume``."""
    _SWEEP_START["monotonic"] = time.monotonic()
    return _SWEEP_START["monotonic"]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{minutes:.0f} min" if minutes < 90 else f"~{minutes / 60:.1f} h"


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
    # InterruptCallback: a SIGINT or SIGTERM stops the sweep cleanly (platform.interrupts); it does nothing unless the
    # driver installed the sweep's handlers (the command line does).
    callbacks = [ResultsCallback(spec, experiment), ProgressCallback(spec, spec.trial_count(), stream),
                 InterruptCallback(), *(extra_callbacks or [])]
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
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=storage,
            callbacks=callbacks,
            verbose=0,
            # A trial whose own code failed reports it as its last result (platform.trial.run_trial): stop it there.
            stop=stop_on_trial_error,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            # Only what the infrastructure raised reaches Tune (a trial's own errors end it as failed): each such
            # failure restarts the trial from its last checkpoint, up to resources.max_failures times.
            failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
        ),
    )


def _tolerate_pruned_checkpoints() -> None:
    """After a restore, Tune's checkpoint list can still name a checkpoint it pruned (``num_to_keep``) before the
    interruption: the experiment state on disk is older than the last pruning. Pruning it again raises
    FileNotFoundError inside Tune's checkpoint handling, which then logs a traceback and skips the rest of that
    trial's checkpoint bookkeeping. Deleting a checkpoint that is already gone is done; every other error still
    raises. (Ray 2.60's checkpoint manager deletes through the module-level ``_delete_fs_path``.)"""
    from ray.train._internal import checkpoint_manager

    delete = checkpoint_manager._delete_fs_path
    if getattr(delete, "tolerates_missing", False):
        return

    def delete_if_present(fs: Any, fs_path: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # pruned before the interruption
            delete(fs=fs, fs_path=fs_path)

    delete_if_present.tolerates_missing = True  # type: ignore[attr-defined]
    checkpoint_manager._delete_fs_path = delete_if_present


def restore_tuner(spec: SweepSpec, experiment: str) -> tune.Tuner:
    """Continue an interrupted experiment: finished trials stay finished, unfinished ones resume."""
    _tolerate_pruned_checkpoints()
    _without_tune_logs()
    return tune.Tuner.restore(experiment, trainable=make_trainable(spec, experiment), resume_unfinished=True,
                              resume_errored=False, restart_errored=False)
