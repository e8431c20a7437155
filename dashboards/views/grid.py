"""The trial grid (AG Grid: sort, filter, select rows) and the export of the filtered trials."""

from __future__ import annotations

import io
from typing import Any

import dash_ag_grid as dag
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dash import dcc, html

from dashboards.analysis import short_name
from dashboards.views import common
from dashboards.views.common import dropdown, records

STATUSES = ["TERMINATED", "RUNNING", "ERROR", "PENDING"]


def controls() -> html.Div:
    return html.Div([
        html.Div([
            html.Div([html.Div("status", className="label"),
                      dcc.Checklist(id="status", options=STATUSES, value=STATUSES, inline=True)]),
            dropdown("score", "score (rank by)", clearable=False),
            html.Button("Export CSV", id="export-csv"), html.Button("Export Parquet", id="export-parquet"),
            html.Button("Export figures (HTML)", id="export-html"),
            html.Button("Clear axis filters", id="clear-brushes"),
            dcc.Download(id="download"), dcc.Download(id="download-html"),
        ], className="row"),
        dag.AgGrid(id="grid", rowData=[], columnDefs=[], getRowId="params.data.trial_id",
                   defaultColDef={"floatingFilter": True, "minWidth": 90},
                   dashGridOptions={"rowSelection": {"mode": "multiRow"}, "suppressFieldDotNotation": True,
                                    "pagination": True, "paginationPageSize": 50, "tooltipShowDelay": 300,
                                    "animateRows": False},
                   style={"height": "430px"}),
    ], className="section")


def table(explorer: Any, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
          score: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Grid rows (status and brushes applied here; the grid's own filters apply in the browser) and columns."""
    experiment, trials = explorer.filtered(version, statuses, brushes, None)
    if experiment is None:
        return [], []
    present = [c for c in grid_columns(experiment, score) if c in trials]
    return records(trials, present), [column_definition(c, experiment, pinned=c == "trial_id") for c in present]


def export(explorer: Any, csv_clicks: int | None, parquet_clicks: int | None, version: dict[str, Any] | None,
           statuses: list[str] | None, brushes: dict[str, Any] | None, grid_model: dict[str, Any] | None
           ) -> dict[str, Any] | None:
    """The filtered trials table (every column) as CSV or Parquet, for the browser to download."""
    experiment, trials = explorer.filtered(version, statuses, brushes, grid_model)
    if experiment is None:
        return None
    data = trials.drop(columns=["config_key"], errors="ignore")
    if common.triggered() == "export-parquet":
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(data, preserve_index=False), buffer)
        return dcc.send_bytes(buffer.getvalue(), f"{experiment.name}-trials.parquet")
    return dcc.send_data_frame(data.to_csv, f"{experiment.name}-trials.csv", index=False)


def grid_columns(experiment: Any, score: str | None) -> list[str]:
    """Identity, parameters, the chosen score and the objectives, the headline validation metrics, timing."""
    headline = [c for c in experiment.trials.columns if c.startswith("last/val/") and c.count("/") == 2]
    objectives = [c for c in experiment.score_columns() if c.startswith("best/")]
    ordered = ["trial_id", "status", *experiment.params, "seed", "fold", *([score] if score else []), *objectives,
               *headline, "epochs", "wall_s", "overhead_s", "error"]
    return list(dict.fromkeys(ordered))


def column_definition(column: str, experiment: Any, pinned: bool) -> dict[str, Any]:
    values = experiment.trials[column] if column in experiment.trials else pd.Series(dtype=object)
    numeric = pd.api.types.is_numeric_dtype(values) and column not in experiment.categorical
    definition: dict[str, Any] = {"field": column, "headerName": short_name(column), "headerTooltip": column,
                                  "filter": "agNumberColumnFilter" if numeric else "agTextColumnFilter",
                                  "sortable": True, "resizable": True}
    if numeric and pd.api.types.is_float_dtype(values):
        definition["valueFormatter"] = {"function": "params.value == null ? '' : d3.format('.4~g')(params.value)"}
    if pinned:
        definition.update(pinned="left", width=130)
    if column == "error":
        definition["tooltipField"] = "error"
    return definition


METHODS = {"table": table, "export": export}
