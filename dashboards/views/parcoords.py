"""Parallel coordinates over the parameters and the score; brushes dragged on its axes filter the other views."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    encode,
    short_name,
)
from dashboards.figures import RED, Figure, clip, sample_index, titled
from dashboards.views import Callback, common
from dashboards.views.common import GRAPH
from dashboards.views.labels import score_label

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
    return parallel_coordinates(trials, experiment.params, experiment.categorical, score, brushes,
                                        experiment.log_axes, common.selected_ids(selected), experiment.level_orders)


def brushes(explorer: Any, restyle: list[Any] | None, clear_clicks: int | None, axes: list[dict[str, Any]] | None,
            current: dict[str, Any] | None) -> dict[str, Any]:
    if common.triggered() == "clear-brushes":
        return {}
    return brushes_from_restyle(restyle, axes or [], current)


def brushes_from_restyle(restyle: list[Any] | None, dimensions: list[dict[str, Any]],
                         brushes: dict[str, Any] | None) -> dict[str, Any]:
    """Update the brushes from a parcoords ``restyleData`` event (``dimensions[i].constraintrange``).

    ``dimensions``: ``[{"column", "labels", "log"}]`` in figure order. A categorical brush is stored as the labels it
    covers, so it survives a refresh that adds a level.
    """
    brushes = dict(brushes or {})
    if not restyle or not isinstance(restyle[0], dict):
        return brushes
    for key, value in restyle[0].items():
        if not key.startswith("dimensions[") or not key.endswith("].constraintrange"):
            continue
        index = int(key[len("dimensions["):key.index("]")])
        if index >= len(dimensions):
            continue
        column, labels = dimensions[index]["column"], dimensions[index].get("labels")
        ranges = value[0] if isinstance(value, list) and value and isinstance(value[0], list) else value
        if ranges is None or ranges == [None]:
            brushes.pop(column, None)
            continue
        ranges = ranges if ranges and isinstance(ranges[0], list) else [ranges]
        ranges = [[float(low), float(high)] for low, high in ranges]
        if dimensions[index].get("log"):  # a log10 axis: brushes are kept in the parameter's own units
            ranges = [[10.0**low, 10.0**high] for low, high in ranges]
        if labels is None:
            brushes[column] = {"ranges": ranges}
        else:
            brushes[column] = {"labels": [label for code, label in enumerate(labels)
                                          if any(low <= code <= high for low, high in ranges)]}
    return brushes


# --- the figure ---

# Beyond these sizes a figure draws an honest reduction and its title says so: the browser's cost grows with the
# points drawn (a line per trial in parallel coordinates), not with the trials the statistics use.
PARCOORDS_LINES = 2000  # lines drawn; more trials: a seeded uniform sample (axes and brushes still span all)


def dimensions_of(trials: pd.DataFrame, params: list[str], categorical: set[str], score: str,
                  log_axes: dict[str, bool] | None = None,
                  levels: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The parallel-coordinate axes: each parameter (categorical ones encoded; a numeric one on a log10 axis when
    the sweep sampled it log-uniformly, per ``log_axes`` as the ``sweep`` table records it: never guessed from the
    values, so a uniform axis spanning decades stays linear) and the score column. ``levels``: a categorical
    parameter's labels in the spec's order (``Experiment.levels``); sorted where absent."""
    dimensions = []
    for column in [*params, score]:
        if column not in trials:
            continue
        values, labels = encode(trials[column], column in categorical, (levels or {}).get(column))
        log = bool(labels is None and column != score and np.nanmin(values, initial=np.inf) > 0
                   and (log_axes or {}).get(column))
        dimensions.append({"column": column, "values": np.log10(values) if log else values, "labels": labels,
                           "log": log})
    return dimensions


def parallel_coordinates(trials: pd.DataFrame, params: list[str], categorical: set[str], score: str,
                         brushes: dict[str, Any] | None = None, log_axes: dict[str, bool] | None = None,
                         selected: list[str] | None = None,
                         levels: dict[str, list[str]] | None = None) -> tuple[Figure, list[dict[str, Any]]]:
    """Parcoords over parameters and the score (line colour = score; with trials selected in the grid, those in
    red over the others in grey); brushes redrawn from ``brushes``.

    Returns the figure and the axis list (column, labels, log) that decodes a ``restyleData`` event.
    """
    if trials.empty:
        return figures.empty("no trials match the filters"), []
    dimensions = dimensions_of(trials, params, categorical, score, log_axes, levels)
    chosen = trials["trial_id"].isin(selected or []).to_numpy()
    drawn = sample_index(len(trials), PARCOORDS_LINES, keep=np.flatnonzero(chosen) if chosen.any() else None)
    if chosen.any():  # plotly draws the lines in data order: the selected ones last, so on top of the others
        order = np.arange(len(trials)) if drawn is None else drawn
        drawn = np.concatenate([order[~chosen[order]], order[chosen[order]]])
    plotted = [_axis_entry(dimension, drawn, (brushes or {}).get(dimension["column"])) for dimension in dimensions]
    score_values = dimensions[-1]["values"] if dimensions and dimensions[-1]["column"] == score else None
    line: dict[str, Any] = {}
    if score_values is not None:
        line = {"color": score_values if drawn is None else score_values[drawn], "colorscale": "Viridis",
                "showscale": True, "colorbar": {"title": {"text": short_name(score)}}}
        finite = score_values[np.isfinite(score_values)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            # Equal scores would make a zero-width colour scale: centre it on the value instead.
            line.update(cmin=low if high > low else low - 0.5, cmax=high if high > low else high + 0.5)
    if chosen.any():
        # One colour scale for all lines: the selected ones (drawn last) a full red, the rest a pale grey.
        flags = chosen.astype(float) if drawn is None else chosen[drawn].astype(float)
        line = {"color": flags, "colorscale": [[0, "rgba(154,165,177,0.35)"], [1, RED]], "cmin": 0, "cmax": 1,
                "showscale": False}
    axes = [{"column": d["column"], "labels": d["labels"], "log": d["log"]} for d in dimensions]
    shown = (f"{len(trials)} trials" if drawn is None or drawn.size == len(trials) else
             f"a uniform sample of {drawn.size:,} of {len(trials):,} trials drawn; brushes filter all")
    if chosen.any():
        shown += f"; the {int(chosen.sum())} selected in red"
    figure = titled([{"type": "parcoords", "dimensions": plotted, "line": line, "labelside": "top",
                       "labelfont": {"size": 12}, "tickfont": {"size": 10}}],
                    f"Parameters and {score_label(score)} ({shown}; drag on an axis to filter)", len(trials),
                    height=440)
    # Room under the title for the axis names, clear of each axis's top tick.
    margin = figure["layout"]["margin"]
    figure["layout"]["margin"] = {**margin, "t": margin["t"] + 44, "b": 30, "l": 70, "r": 40}
    figure["layout"]["meta"]["drawn"] = len(trials) if drawn is None else int(drawn.size)
    figure["layout"]["meta"]["selected"] = int(chosen.sum())
    return figure, axes


def _axis_entry(dimension: dict[str, Any], drawn: np.ndarray | None, brush: dict[str, Any] | None
                ) -> dict[str, Any]:
    """One parcoords axis: its drawn values, its range over every trial, its ticks (labels or log decades) and
    the user's brush redrawn as a constraint range."""
    values, labels = dimension["values"], dimension["labels"]
    entry: dict[str, Any] = {"label": short_name(dimension["column"]),
                             "values": values if drawn is None else values[drawn]}
    finite = values[np.isfinite(values)]
    if labels is None and not dimension["log"] and finite.size:
        entry["range"] = [float(finite.min()), float(finite.max())]  # the axis spans every trial, drawn or not
    if labels is not None:
        entry.update(tickvals=list(range(len(labels))), ticktext=[clip(label) for label in labels],
                     range=[-0.5, len(labels) - 0.5] if len(labels) == 1 else [0, len(labels) - 1])
    elif dimension["log"]:
        finite = values[np.isfinite(values)]
        ticks = _log_ticks(float(finite.min()), float(finite.max()))
        entry.update(tickvals=ticks, ticktext=[f"{10.0 ** d:.3g}" for d in ticks],
                     range=[float(finite.min()), float(finite.max())])
    if brush and labels is not None and "labels" in brush:
        codes = [labels.index(label) for label in brush["labels"] if label in labels]
        if codes:
            entry["constraintrange"] = [[code - 0.25, code + 0.25] for code in codes]
    elif brush and brush.get("ranges"):
        entry["constraintrange"] = [[math.log10(low), math.log10(high)] for low, high in brush["ranges"]] \
            if dimension["log"] else brush["ranges"]
    return entry


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick positions on a log10 axis from ``low`` to ``high`` (log10 units): the decades, and 2 and 5 within each
    when the axis spans less than two decades (a log-uniform range may be narrower than one)."""
    marks = (1.0,) if high - low >= 2 else (1.0, 2.0, 5.0)
    ticks = [d + math.log10(m) for d in range(math.floor(low), math.ceil(high) + 1) for m in marks]
    return [t for t in ticks if low - 1e-9 <= t <= high + 1e-9] or [low, high]

CALLBACKS = [
    Callback("parcoords", [("parcoords", "figure"), ("axes", "data")],
             [("version", "data"), ("status", "value"), ("grid", "filterModel"), ("score", "value"),
              ("grid", "selectedRows")], parcoords, states=[("brushes", "data")]),
    Callback("brushes", [("brushes", "data")], [("parcoords", "restyleData"), ("clear-brushes", "n_clicks")], brushes,
             states=[("axes", "data"), ("brushes", "data")], prevent_initial_call=True),
]
