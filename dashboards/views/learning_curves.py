"""Learning curves of the selected trials (the best five when none is selected): one line per trial, or the mean
over each configuration's repeats (seeds, folds) with a 95% band; smoothing and a log axis as in TensorBoard."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.views import Callback, Context, View
from dashboards.views.common import GRAPH, dropdown, param_texts, ranked_ids, selected_ids, trial_labels

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
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], None
    metrics = experiment.epoch_metrics
    primary = experiment.objectives[0].metric if experiment.objectives else None
    value = current if current in metrics else (primary if primary in metrics else (metrics[0] if metrics else None))
    return [{"label": m, "value": m} for m in metrics], value


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
    return figures.learning_curves(epochs, metric, trial_labels(experiment, chosen), float(smoothing or 0),
                                   "log" in (log or []), groups)


VIEWS = [View("learning_curves", [("curves", "figure")],
              [("grid", "selectedRows"), ("curve-metric", "value"), ("score", "value"), ("curves-mode", "value"),
               ("curves-smooth", "value"), ("curves-log", "value")], render,
              lambda: figures.empty("no experiment selected"), ready=lambda selected, metric, *rest: bool(metric))]
CALLBACKS = [Callback("metric_choices", [("curve-metric", "options"), ("curve-metric", "value")],
                      [("version", "data")], metric_choices, states=[("curve-metric", "value")])]
