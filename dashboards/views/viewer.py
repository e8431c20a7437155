"""The slice viewer of the compared trials A and B: scroll through a validation case's slices, set the overlay's
opacity, and see where the two predictions differ (and which one is right there)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
from dash import dcc, html
from PIL import Image

from dashboards import figures
from dashboards.figures import Figure, titled, wrap
from dashboards.tables import ExplorerError
from dashboards.views import Callback
from dashboards.views.common import GRAPH, dropdown, missing, trial_labels

ORDER = 90


def controls() -> html.Div:
    return html.Div([
        html.H3("Slice viewer (trials A and B of the comparison)", style={"margin": "4px 0"}),
        html.Div([dropdown("viewer-case", "validation case", clearable=False, style={"minWidth": "260px"}),
                  html.Div([html.Div("slice (axial)", className="label"),
                            dcc.Slider(id="viewer-slice", min=0, max=1, step=0.01, value=0.5,
                                       marks={0: "first", 0.5: "middle", 1: "last"})],
                           style={"flex": "1 1 260px"}),
                  html.Div([html.Div("overlay opacity", className="label"),
                            dcc.Slider(id="viewer-opacity", min=0, max=1, step=0.05, value=0.6,
                                       marks={0: "0", 0.5: "0.5", 1: "1"})],
                           style={"flex": "1 1 200px"})], className="row"),
        dcc.Graph(id="viewer", **GRAPH),
    ], className="section")


def volumes_of(experiment: Any, trial_id: str | None) -> dict[str, Any]:
    """A trial's saved volumes by case (``domain subject``): the artifacts rows of kind ``volume``."""
    rows = experiment.artifacts
    if not trial_id or not len(rows) or "kind" not in rows:
        return {}
    rows = rows[(rows["trial_id"] == trial_id) & (rows["kind"] == "volume")]
    return {f"{row['domain']} {row['subject']}": row for _, row in rows.iterrows()}


def viewer(explorer: Any, version: dict[str, Any] | None, a: str | None, b: str | None, case: str | None,
           position: float | None, opacity: float | None) -> tuple[list[dict[str, str]], str | None, Any]:
    """The case picker's options and value (the cases A saved, else B's) and the figure."""
    experiment = explorer.experiment(version)
    if experiment is None or not (a or b):
        return [], None, figures.empty("choose two trials in the comparison")
    saved_a, saved_b = volumes_of(experiment, a), volumes_of(experiment, b)
    cases = list(dict.fromkeys([*saved_a, *saved_b]))
    if not cases:
        return [], None, figures.empty("neither trial saved volumes (they are saved with the val pictures of each "
                                       "new best epoch; results written before then have none)")
    case = case if case in cases else cases[0]

    def load(trial_id: str | None, saved: dict[str, Any]) -> dict[str, Any] | None:
        row = saved.get(case)
        if row is None:
            return None
        key = (experiment.name, experiment.version, trial_id, row["file"])
        try:
            return explorer.memo("volumes", key, lambda: explorer.catalog.volume(experiment.name, trial_id,
                                                                                 row["file"]), size=8)
        except ExplorerError:
            return None

    row = saved_a.get(case, saved_b.get(case))
    legend = json.loads(row["legend"]) if not missing(row.get("legend")) else []
    labels = trial_labels(experiment, [t for t in (a, b) if t])
    names = (labels.get(a, a or "-").split(" (")[0], labels.get(b, b or "-").split(" (")[0])
    figure = slice_viewer(load(a, saved_a), load(b, saved_b), 0.5 if position is None else float(position),
                                  0.6 if opacity is None else float(opacity), legend, names, case)
    return [{"label": c, "value": c} for c in cases], case, figure


# --- the figure ---

_DIFFERENCE_COLOURS = {"only A right": (44, 160, 44), "only B right": (214, 39, 40), "both wrong": (255, 190, 0)}


def _png_source(rgb: np.ndarray) -> str:
    """An RGB array (H, W, 3) uint8 as a PNG data URI, for a plotly image trace (far smaller than its values)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _overlaid(gray: np.ndarray, labels: np.ndarray, colours: np.ndarray, opacity: float) -> np.ndarray:
    """The grey slice (H, W) with each foreground label (H, W) blended in its class colour (``colours``: (K, 3))."""
    base = np.repeat(gray[..., None].astype(float), 3, axis=2)
    colour = colours[np.clip(labels, 0, len(colours) - 1)]
    blended = np.where((labels > 0)[..., None], (1 - opacity) * base + opacity * colour, base)
    return blended.astype(np.uint8)


def slice_viewer(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray] | None, position: float, opacity: float,
                 legend: list[dict[str, str]], names: tuple[str, str], case: str) -> Figure:
    """One axial slice of a case: A's prediction, B's prediction and the truth over the input (each overlay at
    ``opacity``), and where A and B differ: green where only A is right, red where only B is, amber where both
    are wrong. ``a``/``b``: image, pred, label arrays (X, Y, Z) uint8 (None: that trial saved no volume of the
    case); ``position`` in [0, 1] picks the slice; ``legend``: each foreground class's name and colour."""
    shown = a if a is not None else b
    if shown is None:
        return figures.empty("neither trial saved volumes of this case (they are saved with the val pictures)")
    depth = shown["image"].shape[2]
    z = round(min(max(position, 0.0), 1.0) * (depth - 1))
    colours = np.array([[0, 0, 0]] + [[int(e["color"][i:i + 2], 16) for i in (1, 3, 5)] for e in legend]
                       + [[255, 255, 255]], dtype=float)
    gray, truth = shown["image"][:, :, z], shown["label"][:, :, z]
    panels = [(f"A: {names[0]}", None if a is None else _overlaid(gray, a["pred"][:, :, z], colours, opacity)),
              (f"B: {names[1]}", None if b is None else _overlaid(gray, b["pred"][:, :, z], colours, opacity)),
              ("ground truth", _overlaid(gray, truth, colours, opacity))]
    counts = {}
    if a is not None and b is not None:
        pred_a, pred_b = a["pred"][:, :, z], b["pred"][:, :, z]
        masks = {"only A right": (pred_a == truth) & (pred_b != truth),
                 "only B right": (pred_b == truth) & (pred_a != truth),
                 "both wrong": (pred_a != pred_b) & (pred_a != truth) & (pred_b != truth)}
        difference = np.repeat(gray[..., None].astype(float) * 0.5, 3, axis=2)
        for name, mask in masks.items():
            difference[mask] = _DIFFERENCE_COLOURS[name]
            counts[name] = int(mask.sum())
        panels.append(("A vs B: " + ", ".join(f"{name} {n} px" for name, n in counts.items()),
                       difference.astype(np.uint8)))
    traces, layout = [], {}
    width = 1 / len(panels)
    for index, (title, rgb) in enumerate(panels):
        axis = "" if index == 0 else str(index + 1)
        domain = [index * width + 0.01, (index + 1) * width - 0.01]
        layout[f"xaxis{axis}"] = {"domain": domain, "visible": False, "anchor": f"y{axis}"}
        layout[f"yaxis{axis}"] = {"visible": False, "anchor": f"x{axis}", "scaleanchor": f"x{axis}"}
        layout.setdefault("annotations", []).append(  # under each panel: the figure's title is above them
            {"text": wrap(title, 34), "x": sum(domain) / 2, "y": 0.0, "xref": "paper", "yref": "paper",
             "showarrow": False, "yanchor": "top", "font": {"size": 11}})
        if rgb is None:
            layout["annotations"].append({"text": "no volume saved", "x": sum(domain) / 2, "y": 0.5, "xref": "paper",
                                          "yref": "paper", "showarrow": False})
            continue
        # The slice transposed so x runs across and y down, as the pictures are drawn.
        traces.append({"type": "image", "source": _png_source(np.ascontiguousarray(rgb.transpose(1, 0, 2))),
                       "xaxis": f"x{axis}", "yaxis": f"y{axis}", "hoverinfo": "skip", "name": title})
    figure = titled(traces, f"{case}: axial slice {z + 1} of {depth} (overlay opacity {opacity:.2f})", 2,
                     height=320, **layout)
    figure["layout"]["margin"] = {"t": 60, "b": 50, "l": 10, "r": 10}
    figure["layout"]["meta"].update(slice=z, depth=depth, difference=counts)
    return figure

CALLBACKS = [Callback("viewer", [("viewer-case", "options"), ("viewer-case", "value"), ("viewer", "figure")],
                      [("version", "data"), ("compare-a", "value"), ("compare-b", "value"), ("viewer-case", "value"),
                       ("viewer-slice", "value"), ("viewer-opacity", "value")], viewer)]
