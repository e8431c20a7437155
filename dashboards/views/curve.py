"""The score against one parameter: every trial, and each configuration's mean with its 95% interval over repeats."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    STOPPED_EARLY,
    by_config,
    filter_trials,
    short_name,
    stopped_early,
)
from dashboards.figures import (
    BLUE,
    GREY,
    ORANGE,
    RED,
    Figure,
    interval_errors,
    interval_note,
    sample_index,
    scatter_type,
    titled,
)
from dashboards.views import Callback, Context, View
from dashboards.views.common import GRAPH, dropdown, experiment_picker, selected_ids
from dashboards.views.labels import score_label
from platform.results import ResultsStore
from platform.resume import SPEC_COLUMN
from platform.statistics import cell_matches, t_half_widths

ORDER = 40


def controls() -> html.Div:
    return html.Div([dropdown("param", "parameter", clearable=False), dcc.Graph(id="curve", **GRAPH)],
                    className="section half")


def param_choices(explorer: Any, version: dict[str, Any] | None, current: str | None
                  ) -> tuple[list[dict[str, str]], str | None]:
    """The parameters the spec searched; the current one kept, else the first numeric one (else the first)."""
    def first_numeric(experiment: Any) -> tuple[list[str], str | None]:
        params = experiment.params
        return params, next((p for p in params if p not in experiment.categorical), params[0] if params else None)

    return experiment_picker(explorer, version, current, first_numeric, short_name)


def render(context: Context, score: str | None, param: str | None, selected: list[dict[str, Any]] | None) -> Any:
    experiment, trials = context.experiment, context.trials
    statuses, brushes, grid_model = context.filters
    # The spec's first points (points_to_evaluate, e.g. the paper's values) stopped early by the scheduler are
    # shown even while the status boxes leave stopped-early trials out: hiding them hides the spec's question.
    if statuses is not None and STOPPED_EARLY not in statuses:
        points = context.explorer.memo("points", (experiment.name, experiment.version), lambda: first_points(
            experiment.location))
        extra = asked_first(filter_trials(experiment.trials, [STOPPED_EARLY], brushes, grid_model), points)
        trials = pd.concat([trials, extra]) if len(extra) else trials
    return objective_curve(trials, param, experiment.categorical, score, experiment.params,
                           experiment.is_log_axis(param) if param else None, selected_ids(selected),
                           experiment.levels(param) if param else None, experiment.metrics_meta)


def first_points(location: str) -> list[dict[str, Any]]:
    """The spec's ``points_to_evaluate`` (the configurations it asked for first), from the sweep table's
    resolved spec; empty when the table predates it or the spec has none."""
    try:
        rows = ResultsStore(location).read("sweep").to_pylist()
        spec = json.loads(rows[-1].get(SPEC_COLUMN) or "{}") if rows else {}
    except (OSError, ValueError):
        return []

    def find(value: Any) -> list[dict[str, Any]]:
        if isinstance(value, dict):
            points = value.get("points_to_evaluate")
            if isinstance(points, list):
                return [p for p in points if isinstance(p, dict)]
            return next((found for v in value.values() if (found := find(v))), [])
        return []

    return find(spec)


def asked_first(trials: pd.DataFrame, points: list[dict[str, Any]]) -> pd.DataFrame:
    """The trials of ``trials`` whose configuration is one of ``points`` (every key of the point matches)."""
    if not points or trials.empty:
        return trials.iloc[:0]
    keep = np.zeros(len(trials), dtype=bool)
    for point in points:
        match = np.ones(len(trials), dtype=bool)
        for key, value in point.items():
            column = f"config/{key}"
            if column not in trials:
                match[:] = False
                break
            match &= trials[column].map(lambda stored, value=value: cell_matches(stored, value)).to_numpy(dtype=bool)
        keep |= match
    return trials[keep]


# --- the figure ---

CURVE_GROUPS = 300  # configuration means drawn; more: the mean per bin (numeric) or per level (categorical)


CURVE_BINS = 40


def curve_info(trials: pd.DataFrame, param: str, is_number: bool, score: str, params: list[str],
               log_x: bool | None, order: list[str] | None) -> tuple[pd.Series, pd.DataFrame, str, bool]:
    """The curve's data: each trial's x, the means (columns x, mean, low, high, n; per configuration, or per bin
    or level beyond ``CURVE_GROUPS``) over the trials that ran their epochs (never those stopped early), what a
    mean groups, and whether x is on a log axis (as the sweep recorded it; never guessed from the values)."""
    points_x = pd.to_numeric(trials[param], errors="coerce") if is_number else trials[param].astype(str)
    numeric_x = points_x.to_numpy(dtype=float) if is_number else None
    finite_x = numeric_x[np.isfinite(numeric_x)] if is_number else None
    log = bool(is_number and finite_x.size and (finite_x > 0).all()) and bool(log_x)
    complete = ~stopped_early(trials).to_numpy()
    configs = by_config(trials[complete], score, params)
    grouping = "configuration"
    if len(configs) > CURVE_GROUPS:
        grouping = "bin" if is_number else "level"
        configs = _grouped_means(points_x[complete], pd.to_numeric(trials[score], errors="coerce")[complete],
                                 is_number, log)
    else:
        configs = configs.assign(x=pd.to_numeric(configs[param], errors="coerce") if is_number
                                 else configs[param].astype(str))
    if not is_number and order:  # the spec's level order (``Experiment.levels``), not the labels' sort order
        rank = {label: index for index, label in enumerate(order)}
        configs = configs.assign(_rank=configs["x"].map(lambda label: rank.get(label, len(rank))))
        configs = configs.sort_values(["_rank", "x"]).drop(columns="_rank")
    else:
        configs = configs.sort_values("x")
    return points_x, configs, grouping, log


def objective_curve(trials: pd.DataFrame, param: str | None, categorical: set[str], score: str,
                    params: list[str], log_x: bool | None = None, selected: list[str] | None = None,
                    order: list[str] | None = None, meta: dict[str, dict[str, str]] | None = None) -> Figure:
    """Score against one parameter: every trial as a dot, each configuration's mean over repeats with its
    95% t-interval (none at n < 2) -- the lambda curve. Trials stopped early are their own series (orange rings,
    drawn over the means) and never enter the line: they ran fewer epochs. Beyond ``SCATTER_POINTS`` trials the
    dots are a seeded sample, and beyond ``CURVE_GROUPS`` configurations the means are per bin of the parameter
    (per level when categorical) over every trial in it; the title says so. ``meta``: the metrics' kinds."""
    if trials.empty or not param or param not in trials:
        return figures.empty("choose a parameter (no trials match the filters)" if trials.empty
                             else "choose a parameter")
    is_number = param not in categorical
    points_x, configs, grouping, log_x = curve_info(trials, param, is_number, score, params, log_x, order)
    drawn = sample_index(len(trials), figures.SCATTER_POINTS)
    picked = trials if drawn is None else trials.iloc[drawn]
    picked_x = points_x if drawn is None else points_x.iloc[drawn]
    early = stopped_early(picked).to_numpy()
    dots = [("trial", ~early, {"color": GREY, "size": 6, "opacity": 0.6})]
    if early.any():  # the status boxes let them in: drawn apart, they ran fewer epochs than the others
        dots.append((f"stopped early by the scheduler ({int(early.sum())})", early,
                     {"color": ORANGE, "size": 8, "symbol": "circle-open", "line": {"width": 2}}))
    dotted = [
        {"type": scatter_type(len(picked)), "x": picked_x[keep].to_numpy(),
         "y": pd.to_numeric(picked[score], errors="coerce")[keep].to_numpy(), "mode": "markers", "name": name,
         "marker": marker, "customdata": picked["trial_id"][keep].to_numpy(),
         "hovertemplate": f"trial %{{customdata}}<br>{short_name(param)}=%{{x}}<br>{short_name(score)}=%{{y:.4f}}"
                          "<extra></extra>"}
        for name, keep, marker in dots]
    note = interval_note(configs["n"])
    # The stopped-early rings after the means, so the means never hide them.
    means = [
        {"type": "scatter", "x": configs["x"].to_numpy(), "y": configs["mean"].to_numpy(),
         "mode": "lines+markers" if is_number else "markers", "name": f"mean per {grouping} (95% t-interval)",
         "marker": {"color": BLUE, "size": 9}, "line": {"color": BLUE},
         "error_y": {"type": "data", "array": interval_errors(configs["mean"], configs["high"], configs["n"]),
                     "visible": True},
         "customdata": np.stack([configs["n"], configs["low"], configs["high"]], axis=-1),
         "hovertemplate": f"{short_name(param)}=%{{x}}<br>mean=%{{y:.4f}} (n=%{{customdata[0]}})<br>"
                          "95% CI [%{customdata[1]:.4f}, %{customdata[2]:.4f}]<extra></extra>"}]
    traces = [*dotted[:1], *means, *dotted[1:]]
    traces += _selected_points(trials, selected, points_x, pd.to_numeric(trials[score], errors="coerce"))
    notes = []
    if grouping != "configuration":
        notes.append(f"means per {grouping} of {short_name(param)} over all {len(trials):,} trials")
    if drawn is not None:
        notes.append(f"dots: a uniform sample of {drawn.size:,}")
    if early.any():
        notes.append(f"{int(early.sum())} trials stopped early shown apart, not in the means")
    how = "; ".join([f"mean and {note}" if grouping == "configuration" else "", *notes]).strip("; ")
    label = score_label(score, meta)
    figure = titled(traces, f"{label} vs {short_name(param)} ({how})", len(trials), height=380,
                     xaxis={"title": {"text": short_name(param)}, "type": "log" if log_x else "-",
                            **({"categoryorder": "array", "categoryarray": list(order)}
                               if not is_number and order else {})},
                     yaxis={"title": {"text": label}}, showlegend=True, legend={"orientation": "h"})
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
             "marker": {"color": "rgba(0,0,0,0)", "size": 14, "line": {"color": RED, "width": 2.5}},
             "hovertemplate": "selected trial %{customdata}<br>%{x}, %{y:.4f}<extra></extra>"}]


def _grouped_means(x: pd.Series, values: pd.Series, is_number: bool, log: bool) -> pd.DataFrame:
    """Mean, 95% t-interval and n of ``values`` per bin of numeric ``x`` (``CURVE_BINS`` equal-width bins, in
    log10 when ``log``; column ``x`` is each bin's median) or per level of categorical ``x``.

    Columns: x, mean, low, high, n (one row per non-figures.empty bin or level)."""
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

VIEWS = [View("curve", [("curve", "figure")], [("score", "value"), ("param", "value"), ("grid", "selectedRows")],
              render, lambda: figures.empty("no experiment selected"),
              ready=lambda score, param, selected: bool(score))]
CALLBACKS = [Callback("param_choices", [("param", "options"), ("param", "value")], [("version", "data")],
                      param_choices, states=[("param", "value")])]
