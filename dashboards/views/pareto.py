"""The Pareto front of any two metrics (the two objectives of a multi-objective sweep by default)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import short_name
from dashboards.views import Callback, Context, View
from dashboards.views.common import GRAPH, dropdown, selected_ids

ORDER = 50


def controls() -> html.Div:
    narrow = {"control_style": {"minWidth": "150px", "width": "180px"}}  # both pickers and modes fit one row
    return html.Div([html.Div([dropdown("pareto-x", "x", clearable=False, **narrow),
                               dcc.RadioItems(id="pareto-x-mode", options=["max", "min"], value="max", inline=True),
                               dropdown("pareto-y", "y", clearable=False, **narrow),
                               dcc.RadioItems(id="pareto-y-mode", options=["max", "min"], value="min", inline=True)],
                              className="row", style={"flexWrap": "nowrap"}),
                     dcc.Graph(id="pareto", **GRAPH)], className="section half")


def render(context: Context, x: str, x_mode: str, y: str, y_mode: str,
           selected: list[dict[str, Any]] | None) -> Any:
    return figures.pareto(context.trials, x, y, x_mode, y_mode, context.experiment.params, selected_ids(selected))


def axis_choices(explorer: Any, version: dict[str, Any] | None, x: str | None, y: str | None
                 ) -> tuple[list[dict[str, str]], list[dict[str, str]], str | None, str | None]:
    """Options of both axes (every score) and their values: the current ones kept, else :func:`defaults`."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], [], None, None
    scores = experiment.score_columns()
    x_default, y_default = defaults(experiment, scores)
    options = [{"label": short_name(c), "value": c} for c in scores]
    return options, options, x if x in scores else x_default, y if y in scores else y_default


def natural_mode(explorer: Any, column: str | None, version: dict[str, Any] | None) -> str:
    """Whether larger is better for an axis (the objectives, else the declared direction)."""
    experiment = explorer.experiment(version)
    return experiment.mode_of(column) if experiment is not None and column else "max"


def defaults(experiment: Any, scores: list[str]) -> tuple[str | None, str | None]:
    """The first two objectives; with one, the objective against the first metric declared smaller-is-better
    (a trade-off), else against the next score."""
    objectives = [f"last/{o.metric}" for o in experiment.objectives if f"last/{o.metric}" in scores]
    if len(objectives) >= 2:
        return objectives[0], objectives[1]
    first = objectives[0] if objectives else (scores[0] if scores else None)
    opposite = next((s for s in scores if s.startswith("last/val/") and s != first
                     and experiment.declared_direction(s) == "min"), None)
    return first, opposite or next((s for s in scores if s != first), first)


VIEWS = [View("pareto", [("pareto", "figure")],
              [("pareto-x", "value"), ("pareto-x-mode", "value"), ("pareto-y", "value"), ("pareto-y-mode", "value"),
               ("grid", "selectedRows")],
              render, lambda: figures.empty("no experiment selected"),
              ready=lambda x, x_mode, y, y_mode, selected: bool(x and y))]
CALLBACKS = [
    Callback("pareto_axes", [("pareto-x", "options"), ("pareto-y", "options"), ("pareto-x", "value"),
                             ("pareto-y", "value")], [("version", "data")], axis_choices,
             states=[("pareto-x", "value"), ("pareto-y", "value")]),
    *[Callback(f"natural_mode_{axis}", [(f"pareto-{axis}-mode", "value")], [(f"pareto-{axis}", "value")],
               natural_mode, states=[("version", "data")]) for axis in ("x", "y")],
]
