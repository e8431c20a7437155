"""Parallel coordinates over the parameters and the score; brushes dragged on its axes filter the other views."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import brushes_from_restyle
from dashboards.views import Callback, common
from dashboards.views.common import GRAPH

ORDER = 30


def controls() -> html.Div:
    return html.Div([dcc.Graph(id="parcoords", **GRAPH), dcc.Store(id="brushes", data={}),
                     dcc.Store(id="axes", data=[])], className="section")


def parcoords(explorer: Any, version: dict[str, Any] | None, statuses: list[str] | None,
              grid_model: dict[str, Any] | None, score: str | None, selected: list[dict[str, Any]] | None,
              brushes: dict[str, Any] | None) -> tuple[Any, list[dict[str, Any]]]:
    # Not filtered by its own brushes: it draws them, and the other views apply them.
    experiment, trials = explorer.filtered(version, statuses, None, grid_model)
    if experiment is None or not score:
        return figures.empty("no experiment selected"), []
    return figures.parallel_coordinates(trials, experiment.params, experiment.categorical, score, brushes,
                                        experiment.log_axes, common.selected_ids(selected), experiment.level_orders)


def brushes(explorer: Any, restyle: list[Any] | None, clear_clicks: int | None, axes: list[dict[str, Any]] | None,
            current: dict[str, Any] | None) -> dict[str, Any]:
    if common.triggered() == "clear-brushes":
        return {}
    return brushes_from_restyle(restyle, axes or [], current)
CALLBACKS = [
    Callback("parcoords", [("parcoords", "figure"), ("axes", "data")],
             [("version", "data"), ("status", "value"), ("grid", "filterModel"), ("score", "value"),
              ("grid", "selectedRows")], parcoords, states=[("brushes", "data")]),
    Callback("brushes", [("brushes", "data")], [("parcoords", "restyleData"), ("clear-brushes", "n_clicks")], brushes,
             states=[("axes", "data"), ("brushes", "data")], prevent_initial_call=True),
]
