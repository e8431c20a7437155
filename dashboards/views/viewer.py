"""The slice viewer of the compared trials A and B: scroll through a validation case's slices, set the overlay's
opacity, and see where the two predictions differ (and which one is right there)."""

from __future__ import annotations

import json
from typing import Any

from dash import dcc, html

from dashboards import figures
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
    figure = figures.slice_viewer(load(a, saved_a), load(b, saved_b), 0.5 if position is None else float(position),
                                  0.6 if opacity is None else float(opacity), legend, names, case)
    return [{"label": c, "value": c} for c in cases], case, figure


CALLBACKS = [Callback("viewer", [("viewer-case", "options"), ("viewer-case", "value"), ("viewer", "figure")],
                      [("version", "data"), ("compare-a", "value"), ("compare-b", "value"), ("viewer-case", "value"),
                       ("viewer-slice", "value"), ("viewer-opacity", "value")], viewer)]
