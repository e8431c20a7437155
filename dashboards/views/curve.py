"""The score against one parameter: every trial, and each configuration's mean with its 95% interval over repeats."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import short_name
from dashboards.views import Callback, Context, View
from dashboards.views.common import GRAPH, dropdown, selected_ids

ORDER = 40


def controls() -> html.Div:
    return html.Div([dropdown("param", "parameter", clearable=False), dcc.Graph(id="curve", **GRAPH)],
                    className="section half")


def param_choices(explorer: Any, version: dict[str, Any] | None, current: str | None
                  ) -> tuple[list[dict[str, str]], str | None]:
    """The parameters the spec searched; the current one kept, else the first numeric one (else the first)."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], None
    params = experiment.params
    value = current if current in params else next((p for p in params if p not in experiment.categorical),
                                                   params[0] if params else None)
    return [{"label": short_name(p), "value": p} for p in params], value


def render(context: Context, score: str | None, param: str | None, selected: list[dict[str, Any]] | None) -> Any:
    experiment = context.experiment
    return figures.objective_curve(context.trials, param, experiment.categorical, score, experiment.params,
                                   experiment.is_log_axis(param) if param else None, selected_ids(selected),
                                   experiment.levels(param) if param else None)


VIEWS = [View("curve", [("curve", "figure")], [("score", "value"), ("param", "value"), ("grid", "selectedRows")],
              render, lambda: figures.empty("no experiment selected"),
              ready=lambda score, param, selected: bool(score))]
CALLBACKS = [Callback("param_choices", [("param", "options"), ("param", "value")], [("version", "data")],
                      param_choices, states=[("param", "value")])]
