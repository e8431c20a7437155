"""A view defined outside ``dashboards.views`` (the extension point's test): a section with one graph that follows
the shared filters, and a callback of its own. Nothing in the package names this module."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboards import figures
from dashboards.views import Callback, Context, View

ORDER = 200  # last on the page


def controls() -> html.Div:
    return html.Div([dcc.Input(id="outside-note", value="", type="text"), html.Span(id="outside-echo"),
                     dcc.Graph(id="outside-graph")], className="section")


def trial_count(context: Context, note: str | None) -> Any:
    """How many trials pass the shared filters (the figure's data), drawn as one bar."""
    return {"data": [{"type": "bar", "x": ["trials"], "y": [len(context.trials)], "name": note or "trials"}],
            "layout": {"title": {"text": f"{len(context.trials)} trials"}}}


def echo(explorer: Any, note: str | None) -> str:
    return f"outside: {note or ''}"


VIEWS = [View("outside_count", [("outside-graph", "figure")], [("outside-note", "value")], trial_count,
              lambda: figures.empty("no experiment selected"))]
CALLBACKS = [Callback("outside_echo", [("outside-echo", "children")], [("outside-note", "value")], echo)]
