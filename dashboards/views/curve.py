"""The score against one parameter: every trial, and each configuration's mean with its 95% interval over repeats."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.views import Context, View
from dashboards.views.common import GRAPH, dropdown, selected_ids


def controls() -> html.Div:
    return html.Div([dropdown("param", "parameter", clearable=False), dcc.Graph(id="curve", **GRAPH)],
                    className="section half")


def render(context: Context, score: str | None, param: str | None, selected: list[dict[str, Any]] | None) -> Any:
    experiment = context.experiment
    return figures.objective_curve(context.trials, param, experiment.categorical, score, experiment.params,
                                   experiment.is_log_axis(param) if param else None, selected_ids(selected),
                                   experiment.levels(param) if param else None)


VIEWS = [View("curve", [("curve", "figure")], [("score", "value"), ("param", "value"), ("grid", "selectedRows")],
              render, lambda: figures.empty("no experiment selected"),
              ready=lambda score, param, selected: bool(score))]
