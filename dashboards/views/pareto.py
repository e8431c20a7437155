"""The Pareto front of any two metrics (the two objectives of a multi-objective sweep by default)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.views import Context, View
from dashboards.views.common import GRAPH, dropdown, selected_ids


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
