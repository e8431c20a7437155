"""The page state in the URL, so a view can be shared: the experiment, the status boxes, the grid's column filters
and the parallel-coordinate brushes, the selected trials, the score, the curve's parameter and the factors.

The query is written whenever one of them changes (without a reload) and read once, when the page loads. Two
``dcc.Location`` components, one read and one written, so the callback graph has no cycle; after the first read
the reader answers ``no_update``, so writing the URL never sets the controls again.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode

import dash
from dash import dcc, html

from dashboards.views import Callback
from dashboards.views.grid import SHOWN_STATUSES

# Query key -> (component, property); lists and mappings are JSON, scalars plain text.
STATE = {"experiment": ("experiment", "value"), "status": ("status", "value"), "score": ("score", "value"),
         "param": ("param", "value"), "factors": ("factors", "value"), "brushes": ("brushes", "data"),
         "filters": ("grid", "filterModel"), "selected": ("grid", "selectedRows")}
_JSON = {"status", "factors", "brushes", "filters", "selected"}


ORDER = 1


def controls() -> html.Div:
    return html.Div([dcc.Location(id="url", refresh=False), dcc.Location(id="url-write", refresh=False),
                     dcc.Store(id="url-applied", data=False)])


def encode(values: dict[str, Any]) -> str:
    """The query string of the state ``values`` (query key -> value); defaults and empty values are left out."""
    query = {}
    for key, value in values.items():
        if value in (None, "", [], {}) or (key == "status" and sorted(value) == sorted(SHOWN_STATUSES)):
            continue
        if key == "selected":
            value = [row["trial_id"] for row in value if isinstance(row, dict) and row.get("trial_id")]
            if not value:
                continue
        query[key] = json.dumps(value, separators=(",", ":")) if key in _JSON else str(value)
    return f"?{urlencode(query)}" if query else ""


def decode(search: str | None) -> dict[str, Any]:
    """The state a query string holds (query key -> value); keys that are unknown or do not parse are skipped,
    so a hand-edited link opens the page with what it can read."""
    values: dict[str, Any] = {}
    for key, texts in parse_qs((search or "").lstrip("?")).items():
        if key not in STATE or not texts:
            continue
        text = texts[-1]
        if key not in _JSON:
            values[key] = text
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            continue
        if key == "selected":
            value = [{"trial_id": str(t)} for t in value if isinstance(t, (str, int))] if isinstance(value, list) \
                else None
        elif key in ("status", "factors"):
            value = [str(v) for v in value] if isinstance(value, list) else None
        elif not isinstance(value, dict):
            value = None
        if value is not None:
            values[key] = value
    return values


def read(explorer: Any, search: str | None, applied: bool | None) -> tuple[Any, ...]:
    """Once, at page load: the controls' values from the URL (``no_update`` for what it does not hold); an
    experiment that is not under this storage is ignored (the newest is shown, as without a link)."""
    if applied:
        return (dash.no_update,) * (len(STATE) + 1)
    values = decode(search)
    if values.get("experiment") not in explorer.catalog.names():
        values.pop("experiment", None)
    return (*(values.get(key, dash.no_update) for key in STATE), True)


def write(explorer: Any, *values: Any) -> str:
    return encode(dict(zip(STATE, values, strict=True)))


# Every control the URL sets belongs to another view (which answers it too): declared as duplicate outputs.
CALLBACKS = [
    Callback("url_read", [*(dash.Output(c, p, allow_duplicate=True) for c, p in STATE.values()),
                      dash.Output("url-applied", "data")],
             [("url", "search")], read, states=[("url-applied", "data")], prevent_initial_call="initial_duplicate"),
    Callback("url_write", [("url-write", "search")], list(STATE.values()), write, prevent_initial_call=True),
]
