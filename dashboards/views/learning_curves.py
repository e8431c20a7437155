"""Learning curves of the selected trials (the best five when none is selected): one line per trial, or the mean
over each configuration's repeats (seeds, folds) with a 95% band; smoothing and a log axis as in TensorBoard."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.figures import DOMAIN_COLOURS, Figure, titled
from dashboards.views import Callback, Context, View
from dashboards.views.common import (
    GRAPH,
    dropdown,
    experiment_picker,
    param_texts,
    ranked_ids,
    selected_ids,
    trial_labels,
)
from dashboards.views.labels import epoch_label
from platform.statistics import t_half_widths

MAX_CURVES = 12  # learning curves (or configurations, averaged) drawn at once: the first selected, else the best
MAX_REPEATS = 200  # trials read for the averaged curves (the repeats of the chosen configurations)


ORDER = 51


def controls() -> html.Div:
    return html.Div([
        html.Div([dropdown("curve-metric", "learning-curve metric", clearable=False),
                  dcc.RadioItems(id="curves-mode", options=[{"label": " per trial", "value": "trial"},
                                                            {"label": " mean over repeats", "value": "mean"}],
                                 value="trial", inline=True, inputStyle={"marginLeft": "8px"}),
                  dcc.Checklist(id="curves-log", options=[{"label": " log scale", "value": "log"}], value=[],
                                inputStyle={"marginLeft": "8px"})], className="row"),
        html.Div([html.Span("smoothing", className="label"),
                  html.Div(dcc.Slider(id="curves-smooth", min=0, max=0.95, step=0.05, value=0,
                                      marks={0: "0", 0.5: "0.5", 0.9: "0.9"}), style={"flex": "1"})],
                 className="row"),
        dcc.Graph(id="curves", **GRAPH)], className="section half")


def metric_choices(explorer: Any, version: dict[str, Any] | None, current: str | None
                   ) -> tuple[list[dict[str, str]], str | None]:
    """The per-epoch metrics; the current one kept, else the first objective's."""
    def primary_first(experiment: Any) -> tuple[list[str], str | None]:
        metrics = experiment.epoch_metrics
        primary = experiment.objectives[0].metric if experiment.objectives else None
        return metrics, primary if primary in metrics else (metrics[0] if metrics else None)

    return experiment_picker(explorer, version, current, primary_first)


def render(context: Context, selected: list[dict[str, Any]] | None, metric: str, score: str | None, mode: str,
           smoothing: float | None, log: list[str] | None) -> Any:
    experiment, trials = context.experiment, context.trials
    chosen = selected_ids(selected)[:MAX_CURVES] or ranked_ids(trials, score, experiment, 5)
    groups = None
    if mode == "mean" and "config_key" in trials:
        keys = list(dict.fromkeys(trials.loc[trials["trial_id"].isin(chosen), "config_key"]))[:MAX_CURVES]
        repeats = trials[trials["config_key"].isin(keys)].head(MAX_REPEATS)
        # A configuration is named by its parameters (equal across its repeats: the first one's).
        texts = param_texts(experiment, repeats["trial_id"].tolist())
        names = {key: texts[group["trial_id"].iloc[0]] or str(key)
                 for key, group in repeats.groupby("config_key", sort=False)}
        groups = {t: names[k] for t, k in zip(repeats["trial_id"], repeats["config_key"], strict=True)}
        chosen = list(groups)
    key = (context.version.get("key"), experiment.version, tuple(chosen), metric)
    epochs = context.explorer.memo("epochs", key, lambda: context.explorer.catalog.epochs(experiment.name, chosen,
                                                                                          [metric]))
    return learning_curves(epochs, metric, trial_labels(experiment, chosen), float(smoothing or 0),
                                   "log" in (log or []), groups)


# --- the figure ---

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
        return figures.empty("select trials in the table to see their learning curves")
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
        title = f"{epoch_label(metric)} per epoch" + (f" ({', '.join(how)})" if how else "")
        return titled(traces, title, frame["trial_id"].nunique(), height=340,
                       xaxis={"title": {"text": "epoch"}, "dtick": dtick},
                       yaxis={"title": {"text": epoch_label(metric)}, "type": "log" if log_y else "-"},
                       legend={"orientation": "h"})
    frame["group"] = frame["trial_id"].map(groups)
    frame = frame.dropna(subset=["group"])
    summary = frame.groupby(["group", "epoch"], sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    half = t_half_widths(summary["std"].to_numpy(dtype=float), summary["count"].to_numpy(dtype=float))
    summary["low"], summary["high"] = summary["mean"] - half, summary["mean"] + half
    traces = []
    for index, (name, part) in enumerate(summary.groupby("group", sort=False)):
        part = part.sort_values("epoch")
        colour = DOMAIN_COLOURS[index % len(DOMAIN_COLOURS)]
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
    return titled(traces, f"{epoch_label(metric)} per epoch ({'; '.join(how)})", frame["trial_id"].nunique(),
                  height=340,
                   xaxis={"title": {"text": "epoch"}, "dtick": dtick},
                   yaxis={"title": {"text": epoch_label(metric)}, "type": "log" if log_y else "-"},
                   legend={"orientation": "h"})


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"

VIEWS = [View("learning_curves", [("curves", "figure")],
              [("grid", "selectedRows"), ("curve-metric", "value"), ("score", "value"), ("curves-mode", "value"),
               ("curves-smooth", "value"), ("curves-log", "value")], render,
              lambda: figures.empty("no experiment selected"), ready=lambda selected, metric, *rest: bool(metric))]
CALLBACKS = [Callback("metric_choices", [("curve-metric", "options"), ("curve-metric", "value")],
                      [("version", "data")], metric_choices, states=[("curve-metric", "value")])]
