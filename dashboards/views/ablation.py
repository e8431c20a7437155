"""Ablation bars per level of one or more factors, each level's difference to a baseline."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.analysis import default_baseline, short_name, spec_order
from dashboards.views import Callback, Context, View, common
from dashboards.views.common import GRAPH, dropdown

ORDER = 41


def controls() -> html.Div:
    return html.Div([html.Div([dropdown("factors", "factors", multi=True), dropdown("baseline", "baseline")],
                              className="row"), dcc.Graph(id="ablation", **GRAPH),
                     html.Div([html.Span("download the table: ", className="label"),
                               html.Button("CSV", id="ablation-csv"), html.Button("Markdown", id="ablation-md"),
                               html.Button("LaTeX", id="ablation-latex"), dcc.Download(id="ablation-download")],
                              className="row")], className="section half")


MAX_FACTOR_LEVELS = 12  # a numeric parameter with at most this many values can be an ablation factor


def factor_choices(explorer: Any, version: dict[str, Any] | None, current: list[str] | None
                   ) -> tuple[list[dict[str, str]], list[str]]:
    """Factors: categorical parameters and numeric ones with few levels (a grid such as the paper's lambdas);
    the current ones kept while they exist, else the first the spec searched."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], []
    factors = [p for p in experiment.params if p in experiment.categorical
               or experiment.trials[p].nunique(dropna=True) <= MAX_FACTOR_LEVELS]
    chosen = [f for f in current or [] if f in factors] or factors[:1]
    return [{"label": short_name(f), "value": f} for f in factors], chosen


def download(explorer: Any, csv_clicks: int | None, md_clicks: int | None, latex_clicks: int | None,
             version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
             grid_model: dict[str, Any] | None, score: str | None, factors: list[str] | None,
             baseline: str | None) -> dict[str, Any] | None:
    """The ablation table the page shows (filtered trials, finished ones; the chosen baseline) as the report
    writes it: CSV, Markdown or LaTeX."""
    from dashboards.report import render as render_table
    from dashboards.report import report_table

    experiment, trials = explorer.filtered(version, statuses, brushes, grid_model)
    factors = [f for f in factors or [] if experiment is not None and f in experiment.params]
    if experiment is None or not factors or not score:
        return None
    levels = set(figures.level_labels(trials, factors)) if not trials.empty else set()
    table = report_table(experiment, factors, baseline if baseline in levels else None, score, trials=trials)
    form, suffix = {"ablation-md": ("md", "md"), "ablation-latex": ("latex", "tex")}.get(
        str(common.triggered()), ("csv", "csv"))
    return dcc.send_string(render_table(table, form, experiment.name), f"{experiment.name}-ablation.{suffix}")


def render(context: Context, score: str | None, factors: list[str] | None, baseline: str | None) -> Any:
    experiment, trials = context.experiment, context.trials
    factors = [f for f in factors or [] if f in experiment.params]
    levels = figures.level_options(trials, factors)
    order = spec_order(experiment, factors)
    levels = [level for level in order if level in levels] + [level for level in levels if level not in order]
    if baseline not in levels:
        baseline = default_baseline(experiment, trials, factors, levels)
    figure = figures.ablation_bars(trials, factors, score, baseline, mode=experiment.mode_of(score), order=order)
    return figure, levels, baseline


VIEWS = [View("ablation", [("ablation", "figure"), ("baseline", "options"), ("baseline", "value")],
              [("score", "value"), ("factors", "value"), ("baseline", "value")], render,
              lambda: (figures.empty("no experiment selected"), [], None),
              ready=lambda score, factors, baseline: bool(score))]
CALLBACKS = [
    Callback("factor_choices", [("factors", "options"), ("factors", "value")], [("version", "data")], factor_choices,
             states=[("factors", "value")]),
    Callback("download_ablation", [("ablation-download", "data")],
             [("ablation-csv", "n_clicks"), ("ablation-md", "n_clicks"), ("ablation-latex", "n_clicks")], download,
             states=[("version", "data"), ("status", "value"), ("brushes", "data"), ("grid", "filterModel"),
                     ("score", "value"), ("factors", "value"), ("baseline", "value")], prevent_initial_call=True),
]
