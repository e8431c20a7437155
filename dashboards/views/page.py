"""The page's header: the experiment picker, the score every view ranks and plots by, live refresh, the figure
export; and the stores every view reads (the table version)."""

from __future__ import annotations

from html import escape as escape_html
from typing import Any

import dash
import plotly.io
from dash import dcc, html

from dashboards.analysis import short_name
from dashboards.tables import ExplorerError
from dashboards.views import Callback
from dashboards.views.labels import score_label

ORDER = 0
REFRESH_S = 10.0  # live refresh interval unless the app is started with another


def controls(explorer: Any) -> list[Any]:
    """Built per page load: the experiment picker lists the experiments that exist now."""
    refresh_s, live = getattr(explorer, "refresh_s", REFRESH_S), getattr(explorer, "live", True)
    return [html.Header([
        html.H1("Ablation explorer"),
        html.Div(dcc.Dropdown(id="experiment", value=explorer.initial, clearable=False,
                              options=[{"label": n, "value": n} for n in explorer.catalog.names()]),
                 style={"minWidth": "320px", "color": "#1f2933"}),
        html.Div(dcc.Dropdown(id="score", clearable=False, placeholder="score"),
                 style={"minWidth": "340px", "color": "#1f2933"}, title="the score every view ranks and plots by"),
        dcc.Checklist(id="live", options=[{"label": " live refresh every", "value": "on"}],
                      value=["on"] if live else []),
        dcc.Input(id="refresh-s", type="number", min=1, step=1, value=refresh_s, debounce=True,
                  style={"width": "60px", "color": "#1f2933"}),
        html.Span("s"),
        html.Button("Export figures (HTML)", id="export-html"), dcc.Download(id="download-html"),
        html.Span(id="message", style={"color": "#ffb3b3"}),
    ]), dcc.Interval(id="tick", interval=int(refresh_s * 1000), disabled=not live), dcc.Store(id="version")]


def version_key(experiment: Any) -> str:
    return f"{experiment.name}:{hash(experiment.version)}"


def refresh(explorer: Any, _ticks: int | None, name: str | None, current: dict[str, Any] | None
            ) -> tuple[Any, list[dict[str, str]], str]:
    """Re-read the experiment if any table changed; ``no_update`` otherwise, so nothing downstream redraws
    and the user's selection, brushes and filters stay as they are."""
    try:
        options = [{"label": n, "value": n} for n in explorer.catalog.names()]
        if not name:
            return None, options, "no experiment under this storage yet" if not options else ""
        experiment = explorer.catalog.load(explorer.catalog.check_name(name))
    except ExplorerError as exc:
        return None, dash.no_update, str(exc)
    version = {"experiment": experiment.name, "key": version_key(experiment)}
    notice = problems_notice(experiment)
    if current == version:
        return dash.no_update, options, notice
    return version, options, notice


def problems_notice(experiment: Any) -> str:
    """A visible line naming the table parts that were skipped, so a partial view never passes for whole."""
    if not experiment.problems:
        return ""
    shown = "; ".join(experiment.problems[:3]) + (f"; and {len(experiment.problems) - 3} more"
                                                   if len(experiment.problems) > 3 else "")
    return f"showing the readable rows only; skipped {len(experiment.problems)} unreadable part(s): {shown}"


def score_columns(experiment: Any) -> list[str]:
    """The scores offered, the default first: the test score of the checkpoint selected on val for each objective
    (``test/best/<m>``), then its val score, then every other trial-level score."""
    first = []
    for objective in experiment.objectives:
        stem = objective.metric.split("/", 1)[1] if objective.metric.startswith("val/") else objective.metric
        first += [c for c in (f"test/best/{stem}", f"best/val/{stem}") if c in experiment.trials]
    tests = sorted(c for c in experiment.trials.columns if c.startswith(("test/best/", "test/last/"))
                   and c not in first and c != "test/selected_epoch")
    return list(dict.fromkeys([*first, *tests, *experiment.score_columns()]))


def score_choices(explorer: Any, version: dict[str, Any] | None, current: str | None
                  ) -> tuple[list[dict[str, str]], str | None]:
    """The score picker's options (labelled in words) and value (the current one while it exists)."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], None
    scores = score_columns(experiment)
    options = [{"label": f"{score_label(c, experiment.metrics_meta)} [{c}]", "value": c} for c in scores]
    return options, current if current in scores else (scores[0] if scores else None)


def export_figures(explorer: Any, clicks: int | None, version: dict[str, Any] | None, *shown: Any
                   ) -> dict[str, Any] | None:
    """Every figure as the page shows it now, in one self-contained HTML file (plotly.js inlined once)."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return None
    parts = [plotly.io.to_html(figure, include_plotlyjs=index == 0, full_html=False)
             for index, figure in enumerate(f for f in shown if f)]
    name = escape_html(experiment.name)  # a directory name: text, never markup
    page = (f"<html><head><meta charset='utf-8'><title>{name}</title></head><body>"
            f"<h1>{name}</h1>{''.join(parts)}</body></html>")
    return dcc.send_string(page, f"{experiment.name}-figures.html")


def options(columns: list[str]) -> list[dict[str, str]]:
    """Dropdown options of trial columns, labelled by their short names."""
    return [{"label": short_name(c), "value": c} for c in columns]


CALLBACKS = [
    Callback("refresh", [("version", "data"), ("experiment", "options"), ("message", "children")],
             [("tick", "n_intervals"), ("experiment", "value")], refresh, states=[("version", "data")]),
    Callback("live_refresh", [("tick", "disabled"), ("tick", "interval")], [("live", "value"), ("refresh-s", "value")],
             lambda explorer, live, seconds: (not live, int(max(1.0, float(seconds or REFRESH_S)) * 1000))),
    Callback("score_choices", [("score", "options"), ("score", "value")], [("version", "data")], score_choices,
             states=[("score", "value")]),
    # Every graph of the page, whichever module draws it: the states are the page's graph ids.
    Callback("export_figures", [("download-html", "data")], [("export-html", "n_clicks")], export_figures,
             states=lambda graphs: [("version", "data"), *[(g, "figure") for g in graphs]],
             prevent_initial_call=True),
]
