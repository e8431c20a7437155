"""The Pareto front of any two metrics (the two objectives of a multi-objective sweep by default)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    short_name,
)
from dashboards.figures import BLUE, GREY, RED, Figure, sample_index, scatter_type, titled
from dashboards.views import Callback, Context, View
from dashboards.views.common import GRAPH, dropdown, selected_ids
from dashboards.views.labels import score_label

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
    experiment = context.experiment
    if len(experiment.objectives) < 2 and not (x and y):
        return figures.empty("a single-objective sweep has no trade-off to show: choose two metrics for x and y "
                             "to draw a Pareto front")
    return pareto(context.trials, x, y, x_mode, y_mode, experiment.params, selected_ids(selected),
                  experiment.metrics_meta)


def axis_choices(explorer: Any, version: dict[str, Any] | None, x: str | None, y: str | None
                 ) -> tuple[list[dict[str, str]], list[dict[str, str]], str | None, str | None]:
    """Options of both axes (every score) and their values: the current ones kept, else :func:`defaults`."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], [], None, None
    scores = experiment.score_columns()
    # Pareto is for multi-objective sweeps: a single-objective one gets no default axes (the user may choose two).
    x_default, y_default = defaults(experiment, scores) if len(experiment.objectives) >= 2 else (None, None)
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


def pareto_mask(x: np.ndarray, y: np.ndarray, x_mode: str = "max", y_mode: str = "max") -> np.ndarray:
    """Points no other point beats in both coordinates (ties kept); NaN points are never on the front."""
    x = np.asarray(x, dtype=float) * (1 if x_mode == "max" else -1)
    y = np.asarray(y, dtype=float) * (1 if y_mode == "max" else -1)
    valid = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(x.size, dtype=bool)
    order = [i for i in np.lexsort((-y, -x)) if valid[i]]  # x descending, then y descending
    best_y, kept = -math.inf, None
    for i in order:
        if y[i] > best_y or (kept is not None and x[i] == x[kept] and y[i] == y[kept]):
            mask[i] = True
            best_y, kept = max(best_y, y[i]), i
    return mask


# --- the figure ---

def pareto(trials: pd.DataFrame, x: str, y: str, x_mode: str, y_mode: str, params: list[str],
           selected: list[str] | None = None, meta: dict[str, dict[str, str]] | None = None) -> Figure:
    """Configurations (means over repeats) in two metrics, the non-dominated ones joined as the front; those of
    the trials selected in the grid ringed."""
    if trials.empty or x not in trials or y not in trials:
        return figures.empty("choose two metrics" if not trials.empty else "no trials match the filters")
    # One grouping for both metrics: the configurations' means over their repeats.
    values = trials[["config_key"]].assign(
        x=pd.to_numeric(trials[x], errors="coerce").replace([np.inf, -np.inf], np.nan),
        y=pd.to_numeric(trials[y], errors="coerce").replace([np.inf, -np.inf], np.nan))
    grouped = values.groupby("config_key", sort=False)
    means, counts = grouped[["x", "y"]].mean(), grouped["x"].count()
    points = pd.DataFrame({"config": means.index.to_numpy(), "x": means["x"].to_numpy(), "y": means["y"].to_numpy(),
                           "n": counts.to_numpy()})
    on_front = pareto_mask(points["x"].to_numpy(), points["y"].to_numpy(), x_mode, y_mode)
    front = points[on_front].sort_values("x")
    drawn = sample_index(len(points), figures.SCATTER_POINTS, keep=np.flatnonzero(on_front))
    shown, shown_front = (points, on_front) if drawn is None else (points.iloc[drawn], on_front[drawn])
    traces = [{"type": scatter_type(len(shown)), "x": shown["x"].to_numpy(), "y": shown["y"].to_numpy(),
               "mode": "markers", "name": "configuration",
               "marker": {"color": np.where(shown_front, RED, GREY), "size": 8},
               "customdata": shown[["config", "n"]].to_numpy(),
               "hovertemplate": "%{customdata[0]}<br>mean of %{customdata[1]} trials<extra></extra>"},
              {"type": "scatter", "x": front["x"].to_numpy(), "y": front["y"].to_numpy(), "mode": "lines",
               "name": "Pareto front", "line": {"color": RED, "shape": "hv"}}]
    if selected:
        keys = set(trials.loc[trials["trial_id"].isin(selected), "config_key"])
        ringed = points[points["config"].isin(keys)]
        if len(ringed):
            traces.append({"type": "scatter", "x": ringed["x"].to_numpy(), "y": ringed["y"].to_numpy(),
                           "mode": "markers", "name": f"selected ({len(ringed)})",
                           "customdata": ringed[["config", "n"]].to_numpy(),
                           "marker": {"color": "rgba(0,0,0,0)", "size": 16, "line": {"color": BLUE, "width": 2.5}},
                           "hovertemplate": "selected: %{customdata[0]}<br>mean of %{customdata[1]} trials"
                                            "<extra></extra>"})
    sample = "" if drawn is None else (f"; a uniform sample of {drawn.size:,} of {len(points):,} configurations "
                                       "drawn, the front whole")
    x_label, y_label = score_label(x, meta), score_label(y, meta)
    figure = titled(traces, f"Pareto front of the configurations' means: {x_label} ({x_mode}) against {y_label} "
                    f"({y_mode}); {int(on_front.sum())} on the front" + sample, len(trials), height=380,
                    xaxis={"title": {"text": x_label}}, yaxis={"title": {"text": y_label}},
                    legend={"orientation": "h"})
    figure["layout"]["meta"]["drawn"] = len(shown)
    return figure

VIEWS = [View("pareto", [("pareto", "figure")],
              [("pareto-x", "value"), ("pareto-x-mode", "value"), ("pareto-y", "value"), ("pareto-y-mode", "value"),
               ("grid", "selectedRows")],
              render, lambda: figures.empty("no experiment selected"),
              ready=lambda x, x_mode, y, y_mode, selected: True)]
CALLBACKS = [
    Callback("pareto_axes", [("pareto-x", "options"), ("pareto-y", "options"), ("pareto-x", "value"),
                             ("pareto-y", "value")], [("version", "data")], axis_choices,
             states=[("pareto-x", "value"), ("pareto-y", "value")]),
    *[Callback(f"natural_mode_{axis}", [(f"pareto-{axis}-mode", "value")], [(f"pareto-{axis}", "value")],
               natural_mode, states=[("version", "data")]) for axis in ("x", "y")],
]
