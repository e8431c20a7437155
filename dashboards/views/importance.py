"""Optuna parameter importance (mean decrease impurity, fANOVA or PED-ANOVA), cached per version and filter."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    importance,
    short_name,
)
from dashboards.figures import BLUE, Figure, titled
from dashboards.views import Context, View
from dashboards.views.common import GRAPH, dropdown

IMPORTANCE_TRIALS = 200  # a seeded sample beyond this: forest evaluators grow with the trial count
_CACHE_SIZE = 32


ORDER = 71


def controls() -> html.Div:
    return html.Div([dropdown("importance-evaluator", "importance evaluator", clearable=False,
                              value="mean_decrease_impurity",
                              options=["mean_decrease_impurity", "fanova", "ped_anova"]),
                     dcc.Graph(id="importance", **GRAPH)], className="section half")


def render(context: Context, score: str, evaluator: str) -> Any:
    experiment, trials = context.experiment, context.trials
    if len(experiment.params) < 2:
        searched = ", ".join(p.removeprefix("config/") for p in experiment.params) or "nothing"
        return figures.empty(f"importance ranks two or more searched parameters; this sweep searched {searched} "
                             "(see the curve for its effect)")
    cache: OrderedDict = context.explorer.cache("importance")
    key = (context.version["key"], json.dumps(list(context.filters), sort_keys=True, default=str), score, evaluator)
    values = cache.get(key)
    if values is None:
        # Forest-based evaluators take up to seconds: computed once per experiment version and filter.
        kinds = {p: kind for p in experiment.params if (kind := experiment.axis_kind(p)) is not None}
        values = importance(trials, experiment.params, experiment.categorical, score, experiment.mode_of(score),
                            evaluator, max_trials=IMPORTANCE_TRIALS, kinds=kinds, log_axes=experiment.log_axes)
        cache[key] = values
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    finished = int((trials["status"] == "TERMINATED").sum()) if "status" in trials else len(trials)
    return importance_bars(values, score, evaluator, finished, min(finished, IMPORTANCE_TRIALS))


# --- the figure ---

def importance_bars(values: dict[str, float], score: str, evaluator: str, trials: int, used: int) -> Figure:
    """Importance per parameter; ``used`` of the ``trials`` finished trials went into it (a sample if fewer)."""
    if not values:
        return figures.empty("importance needs at least two finished trials and a parameter with two values")
    ordered = sorted(values.items(), key=lambda item: item[1])
    traces = [{"type": "bar", "x": [v for _, v in ordered], "y": [short_name(k) for k, _ in ordered],
               "orientation": "h", "marker": {"color": BLUE}, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}]
    basis = f"{trials} finished trials" if used >= trials else f"a sample of {used} of {trials} finished trials"
    return titled(traces, f"Parameter importance for {score} ({evaluator}, {basis})", trials,
                   height=max(220, 60 + 30 * len(values)), xaxis={"title": {"text": "importance"}, "range": [0, 1]},
                   yaxis={"automargin": True, "title": {"text": "parameter"}})

VIEWS = [View("importance", [("importance", "figure")], [("score", "value"), ("importance-evaluator", "value")],
              render, lambda: figures.empty("no experiment selected"), ready=lambda score, evaluator: bool(score))]
