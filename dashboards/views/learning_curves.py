"""Learning curves of the selected trials (the best five when none is selected)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.views import Context, View
from dashboards.views.common import GRAPH, dropdown, ranked_ids, trial_labels

MAX_CURVES = 12  # learning curves drawn at once (the first selected trials, else the best few)


def controls() -> html.Div:
    return html.Div([dropdown("curve-metric", "learning-curve metric", clearable=False),
                     dcc.Graph(id="curves", **GRAPH)], className="section half")


def render(context: Context, selected: list[dict[str, Any]] | None, metric: str, score: str | None) -> Any:
    experiment = context.experiment
    chosen = [row["trial_id"] for row in selected or [] if row.get("trial_id")][:MAX_CURVES]
    if not chosen:
        chosen = ranked_ids(context.trials, score, experiment, 5)
    key = (context.version.get("key"), experiment.version, tuple(chosen), metric)
    epochs = context.explorer.memo("epochs", key, lambda: context.explorer.catalog.epochs(experiment.name, chosen,
                                                                                          [metric]))
    return figures.learning_curves(epochs, metric, trial_labels(experiment, chosen))


VIEWS = [View("learning_curves", [("curves", "figure")],
              [("grid", "selectedRows"), ("curve-metric", "value"), ("score", "value")], render,
              lambda: figures.empty("no experiment selected"), ready=lambda selected, metric, score: bool(metric))]
