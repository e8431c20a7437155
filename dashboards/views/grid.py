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
import json
from typing import Any

import dash
import dash_ag_grid as dag
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dash import dcc, html

from dashboards.analysis import STOPPED_EARLY, grid_filter_mask, natural_key, short_name
from dashboards.views import Callback, common
from dashboards.views.common import dropdown, records
from platform.statistics import t_half_widths

STATUSES = ["TERMINATED", STOPPED_EARLY, "RUNNING", "ERROR", "PENDING"]
STATUS_LABELS = {"TERMINATED": "completed", STOPPED_EARLY: "stopped early (by the scheduler)", "RUNNING": "running",
                 "ERROR": "errored", "PENDING": "pending"}
SHOWN_STATUSES = [s for s in STATUSES if s != STOPPED_EARLY]  # the default: trials stopped early left out
PAGE_ROWS = 50  # rows per grid page and per block the browser requests
GROUP_TRIALS = "trials"  # a group row's count of trials (filtered), beside each score's own n
GROUP_ID = "_group"  # a group row's id (its key's value as text): group rows have no trial id


ORDER = 20


def controls() -> html.Div:
    return html.Div([
        html.Div([
            html.Div([html.Div("status", className="label"),
                      dcc.Checklist(id="status", options=[{"label": f" {STATUS_LABELS[s]}", "value": s}
                                                           for s in STATUSES],
                                    value=SHOWN_STATUSES, inline=True, inputStyle={"marginLeft": "8px"})]),
            html.Button("Export CSV", id="export-csv"), html.Button("Export Parquet", id="export-parquet"),
            html.Button("Clear axis filters", id="clear-brushes"),
            dcc.Download(id="download"),
        ], className="row"),
        dropdown("grid-columns", "columns shown (type to add any column of the trials table)", multi=True,
                 control_style={"margin": "6px 0"}),
        dropdown("grid-group", "group rows by (one row per value: each score's mean ± 95% CI and n)",
                 placeholder="one row per trial", control_style={"margin": "6px 0", "maxWidth": "520px"}),
        # A group row has no trial id: its id is the key's value, so selecting it picks no trial.
        dag.AgGrid(id="grid", rowModelType="infinite", columnDefs=[],
                   getRowId=f"params.data.trial_id ? params.data.trial_id : 'group:' + params.data.{GROUP_ID}",
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
            group: str | None = None, current: list[dict[str, Any]] | None = None) -> tuple[Any, Any, Any]:
    """The grid's column definitions, the column chooser's options (every column of the trials table) and its
    value: the columns ``chosen`` that exist, else the default (identity, parameters, the chosen score and
    objectives, headline metrics, timing) without the columns no trial fills (fold without cross-validation).
    ``current``: the grid's column definitions now; when they already show these columns they are not sent again
    (new definitions would make the grid drop the user's sort and column widths). ``group``: a config key the
    rows are grouped by (``group_definitions``: the key, the trials and each shown score's mean +- 95% CI)."""
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
    if group and group in experiment.params:
        wanted = group_definitions(experiment, group, group_scores(experiment, score, shown))
    else:
        wanted = [column_definition(c, experiment, pinned=c == "trial_id") for c in shown]
    unchanged = current is not None and [c.get("field") for c in current] == [c["field"] for c in wanted]
    definitions = dash.no_update if unchanged else wanted
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
         chosen: str | None = None, shown: list[str] | None = None, group: str | None = None) -> dict[str, Any]:
    """One block of grid rows for ``request`` (``startRow``, ``endRow``, ``sortModel``, ``filterModel``):
    status, brushes and the grid's filters applied, sorted as asked (else best first on ``score``), and the
    row count after filtering, so the grid knows where the table ends. ``chosen`` (the experiment picker) stands
    in for ``version`` before the first refresh has set it: the grid asks for its first block at once, and an
    empty first answer would leave it empty. ``shown``: the column chooser's columns (None: the default).
    ``group``: a config key; one row per value (``group_rows``) instead of one per trial."""
    request = request or {}
    if not version and chosen:
        version = {"experiment": chosen}
    if group:
        return group_rows(explorer, request, version, statuses, brushes, score, shown, group)
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



# --- rows grouped by a config key ---------------------------------------------------------------------------------


def group_options(explorer: Any, version: dict[str, Any] | None, current: str | None
                  ) -> tuple[list[dict[str, str]], str | None]:
    """The keys the grid can group its rows by (every config key of the experiment) and the current one, kept
    while the experiment has it."""
    experiment = explorer.experiment(version)
    if experiment is None:
        return [], None
    options = [{"label": short_name(p), "value": p} for p in experiment.params]
    return options, current if current in experiment.params else None


def group_fields(score: str) -> tuple[str, str, str]:
    """A score's fields in a group row: its mean, the half width of its 95% interval and its n. Never the trials
    column's own name, so a grid filter on a group's mean is not applied to the trials' scores."""
    return f"{score}|mean", f"{score}|ci", f"{score}|n"


def group_scores(experiment: Any, score: str | None, shown: list[str]) -> list[str]:
    """The numeric score columns a group row summarises: the rank score, then the shown metric columns."""
    trials = experiment.trials
    metrics = [c for c in shown if c.startswith(("best/", "last/", "test/")) and c in trials
               and pd.api.types.is_numeric_dtype(trials[c])]
    return list(dict.fromkeys([*([score] if score and score in trials else []), *metrics]))


def group_table(trials: pd.DataFrame, key: str, scores: list[str], order: list[str] | None = None,
                level: float = 0.95) -> pd.DataFrame:
    """One row per value of ``key`` among ``trials``: ``key``, ``GROUP_TRIALS`` (rows in the group), ``GROUP_ID``
    and, per score, the mean over the group's trials with a finite score, the half width of the Student-t
    interval of that mean (``platform.statistics.t_half_widths``: each trial one repeat; NaN at n < 2) and n
    (``group_fields``). Rows in ``order`` (the spec's levels) first, then the other values naturally sorted
    (numbers ascending); a missing value is its own group, last. Vectorised: 100,000 trials take milliseconds."""
    columns = [key, GROUP_TRIALS, GROUP_ID, *(f for s in scores for f in group_fields(s))]
    if trials.empty or key not in trials:
        return pd.DataFrame(columns=columns)
    values = pd.DataFrame({s: pd.to_numeric(trials[s], errors="coerce").replace([np.inf, -np.inf], np.nan)
                           for s in scores}, index=trials.index)
    grouped = values.assign(_key=trials[key]).groupby("_key", sort=False, dropna=False)
    table = pd.DataFrame({key: grouped.size().index, GROUP_TRIALS: grouped.size().to_numpy()})
    means, spreads, counts = grouped[scores].mean(), grouped[scores].std(ddof=1), grouped[scores].count()
    for s in scores:
        mean, half, n = group_fields(s)
        table[mean] = means[s].to_numpy()
        table[n] = counts[s].to_numpy()
        table[half] = t_half_widths(spreads[s].to_numpy(dtype=float), counts[s].to_numpy(), level)
    table[GROUP_ID] = table[key].astype(str).where(table[key].notna(), "(absent)")
    return table.iloc[_group_order(table[key], order)].reset_index(drop=True)[columns]


def _group_order(values: pd.Series, order: list[str] | None) -> np.ndarray:
    """Positions of the groups: the spec's levels in its order, then numbers ascending or labels naturally
    sorted, a missing value last."""
    rank = {label: index for index, label in enumerate(order or [])}
    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric and not rank:  # a sampled real axis (one group per value): sorted in numpy, missing last
        return np.argsort(values.to_numpy(dtype=float), kind="stable")

    def sort_key(position: int) -> tuple[Any, ...]:
        value = values.iloc[position]
        if value is None or value != value:
            return (2, 0, [])
        if str(value) in rank:
            return (0, rank[str(value)], [])
        return (1, 0, [(0, float(value), "")] if numeric else natural_key(str(value)))

    return np.array(sorted(range(len(values)), key=sort_key), dtype=int)


def group_definitions(experiment: Any, key: str, scores: list[str]) -> list[dict[str, Any]]:
    """The grid's columns when grouped: the key, the trials in each group, each score's mean +- 95% CI (n)."""
    definitions = [{**column_definition(key, experiment, pinned=True), "width": 180},
                   {"field": GROUP_TRIALS, "headerName": "trials", "filter": "agNumberColumnFilter",
                    "sortable": True, "resizable": True,
                    "headerTooltip": "trials in the group (after the filters)"}]
    for s in scores:
        _, half, n = (json.dumps(f) for f in group_fields(s))
        text = ("params.value == null ? 'no score' : d3.format('.4~g')(params.value) + "
                f"(params.data[{half}] == null ? ' (n=' + params.data[{n}] + ': no interval at n < 2)' : "
                f"' ± ' + d3.format('.2~g')(params.data[{half}]) + ' (n=' + params.data[{n}] + ')')")
        definitions.append({"field": group_fields(s)[0], "headerName": f"{short_name(s)} mean ± 95% CI",
                            "headerTooltip": f"{s}: the mean over the group's trials with a score, ± the half width "
                                             "of its 95% Student-t interval (each trial one repeat) and n; no "
                                             "interval below n = 2", "filter": "agNumberColumnFilter",
                            "sortable": True, "resizable": True, "minWidth": 200,
                            "valueFormatter": {"function": text}})
    return definitions


def group_rows(explorer: Any, request: dict[str, Any], version: dict[str, Any] | None, statuses: list[str] | None,
               brushes: dict[str, Any] | None, score: str | None, shown: list[str] | None, key: str
               ) -> dict[str, Any]:
    """One block of group rows: the trials filtered (status, brushes, the grid's filters on trial columns), one
    row per value of ``key`` (``group_table``), then the grid's filters and sort on the group columns."""
    model = request.get("filterModel")
    experiment, trials = explorer.filtered(version, statuses, brushes, model)
    if experiment is None or key not in experiment.trials:
        return {"rowData": [], "rowCount": 0}
    scores = group_scores(experiment, score, shown_columns(experiment, score, shown))
    memo_key = (experiment.name, experiment.version, json.dumps([statuses, brushes, model], sort_keys=True,
                                                                default=str), key, tuple(scores))
    table = explorer.memo("groups", memo_key, lambda: group_table(trials, key, scores, experiment.levels(key)))
    table = table[grid_filter_mask(table, model)]
    sort_model = request.get("sortModel") or []
    order = sort_order(table, sort_model, None, experiment) if sort_model else np.arange(len(table))
    start = max(0, int(request.get("startRow") or 0))
    end = max(start, int(request.get("endRow") or start + PAGE_ROWS))
    return {"rowData": records(table.iloc[order[start:end]], list(table.columns)), "rowCount": len(table)}


# The rows changed on the server (a new table version, other statuses, brushes or score): the grid fetches the
# blocks it shows again; rows keep their selection by id.
_REFETCH = """function(version, statuses, brushes, score, columns) {
    dash_ag_grid.getApiAsync("grid").then(api => api.refreshInfiniteCache()).catch(() => null);
    return Date.now();
}"""
CALLBACKS = [
    Callback("columns", [("grid", "columnDefs"), ("grid-columns", "options"), ("grid-columns", "value")],
             [("version", "data"), ("score", "value"), ("grid-columns", "value"), ("grid-group", "value")], columns,
             states=[("grid", "columnDefs")]),
    Callback("rows", [("grid", "getRowsResponse")], [("grid", "getRowsRequest")], rows,
             states=[("version", "data"), ("status", "value"), ("brushes", "data"), ("score", "value"),
                     ("experiment", "value"), ("grid-columns", "value"), ("grid-group", "value")]),
    Callback("refetch_rows", [("grid-refresh", "data")],
             [("version", "data"), ("status", "value"), ("brushes", "data"), ("score", "value"),
              ("grid-columns", "value"), ("grid-group", "value")], None, clientside=_REFETCH),
    Callback("export", [("download", "data")], [("export-csv", "n_clicks"), ("export-parquet", "n_clicks")], export,
             states=[("version", "data"), ("status", "value"), ("brushes", "data"), ("grid", "filterModel")],
             prevent_initial_call=True),
    Callback("group_options", [("grid-group", "options"), ("grid-group", "value")], [("version", "data")],
             group_options, states=[("grid-group", "value")]),
]
