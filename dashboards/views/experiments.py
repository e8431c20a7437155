"""Two or more experiments side by side on a factor they share (the same ablation on the phantom and on real
data, or before and after a code change): each experiment's mean and 95% interval per level, in one figure."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    ablation,
    short_name,
)
from dashboards.figures import DOMAIN_COLOURS, Figure, titled
from dashboards.tables import ExplorerError
from dashboards.views import Callback
from dashboards.views.common import GRAPH, dropdown
from dashboards.views.labels import score_label

MAX_EXPERIMENTS = 6


ORDER = 110


def controls() -> html.Div:
    return html.Div([
        html.H3("Compare experiments", style={"margin": "4px 0"}),
        html.Div([dropdown("experiments-pick", "experiments (the shown one first)", multi=True,
                           style={"minWidth": "420px"}),
                  dropdown("experiments-factor", "shared factor")], className="row"),
        dcc.Graph(id="experiments", **GRAPH),
    ], className="section")


def compare(explorer: Any, version: dict[str, Any] | None, picked: list[str] | None, factor: str | None,
            score: str | None) -> tuple[list[dict[str, str]], list[str], list[dict[str, str]], str | None, Any]:
    """Options of both pickers, the picks (the shown experiment first), the shared factor and the figure."""
    names = explorer.catalog.names()
    current = (version or {}).get("experiment")
    picked = [n for n in picked or [] if n in names][:MAX_EXPERIMENTS]
    if current and current in names and current not in picked:
        picked = [current, *picked]
    options = [{"label": n, "value": n} for n in names]
    loaded = {}
    for name in picked:
        try:
            loaded[name] = explorer.catalog.load(name)
        except ExplorerError:
            continue
    shared = None
    for experiment in loaded.values():
        params = set(experiment.params)
        shared = params if shared is None else shared & params
    factors = sorted(shared or [])
    factor = factor if factor in factors else (factors[0] if factors else None)
    factor_options = [{"label": f.removeprefix("config/"), "value": f} for f in factors]
    if len(loaded) < 2 or not factor or not score:
        message = ("pick a second experiment" if len(loaded) < 2 else "these experiments share no searched factor"
                   if not factor else "choose a score")
        return options, picked, factor_options, factor, figures.empty(message)
    from dashboards.analysis import spec_order

    tables, missing = {}, []
    for name, experiment in loaded.items():
        if score not in experiment.trials:
            missing.append(name)
            continue
        finished = experiment.trials[experiment.trials["status"] == "TERMINATED"]
        tables[name] = ablation(finished, [factor], score, None, mode=experiment.mode_of(score),
                                order=spec_order(experiment, [factor]))
    return options, picked, factor_options, factor, experiments_bars(tables, factor, score, missing)


# --- the figure ---

def experiments_bars(tables: dict[str, pd.DataFrame], factor: str, score: str, missing: list[str]) -> Figure:
    """One factor's levels side by side across experiments: per experiment a bar per level (mean, 95% interval,
    n). ``tables``: experiment -> ``analysis.ablation`` table; ``missing``: experiments without ``score``."""
    if not tables:
        return figures.empty("pick two or more experiments that share a factor")
    traces = []
    for index, (name, table) in enumerate(tables.items()):
        traces.append({
            "type": "bar", "name": name, "x": table["level"].tolist(), "y": table["mean"].to_numpy(),
            "marker": {"color": DOMAIN_COLOURS[index % 8]},
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
    return titled(traces, title, int(sum(int(t["n"].sum()) for t in tables.values())), height=380, barmode="group",
                   xaxis={"title": {"text": short_name(factor)}, "type": "category", "categoryorder": "array",
                          "categoryarray": levels},
                   yaxis={"title": {"text": score_label(score)}}, showlegend=True, legend={"orientation": "h"})

CALLBACKS = [Callback("compare_experiments",
                      [("experiments-pick", "options"), ("experiments-pick", "value"),
                       ("experiments-factor", "options"), ("experiments-factor", "value"), ("experiments", "figure")],
                      [("version", "data"), ("experiments-pick", "value"), ("experiments-factor", "value"),
                       ("score", "value")], compare)]
