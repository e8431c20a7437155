"""The sweep's one-line progress display on the driver (``ProgressCallback``) and the sweep's clock."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from ray import tune

from platform.rows import WARNINGS_KEY, is_number
from platform.spec import SweepSpec
from platform.tunewriter import failed_by_its_code


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
        return int(value) if is_number(value) else self.epochs

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if failed_by_its_code(result):
            return  # its line comes when it completes
        objective = self.spec.objectives[0]
        value = result.get(objective.metric)
        improves = self.best is None or (value > self.best if objective.mode == "max" else value < self.best)
        if is_number(value) and math.isfinite(value) and improves:
            self.best, self.best_trial = float(value), trial.trial_id
        shown = f"{value:.4f}" if is_number(value) else "-"
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
               if is_number(ran) and ran < planned else f"completed {planned} epochs")
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
