"""Each errored trial: its parameters, its error in one line and, unfolded, the traceback Tune recorded."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboards.views import Context, View
from dashboards.views.common import missing, trial_labels

MAX_ERRORS = 50  # errored trials listed (the latest to finish first)


ORDER = 120


def controls() -> html.Div:
    return html.Div([html.H3("Errored trials", style={"margin": "4px 0"}), html.Div(id="errors")],
                    className="section")


def render(context: Context) -> Any:
    trials = context.trials
    failed = trials[trials["status"] == "ERROR"] if "status" in trials else trials.iloc[0:0]
    if failed.empty:
        return html.P("no trial errored (among those the filters show)", className="no-errors")
    if "ended_at" in failed:
        failed = failed.sort_values("ended_at", ascending=False, kind="stable")
    shown = failed.head(MAX_ERRORS)
    ids = shown["trial_id"].tolist()
    experiment = context.experiment
    key = (context.version.get("key"), experiment.version, tuple(ids))
    tracebacks = context.explorer.memo("tracebacks", key, lambda: context.explorer.catalog.tracebacks(
        experiment.name, ids))
    labels = trial_labels(experiment, ids)
    items = []
    for trial_id, error in zip(ids, shown["error"] if "error" in shown else [None] * len(ids), strict=True):
        text = "no error text recorded" if missing(error) else str(error)
        trace = tracebacks.get(trial_id)
        items.append(html.Details([
            html.Summary([html.Strong(labels.get(trial_id, trial_id)), f": {text}"]),
            html.Pre(trace, className="traceback") if trace else
            html.P("no traceback recorded (results written before tracebacks were kept)"),
        ], className="error-entry", id={"type": "error-entry", "trial": trial_id}))
    more = len(failed) - len(shown)
    note = [html.P(f"and {more} more errored trials (filter the grid by status to list them)")] if more > 0 else []
    count = f"{len(failed)} errored trial" + ("s" if len(failed) != 1 else "")
    return [html.P(f"{count}; click one for its traceback"), *items, *note]


VIEWS = [View("errors", [("errors", "children")], [], render, lambda: html.P("no experiment selected"))]
