"""The summary cards: trainer, trials by status, objectives, the best score, elapsed time, when read."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
from dash import html

from dashboards.views import Callback

ORDER = 10


def controls() -> html.Div:
    return html.Div([html.Div(id="summary", className="cards")], className="section")


def summary(explorer: Any, version: dict[str, Any] | None, score: str | None) -> list[Any]:
    experiment = explorer.experiment(version)
    if experiment is None:
        return [html.Span("no experiment selected")]
    running = bool((experiment.trials["status"] == "RUNNING").any()) if "status" in experiment.trials else False
    # Once per table version and score; the elapsed time of a sweep still running moves with the clock.
    numbers = explorer.memo("summary", (experiment.name, experiment.version, score, running and time.time()),
                            lambda: summary_numbers(experiment.trials, score or "", experiment.mode_of(score or ""),
                                                    time.time()))
    counts = ", ".join(f"{status.lower()} {count}" for status, count in sorted(numbers["counts"].items()))
    best = "—" if math.isnan(numbers["best"]) else f"{score} {numbers['best']:.4f} (trial {numbers['best_trial']})"
    objectives = ", ".join(f"{o.metric} ({o.mode})" for o in experiment.objectives) or "unknown"
    items = [("trainer", experiment.trainer), ("trials", f"{numbers['total']}: {counts}"),
             ("objectives", objectives), ("top trial", best), ("elapsed", duration(numbers["elapsed_s"])),
             ("read", time.strftime("%H:%M:%S", time.localtime(experiment.loaded_at)))]
    return [html.Div([html.Div(label, className="label"), html.Div(value, id=f"summary-{i}")], className="card")
            for i, (label, value) in enumerate(items)]


def duration(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def summary_numbers(trials: pd.DataFrame, score: str, mode: str, now: float) -> dict[str, Any]:
    """Trials by status, the best score and its trial, and the elapsed time of the experiment."""
    counts = trials["status"].value_counts().to_dict() if "status" in trials else {}
    values = pd.to_numeric(trials[score], errors="coerce") if score in trials else pd.Series(dtype=float)
    best_index = (values.idxmax() if mode == "max" else values.idxmin()) if values.notna().any() else None
    started = pd.to_numeric(trials.get("started_at"), errors="coerce") if "started_at" in trials else None
    ended = pd.to_numeric(trials.get("ended_at"), errors="coerce") if "ended_at" in trials else None
    elapsed = math.nan
    if started is not None and started.notna().any():
        running = counts.get("RUNNING", 0) > 0
        last = now if running or ended is None or ended.isna().all() else float(ended.max())
        elapsed = last - float(started.min())
    return {"counts": {str(k): int(v) for k, v in counts.items()}, "total": len(trials),
            "best": float(values[best_index]) if best_index is not None else math.nan,
            "best_trial": str(trials.loc[best_index, "trial_id"]) if best_index is not None else None,
            "elapsed_s": elapsed}


CALLBACKS = [Callback("summary", [("summary", "children")], [("version", "data"), ("score", "value")], summary)]
