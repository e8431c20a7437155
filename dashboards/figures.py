"""Plotly figures of the explorer, each a pure function of already-filtered tables.

Figures are plain plotly dicts (``{"data": [...], "layout": {...}}``), which ``dcc.Graph`` draws as they are:
building ``plotly.graph_objects`` would validate every property and copy every array, seconds at 10,000 trials.
Every figure carries a ``uirevision`` so a live refresh keeps the user's zoom and legend choices; plotly's mode
bar exports it as PNG, and ``plotly.io.write_html(figure, ...)`` as HTML.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dashboards.analysis import ablation, by_config, encode, level_labels, natural_key, pareto_mask, short_name

_BLUE, _GREY, _RED = "#1f77b4", "#9aa5b1", "#d62728"
Figure = dict[str, Any]


def empty(message: str) -> Figure:
    """A blank figure that says why it is blank (no trials yet, no categorical factor, ...)."""
    return {"data": [], "layout": {
        "annotations": [{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}],
        "xaxis": {"visible": False}, "yaxis": {"visible": False}, "height": 260, "margin": {"t": 30, "b": 30},
        "meta": {"trials": 0}}}


def _figure(traces: list[dict[str, Any]], title: str, trials: int, **layout: Any) -> Figure:
    # meta.trials: how many trials the figure shows (the browser test reads it from the rendered figure).
    return {"data": traces, "layout": {"title": {"text": title, "font": {"size": 14}}, "uirevision": "keep",
                                       "meta": {"trials": trials}, "margin": {"t": 40, "b": 40, "l": 60, "r": 20},
                                       "plot_bgcolor": "white", **layout}}


def _spans_decades(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() > 0 and finite.max() / finite.min() >= 100)


def dimensions_of(trials: pd.DataFrame, params: list[str], categorical: set[str], score: str,
                  log_axes: dict[str, bool] | None = None) -> list[dict[str, Any]]:
    """The parallel-coordinate axes: each parameter (categorical ones encoded; a numeric one on a log10 axis when
    the sweep sampled it log-uniformly, per ``log_axes``; for older tables without that record, when it is positive
    and spans two decades) and the score column."""
    dimensions = []
    for column in [*params, score]:
        if column not in trials:
            continue
        values, labels = encode(trials[column], column in categorical)
        declared = (log_axes or {}).get(column)
        log = bool(labels is None and column != score and np.nanmin(values, initial=np.inf) > 0
                   and (declared if declared is not None else _spans_decades(values)))
        dimensions.append({"column": column, "values": np.log10(values) if log else values, "labels": labels,
                           "log": log})
    return dimensions


def parallel_coordinates(trials: pd.DataFrame, params: list[str], categorical: set[str], score: str,
                         brushes: dict[str, Any] | None = None, log_axes: dict[str, bool] | None = None
                         ) -> tuple[Figure, list[dict[str, Any]]]:
    """Parcoords over parameters and the score (line colour = score); brushes redrawn from ``brushes``.

    Returns the figure and the axis list (column, labels, log) that decodes a ``restyleData`` event.
    """
    if trials.empty:
        return empty("no trials match the filters"), []
    dimensions = dimensions_of(trials, params, categorical, score, log_axes)
    plotted = []
    for dimension in dimensions:
        values, labels = dimension["values"], dimension["labels"]
        entry: dict[str, Any] = {"label": short_name(dimension["column"]), "values": values}
        if labels is not None:
            entry.update(tickvals=list(range(len(labels))), ticktext=[_clip(label) for label in labels],
                         range=[-0.5, len(labels) - 0.5] if len(labels) == 1 else [0, len(labels) - 1])
        elif dimension["log"]:
            finite = values[np.isfinite(values)]
            decades = list(range(math.floor(finite.min()), math.ceil(finite.max()) + 1))
            entry.update(tickvals=decades, ticktext=[f"{10.0 ** d:g}" for d in decades],
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
    line: dict[str, Any] = {"color": score_values, "colorscale": "Viridis", "showscale": True,
                            "colorbar": {"title": {"text": short_name(score)}}} if score_values is not None else {}
    axes = [{"column": d["column"], "labels": d["labels"], "log": d["log"]} for d in dimensions]
    return _figure([{"type": "parcoords", "dimensions": plotted, "line": line}],
                   f"Parameters and {score} ({len(trials)} trials; drag on an axis to filter)",
                   len(trials), height=380), axes


def _scatter_type(points: int) -> str:
    """WebGL only where SVG would be slow: WebGL contexts are few per page and absent in some browsers."""
    return "scattergl" if points > 2000 else "scatter"


def _clip(text: str, width: int = 18) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def objective_curve(trials: pd.DataFrame, param: str | None, categorical: set[str], score: str,
                    params: list[str], log_x: bool | None = None) -> Figure:
    """Score against one parameter: every trial as a dot, each configuration's mean over repeats with its
    95% interval (error bars; a band when the parameter is numeric) -- the lambda curve."""
    if trials.empty or not param or param not in trials:
        return empty("choose a parameter (no trials match the filters)" if trials.empty else "choose a parameter")
    configs = by_config(trials, score, params)
    is_number = param not in categorical
    if is_number:
        configs = configs.assign(x=pd.to_numeric(configs[param], errors="coerce")).sort_values("x")
        points_x = pd.to_numeric(trials[param], errors="coerce")
    else:
        configs = configs.assign(x=configs[param].astype(str)).sort_values("x")
        points_x = trials[param].astype(str)
    bars = configs["high"] - configs["mean"]
    traces = [
        {"type": _scatter_type(len(trials)), "x": points_x.to_numpy(),
         "y": pd.to_numeric(trials[score], errors="coerce").to_numpy(), "mode": "markers", "name": "trial",
         "marker": {"color": _GREY, "size": 6, "opacity": 0.6},
         "customdata": trials["trial_id"].to_numpy(),
         "hovertemplate": f"trial %{{customdata}}<br>{short_name(param)}=%{{x}}<br>{score}=%{{y:.4f}}<extra></extra>"},
        {"type": "scatter", "x": configs["x"].to_numpy(), "y": configs["mean"].to_numpy(),
         "mode": "lines+markers" if is_number else "markers", "name": "mean (95% CI)",
         "marker": {"color": _BLUE, "size": 9}, "line": {"color": _BLUE},
         "error_y": {"type": "data", "array": bars.fillna(0).to_numpy(), "visible": True},
         "customdata": np.stack([configs["n"], configs["low"], configs["high"]], axis=-1),
         "hovertemplate": f"{short_name(param)}=%{{x}}<br>mean=%{{y:.4f}} (n=%{{customdata[0]}})<br>"
                          "95% CI [%{customdata[1]:.4f}, %{customdata[2]:.4f}]<extra></extra>"}]
    numeric_x = pd.to_numeric(configs["x"], errors="coerce") if is_number else None
    positive = bool(is_number and numeric_x.notna().any() and (numeric_x > 0).all())
    log_x = positive and (log_x if log_x is not None else _spans_decades(numeric_x.to_numpy(dtype=float)))
    return _figure(traces, f"{score} vs {short_name(param)} (mean and 95% interval over repeats)", len(trials),
                   height=360, xaxis={"title": short_name(param), "type": "log" if log_x else "-"},
                   yaxis={"title": score}, showlegend=True)


def ablation_bars(trials: pd.DataFrame, factors: list[str], score: str, baseline: str | None, mode: str = "max",
                  order: list[str] | None = None) -> Figure:
    """Bars per level of the chosen factors (mean, 95% interval over repeats, n) and, beside them, the difference
    of each level to the baseline level: paired t when the repeats pair up by seed, else Welch (the axis title
    says which), with the Holm-adjusted p-value and P(improvement) on hover."""
    if trials.empty or not factors:
        return empty("choose one or more categorical factors" if not trials.empty else "no trials match")
    table = ablation(trials, factors, score, baseline, mode=mode, order=order)
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
            "marker": {"color": ["#2ca02c" if (d or 0) >= 0 else "#ff7f0e" for d in table["diff"].fillna(0)]},
            "error_x": {"type": "data", "array": (table["diff_high"] - table["diff"]).fillna(0).to_numpy(),
                        "visible": True},
            "customdata": table[["method", "p_adjusted", "p_improvement", "hedges_g", "repeats_needed"]].to_numpy(),
            "hovertemplate": "%{y}<br>difference %{x:+.4f} (%{customdata[0]})<br>Holm-adjusted p %{customdata[1]:.3g}"
                             "<br>P(improvement) %{customdata[2]:.2f}<br>Hedges' g %{customdata[3]:.2f}<br>"
                             "repeats for 80% power: %{customdata[4]}<extra></extra>"})
    return _figure(traces, f"{score} by {', '.join(short_name(f) for f in factors)}"
                   + (f" (baseline: {baseline})" if baseline else ""), len(trials),
                   height=max(260, 40 + 28 * len(table)), barmode="group",
                   xaxis={"domain": [0, 0.48], "title": score},
                   xaxis2={"domain": [0.54, 1], "title": f"difference to baseline ({test_name}, 95% CI)"},
                   # Levels are labels even when they read as numbers (a lambda grid): never a numeric axis.
                   yaxis={"type": "category", "automargin": True}, showlegend=False)


def pareto(trials: pd.DataFrame, x: str, y: str, x_mode: str, y_mode: str, params: list[str]) -> Figure:
    """Configurations (means over repeats) in two metrics, the non-dominated ones joined as the front."""
    if trials.empty or x not in trials or y not in trials:
        return empty("choose two metrics" if not trials.empty else "no trials match the filters")
    xs, ys = by_config(trials, x, params), by_config(trials, y, params)
    points = pd.DataFrame({"config": xs["config_key"], "x": xs["mean"], "y": ys["mean"], "n": xs["n"]})
    on_front = pareto_mask(points["x"].to_numpy(), points["y"].to_numpy(), x_mode, y_mode)
    front = points[on_front].sort_values("x")
    traces = [{"type": _scatter_type(len(points)), "x": points["x"].to_numpy(), "y": points["y"].to_numpy(),
               "mode": "markers", "name": "configuration",
               "marker": {"color": np.where(on_front, _RED, _GREY), "size": 8},
               "customdata": points[["config", "n"]].to_numpy(),
               "hovertemplate": "%{customdata[0]}<br>mean of %{customdata[1]} trials<extra></extra>"},
              {"type": "scatter", "x": front["x"].to_numpy(), "y": front["y"].to_numpy(), "mode": "lines",
               "name": "Pareto front", "line": {"color": _RED, "shape": "hv"}}]
    return _figure(traces, f"Pareto front: {x} ({x_mode}) vs {y} ({y_mode}); {int(on_front.sum())} on the front",
                   len(trials), height=360, xaxis={"title": x}, yaxis={"title": y})


def learning_curves(epochs: pd.DataFrame, metric: str, labels: dict[str, str]) -> Figure:
    """``metric`` per epoch, one line per trial (``labels``: trial id -> legend text)."""
    if epochs.empty or metric not in epochs:
        return empty("select trials in the table to see their learning curves")
    traces = [{"type": "scatter", "x": group["epoch"].to_numpy(), "y": group[metric].to_numpy(),
               "mode": "lines+markers", "name": labels.get(trial_id, trial_id)}
              for trial_id, group in epochs.groupby("trial_id", sort=False)]
    return _figure(traces, f"{metric} per epoch", epochs["trial_id"].nunique(), height=340,
                   xaxis={"title": "epoch", "dtick": 1 if epochs["epoch"].max() <= 20 else None},
                   yaxis={"title": metric})


def importance_bars(values: dict[str, float], score: str, evaluator: str, trials: int, used: int) -> Figure:
    """Importance per parameter; ``used`` of the ``trials`` finished trials went into it (a sample if fewer)."""
    if not values:
        return empty("importance needs at least two finished trials and a parameter with two values")
    ordered = sorted(values.items(), key=lambda item: item[1])
    traces = [{"type": "bar", "x": [v for _, v in ordered], "y": [short_name(k) for k, _ in ordered],
               "orientation": "h", "marker": {"color": _BLUE}, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}]
    basis = f"{trials} finished trials" if used >= trials else f"a sample of {used} of {trials} finished trials"
    return _figure(traces, f"Parameter importance for {score} ({evaluator}, {basis})", trials,
                   height=max(220, 60 + 30 * len(values)), xaxis={"title": "importance", "range": [0, 1]},
                   yaxis={"automargin": True})


def level_options(trials: pd.DataFrame, factors: list[str]) -> list[str]:
    return sorted(level_labels(trials, factors).unique(), key=natural_key) if factors and not trials.empty else []
