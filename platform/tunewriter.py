"""The driver-side writer of the results tables: ``ResultsCallback``, a Tune callback that turns each trial's
reports into the rows of ``platform.results`` and writes them in batches, and how a failed trial or a failing
storage is named."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import pyarrow as pa
from ray import tune
from ray.tune.search.repeater import TRIAL_INDEX

from platform.columns import axis_column_type
from platform.interrupts import register_flush
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
from platform.space import trial_params
from platform.spec import SweepSpec
from platform.trial import TRIAL_ERROR_KEY, TRIAL_TRACEBACK_KEY, resolve


def slim_tune_result(result: dict[str, Any], drop: list[str]) -> None:
    """Drop ``drop`` from the result a Tune callback was given, so the result Tune keeps holds no more.

    Tune keeps each trial's last result, and statistics of each of its numbers, for the whole sweep (and writes
    them into every experiment state save). Everything now in the tables, the per-case scores, pictures and
    config and every metric but the objectives (which the searcher reads again when the trial ends), would only
    weigh on the driver. Relied upon (Ray 2.60 ``TuneController._process_trial_result``: "Allow user callbacks to
    modify the Trial result in place", not in Tune's documented API): the callback's ``result`` is the dict Tune
    then stores as ``trial.last_result``, and the scheduler and the searcher have already seen it whole.
    ``tests/test_tuning.py`` runs a small Tune experiment that fails if a Ray upgrade changes either."""
    for key in drop:
        del result[key]


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


def declared_columns(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Column types the results tables declare for this sweep: each ``config/<axis>`` from its values."""
    return {"trials": {f"config/{key}": axis_column_type(axis.kind, axis.values if axis.listed else [])
                       for key, axis in spec.search.items()}}


def sweep_row(spec: SweepSpec) -> dict[str, Any]:
    """The ``sweep`` table's row: objectives, the trainer's declared metric stems (direction, kind), the axes
    (kind, log scale, values in the spec's order), the spec's ``explore`` block and the provenance (code version,
    libraries, machine, command: :func:`platform.provenance.provenance`)."""
    trainer = spec.trainer_class()
    axes = {key: {"kind": axis.kind, "log": axis.kind == "loguniform",
                  **({"values": axis.values} if axis.listed else {})}
            for key, axis in spec.search.items()}
    return {"experiment": spec.name, "trainer": spec.trainer,
            "objectives": json.dumps([o.model_dump() for o in spec.objectives]),
            "metrics": json.dumps({stem: {"direction": direction, "kind": kind}
                                   for stem, (direction, kind) in trainer.declared_metrics().items()}),
            "axes": json.dumps(axes), "explore": spec.explore.model_dump_json(),
            "provenance": json.dumps(provenance()), **spec_columns(spec)}



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
        # A class lost (val Dice 0) stays named in the result Tune keeps, for the progress line at the trial's end.
        warning = zero_dice_warning(result)
        if warning:
            result[WARNINGS_KEY] = warning
        slim_tune_result(result, [k for k in result if k in (CASES_KEY, ARTIFACTS_KEY, CONFIG_KEY)
                                  or ("/" in k and k not in self._objective_metrics)])

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
