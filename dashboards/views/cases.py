"""Per-case evidence for the two trials of the comparison (A and B): each subject's score under A against under
B with the Wilcoxon signed-rank test, the subjects B helps and hurts most, the comparison per domain and per
structure, and, for a clicked subject, its pictures under both trials.

Reads the ``cases`` table (one row per trial, split, checkpoint, domain and subject) for the two trials only, and
the test pictures a trial saves of every case when it finishes.
"""

from __future__ import annotations

import math
from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import ALL, Input, dcc, html

from dashboards import figures
from dashboards.analysis import (
    case_metrics,
)
from dashboards.figures import DOMAIN_COLOURS, GREY, Figure, titled
from dashboards.views import Callback, common
from dashboards.views.common import GRAPH, dropdown, missing, rounded, trial_labels
from dashboards.views.labels import metric_name, unit_of
from platform.results import metric_stem
from platform.statistics import wilcoxon_signed_rank

EXTREMES = 5  # subjects listed as helped most and hurt most


ORDER = 100


def controls() -> html.Div:
    return html.Div([
        html.H3("Per-case evidence: trial B against trial A (the comparison's picks)", style={"margin": "4px 0"}),
        html.Div([dropdown("case-metric", "case metric (per class: metric/class)", clearable=False),
                  dropdown("case-split", "split", options=["test", "val"], value="test", clearable=False),
                  dropdown("case-checkpoint", "checkpoint (test split)", clearable=False,
                           options=[{"label": "best on val", "value": "best"}, {"label": "last", "value": "last"}],
                           value="best")], className="row"),
        html.Div([html.Div(dcc.Graph(id="case-scatter", **GRAPH), className="half"),
                  html.Div(id="case-extremes", className="half")], className="row"),
        html.Div(id="case-breakdown"),
        html.Div(id="case-images", className="row"),
        dcc.Store(id="case-subject"),
    ], className="section")


def metric_options(explorer: Any, version: dict[str, Any] | None, current: str | None
                   ) -> tuple[list[dict[str, str]], str | None]:
    """The per-case metrics of the experiment's cases table (its schema only), the current one kept."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], None
    import pandas as pd

    columns = explorer.catalog.case_columns(experiment.name)
    metrics = case_metrics(pd.DataFrame({c: pd.Series(dtype=float) for c in columns}))
    value = current if current in metrics else ("dice" if "dice" in metrics else (metrics[0] if metrics else None))
    return [{"label": m, "value": m} for m in metrics], value


def _cases(explorer: Any, experiment: Any, a: str, b: str, split: str) -> Any:
    return explorer.memo("cases", (experiment.name, experiment.version, a, b, split),
                         lambda: explorer.catalog.cases(experiment.name, [a, b], split))


def evidence(explorer: Any, version: dict[str, Any] | None, a: str | None, b: str | None, metric: str | None,
             split: str | None, checkpoint: str | None) -> tuple[Any, Any, Any]:
    """The scatter (B against A per case), the helped / hurt lists (buttons that pick a subject) and the
    breakdown per domain and structure."""
    experiment = explorer.experiment(version)
    if experiment is None or not a or not b or not metric:
        return figures.empty("choose two trials in the comparison"), None, None
    split, checkpoint = split or "test", checkpoint or "best"
    return explorer.memo("evidence", (experiment.name, experiment.version, a, b, metric, split, checkpoint),
                         lambda: _evidence(explorer, experiment, a, b, metric, split, checkpoint))


def _evidence(explorer: Any, experiment: Any, a: str, b: str, metric: str, split: str, checkpoint: str
              ) -> tuple[Any, Any, Any]:
    cases = _cases(explorer, experiment, a, b, split)
    if metric not in cases:
        return figures.empty(f"no per-case {metric} for these trials"), None, None
    table, p_value = per_case_comparison(cases, a, b, metric, split, checkpoint)
    labels = trial_labels(experiment, [a, b])
    scatter = case_scatter(table, p_value, metric, labels.get(a, a), labels.get(b, b))
    direction = experiment.metrics_meta.get(metric_stem(metric), {}).get("direction", "max")
    helped, hurt = helps_and_hurts(table, EXTREMES, "min" if direction == "min" else "max")
    extremes = html.Div([
        _case_list("B helps most", helped, metric), _case_list("B hurts most", hurt, metric),
        html.P(f"{metric}: {'lower' if direction == 'min' else 'higher'} is better; click a case (here or in the "
               "scatter) to see its pictures under A and B.", className="label"),
    ])
    breakdown = case_breakdown(cases, a, b, metric, split, checkpoint)
    rows = [rounded({**row, "p": row["p"] if not missing(row["p"]) else math.nan})
            for row in breakdown.to_dict("records")]
    table_view = html.Div([html.H4("Per domain and per structure (B - A; Wilcoxon signed-rank p over the cases)"),
                           _table(rows, ["metric", "domain", "n", "mean_a", "mean_b", "diff", "p"],
                                  "case-breakdown-table")])
    return scatter, extremes, table_view


def _case_list(title: str, rows: Any, metric: str) -> html.Div:
    if rows.empty:
        return html.Div([html.H4(title), html.P("none")])
    items = [html.Li(html.Button(f"{row.domain}/{row.subject}: A {row.a:.3f}, B {row.b:.3f}",
                                 id={"type": "case-pick", "index": f"{row.domain}/{row.subject}"},
                                 className="case-pick", n_clicks=0))
             for row in rows.itertuples()]
    return html.Div([html.H4(title), html.Ol(items)], className="case-list")


def _table(rows: list[dict[str, Any]], columns: list[str], table_id: str) -> html.Table:
    from dashboards.views.comparison import rows_table

    return rows_table(rows, columns, table_id)


def pick_subject(explorer: Any, click: dict[str, Any] | None, picks: list[int | None] | None) -> Any:
    """The case (``domain/subject``) a click on the scatter or on a listed case picked."""
    fired = common.triggered()
    if fired == "case-scatter" and click and click.get("points"):
        data = click["points"][0].get("customdata")
        if isinstance(data, list) and len(data) == 2:
            return f"{data[0]}/{data[1]}"
    if isinstance(fired, dict) and fired.get("type") == "case-pick" and any(picks or []):
        return fired.get("index")
    return dash.no_update


def case_images(explorer: Any, version: dict[str, Any] | None, picked: str | None, a: str | None,
                b: str | None) -> Any:
    """The picked case's test pictures under trial A and trial B, or why one is missing."""
    from dashboards.views.comparison import artifact_rows, picture

    experiment = explorer.experiment(version)
    if experiment is None or not picked or "/" not in picked or not a or not b:
        return html.P("click a case to see its pictures under A and B")
    domain, subject = picked.split("/", 1)
    panels = []
    for tag, trial_id in (("A", a), ("B", b)):
        rows = artifact_rows(experiment, trial_id)
        if "subject" in rows and "split" in rows:
            rows = rows[(rows["subject"] == subject) & (rows["domain"] == domain) & (rows["split"] == "test")]
        else:
            rows = rows.iloc[:0]
        heading = html.H4(f"{tag}: trial {trial_id}, {domain}/{subject}")
        if len(rows):
            panels.append(html.Div([heading, picture(experiment, trial_id, rows.iloc[0])], className="images"))
        else:
            panels.append(html.Div([heading, html.P(
                "no picture of this case: a trial saves one per test case when it finishes its last epoch "
                "(trials stopped early, still running or from older tables have none)")], className="images"))
    return panels


def per_case_comparison(cases: pd.DataFrame, trial_a: str, trial_b: str, metric: str = "dice", split: str = "test",
                        checkpoint: str = "best") -> tuple[pd.DataFrame, float]:
    """Each subject's ``metric`` under trial A and under trial B (the same split and checkpoint; the last evaluated
    epoch of each for ``split`` val), as columns ``domain, subject, a, b, diff`` (diff = a - b, largest first), and
    the two-sided p-value of the Wilcoxon signed-rank test over the subjects both scored."""

    def one(trial: str) -> pd.DataFrame:
        rows = cases[(cases["trial_id"] == trial) & (cases["split"] == split)]
        if "checkpoint" in rows and split == "test":
            rows = rows[rows["checkpoint"] == checkpoint]
        if "epoch" in rows and not rows.empty:
            rows = rows[rows["epoch"] == rows["epoch"].max()]
        return rows[["domain", "subject", metric]].drop_duplicates(["domain", "subject"], keep="last")

    if metric not in cases:
        return pd.DataFrame(columns=["domain", "subject", "a", "b", "diff"]), math.nan
    merged = one(trial_a).merge(one(trial_b), on=["domain", "subject"], suffixes=("_a", "_b"))
    table = pd.DataFrame({"domain": merged["domain"], "subject": merged["subject"], "a": merged[f"{metric}_a"],
                          "b": merged[f"{metric}_b"]})
    table["diff"] = table["a"] - table["b"]
    table = table.sort_values("diff", ascending=False, kind="stable").reset_index(drop=True)
    return table, wilcoxon_signed_rank(table["a"].to_numpy(dtype=float), table["b"].to_numpy(dtype=float))


def helps_and_hurts(comparison: pd.DataFrame, count: int = 5, mode: str = "max"
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``count`` subjects trial B helps most and hurts most against A (column ``gain``: ``b - a``, negated when
    smaller is better under ``mode``; helped: gain > 0, largest first; hurt: gain < 0, smallest first)."""
    sign = -1.0 if mode == "min" else 1.0
    gain = comparison.assign(gain=sign * (comparison["b"] - comparison["a"]))
    gain = gain[np.isfinite(gain["gain"].to_numpy(dtype=float))]
    helped = gain[gain["gain"] > 0].nlargest(count, "gain")
    hurt = gain[gain["gain"] < 0].nsmallest(count, "gain")
    return helped.reset_index(drop=True), hurt.reset_index(drop=True)


def case_breakdown(cases: pd.DataFrame, trial_a: str, trial_b: str, metric: str, split: str = "test",
                   checkpoint: str = "best") -> pd.DataFrame:
    """The comparison of two trials per domain and per structure: for ``metric`` and each of its per-class
    columns (``metric/<class>``), over every domain together (``all``) and each domain alone, the subjects both
    scored (n), the mean under A and under B, the mean difference B - A and the Wilcoxon signed-rank p-value.

    Columns: metric, domain, n, mean_a, mean_b, diff, p.
    """

    variants = [c for c in case_metrics(cases) if c == metric or c.startswith(f"{metric}/")]
    rows = []
    for column in variants:
        table, _ = per_case_comparison(cases, trial_b, trial_a, column, split, checkpoint)  # diff = B - A
        for domain in ["all", *sorted(table["domain"].unique())]:
            part = table if domain == "all" else table[table["domain"] == domain]
            b, a = part["a"].to_numpy(dtype=float), part["b"].to_numpy(dtype=float)
            keep = np.isfinite(a) & np.isfinite(b)
            rows.append({"metric": column, "domain": domain, "n": int(keep.sum()),
                         "mean_a": float(a[keep].mean()) if keep.any() else math.nan,
                         "mean_b": float(b[keep].mean()) if keep.any() else math.nan,
                         "diff": float((b[keep] - a[keep]).mean()) if keep.any() else math.nan,
                         "p": wilcoxon_signed_rank(b[keep], a[keep]) if keep.any() else math.nan})
    return pd.DataFrame(rows, columns=["metric", "domain", "n", "mean_a", "mean_b", "diff", "p"])


# --- the figure ---

def case_scatter(table: pd.DataFrame, p_value: float, metric: str, label_a: str, label_b: str) -> Figure:
    """Each subject's ``metric`` under trial A (x) against under trial B (y), one colour per domain, with the
    diagonal (points above it: B scores higher) and the Wilcoxon signed-rank p-value over the subjects.

    ``table``: columns domain, subject, a, b (from ``analysis.per_case_comparison``)."""
    if table.empty:
        return figures.empty("the two trials share no scored case of this split (trials stopped early have no test "
                             "scores)")
    values = pd.concat([table["a"], table["b"]]).to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.05 * (high - low or 1.0)
    traces: list[dict[str, Any]] = [{"type": "scatter", "x": [low - pad, high + pad], "y": [low - pad, high + pad],
                                     "mode": "lines", "name": "A = B", "hoverinfo": "skip",
                                     "line": {"color": GREY, "dash": "dash"}}]
    for index, (domain, part) in enumerate(table.groupby("domain", sort=True)):
        traces.append({"type": "scatter", "x": part["a"].to_numpy(), "y": part["b"].to_numpy(), "mode": "markers",
                       "name": str(domain), "marker": {"size": 10, "color": DOMAIN_COLOURS[index % 8]},
                       "customdata": np.stack([part["domain"].astype(str), part["subject"].astype(str)], axis=-1),
                       "hovertemplate": "%{customdata[1]} (%{customdata[0]})<br>A %{x:.4f}<br>B %{y:.4f}"
                                        "<extra>click: images</extra>"})
    p_text = "n/a" if not math.isfinite(p_value) else f"{p_value:.3g}"
    one = "; the split has ONE subject, so no test across patients" if table["subject"].nunique() == 1 else ""
    stem, *parts = metric.split("/")
    unit = unit_of(stem, None)
    name = metric_name(stem) + (f" ({unit})" if unit else "") + (f" of {' '.join(parts)}" if parts else "")
    figure = titled(traces, f"{name} per case: B against A ({len(table)} cases{one}; Wilcoxon signed-rank p = "
                     f"{p_text}; above the diagonal B is higher)", len(table), height=380,
                     xaxis={"title": {"text": f"{name} under A ({label_a.split(' (')[0]})"},
                            "range": [low - pad, high + pad]},
                     yaxis={"title": {"text": f"{name} under B ({label_b.split(' (')[0]})"},
                            "range": [low - pad, high + pad],
                            "scaleanchor": "x"}, showlegend=True)
    figure["layout"]["meta"]["wilcoxon_p"] = None if not math.isfinite(p_value) else p_value
    return figure

# The section follows the comparison's picks (trials A and B), not the shared filters.
CALLBACKS = [
    Callback("case_metric_options", [("case-metric", "options"), ("case-metric", "value")], [("version", "data")],
             metric_options, states=[("case-metric", "value")]),
    Callback("case_evidence", [("case-scatter", "figure"), ("case-extremes", "children"),
                               ("case-breakdown", "children")],
             [("version", "data"), ("compare-a", "value"), ("compare-b", "value"), ("case-metric", "value"),
              ("case-split", "value"), ("case-checkpoint", "value")], evidence),
    Callback("pick_subject", [("case-subject", "data")],
             [("case-scatter", "clickData"), Input({"type": "case-pick", "index": ALL}, "n_clicks")], pick_subject,
             prevent_initial_call=True),
    Callback("case_images", [("case-images", "children")],
             [("version", "data"), ("case-subject", "data"), ("compare-a", "value"), ("compare-b", "value")],
             case_images),
]
