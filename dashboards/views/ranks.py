"""Rank stability of the ablation's levels (challengeR's blob plot): how often each level of the chosen factor(s)
takes each rank when the (seed, case) units are bootstrapped, from the per-case test scores of the filtered
trials. Beyond ``RANK_TRIALS`` finished trials it waits for the user to narrow the filters or to ask for a seeded
sample of them (the title then says so)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    level_case_scores,
    rank_stability,
)
from dashboards.figures import Figure, titled
from dashboards.views import Context, View
from dashboards.views.common import GRAPH
from platform.results import metric_stem

RANK_TRIALS = 2000  # trials whose cases are read for the blob plot; more: a seeded sample
DRAWS = 1000  # bootstrap draws


ORDER = 70


def controls() -> html.Div:
    return html.Div([dcc.Graph(id="ranks", **GRAPH),
                     html.Button(f"Rank a sample of {RANK_TRIALS:,} trials", id="ranks-sample", n_clicks=0)],
                    className="section half")


def render(context: Context, factors: list[str] | None, metric: str | None, split: str | None,
           checkpoint: str | None, sample_clicks: int | None) -> Any:
    experiment, trials = context.experiment, context.trials
    factors = [f for f in factors or [] if f in experiment.params]
    if not factors or not metric:
        return figures.empty("choose a factor (ablation) and a case metric (per-case evidence)")
    split, checkpoint = split or "test", checkpoint or "best"
    finished = trials[trials["status"] == "TERMINATED"] if "status" in trials else trials
    note = ""
    if len(finished) > RANK_TRIALS:
        if not sample_clicks:
            # Reading every matching trial's cases and bootstrapping them would cost seconds per filter change.
            return figures.empty(f"{len(finished):,} finished trials match: rank stability reads the per-case "
                                 f"scores of at most {RANK_TRIALS:,}; narrow the filters or rank a sample")
        positions = np.sort(np.random.default_rng(0).choice(len(finished), RANK_TRIALS, replace=False))
        note = f"a seeded sample of {RANK_TRIALS:,} of {len(finished):,} finished trials"
        finished = finished.iloc[positions]
    key = (context.version.get("key"), experiment.version, json.dumps(list(context.filters), sort_keys=True,
                                                                      default=str), tuple(factors), metric, split,
           checkpoint, bool(note))

    def compute() -> tuple[Any, int]:
        cases = context.explorer.catalog.cases(experiment.name, finished["trial_id"].tolist(), split, [metric])
        scores = level_case_scores(finished, cases, factors, metric, split, checkpoint)
        direction = experiment.metrics_meta.get(metric_stem(metric), {}).get("direction", "max")
        ranks = rank_stability(scores, mode="min" if direction == "min" else "max", resamples=DRAWS)
        subjects = scores["unit"].str.split(" | ", n=1, regex=False).str[-1].nunique() if len(scores) else 0
        return ranks, int(scores["unit"].nunique()) if len(scores) else 0, int(subjects)

    ranks, units, subjects = context.explorer.memo("ranks", key, compute)
    if subjects == 1:  # n then counts seeds of one volume, not patients: say so
        note = "; ".join(part for part in (note, f"the {split} split has ONE subject: the units are seeds of one "
                                                 "volume, not patients") if part)
    if ranks.empty or ranks["level"].nunique() < 2:
        return figures.empty("rank stability needs per-case test scores of two or more levels (trials stopped "
                             "early have none)")
    return rank_blobs(ranks, f"{split} {metric} ({checkpoint if split == 'test' else 'last'} networks)",
                              DRAWS, units, note)


# --- the figure ---

SHARE_COLOURS = [[0.0, "#c6dbef"], [0.5, "#4292c6"], [1.0, "#08306b"]]


def rank_blobs(ranks: pd.DataFrame, metric: str, draws: int, units: int, note: str = "") -> Figure:
    """challengeR's blob plot: for each level (x) the share of bootstrap draws in which it takes each rank (y,
    1 best; marker area and colour = share), and its rank on all the data (a black ring)."""
    if ranks.empty:
        return figures.empty("rank stability needs test scores per case for two or more levels")
    levels = list(dict.fromkeys(ranks.sort_values(["observed", "level"])["level"]))
    shown = ranks[ranks["share"] > 0]
    traces = [{"type": "scatter", "x": shown["level"].tolist(), "y": shown["rank"].to_numpy(), "mode": "markers",
               "name": "share of draws",
               "marker": {"size": (8 + 40 * np.sqrt(shown["share"].to_numpy(dtype=float))).tolist(),
                          # Light (a rare rank) to dark (the usual one), never near-white on the white plot.
                          "color": shown["share"].to_numpy(), "colorscale": SHARE_COLOURS, "cmin": 0, "cmax": 1,
                          "showscale": True, "line": {"width": 0},
                          "colorbar": {"title": {"text": "share of draws", "side": "right"}, "thickness": 14}},
               "customdata": shown["share"].to_numpy(),
               "hovertemplate": "%{x}: rank %{y} in %{customdata:.0%} of draws<extra></extra>"}]
    observed = ranks.drop_duplicates("level")
    traces.append({"type": "scatter", "x": observed["level"].tolist(), "y": observed["observed"].to_numpy(),
                   "mode": "markers", "name": "rank on all data",
                   "marker": {"symbol": "circle-open", "size": 14, "color": "black", "line": {"width": 2}},
                   "hovertemplate": "%{x}: rank %{y} on all the data<extra></extra>"})
    title = (f"Rank stability of {metric}: {draws} bootstrap draws of {units} (seed, case) units"
             + (f"; {note}" if note else ""))
    figure = titled(traces, title, int(observed.shape[0]), height=360,
                     xaxis={"title": {"text": "level"}, "type": "category", "categoryorder": "array",
                            "categoryarray": levels},
                     # Exactly over the ranks there are (1 at the top), never -1..9 for 7 levels.
                     yaxis={"title": {"text": "rank (1 = best)"}, "range": [len(levels) + 0.5, 0.5], "dtick": 1,
                            "tick0": 1, "zeroline": False},
                     showlegend=True, legend={"orientation": "h", "y": -0.25})
    return figure

VIEWS = [View("ranks", [("ranks", "figure")],
              [("factors", "value"), ("case-metric", "value"), ("case-split", "value"), ("case-checkpoint", "value"),
               ("ranks-sample", "n_clicks")],
              render, lambda: figures.empty("no experiment selected"),
              ready=lambda factors, metric, split, checkpoint, clicks: bool(factors and metric))]
