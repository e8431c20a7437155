"""One trial's resource use per epoch (the trial chosen in the log view): every ``resources/*`` column of the
epochs table, one panel per unit (read from the column's suffix: ``_percent`` %, ``_mb`` MB, ...), one line per
quantity and worker, e.g. ``resources/cpu_percent``, ``resources/gpu_mem_peak_mb``, ``resources/worker1/cpu_percent``
(the engine names rank 0's columns without a worker)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import dcc, html

from dashboards import figures
from dashboards.views import Callback
from dashboards.views.common import GRAPH

ORDER = 86
PREFIX = "resources/"
# A column's unit from the suffix of its quantity (the part after the prefix, before any "/worker" qualifier).
# The engine's ``_mb`` columns count mebibytes (2**20 bytes, as the kernel and torch report memory).
UNITS = (("_percent", "%"), ("_pct", "%"), ("_mb", "MiB"), ("_mib", "MiB"), ("_gb", "GiB"), ("_gib", "GiB"),
         ("_bytes", "bytes"), ("_s", "s"))
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def controls() -> html.Div:
    return html.Div([html.H3("One trial: CPU, GPU and memory per epoch", style={"margin": "4px 0"}),
                     dcc.Graph(id="trial-resources", **GRAPH)], className="section half")


def describe(column: str) -> tuple[str, str]:
    """A resource column's line name and unit: the quantity is the part with a unit suffix (else the last part),
    any other part names the worker: ``resources/worker1/rss_peak_mb`` -> ("rss peak (worker1)", "MiB"); a
    quantity with a suffix not listed in ``UNITS`` has no unit."""
    parts = column.removeprefix(PREFIX).split("/")
    position = next((i for i in reversed(range(len(parts))) if _unit(parts[i])[1]), len(parts) - 1)
    stem, unit = _unit(parts[position])
    qualifiers = parts[:position] + parts[position + 1:]
    return stem.replace("_", " ") + (f" ({'/'.join(qualifiers)})" if qualifiers else ""), unit


def _unit(quantity: str) -> tuple[str, str]:
    """(the quantity without its unit suffix, the unit), or (quantity, "") when no suffix is listed."""
    for suffix, unit in UNITS:
        if quantity.endswith(suffix) and len(quantity) > len(suffix):
            return quantity[: -len(suffix)], unit
    return quantity, ""


def resource_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(PREFIX)]


def resources_figure(epochs: pd.DataFrame, columns: list[str], title: str) -> figures.Figure:
    """``columns`` of one trial's ``epochs`` (columns epoch and the resources) against the epoch: one panel per
    unit, stacked, sharing the epoch axis; a column with no value is left out."""
    drawn = [c for c in columns if c in epochs and pd.to_numeric(epochs[c], errors="coerce").notna().any()]
    if epochs.empty or not drawn:
        return figures.empty("no CPU, GPU or memory use recorded for this trial")
    units = list(dict.fromkeys(describe(c)[1] for c in drawn))
    # Rank 0's columns carry no worker name; beside other workers' they are worker0's.
    several = any(describe(c)[0].endswith(")") for c in drawn)
    gap, height = 0.08, 1.0 / len(units)
    layout: dict[str, Any] = {}
    traces = []
    for index, unit in enumerate(units):
        axis = "yaxis" if index == 0 else f"yaxis{index + 1}"
        low = index * height + (gap / 2 if index else 0)
        layout[axis] = {"domain": [low, (index + 1) * height - (gap / 2 if index < len(units) - 1 else 0)],
                        "title": {"text": unit or "value"}, "anchor": "x", "rangemode": "tozero"}
        anchor = "y" if index == 0 else f"y{index + 1}"
        for column in (c for c in drawn if describe(c)[1] == unit):
            name = describe(column)[0]
            name = f"{name} (worker0)" if several and not name.endswith(")") else name
            traces.append({"type": "scatter", "mode": "lines+markers", "x": epochs["epoch"].to_numpy(),
                           "y": pd.to_numeric(epochs[column], errors="coerce").to_numpy(dtype=float),
                           "name": f"{name} ({unit})" if unit else name, "yaxis": anchor,
                           "line": {"color": COLOURS[len(traces) % len(COLOURS)]},
                           "hovertemplate": f"epoch %{{x}}<br>{name} %{{y:.4g}} {unit}<extra></extra>"})
    # The shared title and legend placement (below the mode bar; the legend under the epoch title, its rows
    # counted into the bottom margin); epochs are whole numbers.
    epochs_drawn = int(pd.to_numeric(epochs["epoch"], errors="coerce").max())
    return figures.titled(traces, title, 1, height=max(300, 180 * len(units) + 80),
                          xaxis={"title": {"text": "epoch"}, "anchor": "y", **figures.integer_ticks(epochs_drawn)},
                          showlegend=True, legend={"orientation": "h"}, **layout)


def resources_view(explorer: Any, version: dict[str, Any] | None, trial_id: str | None) -> figures.Figure:
    """The chosen trial's ``resources/*`` epoch columns, or a figure that says why there are none."""
    experiment = explorer.experiment(version)
    if experiment is None or not trial_id:
        return figures.empty("choose a trial")
    columns = resource_columns(experiment.epoch_metrics)
    if not columns:
        return figures.empty("no CPU, GPU or memory use recorded in this experiment")
    key = (experiment.name, experiment.version, "resources", trial_id, tuple(columns))
    epochs = explorer.memo("epochs", key, lambda: explorer.catalog.epochs(experiment.name, [trial_id], columns))
    return resources_figure(epochs, columns, f"Trial {trial_id}: resource use per epoch")


CALLBACKS = [Callback("trial_resources", [("trial-resources", "figure")],
                      [("version", "data"), ("inspect-trial", "value")], resources_view)]
