"""Plotly figures of the explorer, each a pure function of already-filtered tables.

Figures are plain plotly dicts (``{"data": [...], "layout": {...}}``), which ``dcc.Graph`` draws as they are:
building ``plotly.graph_objects`` would validate every property and copy every array, seconds at 10,000 trials.
Every figure carries a ``uirevision`` so a live refresh keeps the user's zoom and legend choices; plotly's mode
bar exports it as PNG, and ``plotly.io.write_html(figure, ...)`` as HTML.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import pandas as pd

# At import, never inside a callback: the server answers callbacks on several threads, and a thread importing
# PIL while plotly's JSON encoder (in another) looks up ``PIL.Image.Image`` sees a half-initialised module.
from PIL import Image

from dashboards.analysis import (
    ablation,
    by_config,
    encode,
    level_labels,
    natural_key,
    pareto_mask,
    short_name,
    stopped_early,
)
from platform.statistics import t_half_widths

_BLUE, _GREY, _RED, _ORANGE = "#1f77b4", "#9aa5b1", "#d62728", "#ff7f0e"
_VERDICT_COLOURS = {"supported": "#2ca02c", "contradicted": "#d62728", "inconclusive": "#9aa5b1"}
Figure = dict[str, Any]
# Beyond these sizes a figure draws an honest reduction and its title says so: the browser's cost grows with the
# points drawn (a line per trial in parallel coordinates), not with the trials the statistics use.
PARCOORDS_LINES = 2000  # lines drawn; more trials: a seeded uniform sample (axes and brushes still span all)
SCATTER_POINTS = 5000  # dots of a scatter; more: a seeded uniform sample (a Pareto front is always whole)
CURVE_GROUPS = 300  # configuration means drawn; more: the mean per bin (numeric) or per level (categorical)
CURVE_BINS = 40


def sample_index(size: int, limit: int, seed: int = 0, keep: np.ndarray | None = None) -> np.ndarray | None:
    """Sorted row positions of a seeded uniform sample of ``limit`` of ``size`` rows (always including the
    positions in ``keep``), or None when every row fits."""
    if size <= limit:
        return None
    kept = np.unique(keep) if keep is not None else np.array([], dtype=int)
    others = np.setdiff1d(np.arange(size), kept, assume_unique=True)
    chosen = np.random.default_rng(seed).choice(others, size=max(0, min(others.size, limit - kept.size)),
                                                replace=False)
    return np.sort(np.concatenate([kept, chosen]).astype(int))


def empty(message: str) -> Figure:
    """A blank figure that says why it is blank (no trials yet, no categorical factor, ...)."""
    return {"data": [], "layout": {
        "annotations": [{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}],
        "xaxis": {"visible": False}, "yaxis": {"visible": False}, "height": 260, "margin": {"t": 30, "b": 30},
        "meta": {"trials": 0}}}


def _figure(traces: list[dict[str, Any]], title: str, trials: int, **layout: Any) -> Figure:
    # meta.trials: how many trials the figure shows (the browser test reads it from the rendered figure).
    # The title sits just above the plot area, left-aligned, below the row of the mode bar (top right of the
    # figure), so the toolbar never covers it; long titles wrap at the figure's width in the browser's font.
    return {"data": traces, "layout": {"title": {"text": _wrap(title), "font": {"size": 13}, "x": 0,
                                                 "xanchor": "left", "xref": "paper", "y": 1, "yref": "paper",
                                                 "yanchor": "bottom", "pad": {"b": 8}},
                                       "uirevision": "keep", "meta": {"trials": trials},
                                       "margin": {"t": 78, "b": 40, "l": 60, "r": 20}, "plot_bgcolor": "white",
                                       **layout}}


def _wrap(title: str, width: int = 70) -> str:
    """Break a long title into lines of about ``width`` characters (plotly titles do not wrap by themselves)."""
    words, lines, line = title.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


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
        return empty("no trials match the filters"), []
    dimensions = dimensions_of(trials, params, categorical, score, log_axes, levels)
    chosen = trials["trial_id"].isin(selected or []).to_numpy()
    drawn = sample_index(len(trials), PARCOORDS_LINES, keep=np.flatnonzero(chosen) if chosen.any() else None)
    if chosen.any():  # plotly draws the lines in data order: the selected ones last, so on top of the others
        order = np.arange(len(trials)) if drawn is None else drawn
        drawn = np.concatenate([order[~chosen[order]], order[chosen[order]]])
    plotted = []
    for dimension in dimensions:
        values, labels = dimension["values"], dimension["labels"]
        entry: dict[str, Any] = {"label": short_name(dimension["column"]),
                                 "values": values if drawn is None else values[drawn]}
        finite = values[np.isfinite(values)]
        if labels is None and not dimension["log"] and finite.size:
            entry["range"] = [float(finite.min()), float(finite.max())]  # the axis spans every trial, drawn or not
        if labels is not None:
            entry.update(tickvals=list(range(len(labels))), ticktext=[_clip(label) for label in labels],
                         range=[-0.5, len(labels) - 0.5] if len(labels) == 1 else [0, len(labels) - 1])
        elif dimension["log"]:
            finite = values[np.isfinite(values)]
            ticks = _log_ticks(float(finite.min()), float(finite.max()))
            entry.update(tickvals=ticks, ticktext=[f"{10.0 ** d:.3g}" for d in ticks],
                         range=[float(finite.min()), float(finite.max())])
        brush = (brushes or {}).get(dimension["column"])
        if brush and labels is not None and "labels" in brush:
            codes = [labels.index(label) for label in brush["labels"] if label in labels]
            if codes:
                entry["constraintrange"] = [[code - 0.25, code + 0.25] for code in codes]
        elif brush and brush.get("ranges"):
            entry["constraintrange"] = [[math.log10(low), math.log10(high)] for low, high in brush["ranges"]] \
                if dimension["log"] else brush["ranges"]
        plotted.append(entry)
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
        line = {"color": flags, "colorscale": [[0, "rgba(154,165,177,0.35)"], [1, _RED]], "cmin": 0, "cmax": 1,
                "showscale": False}
    axes = [{"column": d["column"], "labels": d["labels"], "log": d["log"]} for d in dimensions]
    shown = (f"{len(trials)} trials" if drawn is None or drawn.size == len(trials) else
             f"a uniform sample of {drawn.size:,} of {len(trials):,} trials drawn; brushes filter all")
    if chosen.any():
        shown += f"; the {int(chosen.sum())} selected in red"
    figure = _figure([{"type": "parcoords", "dimensions": plotted, "line": line, "labelside": "top",
                       "labelfont": {"size": 12}, "tickfont": {"size": 10}}],
                     f"Parameters and {score} ({shown}; drag on an axis to filter)", len(trials), height=420)
    # Room above the axes for the title and the axis names, clear of each axis's top tick.
    figure["layout"]["margin"] = {"t": 110, "b": 30, "l": 70, "r": 40}
    figure["layout"]["title"]["pad"] = {"b": 42}  # above the axis names
    figure["layout"]["meta"]["drawn"] = len(trials) if drawn is None else int(drawn.size)
    figure["layout"]["meta"]["selected"] = int(chosen.sum())
    return figure, axes


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick positions on a log10 axis from ``low`` to ``high`` (log10 units): the decades, and 2 and 5 within each
    when the axis spans less than two decades (a log-uniform range may be narrower than one)."""
    marks = (1.0,) if high - low >= 2 else (1.0, 2.0, 5.0)
    ticks = [d + math.log10(m) for d in range(math.floor(low), math.ceil(high) + 1) for m in marks]
    return [t for t in ticks if low - 1e-9 <= t <= high + 1e-9] or [low, high]


def _scatter_type(points: int) -> str:
    """WebGL only where SVG would be slow: WebGL contexts are few per page and absent in some browsers."""
    return "scattergl" if points > 2000 else "scatter"


def _clip(text: str, width: int = 18) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def objective_curve(trials: pd.DataFrame, param: str | None, categorical: set[str], score: str,
                    params: list[str], log_x: bool | None = None, selected: list[str] | None = None,
                    order: list[str] | None = None) -> Figure:
    """Score against one parameter: every trial as a dot, each configuration's mean over repeats with its
    95% interval (error bars; a band when the parameter is numeric) -- the lambda curve. Beyond
    ``SCATTER_POINTS`` trials the dots are a seeded sample, and beyond ``CURVE_GROUPS`` configurations the means
    are per bin of the parameter (per level when categorical) over every trial in it; the title says so."""
    if trials.empty or not param or param not in trials:
        return empty("choose a parameter (no trials match the filters)" if trials.empty else "choose a parameter")
    is_number = param not in categorical
    points_x = pd.to_numeric(trials[param], errors="coerce") if is_number else trials[param].astype(str)
    numeric_x = points_x.to_numpy(dtype=float) if is_number else None
    finite_x = numeric_x[np.isfinite(numeric_x)] if is_number else None
    positive = bool(is_number and finite_x.size and (finite_x > 0).all())
    log_x = positive and bool(log_x)  # as the sweep recorded the axis; never guessed from the values
    configs = by_config(trials, score, params)
    grouping = "configuration"
    if len(configs) > CURVE_GROUPS:
        grouping = "bin" if is_number else "level"
        configs = _grouped_means(points_x, pd.to_numeric(trials[score], errors="coerce"), is_number, bool(log_x))
    else:
        configs = configs.assign(x=pd.to_numeric(configs[param], errors="coerce") if is_number
                                 else configs[param].astype(str))
    if not is_number and order:  # the spec's level order (``Experiment.levels``), not the labels' sort order
        rank = {label: index for index, label in enumerate(order)}
        configs = configs.assign(_rank=configs["x"].map(lambda label: rank.get(label, len(rank))))
        configs = configs.sort_values(["_rank", "x"]).drop(columns="_rank")
    else:
        configs = configs.sort_values("x")
    bars = configs["high"] - configs["mean"]
    drawn = sample_index(len(trials), SCATTER_POINTS)
    picked = trials if drawn is None else trials.iloc[drawn]
    picked_x = points_x if drawn is None else points_x.iloc[drawn]
    early = stopped_early(picked).to_numpy()
    dots = [("trial", ~early, {"color": _GREY, "size": 6, "opacity": 0.6})]
    if early.any():  # the status boxes let them in: drawn apart, they ran fewer epochs than the others
        dots.append((f"stopped early by the scheduler ({int(early.sum())})", early,
                     {"color": _ORANGE, "size": 8, "symbol": "circle-open", "line": {"width": 2}}))
    traces = [
        {"type": _scatter_type(len(picked)), "x": picked_x[keep].to_numpy(),
         "y": pd.to_numeric(picked[score], errors="coerce")[keep].to_numpy(), "mode": "markers", "name": name,
         "marker": marker, "customdata": picked["trial_id"][keep].to_numpy(),
         "hovertemplate": f"trial %{{customdata}}<br>{short_name(param)}=%{{x}}<br>{score}=%{{y:.4f}}<extra></extra>"}
        for name, keep, marker in dots]
    traces += [
        {"type": "scatter", "x": configs["x"].to_numpy(), "y": configs["mean"].to_numpy(),
         "mode": "lines+markers" if is_number else "markers", "name": f"mean per {grouping} (95% CI)",
         "marker": {"color": _BLUE, "size": 9}, "line": {"color": _BLUE},
         "error_y": {"type": "data", "array": bars.fillna(0).to_numpy(), "visible": True},
         "customdata": np.stack([configs["n"], configs["low"], configs["high"]], axis=-1),
         "hovertemplate": f"{short_name(param)}=%{{x}}<br>mean=%{{y:.4f}} (n=%{{customdata[0]}})<br>"
                          "95% CI [%{customdata[1]:.4f}, %{customdata[2]:.4f}]<extra></extra>"}]
    traces += _selected_points(trials, selected, points_x, pd.to_numeric(trials[score], errors="coerce"))
    notes = []
    if grouping != "configuration":
        notes.append(f"means per {grouping} of {short_name(param)} over all {len(trials):,} trials")
    if drawn is not None:
        notes.append(f"dots: a uniform sample of {drawn.size:,}")
    if early.any():
        notes.append(f"includes {int(early.sum())} trials stopped early")
    how = "; ".join(["mean and 95% interval over repeats" if grouping == "configuration" else "", *notes]).strip("; ")
    figure = _figure(traces, f"{score} vs {short_name(param)} ({how})", len(trials), height=360,
                     xaxis={"title": {"text": short_name(param)}, "type": "log" if log_x else "-",
                            **({"categoryorder": "array", "categoryarray": list(order)}
                               if not is_number and order else {})},
                     yaxis={"title": {"text": score}}, showlegend=True)
    figure["layout"]["meta"]["drawn"] = len(picked)
    return figure


def _selected_points(trials: pd.DataFrame, selected: list[str] | None, x: pd.Series, y: pd.Series
                     ) -> list[dict[str, Any]]:
    """A ring around each trial selected in the grid (drawn even if the dots are a sample), or nothing."""
    if not selected:
        return []
    chosen = trials["trial_id"].isin(selected).to_numpy()
    if not chosen.any():
        return []
    return [{"type": "scatter", "x": x[chosen].to_numpy(), "y": y[chosen].to_numpy(), "mode": "markers",
             "name": f"selected ({int(chosen.sum())})", "customdata": trials["trial_id"][chosen].to_numpy(),
             "marker": {"color": "rgba(0,0,0,0)", "size": 14, "line": {"color": _RED, "width": 2.5}},
             "hovertemplate": "selected trial %{customdata}<br>%{x}, %{y:.4f}<extra></extra>"}]


def _grouped_means(x: pd.Series, values: pd.Series, is_number: bool, log: bool) -> pd.DataFrame:
    """Mean, 95% t-interval and n of ``values`` per bin of numeric ``x`` (``CURVE_BINS`` equal-width bins, in
    log10 when ``log``; column ``x`` is each bin's median) or per level of categorical ``x``.

    Columns: x, mean, low, high, n (one row per non-empty bin or level)."""
    frame = pd.DataFrame({"x": x.to_numpy(), "value": values.replace([np.inf, -np.inf], np.nan).to_numpy()})
    if is_number:
        frame = frame[np.isfinite(frame["x"].to_numpy(dtype=float))]
        position = frame["x"].to_numpy(dtype=float)
        position = np.log10(position) if log else position
        edges = np.linspace(position.min(), position.max(), CURVE_BINS + 1) if position.size else np.array([0, 1])
        frame = frame.assign(group=np.clip(np.searchsorted(edges, position, side="right") - 1, 0, CURVE_BINS - 1))
    else:
        frame = frame.assign(group=frame["x"])
    grouped = frame.groupby("group", sort=True)
    summary = grouped["value"].agg(["mean", "std", "count"])
    counts = summary["count"].to_numpy(dtype=float)
    half = t_half_widths(summary["std"].to_numpy(dtype=float), counts)
    means = summary["mean"].to_numpy(dtype=float)
    centres = grouped["x"].median().to_numpy() if is_number else summary.index.to_numpy()
    return pd.DataFrame({"x": centres, "mean": means, "low": means - half, "high": means + half,
                         "n": counts.astype(int)})


def ablation_bars(trials: pd.DataFrame, factors: list[str], score: str, baseline: str | None, mode: str = "max",
                  order: list[str] | None = None, adjust: str = "holm") -> Figure:
    """Bars per level of the chosen factors (mean, 95% interval over repeats, n) and, beside them, the difference
    of each level to the baseline level: paired t when the repeats pair up by seed and fold, else Welch (the axis
    title says which), with the p-value adjusted by ``adjust`` (holm or bh; the hover names it), the verdict
    (Holm over the levels) and P(improvement) on hover."""
    if trials.empty or not factors:
        return empty("choose one or more categorical factors" if not trials.empty else "no trials match")
    table = ablation(trials, factors, score, baseline, mode=mode, adjust=adjust, order=order)
    adjusted_by = {"holm": "Holm", "bh": "BH"}.get(adjust, adjust)
    methods = sorted({m for m in table["method"].dropna() if m != "baseline"})
    test_name = " / ".join(methods) if methods else "no test"
    traces = [{
        "type": "bar", "y": list(table["level"]), "x": table["mean"].to_numpy(), "orientation": "h", "name": score,
        "marker": {"color": [_RED if level == baseline else _BLUE for level in table["level"]]},
        "error_x": {"type": "data", "array": (table["high"] - table["mean"]).fillna(0).to_numpy(), "visible": True},
        "customdata": table[["n", "low", "high"]].to_numpy(), "xaxis": "x",
        "text": [f"{m:.3f} (n={n})" if math.isfinite(m) else f"n={n}" for m, n in zip(table["mean"], table["n"],
                                                                                      strict=True)],
        "textposition": "auto",
        "hovertemplate": "%{y}<br>mean %{x:.4f} (n=%{customdata[0]})<br>95% CI [%{customdata[1]:.4f}, "
                         "%{customdata[2]:.4f}]<extra></extra>"}]
    if baseline is not None and table["diff"].notna().any():
        traces.append({
            "type": "bar", "y": list(table["level"]), "x": table["diff"].to_numpy(), "orientation": "h",
            "name": f"difference to {baseline}", "xaxis": "x2",
            # Coloured by verdict (Holm over the levels), never by the sign of the mean difference.
            "marker": {"color": [_VERDICT_COLOURS.get(v, _GREY) for v in table["verdict"]]},
            "error_x": {"type": "data", "array": (table["diff_high"] - table["diff"]).fillna(0).to_numpy(),
                        "visible": True},
            "customdata": table[["method", "p_adjusted", "p_improvement", "hedges_g", "repeats_needed",
                                 "verdict"]].to_numpy(),
            "hovertemplate": "%{y}<br>difference %{x:+.4f} (%{customdata[0]})<br>" + adjusted_by
                             + "-adjusted p %{customdata[1]:.3g}<br>beats the baseline: %{customdata[5]} (Holm)"
                             "<br>P(improvement) %{customdata[2]:.2f}<br>Hedges' g %{customdata[3]:.2f}<br>"
                             "repeats for 80% power: %{customdata[4]}<extra></extra>"})
    early = int(stopped_early(trials).sum())
    return _figure(traces, f"{score} by {', '.join(short_name(f) for f in factors)}"
                   + (f" (baseline: {baseline})" if baseline else "")
                   + (f"; includes {early} trials stopped early" if early else ""), len(trials),
                   height=max(260, 40 + 28 * len(table)), barmode="group",
                   xaxis={"domain": [0, 0.48], "title": {"text": score}},
                   xaxis2={"domain": [0.54, 1], "title": {"text": f"difference to baseline ({test_name}, 95% CI)"}},
                   # Levels are labels even when they read as numbers (a lambda grid): never a numeric axis.
                   yaxis={"type": "category", "automargin": True,
                          "title": {"text": ", ".join(short_name(f) for f in factors)}}, showlegend=False)


def pareto(trials: pd.DataFrame, x: str, y: str, x_mode: str, y_mode: str, params: list[str],
           selected: list[str] | None = None) -> Figure:
    """Configurations (means over repeats) in two metrics, the non-dominated ones joined as the front; those of
    the trials selected in the grid ringed."""
    if trials.empty or x not in trials or y not in trials:
        return empty("choose two metrics" if not trials.empty else "no trials match the filters")
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
    drawn = sample_index(len(points), SCATTER_POINTS, keep=np.flatnonzero(on_front))
    shown, shown_front = (points, on_front) if drawn is None else (points.iloc[drawn], on_front[drawn])
    traces = [{"type": _scatter_type(len(shown)), "x": shown["x"].to_numpy(), "y": shown["y"].to_numpy(),
               "mode": "markers", "name": "configuration",
               "marker": {"color": np.where(shown_front, _RED, _GREY), "size": 8},
               "customdata": shown[["config", "n"]].to_numpy(),
               "hovertemplate": "%{customdata[0]}<br>mean of %{customdata[1]} trials<extra></extra>"},
              {"type": "scatter", "x": front["x"].to_numpy(), "y": front["y"].to_numpy(), "mode": "lines",
               "name": "Pareto front", "line": {"color": _RED, "shape": "hv"}}]
    if selected:
        keys = set(trials.loc[trials["trial_id"].isin(selected), "config_key"])
        ringed = points[points["config"].isin(keys)]
        if len(ringed):
            traces.append({"type": "scatter", "x": ringed["x"].to_numpy(), "y": ringed["y"].to_numpy(),
                           "mode": "markers", "name": f"selected ({len(ringed)})",
                           "customdata": ringed[["config", "n"]].to_numpy(),
                           "marker": {"color": "rgba(0,0,0,0)", "size": 16, "line": {"color": _BLUE, "width": 2.5}},
                           "hovertemplate": "selected: %{customdata[0]}<br>mean of %{customdata[1]} trials"
                                            "<extra></extra>"})
    sample = "" if drawn is None else (f"; a uniform sample of {drawn.size:,} of {len(points):,} configurations "
                                       "drawn, the front whole")
    figure = _figure(traces, f"Pareto front: {x} ({x_mode}) vs {y} ({y_mode}); {int(on_front.sum())} on the front"
                     + sample, len(trials), height=360, xaxis={"title": {"text": x}}, yaxis={"title": {"text": y}})
    figure["layout"]["meta"]["drawn"] = len(shown)
    return figure


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average with weight ``weight`` in [0, 1), debiased so the
    first points are not pulled towards zero; NaNs are skipped (carried as NaN). ``values``: shape (epochs,)."""
    if weight <= 0:
        return values
    out, last, count = np.full(values.shape, np.nan), 0.0, 0
    for index, value in enumerate(values):
        if not np.isfinite(value):
            continue
        last, count = weight * last + (1 - weight) * value, count + 1
        out[index] = last / (1 - weight ** count)
    return out


def learning_curves(epochs: pd.DataFrame, metric: str, labels: dict[str, str], smoothing: float = 0.0,
                    log_y: bool = False, groups: dict[str, str] | None = None) -> Figure:
    """``metric`` per epoch: one line per trial (``labels``: trial id -> legend text), or with ``groups`` (trial id
    -> configuration label) the mean over each configuration's repeats with its 95% interval as a band. Each
    trial's curve is smoothed first (``smoothing``, TensorBoard's weight); ``log_y`` puts the metric on a log axis."""
    if epochs.empty or metric not in epochs:
        return empty("select trials in the table to see their learning curves")
    frame = epochs[["trial_id", "epoch", metric]].copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    if smoothing > 0:
        frame[metric] = frame.groupby("trial_id", sort=False)[metric].transform(
            lambda column: smooth(column.to_numpy(dtype=float), smoothing))
    how = [f"smoothed {smoothing:g}"] if smoothing > 0 else []
    dtick = 1 if epochs["epoch"].max() <= 20 else None
    if not groups:
        traces = [{"type": "scatter", "x": group["epoch"].to_numpy(), "y": group[metric].to_numpy(),
                   "mode": "lines+markers", "name": labels.get(trial_id, trial_id)}
                  for trial_id, group in frame.groupby("trial_id", sort=False)]
        title = f"{metric} per epoch" + (f" ({', '.join(how)})" if how else "")
        return _figure(traces, title, frame["trial_id"].nunique(), height=340,
                       xaxis={"title": {"text": "epoch"}, "dtick": dtick},
                       yaxis={"title": {"text": metric}, "type": "log" if log_y else "-"})
    frame["group"] = frame["trial_id"].map(groups)
    frame = frame.dropna(subset=["group"])
    summary = frame.groupby(["group", "epoch"], sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    half = t_half_widths(summary["std"].to_numpy(dtype=float), summary["count"].to_numpy(dtype=float))
    summary["low"], summary["high"] = summary["mean"] - half, summary["mean"] + half
    traces = []
    for index, (name, part) in enumerate(summary.groupby("group", sort=False)):
        part = part.sort_values("epoch")
        colour = _DOMAIN_COLOURS[index % len(_DOMAIN_COLOURS)]
        x, low, high = part["epoch"].to_numpy(), part["low"].to_numpy(), part["high"].to_numpy()
        band = np.isfinite(low) & np.isfinite(high)
        if band.any():  # the 95% interval as a closed polygon: along the upper edge, back along the lower
            traces.append({"type": "scatter", "x": np.concatenate([x[band], x[band][::-1]]),
                           "y": np.concatenate([high[band], low[band][::-1]]), "fill": "toself", "mode": "lines",
                           "line": {"width": 0}, "fillcolor": _rgba(colour, 0.18), "hoverinfo": "skip",
                           "showlegend": False, "legendgroup": str(name), "name": f"{name} 95% interval"})
        traces.append({"type": "scatter", "x": x, "y": part["mean"].to_numpy(), "mode": "lines+markers",
                       "name": f"{name} (n={int(part['count'].max())})", "legendgroup": str(name),
                       "line": {"color": colour}, "marker": {"color": colour},
                       "customdata": np.stack([part["count"], low, high], axis=-1),
                       "hovertemplate": "epoch %{x}: mean %{y:.4f} (n=%{customdata[0]})<br>95% CI "
                                        "[%{customdata[1]:.4f}, %{customdata[2]:.4f}]<extra></extra>"})
    how.insert(0, "mean and 95% interval over each configuration's repeats")
    return _figure(traces, f"{metric} per epoch ({'; '.join(how)})", frame["trial_id"].nunique(), height=340,
                   xaxis={"title": {"text": "epoch"}, "dtick": dtick},
                   yaxis={"title": {"text": metric}, "type": "log" if log_y else "-"})


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def importance_bars(values: dict[str, float], score: str, evaluator: str, trials: int, used: int) -> Figure:
    """Importance per parameter; ``used`` of the ``trials`` finished trials went into it (a sample if fewer)."""
    if not values:
        return empty("importance needs at least two finished trials and a parameter with two values")
    ordered = sorted(values.items(), key=lambda item: item[1])
    traces = [{"type": "bar", "x": [v for _, v in ordered], "y": [short_name(k) for k, _ in ordered],
               "orientation": "h", "marker": {"color": _BLUE}, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}]
    basis = f"{trials} finished trials" if used >= trials else f"a sample of {used} of {trials} finished trials"
    return _figure(traces, f"Parameter importance for {score} ({evaluator}, {basis})", trials,
                   height=max(220, 60 + 30 * len(values)), xaxis={"title": {"text": "importance"}, "range": [0, 1]},
                   yaxis={"automargin": True, "title": {"text": "parameter"}})


def level_options(trials: pd.DataFrame, factors: list[str]) -> list[str]:
    return sorted(level_labels(trials, factors).unique(), key=natural_key) if factors and not trials.empty else []


_DOMAIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def case_scatter(table: pd.DataFrame, p_value: float, metric: str, label_a: str, label_b: str) -> Figure:
    """Each subject's ``metric`` under trial A (x) against under trial B (y), one colour per domain, with the
    diagonal (points above it: B scores higher) and the Wilcoxon signed-rank p-value over the subjects.

    ``table``: columns domain, subject, a, b (from ``analysis.per_case_comparison``)."""
    if table.empty:
        return empty("the two trials share no scored case of this split (trials stopped early have no test scores)")
    values = pd.concat([table["a"], table["b"]]).to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.05 * (high - low or 1.0)
    traces: list[dict[str, Any]] = [{"type": "scatter", "x": [low - pad, high + pad], "y": [low - pad, high + pad],
                                     "mode": "lines", "name": "A = B", "hoverinfo": "skip",
                                     "line": {"color": _GREY, "dash": "dash"}}]
    for index, (domain, part) in enumerate(table.groupby("domain", sort=True)):
        traces.append({"type": "scatter", "x": part["a"].to_numpy(), "y": part["b"].to_numpy(), "mode": "markers",
                       "name": str(domain), "marker": {"size": 10, "color": _DOMAIN_COLOURS[index % 8]},
                       "customdata": np.stack([part["domain"].astype(str), part["subject"].astype(str)], axis=-1),
                       "hovertemplate": "%{customdata[1]} (%{customdata[0]})<br>A %{x:.4f}<br>B %{y:.4f}"
                                        "<extra>click: images</extra>"})
    p_text = "n/a" if not math.isfinite(p_value) else f"{p_value:.3g}"
    figure = _figure(traces, f"{metric} per case: B against A ({len(table)} cases; Wilcoxon signed-rank p = "
                     f"{p_text}; above the diagonal B is higher)", len(table), height=380,
                     xaxis={"title": {"text": f"A: {label_a.split(' (')[0]}"}, "range": [low - pad, high + pad]},
                     yaxis={"title": {"text": f"B: {label_b.split(' (')[0]}"}, "range": [low - pad, high + pad],
                            "scaleanchor": "x"}, showlegend=True)
    figure["layout"]["meta"]["wilcoxon_p"] = None if not math.isfinite(p_value) else p_value
    return figure


def rank_blobs(ranks: pd.DataFrame, metric: str, draws: int, units: int, note: str = "") -> Figure:
    """challengeR's blob plot: for each level (x) the share of bootstrap draws in which it takes each rank (y,
    1 best; marker area and colour = share), and its rank on all the data (a black ring)."""
    if ranks.empty:
        return empty("rank stability needs test scores per case for two or more levels")
    levels = list(dict.fromkeys(ranks.sort_values(["observed", "level"])["level"]))
    shown = ranks[ranks["share"] > 0]
    traces = [{"type": "scatter", "x": shown["level"].tolist(), "y": shown["rank"].to_numpy(), "mode": "markers",
               "name": "share of draws",
               "marker": {"size": (8 + 40 * np.sqrt(shown["share"].to_numpy(dtype=float))).tolist(),
                          "color": shown["share"].to_numpy(), "colorscale": "Blues", "reversescale": True,
                          "cmin": 0, "cmax": 1,
                          "showscale": True, "colorbar": {"title": {"text": "share"}}, "line": {"width": 0}},
               "customdata": shown["share"].to_numpy(),
               "hovertemplate": "%{x}: rank %{y} in %{customdata:.0%} of draws<extra></extra>"}]
    observed = ranks.drop_duplicates("level")
    traces.append({"type": "scatter", "x": observed["level"].tolist(), "y": observed["observed"].to_numpy(),
                   "mode": "markers", "name": "rank on all data",
                   "marker": {"symbol": "circle-open", "size": 14, "color": "black", "line": {"width": 2}},
                   "hovertemplate": "%{x}: rank %{y} on all the data<extra></extra>"})
    title = (f"Rank stability of {metric}: {draws} bootstrap draws of {units} (seed, case) units"
             + (f"; {note}" if note else ""))
    figure = _figure(traces, title, int(observed.shape[0]), height=360,
                     xaxis={"title": {"text": "level"}, "type": "category", "categoryorder": "array",
                            "categoryarray": levels},
                     yaxis={"title": {"text": "rank (1 = best)"}, "autorange": "reversed", "dtick": 1},
                     showlegend=True, legend={"orientation": "h", "y": -0.25})
    return figure


def experiments_bars(tables: dict[str, pd.DataFrame], factor: str, score: str, missing: list[str]) -> Figure:
    """One factor's levels side by side across experiments: per experiment a bar per level (mean, 95% interval,
    n). ``tables``: experiment -> ``analysis.ablation`` table; ``missing``: experiments without ``score``."""
    if not tables:
        return empty("pick two or more experiments that share a factor")
    traces = []
    for index, (name, table) in enumerate(tables.items()):
        traces.append({
            "type": "bar", "name": name, "x": table["level"].tolist(), "y": table["mean"].to_numpy(),
            "marker": {"color": _DOMAIN_COLOURS[index % 8]},
            "error_y": {"type": "data", "array": (table["high"] - table["mean"]).fillna(0).to_numpy(), "visible": True},
            "text": [f"{m:.3f} (n={n})" if math.isfinite(m) else f"n={n}" for m, n in zip(table["mean"], table["n"],
                                                                                           strict=True)],
            "textposition": "outside", "customdata": table[["n", "low", "high"]].to_numpy(),
            "hovertemplate": f"{name}<br>%{{x}}: %{{y:.4f}} (n=%{{customdata[0]}})<br>95% CI [%{{customdata[1]:.4f}}, "
                             "%{customdata[2]:.4f}]<extra></extra>"})
    levels = list(dict.fromkeys(level for table in tables.values() for level in table["level"]))
    title = f"{score} by {short_name(factor)} across {len(tables)} experiments (mean and 95% interval over repeats)"
    if missing:
        title += f"; without {score}: {', '.join(missing)}"
    return _figure(traces, title, int(sum(int(t["n"].sum()) for t in tables.values())), height=380, barmode="group",
                   xaxis={"title": {"text": short_name(factor)}, "type": "category", "categoryorder": "array",
                          "categoryarray": levels},
                   yaxis={"title": {"text": score}}, showlegend=True)


def optimisation_history(trials: pd.DataFrame, score: str, mode: str, x: str = "trial") -> Figure:
    """Each finished trial's ``score`` in the order the trials finished, and the best so far (a step line), against
    the trial number (``x`` "trial") or the time since the sweep started (``x`` "time", minutes)."""
    finished = trials[trials["status"].isin(["TERMINATED", "ERROR"])] if "status" in trials else trials
    if finished.empty or score not in finished or "ended_at" not in finished:
        return empty("no finished trial yet")
    order = finished.assign(_end=pd.to_numeric(finished["ended_at"], errors="coerce")).sort_values("_end",
                                                                                                    kind="stable")
    values = pd.to_numeric(order[score], errors="coerce").replace([np.inf, -np.inf], np.nan).to_numpy(dtype=float)
    filled = np.where(np.isnan(values), -np.inf if mode == "max" else np.inf, values)
    best = np.maximum.accumulate(filled) if mode == "max" else np.minimum.accumulate(filled)
    best = np.where(np.isfinite(best), best, np.nan)
    if x == "time":
        start = pd.to_numeric(trials.get("started_at"), errors="coerce").min()
        position = (order["_end"].to_numpy(dtype=float) - start) / 60
        axis = "minutes since the first trial started"
    else:
        position = np.arange(1, len(order) + 1)
        axis = "trials finished"
    # Beyond SCATTER_POINTS the dots are a seeded sample that keeps every trial that set a new best; the step line
    # needs only the points where the best changes (and the last), whatever the number of trials.
    improved = np.flatnonzero(np.r_[True, best[1:] != best[:-1]] & np.isfinite(best))
    drawn = sample_index(len(order), SCATTER_POINTS, keep=improved)
    dots = slice(None) if drawn is None else drawn
    steps = np.unique(np.r_[improved, len(order) - 1])
    traces = [{"type": _scatter_type(len(values[dots])), "x": position[dots], "y": values[dots], "mode": "markers",
               "name": "trial", "marker": {"color": _GREY, "size": 6}, "customdata": order["trial_id"].to_numpy()[dots],
               "hovertemplate": f"trial %{{customdata}}<br>{score} %{{y:.4f}}<extra></extra>"},
              {"type": "scatter", "x": position[steps], "y": best[steps], "mode": "lines", "name": "best so far",
               "line": {"color": _BLUE, "shape": "hv", "width": 2}}]
    final = best[-1] if best.size and np.isfinite(best[-1]) else math.nan
    best_text = f"{final:.4f}" if math.isfinite(final) else "none"
    title = f"Optimisation history of {score} ({mode}): best {best_text}, {len(order)} finished trials"
    if drawn is not None:
        title += f" (dots: a uniform sample of {drawn.size:,} with every new best)"
    return _figure(traces, title, len(order), height=340, xaxis={"title": {"text": axis}},
                   yaxis={"title": {"text": score}}, showlegend=True, legend={"orientation": "h", "y": -0.25})


TIMELINE_TRIALS = 300  # trials drawn in the timeline (the latest to start; the title says so)
_STATUS_COLOURS = {"completed": _BLUE, "stopped early": _ORANGE, "errored": _RED, "running": "#2ca02c",
                   "pending": _GREY}


def _timeline_rows(trials: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The trials the timeline draws (the last ``TIMELINE_TRIALS`` to start, by start; column ``_start``) and how
    many have started."""
    started = pd.to_numeric(trials["started_at"], errors="coerce")
    ordered = trials.assign(_start=started).dropna(subset=["_start"]).sort_values("_start", kind="stable")
    return ordered.tail(TIMELINE_TRIALS), len(ordered)


def timeline_trial_ids(trials: pd.DataFrame) -> list[str]:
    """The ids of the trials ``trial_timeline`` draws."""
    return _timeline_rows(trials)[0]["trial_id"].tolist() if "started_at" in trials and len(trials) else []


def trial_timeline(trials: pd.DataFrame, epochs: pd.DataFrame, now: float) -> Figure:
    """Each trial a bar from its start to its end (``now`` while running), coloured by how it ended, with a tick
    at the end of each epoch at which the scheduler stopped some trial (its rungs, read from the stopped trials'
    epoch counts), so who was stopped at which rung, and when, reads off the chart.

    ``epochs``: columns trial_id, epoch, time_total_s (the trial's training time at the end of the epoch)."""
    if trials.empty or "started_at" not in trials:
        return empty("no trial has started yet")
    shown, total = _timeline_rows(trials)
    origin = float(pd.to_numeric(trials["started_at"], errors="coerce").min())
    ended = pd.to_numeric(shown.get("ended_at"), errors="coerce").fillna(now).to_numpy(dtype=float)
    begin = shown["_start"].to_numpy(dtype=float)
    early = stopped_early(shown).to_numpy()
    status = shown["status"].astype(str).to_numpy() if "status" in shown else np.array(["TERMINATED"] * len(shown))
    how = np.select([early, status == "TERMINATED", status == "ERROR", status == "RUNNING"],
                    ["stopped early", "completed", "errored", "running"], "pending")
    ran = pd.to_numeric(shown.get("epochs"), errors="coerce").to_numpy(dtype=float) if "epochs" in shown \
        else np.full(len(shown), np.nan)
    planned = pd.to_numeric(shown.get("planned_epochs"), errors="coerce").to_numpy(dtype=float) \
        if "planned_epochs" in shown else np.full(len(shown), np.nan)
    labels = shown["trial_id"].astype(str).to_numpy()
    traces = []
    for name, colour in _STATUS_COLOURS.items():
        keep = how == name
        if not keep.any():
            continue
        text = [f"{'?' if math.isnan(r) else int(r)}/{'?' if math.isnan(p) else int(p)} epochs"
                for r, p in zip(ran[keep], planned[keep], strict=True)]
        base, length = (begin[keep] - origin) / 60, (ended[keep] - begin[keep]) / 60
        traces.append({"type": "bar", "orientation": "h", "y": labels[keep], "base": base, "x": length,
                       "name": f"{name} ({int(keep.sum())})", "marker": {"color": colour},
                       "customdata": np.stack([np.array(text, dtype=object), base, base + length], axis=-1),
                       "hovertemplate": "trial %{y}: %{customdata[0]}<br>from %{customdata[1]:.2f} to "
                                        "%{customdata[2]:.2f} min<extra>" + name + "</extra>"})
    rungs = sorted({int(r) for r in ran[early] if not math.isnan(r)})
    if rungs and not epochs.empty:
        ticks = epochs[epochs["epoch"].isin(rungs) & epochs["trial_id"].isin(labels)]
        starts = dict(zip(labels, begin, strict=True))
        x = [(starts[t] - origin + s) / 60 for t, s in zip(ticks["trial_id"], ticks["time_total_s"].fillna(0),
                                                           strict=True)]
        traces.append({"type": "scatter", "mode": "markers", "y": ticks["trial_id"].tolist(), "x": x,
                       "name": "rung reached", "marker": {"symbol": "line-ns-open", "size": 12, "color": "black"},
                       "customdata": ticks["epoch"].to_numpy(),
                       "hovertemplate": "trial %{y} reached epoch %{customdata}<extra>rung</extra>"})
    stopped = pd.Series(ran[early]).value_counts().sort_index()
    at = ", ".join(f"epoch {int(e)} ({n})" for e, n in stopped.items())
    title = (f"Timeline of {total} trials" + ("" if total <= TIMELINE_TRIALS else f" (the last {len(shown)} to "
                                                                                    "start drawn)")
             + (f"; stopped early by the scheduler at {at}" if at else "; none stopped early"))
    return _figure(traces, title, total, height=min(640, max(320, 100 + 12 * len(shown))), barmode="overlay",
                   xaxis={"title": {"text": "minutes since the first trial started"}},
                   yaxis={"title": {"text": "trial (by start)"}, "type": "category", "categoryorder": "array",
                          "categoryarray": labels.tolist(), "autorange": "reversed",
                          "showticklabels": len(shown) <= 40},
                   showlegend=True, legend={"orientation": "h", "y": -0.2})


_DIFFERENCE_COLOURS = {"only A right": (44, 160, 44), "only B right": (214, 39, 40), "both wrong": (255, 190, 0)}


def _png_source(rgb: np.ndarray) -> str:
    """An RGB array (H, W, 3) uint8 as a PNG data URI, for a plotly image trace (far smaller than its values)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _overlaid(gray: np.ndarray, labels: np.ndarray, colours: np.ndarray, opacity: float) -> np.ndarray:
    """The grey slice (H, W) with each foreground label (H, W) blended in its class colour (``colours``: (K, 3))."""
    base = np.repeat(gray[..., None].astype(float), 3, axis=2)
    colour = colours[np.clip(labels, 0, len(colours) - 1)]
    blended = np.where((labels > 0)[..., None], (1 - opacity) * base + opacity * colour, base)
    return blended.astype(np.uint8)


def slice_viewer(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray] | None, position: float, opacity: float,
                 legend: list[dict[str, str]], names: tuple[str, str], case: str) -> Figure:
    """One axial slice of a case: A's prediction, B's prediction and the truth over the input (each overlay at
    ``opacity``), and where A and B differ: green where only A is right, red where only B is, amber where both
    are wrong. ``a``/``b``: image, pred, label arrays (X, Y, Z) uint8 (None: that trial saved no volume of the
    case); ``position`` in [0, 1] picks the slice; ``legend``: each foreground class's name and colour."""
    shown = a if a is not None else b
    if shown is None:
        return empty("neither trial saved volumes of this case (they are saved with the val pictures)")
    depth = shown["image"].shape[2]
    z = round(min(max(position, 0.0), 1.0) * (depth - 1))
    colours = np.array([[0, 0, 0]] + [[int(e["color"][i:i + 2], 16) for i in (1, 3, 5)] for e in legend]
                       + [[255, 255, 255]], dtype=float)
    gray, truth = shown["image"][:, :, z], shown["label"][:, :, z]
    panels = [(f"A: {names[0]}", None if a is None else _overlaid(gray, a["pred"][:, :, z], colours, opacity)),
              (f"B: {names[1]}", None if b is None else _overlaid(gray, b["pred"][:, :, z], colours, opacity)),
              ("ground truth", _overlaid(gray, truth, colours, opacity))]
    counts = {}
    if a is not None and b is not None:
        pred_a, pred_b = a["pred"][:, :, z], b["pred"][:, :, z]
        masks = {"only A right": (pred_a == truth) & (pred_b != truth),
                 "only B right": (pred_b == truth) & (pred_a != truth),
                 "both wrong": (pred_a != pred_b) & (pred_a != truth) & (pred_b != truth)}
        difference = np.repeat(gray[..., None].astype(float) * 0.5, 3, axis=2)
        for name, mask in masks.items():
            difference[mask] = _DIFFERENCE_COLOURS[name]
            counts[name] = int(mask.sum())
        panels.append(("A vs B: " + ", ".join(f"{name} {n} px" for name, n in counts.items()),
                       difference.astype(np.uint8)))
    traces, layout = [], {}
    width = 1 / len(panels)
    for index, (title, rgb) in enumerate(panels):
        axis = "" if index == 0 else str(index + 1)
        domain = [index * width + 0.01, (index + 1) * width - 0.01]
        layout[f"xaxis{axis}"] = {"domain": domain, "visible": False, "anchor": f"y{axis}"}
        layout[f"yaxis{axis}"] = {"visible": False, "anchor": f"x{axis}", "scaleanchor": f"x{axis}"}
        layout.setdefault("annotations", []).append(  # under each panel: the figure's title is above them
            {"text": _wrap(title, 34), "x": sum(domain) / 2, "y": 0.0, "xref": "paper", "yref": "paper",
             "showarrow": False, "yanchor": "top", "font": {"size": 11}})
        if rgb is None:
            layout["annotations"].append({"text": "no volume saved", "x": sum(domain) / 2, "y": 0.5, "xref": "paper",
                                          "yref": "paper", "showarrow": False})
            continue
        # The slice transposed so x runs across and y down, as the pictures are drawn.
        traces.append({"type": "image", "source": _png_source(np.ascontiguousarray(rgb.transpose(1, 0, 2))),
                       "xaxis": f"x{axis}", "yaxis": f"y{axis}", "hoverinfo": "skip", "name": title})
    figure = _figure(traces, f"{case}: axial slice {z + 1} of {depth} (overlay opacity {opacity:.2f})", 2,
                     height=320, **layout)
    figure["layout"]["margin"] = {"t": 60, "b": 50, "l": 10, "r": 10}
    figure["layout"]["meta"].update(slice=z, depth=depth, difference=counts)
    return figure
