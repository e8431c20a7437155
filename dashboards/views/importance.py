"""Optuna parameter importance (mean decrease impurity, fANOVA or PED-ANOVA), cached per version and filter."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import importance
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
    return figures.importance_bars(values, score, evaluator, finished, min(finished, IMPORTANCE_TRIALS))


VIEWS = [View("importance", [("importance", "figure")], [("score", "value"), ("importance-evaluator", "value")],
              render, lambda: figures.empty("no experiment selected"), ready=lambda score, evaluator: bool(score))]
