"""The sweep over time: the optimisation history (each finished trial's score and the best so far, against the
trial number or the time) and the timeline of trials (who ran when, and who the scheduler stopped at which rung)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import stopped_early
from dashboards.views import Context, View
from dashboards.views.common import GRAPH

ORDER = 60


def controls() -> list[html.Div]:
    return [
        html.Div([dcc.RadioItems(id="history-x", options=[{"label": " trial number", "value": "trial"},
                                                          {"label": " time", "value": "time"}],
                                 value="trial", inline=True, inputStyle={"marginLeft": "8px"}),
                  dcc.Graph(id="history", **GRAPH)], className="section half"),
        html.Div(dcc.Graph(id="timeline", **GRAPH), className="section half"),
    ]


def history(context: Context, score: str | None, x: str) -> Any:
    return figures.optimisation_history(context.trials, score, context.experiment.mode_of(score), x)


def timeline(context: Context) -> Any:
    experiment, trials = context.experiment, context.trials
    drawn = figures.timeline_trial_ids(trials)
    # Epoch times are read only when some trial was stopped early (the rung ticks), for the trials drawn.
    epochs = pd.DataFrame(columns=["trial_id", "epoch", "time_total_s"])
    if stopped_early(trials).any():
        key = (context.version.get("key"), experiment.version, "timeline", tuple(drawn))
        epochs = context.explorer.memo("epochs", key, lambda: context.explorer.catalog.epochs(
            experiment.name, drawn, ["time_total_s"]))
    return figures.trial_timeline(trials, epochs, experiment.loaded_at if not _running(trials) else time.time())


def _running(trials: Any) -> bool:
    return "status" in trials and bool((trials["status"] == "RUNNING").any())


VIEWS = [View("history", [("history", "figure")], [("score", "value"), ("history-x", "value")], history,
              lambda: figures.empty("no experiment selected"), ready=lambda score, x: bool(score)),
         View("timeline", [("timeline", "figure")], [], timeline, lambda: figures.empty("no experiment selected"))]
