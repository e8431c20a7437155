"""The trial grid and the export of the filtered trials.

The grid uses AG Grid's infinite row model: the browser asks for the block of rows it is about to show
(``getRowsRequest``: start, end, the grid's sort and filter models) and the server answers that block alone
(``getRowsResponse``), so 100,000 trials cost one block of JSON, not the table. Sorting and the grid's column
filters run on the server (``dashboards.analysis.grid_filter_mask``, the same filter the other views apply); with
no column sorted, rows come best first on the chosen score. A change of the experiment's version, the status
boxes, the brushes or the score asks the grid to fetch its visible blocks again (a client-side callback in
``dashboards.app``), and ``getRowId`` keeps the selection across that refresh.
"""

from __future__ import annotations

import io
from typing import Any

import dash
import dash_ag_grid as dag
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dash import dcc, html

from dashboards.analysis import STOPPED_EARLY, short_name
from dashboards.views import common
from dashboards.views.common import dropdown, records

STATUSES = ["TERMINATED", STOPPED_EARLY, "RUNNING", "ERROR", "PENDING"]
STATUS_LABELS = {"TERMINATED": "completed", STOPPED_EARLY: "stopped early (by the scheduler)", "RUNNING": "running",
                 "ERROR": "errored", "PENDING": "pending"}
SHOWN_STATUSES = [s for s in STATUSES if s != STOPPED_EARLY]  # the default: trials stopped early left out
PAGE_ROWS = 50  # rows per grid page and per block the browser requests


def controls() -> html.Div:
    return html.Div([
        html.Div([
            html.Div([html.Div("status", className="label"),
                      dcc.Checklist(id="status", options=[{"label": f" {STATUS_LABELS[s]}", "value": s}
                                                           for s in STATUSES],
                                    value=SHOWN_STATUSES, inline=True, inputStyle={"marginLeft": "8px"})]),
            dropdown("score", "score (rank by)", clearable=False),
            html.Button("Export CSV", id="export-csv"), html.Button("Export Parquet", id="export-parquet"),
            html.Button("Export figures (HTML)", id="export-html"),
            html.Button("Clear axis filters", id="clear-brushes"),
            dcc.Download(id="download"), dcc.Download(id="download-html"),
        ], className="row"),
        dropdown("grid-columns", "columns shown (type to add any column of the trials table)", multi=True,
                 control_style={"margin": "6px 0"}),
        dag.AgGrid(id="grid", rowModelType="infinite", columnDefs=[], getRowId="params.data.trial_id",
                   defaultColDef={"floatingFilter": True, "minWidth": 90},
                   dashGridOptions={"rowSelection": {"mode": "multiRow", "headerCheckbox": False},
                                    "suppressFieldDotNotation": True, "pagination": True,
                                    "paginationPageSize": PAGE_ROWS, "cacheBlockSize": PAGE_ROWS,
                                    "maxBlocksInCache": 20,
                                    "tooltipShowDelay": 300, "animateRows": False},
                   style={"height": "430px"}),
        dcc.Store(id="grid-refresh"),
    ], className="section")


def columns(explorer: Any, version: dict[str, Any] | None, score: str | None, chosen: list[str] | None = None,
            current: list[dict[str, Any]] | None = None) -> tuple[Any, Any, Any]:
    """The grid's column definitions, the column chooser's options (every column of the trials table) and its
    value: the columns ``chosen`` that exist, else the default (identity, parameters, the chosen score and
    objectives, headline metrics, timing) without the columns no trial fills (fold without cross-validation).
    ``current``: the grid's column definitions now; when they already show these columns they are not sent again
    (new definitions would make the grid drop the user's sort and column widths)."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], [], chosen or []
    fired = common.triggered()
    if fired == "version" and chosen and not set(chosen) <= set(experiment.trials.columns):
        chosen = None  # another experiment (its own parameters): its default columns
    elif fired == "score" and chosen and score and score not in chosen:
        chosen = [*chosen, score]  # the score the grid ranks by is always shown
    shown = shown_columns(experiment, score, chosen)
    offered = list(dict.fromkeys([*shown, *(c for c in experiment.trials.columns if c not in _INTERNAL)]))
    options = [{"label": short_name(c) if c.startswith("config/") else c, "value": c} for c in offered]
    unchanged = current is not None and [c.get("field") for c in current] == shown
    definitions = dash.no_update if unchanged else [column_definition(c, experiment, pinned=c == "trial_id")
                                                    for c in shown]
    return definitions, options, dash.no_update if shown == chosen else shown


_INTERNAL = {"config_key", "_seq"}  # derived by the explorer or the store: never a column of the grid


def shown_columns(experiment: Any, score: str | None, chosen: list[str] | None) -> list[str]:
    """The grid's columns: ``chosen`` (those that exist, the trial id always first), else the default set."""
    trials = experiment.trials
    if chosen:
        return list(dict.fromkeys(["trial_id", *(c for c in chosen if c in trials and c not in _INTERNAL)]))
    # A column no trial fills (fold without cross-validation, error when none failed) is left out.
    return [c for c in grid_columns(experiment, score) if c in trials and (c == "trial_id" or trials[c].notna().any())]


def rows(explorer: Any, request: dict[str, Any] | None, version: dict[str, Any] | None,
         statuses: list[str] | None, brushes: dict[str, Any] | None, score: str | None,
         chosen: str | None = None, shown: list[str] | None = None) -> dict[str, Any]:
    """One block of grid rows for ``request`` (``startRow``, ``endRow``, ``sortModel``, ``filterModel``):
    status, brushes and the grid's filters applied, sorted as asked (else best first on ``score``), and the
    row count after filtering, so the grid knows where the table ends. ``chosen`` (the experiment picker) stands
    in for ``version`` before the first refresh has set it: the grid asks for its first block at once, and an
    empty first answer would leave it empty. ``shown``: the column chooser's columns (None: the default)."""
    request = request or {}
    if not version and chosen:
        version = {"experiment": chosen}
    experiment, trials = explorer.filtered(version, statuses, brushes, request.get("filterModel"))
    if experiment is None:
        return {"rowData": [], "rowCount": 0}
    order = sort_order(trials, request.get("sortModel") or [], score, experiment)
    start = max(0, int(request.get("startRow") or 0))
    end = max(start, int(request.get("endRow") or start + PAGE_ROWS))
    present = [c for c in (shown_columns(experiment, score, shown) if shown else grid_columns(experiment, score))
               if c in trials]
    return {"rowData": records(trials.iloc[order[start:end]], present), "rowCount": len(trials)}


def sort_order(trials: pd.DataFrame, sort_model: list[dict[str, Any]], score: str | None,
               experiment: Any) -> np.ndarray:
    """Row positions in the grid's sort order (several columns, each asc or desc, missing values last); with
    no column sorted, best first on ``score``. Only the sorted columns are reordered, never the whole frame."""
    keys = [(entry.get("colId"), entry.get("sort") == "asc") for entry in sort_model
            if entry.get("colId") in trials and entry.get("sort") in ("asc", "desc")]
    if not keys:
        return common.rank_order(trials, score, experiment)
    columns = [column for column, _ in keys]
    frame = trials[columns].reset_index(drop=True)
    ordered = frame.sort_values(columns, ascending=[ascending for _, ascending in keys], na_position="last",
                                kind="stable")
    return ordered.index.to_numpy()


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


METHODS = {"columns": columns, "rows": rows, "export": export}
