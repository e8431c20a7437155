"""Plotly figures of the explorer, each a pure function of already-filtered tables.

Figures are plain plotly dicts (``{"data": [...], "layout": {...}}``), which ``dcc.Graph`` draws as they are:
building ``plotly.graph_objects`` would validate every property and copy every array, seconds at 10,000 trials.
Every figure carries a ``uirevision`` so a live refresh keeps the user's zoom and legend choices; plotly's mode
bar exports it as PNG, and ``plotly.io.write_html(figure, ...)`` as HTML.
"""

from __future__ import annotations

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


def titled(traces: list[dict[str, Any]], title: str, trials: int, **layout: Any) -> Figure:
    # meta.trials: how many trials the figure shows (the browser test reads it from the rendered figure).
    # The title sits just above the plot area, left-aligned, below the row of the mode bar (top right of the
    # figure), so the toolbar never covers it; long titles wrap at the figure's width in the browser's font.
    return {"data": traces, "layout": {"title": {"text": wrap(title), "font": {"size": 13}, "x": 0,
                                                 "xanchor": "left", "xref": "paper", "y": 1, "yref": "paper",
                                                 "yanchor": "bottom", "pad": {"b": 8}},
                                       "uirevision": "keep", "meta": {"trials": trials},
                                       "margin": {"t": 78, "b": 40, "l": 60, "r": 20}, "plot_bgcolor": "white",
                                       **layout}}


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


