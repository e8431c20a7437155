"""Optuna parameter importance (mean decrease impurity, fANOVA or PED-ANOVA), cached per version and filter."""

from __future__ import annotations

import json
import math
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import optuna
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    ABSENT,
    short_name,
)
from dashboards.figures import BLUE, Figure, titled
from dashboards.views import Context, View
from dashboards.views.common import GRAPH, dropdown
from dashboards.views.labels import score_label

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


def _distributions(done: pd.DataFrame, params: list[str], categorical: set[str],
                   kinds: dict[str, str] | None = None, log_axes: dict[str, bool] | None = None) -> dict[str, Any]:
    """An Optuna distribution per parameter that takes two values or more among ``done``: integer or real as
    ``kinds`` says (``Experiment.axis_kind``; tables without the record: integer when every value is whole), on a
    log scale only where ``log_axes`` says the sweep sampled it so (never guessed from the values' span)."""
    distributions: dict[str, Any] = {}
    for column in params:
        values = done[column]
        if column in categorical:
            labels = sorted({str(v) for v in values if str(v) != ABSENT})
            if len(labels) > 1:
                distributions[column] = optuna.distributions.CategoricalDistribution(labels)
            continue
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        if numbers.nunique() < 2:
            continue
        low, high = float(numbers.min()), float(numbers.max())
        kind = (kinds or {}).get(column)
        log = bool((log_axes or {}).get(column)) and low > 0
        if kind == "int" or (kind is None and bool((numbers == numbers.round()).all())):
            distributions[column] = optuna.distributions.IntDistribution(int(low), int(high), log=log and low >= 1)
        else:
            distributions[column] = optuna.distributions.FloatDistribution(low, high, log=log)
    return distributions


def importance(trials: pd.DataFrame, params: list[str], categorical: set[str], score: str, mode: str,
               evaluator: str = "fanova", max_trials: int = 500, seed: int = 0,
               kinds: dict[str, str] | None = None, log_axes: dict[str, bool] | None = None) -> dict[str, float]:
    """Optuna's parameter importance of ``score`` over the finished trials (at most ``max_trials``, a seeded
    sample, because fANOVA's forest grows with the trial count). Empty if fewer than two usable trials or no
    parameter takes two values."""
    if score not in trials:
        return {}
    usable = pd.to_numeric(trials[score], errors="coerce").notna().to_numpy().copy()
    if "status" in trials:
        usable &= (trials["status"] == "TERMINATED").to_numpy()
    positions = np.flatnonzero(usable)
    if positions.size > max_trials:
        positions = np.sort(np.random.default_rng(seed).choice(positions, size=max_trials, replace=False))
    # Only the sampled rows of the columns used: never a copy of the whole filtered frame.
    done = trials[[*params, score]].iloc[positions]
    distributions = _distributions(done, params, categorical, kinds, log_axes)
    if len(done) < 2 or not distributions:
        return {}
    direction = "maximize" if mode == "max" else "minimize"
    study = optuna.create_study(direction=direction)
    frozen = []
    columns = {column: done[column].tolist() for column in distributions}  # column lists: no iterrows
    for index, value in enumerate(pd.to_numeric(done[score], errors="coerce").tolist()):
        chosen = {}
        for column, distribution in distributions.items():
            cell = columns[column][index]
            if isinstance(distribution, optuna.distributions.CategoricalDistribution):
                if str(cell) in distribution.choices:
                    chosen[column] = str(cell)
            elif cell is not None and not (isinstance(cell, float) and math.isnan(cell)):
                chosen[column] = int(cell) if isinstance(distribution, optuna.distributions.IntDistribution) \
                    else float(cell)
        frozen.append(optuna.trial.create_trial(params=chosen, value=float(value),
                                                distributions={k: distributions[k] for k in chosen}))
    study.add_trials(frozen)
    evaluators = {
        # 32 trees instead of 64: the ranking is stable at this size and the page stays interactive.
        "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(n_trees=32, seed=seed),
        "mean_decrease_impurity": lambda: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(n_trees=32,
                                                                                                   seed=seed),
        "ped_anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    }
    if evaluator not in evaluators:
        raise ValueError(f"unknown importance evaluator {evaluator!r}; choose one of {sorted(evaluators)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna flags its evaluators experimental on every call
        try:
            result = optuna.importance.get_param_importances(study, evaluator=evaluators[evaluator]())
        except (ValueError, RuntimeError):
            return {}  # e.g. conditional parameters leave no common search space
    return {column: float(value) for column, value in result.items()}


# --- the figure ---

def importance_bars(values: dict[str, float], score: str, evaluator: str, trials: int, used: int) -> Figure:
    """Importance per parameter; ``used`` of the ``trials`` finished trials went into it (a sample if fewer)."""
    if not values:
        return figures.empty("importance needs at least two finished trials and a parameter with two values")
    ordered = sorted(values.items(), key=lambda item: item[1])
    traces = [{"type": "bar", "x": [v for _, v in ordered], "y": [short_name(k) for k, _ in ordered],
               "orientation": "h", "marker": {"color": BLUE}, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}]
    basis = f"{trials} finished trials" if used >= trials else f"a sample of {used} of {trials} finished trials"
    return titled(traces, f"Parameter importance for {score_label(score)} ({evaluator}, {basis})", trials,
                   height=max(220, 60 + 30 * len(values)), xaxis={"title": {"text": "importance"}, "range": [0, 1]},
                   yaxis={"automargin": True, "title": {"text": "parameter"}})

VIEWS = [View("importance", [("importance", "figure")], [("score", "value"), ("importance-evaluator", "value")],
              render, lambda: figures.empty("no experiment selected"), ready=lambda score, evaluator: bool(score))]
