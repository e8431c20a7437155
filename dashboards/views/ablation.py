"""Ablation bars per level of one or more factors, each level's difference to a baseline."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.analysis import (
    ablation,
    default_baseline,
    level_labels,
    natural_key,
    short_name,
    spec_order,
    stopped_early,
)
from dashboards.figures import BLUE, GREY, RED, VERDICT_COLOURS, Figure, interval_errors, interval_note, titled
from dashboards.views import Callback, Context, View, common
from dashboards.views.common import GRAPH, dropdown
from dashboards.views.labels import score_label

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
    the current ones kept while they exist, else those the spec's ``explore.baseline`` names, else the first."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], []
    factors = [p for p in experiment.params if p in experiment.categorical
               or experiment.trials[p].nunique(dropna=True) <= MAX_FACTOR_LEVELS]
    # The factor the spec's explore.baseline names (the ablation it asks about), else the first searched one.
    asked = [f"config/{key}" for key in experiment.explore.get("baseline") or {}]
    chosen = [f for f in current or [] if f in factors] or [f for f in asked if f in factors] or factors[:1]
    return [{"label": short_name(f), "value": f} for f in factors], chosen


def download(explorer: Any, csv_clicks: int | None, md_clicks: int | None, latex_clicks: int | None,
             version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
             grid_model: dict[str, Any] | None, score: str | None, factors: list[str] | None,
             baseline: str | None) -> dict[str, Any] | None:
    """The ablation table the page shows (filtered trials, finished ones; the chosen baseline) as the report
    writes it: CSV, Markdown or LaTeX."""
    from dashboards.reporttable import render as render_table
    from dashboards.reporttable import report_table

    experiment, trials = explorer.filtered(version, statuses, brushes, grid_model)
    factors = [f for f in factors or [] if experiment is not None and f in experiment.params]
    if experiment is None or not factors or not score:
        return None
    levels = set(level_labels(trials, factors)) if not trials.empty else set()
    table = report_table(experiment, factors, baseline if baseline in levels else None, score, trials=trials)
    form, suffix = {"ablation-md": ("md", "md"), "ablation-latex": ("latex", "tex")}.get(
        str(common.triggered()), ("csv", "csv"))
    return dcc.send_string(render_table(table, form, experiment.name), f"{experiment.name}-ablation.{suffix}")


def render(context: Context, score: str | None, factors: list[str] | None, baseline: str | None) -> Any:
    experiment, trials = context.experiment, context.trials
    factors = [f for f in factors or [] if f in experiment.params]
    levels = level_options(trials, factors)
    order = spec_order(experiment, factors)
    levels = [level for level in order if level in levels] + [level for level in levels if level not in order]
    if baseline not in levels:
        baseline = default_baseline(experiment, trials, factors, levels, score)
    figure = ablation_bars(trials, factors, score, baseline, mode=experiment.mode_of(score), order=order,
                           meta=experiment.metrics_meta)
    return figure, levels, baseline


# --- the figure ---

def ablation_bars(trials: pd.DataFrame, factors: list[str], score: str, baseline: str | None, mode: str = "max",
                  order: list[str] | None = None, adjust: str = "holm",
                  meta: dict[str, dict[str, str]] | None = None) -> Figure:
    """Bars per level of the chosen factors (mean, 95% t-interval over repeats, n; no interval at n < 2) and,
    beside them, each level's difference to the baseline: paired t when the repeats pair up by seed and fold,
    else Welch (the axis title says which), coloured by the verdict of "beats the baseline" (Holm over the levels:
    supported green, contradicted red, inconclusive grey), never by the sign; ``adjust`` (holm or bh) adjusts
    the p-values on hover. The data: ``dashboards.analysis.ablation``; ``meta``: the metrics' declared kinds."""
    if trials.empty or not factors:
        return figures.empty("choose one or more categorical factors" if not trials.empty else "no trials match")
    table = ablation(trials, factors, score, baseline, mode=mode, adjust=adjust, order=order)
    adjusted_by = {"holm": "Holm", "bh": "BH"}.get(adjust, adjust)
    methods = sorted({m for m in table["method"].dropna() if m != "baseline"})
    test_name = " / ".join(methods) if methods else "no test"
    label = score_label(score, meta)
    traces = [{
        "type": "bar", "y": list(table["level"]), "x": table["mean"].to_numpy(), "orientation": "h", "name": label,
        "marker": {"color": [RED if level == baseline else BLUE for level in table["level"]]},
        "error_x": {"type": "data", "array": interval_errors(table["mean"], table["high"], table["n"]),
                    "visible": True, "color": "#52606d"},
        "customdata": table[["n", "low", "high"]].to_numpy(), "xaxis": "x",
        # Value labels at the bar's base, white on the bar: the whisker at its end never crosses them.
        "text": [f"{m:.3f} (n={n})" if math.isfinite(m) else f"n={n}" for m, n in zip(table["mean"], table["n"],
                                                                                      strict=True)],
        "textposition": "inside", "insidetextanchor": "start", "constraintext": "none",
        "insidetextfont": {"size": 11, "color": "white"},
        "hovertemplate": "%{y}<br>mean %{x:.4f} (n=%{customdata[0]})<br>95% CI [%{customdata[1]:.4f}, "
                         "%{customdata[2]:.4f}]<extra></extra>"}]
    better = "> 0" if mode == "max" else "< 0"
    if baseline is not None and table["diff"].notna().any():
        traces.append({
            "type": "bar", "y": list(table["level"]), "x": table["diff"].to_numpy(), "orientation": "h",
            "name": f"difference to {baseline}", "xaxis": "x2",
            "marker": {"color": [VERDICT_COLOURS.get(v, GREY) for v in table["verdict"]]},
            "error_x": {"type": "data", "array": interval_errors(table["diff"], table["diff_high"], table["n"]),
                        "visible": True, "color": "#52606d"},
            "customdata": table[["method", "p_adjusted", "p_improvement", "hedges_g", "repeats_needed",
                                 "verdict"]].to_numpy(),
            "hovertemplate": "%{y}<br>difference %{x:+.4f} (%{customdata[0]})<br>" + adjusted_by
                             + "-adjusted p %{customdata[1]:.3g}<br>beats the baseline: %{customdata[5]} (Holm)"
                             "<br>P(improvement) %{customdata[2]:.2f}<br>Hedges' g %{customdata[3]:.2f}<br>"
                             "repeats for 80% power: %{customdata[4]}<extra></extra>"})
    early = int(stopped_early(trials).sum())
    note = interval_note(table["n"])
    title = (f"{label} by {', '.join(short_name(f) for f in factors)}: mean, {note}"
             + (f"; baseline {baseline} (red)" if baseline else "")
             + ("; differences coloured by verdict (green supported, red contradicted, grey inconclusive)"
                if len(traces) > 1 else "")
             + (f"; includes {early} trials stopped early" if early else ""))
    return titled(traces, title, len(trials), height=max(320, 80 + 30 * len(table)), barmode="group",
                  margin={"b": 72},
                  xaxis={"domain": [0, 0.46], "title": {"text": label}},
                  xaxis2={"domain": [0.56, 1], "zeroline": True, "zerolinecolor": "#52606d",
                          "title": {"text": f"difference to {baseline}<br>({test_name}, 95% CI; {better} is better)"}},
                  # Levels are labels even when they read as numbers (a lambda grid): never a numeric axis.
                  yaxis={"type": "category", "automargin": True, "autorange": "reversed",
                         "title": {"text": ", ".join(short_name(f) for f in factors)}}, showlegend=False)


def level_options(trials: pd.DataFrame, factors: list[str]) -> list[str]:
    return sorted(level_labels(trials, factors).unique(), key=natural_key) if factors and not trials.empty else []

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
