"""Plotly figures of the explorer, each a pure function of already-filtered tables.

Figures are plain plotly dicts (``{"data": [...], "layout": {...}}``), which ``dcc.Graph`` draws as they are:
building ``plotly.graph_objects`` would validate every property and copy every array, seconds at 10,000 trials.
Every figure carries a ``uirevision`` so a live refresh keeps the user's zoom and legend choices; plotly's mode
bar exports it as PNG, and ``plotly.io.write_html(figure, ...)`` as HTML.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# At import, never inside a callback: the server answers callbacks on several threads, and a thread importing
# PIL while plotly's JSON encoder (in another) looks up ``PIL.Image.Image`` sees a half-initialised module.

BLUE, GREY, RED, ORANGE = "#1f77b4", "#9aa5b1", "#d62728", "#ff7f0e"
VERDICT_COLOURS = {"supported": "#2ca02c", "contradicted": "#d62728", "inconclusive": "#9aa5b1"}
Figure = dict[str, Any]
SCATTER_POINTS = 5000  # dots of a scatter; more: a seeded uniform sample (a Pareto front is always whole)


def sample_index(size: int, limit: int, seed: int = 0, keep: np.ndarray | None = None) -> np.ndarray | None:
    """Sorted row positions of a seeded uniform sample of ``limit`` of ``size`` rows (always including the
    positions in ``keep``), or None when every row fits."""
    if size <= limit:
        return None
    kept = np.unique(keep) if keep is not None else np.array([], dtype=int)
    others = np.setdiff1d(np.arange(size), kept, assume_unique=True)
    chosen = np.random.default_rng(seed).choice(others, size=max(0, min(others.size, limit - kept.size)),
                                                replace=False)
    return np.sort(np.concatenate([kept, chosen]).astype(int))


def empty(message: str) -> Figure:
    """A blank figure that says why it is blank (no trials yet, no categorical factor, ...)."""
    return {"data": [], "layout": {
        "annotations": [{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}],
        "xaxis": {"visible": False}, "yaxis": {"visible": False}, "height": 260, "margin": {"t": 30, "b": 30},
        "meta": {"trials": 0}}}


MODEBAR_PX = 34  # the row of plotly's mode bar at the top of every figure: titles start below it
TITLE_LINE_PX = 18  # one line of a 13 px title
LEGEND_BOTTOM_PX = 112  # bottom margin when a horizontal legend sits under the x-axis title


def titled(traces: list[dict[str, Any]], title: str, trials: int, **layout: Any) -> Figure:
    """A figure with its title in words and room for it: the title sits in the top margin, below the mode bar
    (which covers the figure's top right), its lines counted so the margin holds them all and none runs into the
    plot; a horizontal legend goes to the figure's bottom edge, under the x-axis title, never on it or the data.

    ``meta.trials``: how many trials the figure shows (the browser tests read it from the rendered figure)."""
    text = wrap(title)
    lines = text.count("<br>") + 1
    margin = {"t": MODEBAR_PX + TITLE_LINE_PX * lines + 12, "b": 48, "l": 64, "r": 20, **layout.pop("margin", {})}
    legend = layout.get("legend")
    if legend and legend.get("orientation") == "h":
        layout["legend"] = {"orientation": "h", "x": 0, "xanchor": "left", "yref": "container", "y": 0,
                            "yanchor": "bottom", **{k: v for k, v in legend.items() if k not in ("y", "x")}}
        # Rows the legend wraps into (about 80 characters each, one entry at least per row), so it never
        # climbs onto the x-axis title however many entries it has.
        names = [len(str(t.get("name", ""))) + 4 for t in traces if t.get("showlegend", True) is not False]
        rows = min(len(names), max(1, math.ceil(sum(names) / 80))) if names else 1
        margin["b"] = max(margin["b"], LEGEND_BOTTOM_PX + 20 * (rows - 1))
        layout.setdefault("height", 360)
        layout["height"] += 20 * (rows - 1)
    return {"data": traces, "layout": {"title": {"text": text, "font": {"size": 13}, "x": 0, "xanchor": "left",
                                                 "xref": "paper", "y": 1, "yref": "container", "yanchor": "top",
                                                 "pad": {"t": MODEBAR_PX}},
                                       "uirevision": "keep", "meta": {"trials": trials}, "margin": margin,
                                       "plot_bgcolor": "white", **layout}}


def integer_ticks(count: int) -> dict[str, Any]:
    """Axis settings for a count axis (trial numbers): ticks on whole numbers only, about eight of them."""
    step = 1
    for nice in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        step = nice
        if count / nice <= 8:
            break
    return {"tick0": 0, "dtick": step, "tickformat": "d"}


NO_BAR = "NaN"  # plotly.js reads +"NaN" as NaN and draws no error bar (null would draw a zero-width one)


def interval_errors(mean: Any, high: Any, n: Any) -> list[float | str]:
    """Half-widths of intervals for plotly error bars, ``NO_BAR`` (nothing drawn) where n < 2 or the interval
    is missing: an interval from one repeat is not shown as a zero-width one."""
    out: list[float | str] = []
    for m, hi, count in zip(mean, high, n, strict=True):
        finite = all(isinstance(v, (int, float, np.floating)) and math.isfinite(v) for v in (m, hi))
        out.append(float(hi - m) if finite and count == count and count >= 2 else NO_BAR)
    return out


def interval_note(n: Any) -> str:
    """What a figure says about its intervals: their kind, and why some are missing."""
    counts = [int(c) for c in n if c == c]
    few = sum(1 for c in counts if c < 2)
    return "95% t-interval over repeats" + (f"; none drawn for the {few} with n < 2 (one repeat has no spread)"
                                             if few else "")


def wrap(title: str, width: int = 70) -> str:
    """Break a long title into lines of about ``width`` characters (plotly titles do not wrap by themselves)."""
    words, lines, line = title.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def scatter_type(points: int) -> str:
    """WebGL only where SVG would be slow: WebGL contexts are few per page and absent in some browsers."""
    return "scattergl" if points > 2000 else "scatter"


def clip(text: str, width: int = 18) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


DOMAIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


