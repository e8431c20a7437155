"""Two or more experiments side by side on a factor they share (the same ablation on the phantom and on real
data, or before and after a code change): each experiment's mean and 95% interval per level, in one figure."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import ablation
from dashboards.tables import ExplorerError
from dashboards.views import Callback
from dashboards.views.common import GRAPH, dropdown

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
    return options, picked, factor_options, factor, figures.experiments_bars(tables, factor, score, missing)


CALLBACKS = [Callback("compare_experiments",
                      [("experiments-pick", "options"), ("experiments-pick", "value"),
                       ("experiments-factor", "options"), ("experiments-factor", "value"), ("experiments", "figure")],
                      [("version", "data"), ("experiments-pick", "value"), ("experiments-factor", "value"),
                       ("score", "value")], compare)]
