"""The rows the sweep writes into the results tables (the one writer is the Tune callback in
``platform.tunewriter``), and the vocabulary of their keys; re-exported by ``platform.results``."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["ARTIFACTS_KEY", "CASES_KEY", "CHECKPOINTS", "CONFIG_KEY", "EPOCH_TIME", "SELECTION_CLOCK", "TIME_COLUMNS",
           "WARNINGS_KEY", "epoch_row", "is_number", "listed_rows", "metric_stem", "summary_row", "trial_row",
           "zero_dice_warning"]
EPOCH_TIME = "time/epoch_s"  # the metric each epoch row times itself with
# The epoch count, reported only in epochs whose networks may be selected (platform.engine): ASHA's clock, and the
# epochs a trial's best/<objective> is taken from.
SELECTION_CLOCK = "selection/epoch"
ARTIFACTS_KEY = "artifacts"  # a trial result's JSON list of saved images
CASES_KEY = "cases"  # a trial result's JSON list of per-case scores
WARNINGS_KEY = "warnings"  # the trials column (and a result's key) naming classes whose last val Dice is 0
CONFIG_KEY = "config_json"  # the trial's validated trainer config, in its first result (and the trials column)
TIME_COLUMNS = ("wall_s", "overhead_s", "time_in_epochs_s", "time_total_s")  # smaller is better
CHECKPOINTS = ("best", "last")  # the test split is scored with both: ``test/best/...`` and ``test/last/...``


def metric_stem(name: str) -> str:
    """The declared stem of a metric name: ``val/dice/adult/gm`` -> ``dice``, ``test/best/hd95/ct`` -> ``hd95``,
    ``best/val/dice`` (a trials column) -> ``dice``."""
    parts = name.split("/")
    if parts[0] in CHECKPOINTS and len(parts) > 1:
        parts = parts[1:]
    if len(parts) > 2 and parts[0] == "test" and parts[1] in CHECKPOINTS:
        parts = [parts[0], *parts[2:]]
    return parts[1] if len(parts) > 1 else parts[0]


def trial_row(trial_id: str, experiment: str, trainer: str, seed: int, fold: int | None, repeat: int,
              objectives: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The identity part of a trials-table row: ids, the repeat, the objectives (the explorer ranks and draws
    Pareto fronts from them; tables are all it reads) and each ``config/<axis>`` (lists and mappings as JSON)."""
    row: dict[str, Any] = {"trial_id": trial_id, "experiment": experiment, "trainer": trainer, "seed": seed,
                           "fold": fold, "repeat": repeat, "objectives": json.dumps(objectives)}
    for key, value in params.items():
        row[f"config/{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return row


def epoch_row(trial_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """The epochs-table row of one reported result: every numeric ``split/metric`` value, the epoch, the time."""
    metrics = {k: float(v) for k, v in result.items() if ("/" in k or k == "epoch") and is_number(v)}
    return {"trial_id": trial_id, "time_total_s": float(result.get("time_total_s", 0.0)), **metrics,
            "epoch": int(result.get("epoch", result.get("training_iteration", 0)))}


def listed_rows(trial_id: str, result: dict[str, Any], key: str, **extra: Any) -> list[dict[str, Any]]:
    """Rows a result carries as JSON under ``key`` (artifacts, cases), each with the trial id and ``extra``."""
    text = result.get(key)
    if not isinstance(text, str) or not text:
        return []
    return [{"trial_id": trial_id, **extra, **item} for item in json.loads(text)]


def summary_row(rows: list[dict[str, Any]], objectives: list[tuple[str, str]]) -> dict[str, Any]:
    """Best (per objective: metric, mode) and last metrics and the time spent in epochs, from epoch rows."""
    rows = sorted(rows, key=lambda r: r.get("epoch") or 0)
    row: dict[str, Any] = {"epochs": len(rows)}
    if not rows:
        return row
    # Only epochs eligible for selection (those with the selection clock) give best/<objective>, as they alone give
    # the selected checkpoint; a trial none of whose epochs has it (rows written before it existed) counts them all.
    eligible = [r for r in rows if is_number(r.get(SELECTION_CLOCK)) and math.isfinite(r[SELECTION_CLOCK])] or rows
    for metric, mode in objectives:
        finite = [r[metric] for r in eligible if r.get(metric) is not None and math.isfinite(r[metric])]
        if finite:
            row[f"best/{metric}"] = max(finite) if mode == "max" else min(finite)
    for key, value in rows[-1].items():
        if key.startswith(("val/", "train/")) and value is not None:
            row[f"last/{key}"] = value
        elif key.startswith("model/") and value is not None:  # the networks' sizes: one value per trial
            row[key] = value
    for source in reversed(rows):  # the test scores, reported once at the end of the trial
        if any(key.startswith("test/") for key in source):
            row.update({key: value for key, value in source.items() if key.startswith("test/") and value is not None})
            break
    row["time_in_epochs_s"] = sum(r.get(EPOCH_TIME) or 0.0 for r in rows)
    row[WARNINGS_KEY] = zero_dice_warning(rows[-1])
    return row


def zero_dice_warning(metrics: dict[str, Any]) -> str | None:
    """A one-line warning naming each class whose val Dice is 0 in ``metrics`` (a trial's last epoch): every
    ``val/dice/.../<class>`` equal to 0 (a class the networks never predict, or lost for good); None if none."""
    lost = sorted(key[len("val/dice/"):] for key, value in metrics.items()
                  if key.startswith("val/dice/") and key.count("/") >= 3 and is_number(value) and value == 0)
    return f"val Dice 0 at the end: {', '.join(lost)}" if lost else None


def is_number(value: Any) -> bool:
    """A Python or numpy int or float, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
