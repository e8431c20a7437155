"""The Dash ablation explorer: ``python -m dashboards.app [--storage URI] [--experiment NAME] [--host] [--port]``.

Reads only the results tables (``dashboards.tables``). Every callback is a method of ``Explorer`` taking and
returning plain values, so tests call them as functions; ``create_app`` wires them to the page. The server is
read-only, binds 127.0.0.1 unless told otherwise, and serves a trial's images only when the artifacts table
lists them, from inside the experiment directory.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections import OrderedDict
from typing import Any

import dash
import dash_ag_grid as dag
import pandas as pd
import plotly.io
import pyarrow as pa
import pyarrow.parquet as pq
from dash import Input, Output, State, dcc, html
from flask import Response

from dashboards import figures
from dashboards.analysis import (
    brushes_from_restyle,
    config_differences,
    filter_trials,
    importance,
    metric_breakdown,
    short_name,
    summary_numbers,
)
from dashboards.figures import Figure
from dashboards.tables import Catalog, Experiment, ExplorerError

FIGURES = ("parcoords", "curve", "ablation", "pareto", "curves", "importance")
STATUSES = ["TERMINATED", "RUNNING", "ERROR", "PENDING"]
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}
MAX_CURVES = 12  # learning curves drawn at once (the first selected trials, else the best few)
IMPORTANCE_TRIALS = 500  # a seeded sample beyond this: forest evaluators grow with the trial count
MAX_OPTIONS = 500  # trials offered in the comparison pickers (best first; selected ones always included)
MAX_FACTOR_LEVELS = 12  # a numeric parameter with at most this many values can be an ablation factor


def _version_key(experiment: Experiment) -> str:
    return f"{experiment.name}:{hash(experiment.version)}"


class Explorer:
    """The explorer's state (one storage root) and every callback as a plain method."""

    def __init__(self, storage: str, experiment: str | None = None) -> None:
        self.catalog = Catalog(storage)
        names = self.catalog.names()
        if experiment is not None and experiment not in names:
            listed = ", ".join(names) or "none"
            raise ExplorerError(f"no experiment {experiment!r} under {self.catalog.storage} (experiments: {listed})")
        self.initial = experiment or (names[0] if names else None)
        self._importance: OrderedDict[tuple[str, ...], dict[str, float]] = OrderedDict()

    # --- data --------------------------------------------------------------------------------------------

    def experiment(self, version: dict[str, Any] | None) -> Experiment | None:
        name = (version or {}).get("experiment")
        return self.catalog.load(name) if name else None

    def filtered(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
                 grid_model: dict[str, Any] | None) -> tuple[Experiment | None, pd.DataFrame]:
        experiment = self.experiment(version)
        if experiment is None:
            return None, pd.DataFrame()
        return experiment, filter_trials(experiment.trials, statuses, brushes, grid_model)

    # --- callbacks ---------------------------------------------------------------------------------------

    def refresh(self, _ticks: int | None, name: str | None, current: dict[str, Any] | None
                ) -> tuple[Any, list[dict[str, str]], str]:
        """Re-read the experiment if any table changed; ``no_update`` otherwise, so nothing downstream redraws
        and the user's selection, brushes and filters stay as they are."""
        try:
            options = [{"label": n, "value": n} for n in self.catalog.names()]
            if not name:
                return None, options, "no experiment under this storage yet" if not options else ""
            experiment = self.catalog.load(self.catalog.check_name(name))
        except ExplorerError as exc:
            return None, dash.no_update, str(exc)
        version = {"experiment": experiment.name, "key": _version_key(experiment)}
        notice = _problems_notice(experiment)
        if current == version:
            return dash.no_update, options, notice
        return version, options, notice

    def controls(self, version: dict[str, Any] | None, score: str | None, param: str | None,
                 factors: list[str] | None, pareto_x: str | None, pareto_y: str | None,
                 metric: str | None) -> tuple[Any, ...]:
        """Options of every picker; current choices kept while they still exist."""
        experiment = self.experiment(version)
        if experiment is None:
            return ([],) * 6 + (None, None, [], None, None, None)
        scores = experiment.score_columns()
        params = experiment.params
        # Factors: categorical parameters, and numeric ones with few levels (a grid such as the paper's lambdas).
        categorical = [p for p in params if p in experiment.categorical
                       or experiment.trials[p].nunique(dropna=True) <= MAX_FACTOR_LEVELS]
        metrics = experiment.epoch_metrics
        score = score if score in scores else (scores[0] if scores else None)
        param = param if param in params else next((p for p in params if p not in experiment.categorical),
                                                   params[0] if params else None)
        factors = [f for f in (factors or []) if f in categorical] or categorical[:1]
        x_default, y_default = _pareto_defaults(experiment, scores)
        pareto_x = pareto_x if pareto_x in scores else x_default
        pareto_y = pareto_y if pareto_y in scores else y_default
        primary = experiment.objectives[0].metric if experiment.objectives else None
        metric = metric if metric in metrics else (primary if primary in metrics else (metrics[0] if metrics else None))

        def options(columns: list[str]) -> list[dict[str, str]]:
            return [{"label": short_name(c), "value": c} for c in columns]

        return (options(scores), options(params), options(categorical), options(scores), options(scores),
                options(metrics), score, param, factors, pareto_x, pareto_y, metric)

    def natural_mode(self, column: str | None, version: dict[str, Any] | None) -> str:
        """Whether larger is better for a Pareto axis (the objectives as recorded, else guessed by name)."""
        experiment = self.experiment(version)
        return experiment.mode_of(column) if experiment is not None and column else "max"

    def summary(self, version: dict[str, Any] | None, score: str | None) -> list[Any]:
        experiment = self.experiment(version)
        if experiment is None:
            return [html.Span("no experiment selected")]
        numbers = summary_numbers(experiment.trials, score or "", experiment.mode_of(score or ""),
                                          time.time())
        counts = ", ".join(f"{status.lower()} {count}" for status, count in sorted(numbers["counts"].items()))
        best = "—" if math.isnan(numbers["best"]) else f"{numbers['best']:.4f} (trial {numbers['best_trial']})"
        objectives = ", ".join(f"{o.metric} ({o.mode})" for o in experiment.objectives) or "unknown"
        items = [("trainer", experiment.trainer), ("trials", f"{numbers['total']}: {counts}"),
                 ("objectives", objectives), (f"best {score}", best),
                 ("elapsed", _duration(numbers["elapsed_s"])),
                 ("read", time.strftime("%H:%M:%S", time.localtime(experiment.loaded_at)))]
        return [html.Div([html.Div(label, className="label"), html.Div(value, id=f"summary-{i}")],
                         className="card") for i, (label, value) in enumerate(items)]

    def table(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
              score: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Grid rows (status and brushes applied here; the grid's own filters apply in the browser) and columns."""
        experiment, trials = self.filtered(version, statuses, brushes, None)
        if experiment is None:
            return [], []
        columns = _grid_columns(experiment, score)
        present = [c for c in columns if c in trials]
        rows = records(trials, present)
        definitions = [_column_definition(c, experiment, pinned=c == "trial_id") for c in present]
        return rows, definitions

    def parcoords(self, version: dict[str, Any] | None, statuses: list[str] | None, grid_model: dict[str, Any] | None,
                  score: str | None, brushes: dict[str, Any] | None) -> tuple[Figure, list[dict[str, Any]]]:
        # Not filtered by its own brushes: it draws them, and the other views apply them.
        experiment, trials = self.filtered(version, statuses, None, grid_model)
        if experiment is None or not score:
            return figures.empty("no experiment selected"), []
        log_axes = {p: log for p in experiment.params if (log := experiment.is_log_axis(p)) is not None}
        return figures.parallel_coordinates(trials, experiment.params, experiment.categorical, score, brushes,
                                            log_axes)

    def brushes(self, restyle: list[Any] | None, clear_clicks: int | None, axes: list[dict[str, Any]] | None,
                current: dict[str, Any] | None) -> dict[str, Any]:
        if _triggered() == "clear-brushes":
            return {}
        return brushes_from_restyle(restyle, axes or [], current)

    def curve(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
              grid_model: dict[str, Any] | None, score: str | None, param: str | None) -> Figure:
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None or not score:
            return figures.empty("no experiment selected")
        return figures.objective_curve(trials, param, experiment.categorical, score, experiment.params,
                                       experiment.is_log_axis(param) if param else None)

    def ablation(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
                 grid_model: dict[str, Any] | None, score: str | None, factors: list[str] | None,
                 baseline: str | None) -> tuple[Figure, list[str], str | None]:
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None or not score:
            return figures.empty("no experiment selected"), [], None
        factors = [f for f in factors or [] if f in experiment.params]
        levels = figures.level_options(trials, factors)
        if baseline not in levels:
            baseline = _default_baseline(experiment, trials, factors, levels)
        return figures.ablation_bars(trials, factors, score, baseline), levels, baseline

    def pareto(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
               grid_model: dict[str, Any] | None, x: str | None, x_mode: str, y: str | None, y_mode: str
               ) -> Figure:
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None or not x or not y:
            return figures.empty("no experiment selected")
        return figures.pareto(trials, x, y, x_mode, y_mode, experiment.params)

    def importance(self, version: dict[str, Any] | None, statuses: list[str] | None, brushes: dict[str, Any] | None,
                   grid_model: dict[str, Any] | None, score: str | None, evaluator: str) -> Figure:
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None or not score:
            return figures.empty("no experiment selected")
        key = (version["key"], json.dumps([statuses, brushes, grid_model], sort_keys=True, default=str), score,
               evaluator)
        values = self._importance.get(key)
        if values is None:
            # Forest-based evaluators take up to seconds: computed once per experiment version and filter.
            values = importance(trials, experiment.params, experiment.categorical, score,
                                experiment.mode_of(score), evaluator, max_trials=IMPORTANCE_TRIALS)
            self._importance[key] = values
            while len(self._importance) > 32:
                self._importance.popitem(last=False)
        finished = int((trials["status"] == "TERMINATED").sum()) if "status" in trials else len(trials)
        return figures.importance_bars(values, score, evaluator, finished, min(finished, IMPORTANCE_TRIALS))

    def learning_curves(self, version: dict[str, Any] | None, statuses: list[str] | None,
                        brushes: dict[str, Any] | None, grid_model: dict[str, Any] | None,
                        selected: list[dict[str, Any]] | None, metric: str | None, score: str | None) -> Figure:
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None or not metric:
            return figures.empty("no experiment selected")
        chosen = [row["trial_id"] for row in selected or [] if row.get("trial_id")][:MAX_CURVES]
        if not chosen:
            chosen = list(_ranked(trials, score, experiment)["trial_id"][:5])
        epochs = self.catalog.epochs(experiment.name, chosen, [metric])
        return figures.learning_curves(epochs, metric, _trial_labels(experiment, chosen))

    def comparison_choices(self, version: dict[str, Any] | None, statuses: list[str] | None,
                           brushes: dict[str, Any] | None, grid_model: dict[str, Any] | None, score: str | None,
                           selected: list[dict[str, Any]] | None, current_a: str | None, current_b: str | None
                           ) -> tuple[list[dict[str, str]], list[dict[str, str]], str | None, str | None]:
        """Trials offered for the comparison; selecting rows in the table picks A (first) and B (second, else
        the best other trial)."""
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None:
            return [], [], None, None
        ranked = list(_ranked(trials, score, experiment)["trial_id"])
        chosen = [row["trial_id"] for row in selected or [] if row.get("trial_id")]
        known = set(experiment.trials["trial_id"])
        # Picks from another experiment (the picker just changed) are not kept.
        current_a, current_b = (t if t in known else None for t in (current_a, current_b))
        offered = list(dict.fromkeys(chosen + ranked[:MAX_OPTIONS] + [t for t in (current_a, current_b) if t]))
        labels = _trial_labels(experiment, offered)
        options = [{"label": labels.get(t, t), "value": t} for t in offered]
        if _triggered() == "grid" and chosen:
            a = chosen[0]
            b = chosen[1] if len(chosen) > 1 else next((t for t in ranked if t != a), None)
            return options, options, a, b
        a = current_a if current_a in offered else (ranked[0] if ranked else None)
        b = current_b if current_b in offered else next((t for t in ranked if t != a), None)
        return options, options, a, b

    def comparison(self, version: dict[str, Any] | None, a: str | None, b: str | None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
        """Config rows (differences first, flagged), per-domain/class metric rows, and both trials' images."""
        experiment = self.experiment(version)
        if experiment is None or not a or not b:
            return [], [], []
        trials = experiment.trials.set_index("trial_id", drop=False)
        if a not in trials.index or b not in trials.index:
            return [], [], []
        configs = self.catalog.configs(experiment.name, [a, b])
        extra = ["seed", "fold", "status", "epochs", "error"]

        def flat(trial_id: str) -> dict[str, Any]:
            row = trials.loc[trial_id]
            return {**{k: v for k, v in configs.get(trial_id, {}).items()},
                    **{k: row[k] for k in extra if k in row and not _missing(row[k])}}

        config_rows = config_differences(flat(a), flat(b))
        metric_rows = metric_breakdown(trials.loc[a], trials.loc[b])
        images = [self._images(experiment, trial_id, tag) for tag, trial_id in (("A", a), ("B", b))]
        return config_rows, [_rounded(r) for r in metric_rows], images

    def _images(self, experiment: Experiment, trial_id: str, tag: str) -> html.Div:
        rows = experiment.artifacts[experiment.artifacts["trial_id"] == trial_id] if len(experiment.artifacts) \
            else experiment.artifacts
        pictures = [html.Figure([html.Img(src=f"/artifacts/{experiment.name}/{trial_id}/{row['file']}",
                                          className="artifact", alt=f"{row.get('kind', '')} {row.get('domain', '')}"),
                                 html.Figcaption(f"{row.get('domain', '')}: {row.get('kind', '')}")])
                    for _, row in rows.iterrows() if _image_type(row["file"])]
        heading = html.H4(f"{tag}: trial {trial_id}")
        return html.Div([heading, *pictures] if pictures else [heading, html.P("this trial saved no images")],
                        className="images")

    def export(self, csv_clicks: int | None, parquet_clicks: int | None, version: dict[str, Any] | None,
               statuses: list[str] | None, brushes: dict[str, Any] | None, grid_model: dict[str, Any] | None
               ) -> dict[str, Any] | None:
        """The filtered trials table (every column) as CSV or Parquet, for the browser to download."""
        experiment, trials = self.filtered(version, statuses, brushes, grid_model)
        if experiment is None:
            return None
        data = trials.drop(columns=["config_key"], errors="ignore")
        if _triggered() == "export-parquet":
            buffer = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(data, preserve_index=False), buffer)
            return dcc.send_bytes(buffer.getvalue(), f"{experiment.name}-trials.parquet")
        return dcc.send_data_frame(data.to_csv, f"{experiment.name}-trials.csv", index=False)

    def export_figures(self, clicks: int | None, version: dict[str, Any] | None, *shown: Figure | None
                       ) -> dict[str, Any] | None:
        """Every figure as the page shows it now, in one self-contained HTML file (plotly.js inlined once)."""
        experiment = self.experiment(version)
        if experiment is None:
            return None
        parts = [plotly.io.to_html(figure, include_plotlyjs=index == 0, full_html=False)
                 for index, figure in enumerate(f for f in shown if f)]
        page = (f"<html><head><meta charset='utf-8'><title>{experiment.name}</title></head><body>"
                f"<h1>{experiment.name}</h1>{''.join(parts)}</body></html>")
        return dcc.send_string(page, f"{experiment.name}-figures.html")

    def artifact(self, name: str, trial_id: str, file_name: str) -> Response:
        """One saved image, or 404: only files the artifacts table lists, inside the experiment directory."""
        media = _image_type(file_name)
        try:
            if media is None:
                raise ExplorerError("not an image")
            data = self.catalog.artifact_bytes(self.catalog.check_name(name), trial_id, file_name)
        except ExplorerError:
            return Response("not found", status=404, mimetype="text/plain")
        return Response(data, mimetype=media, headers={"X-Content-Type-Options": "nosniff",
                                                       "Cache-Control": "private, max-age=60"})


# --- helpers -------------------------------------------------------------------------------------------------


def _problems_notice(experiment: Experiment) -> str:
    """A visible line naming the table parts that were skipped, so a partial view never passes for whole."""
    if not experiment.problems:
        return ""
    shown = "; ".join(experiment.problems[:3]) + (f"; and {len(experiment.problems) - 3} more"
                                                   if len(experiment.problems) > 3 else "")
    return f"showing the readable rows only; skipped {len(experiment.problems)} unreadable part(s): {shown}"


def _triggered() -> str | None:
    """The id of the input that fired the running callback (None when a test calls a method directly)."""
    try:
        return dash.ctx.triggered_id
    except dash.exceptions.MissingCallbackContextException:
        return None


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN -> None), column-wise: ~20x faster than ``to_dict("records")``."""
    lists = []
    for column in columns:
        values = frame[column].tolist()
        lists.append([None if isinstance(v, float) and v != v else v for v in values])
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]


def _duration(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if math.isnan(v) else round(v, 4)) if isinstance(v, float) else v for k, v in row.items()}


def _image_type(file_name: str) -> str | None:
    suffix = file_name[file_name.rfind("."):].lower() if "." in file_name else ""
    return IMAGE_TYPES.get(suffix)


def _ranked(trials: pd.DataFrame, score: str | None, experiment: Experiment) -> pd.DataFrame:
    if not score or score not in trials:
        return trials
    return trials.assign(_score=pd.to_numeric(trials[score], errors="coerce")).sort_values(
        "_score", ascending=experiment.mode_of(score) == "min", na_position="last")


def _trial_labels(experiment: Experiment, trial_ids: list[str]) -> dict[str, str]:
    """``id (param=value, ..., seed s)`` per trial, for legends and pickers (one vectorised lookup)."""
    trials = experiment.trials
    chosen = trials[trials["trial_id"].isin(trial_ids)]
    shown = experiment.params[:3]
    columns = [chosen[p].tolist() for p in shown]
    seeds = chosen["seed"].tolist() if "seed" in chosen else [None] * len(chosen)
    labels = {}
    for index, trial_id in enumerate(chosen["trial_id"].tolist()):
        params = ", ".join(f"{short_name(p)}={_short_value(values[index])}" for p, values in zip(shown, columns,
                                                                                                 strict=True))
        seed = "" if _missing(seeds[index]) else f", seed {int(seeds[index])}"
        labels[trial_id] = f"{trial_id} ({params}{seed})" if params else f"{trial_id}{seed}"
    return labels


def _short_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _default_baseline(experiment: Experiment, trials: pd.DataFrame, factors: list[str],
                      levels: list[str]) -> str | None:
    """The level of the spec's ``explore.baseline`` for these factors, else the first level."""
    baseline = experiment.explore.get("baseline") or {}
    wanted = {factor: baseline[factor.removeprefix("config/")] for factor in factors
              if factor.removeprefix("config/") in baseline}
    if factors and len(wanted) == len(factors) and not trials.empty:
        matches = pd.Series(True, index=trials.index)
        for factor, value in wanted.items():
            matches &= trials[factor].map(lambda stored, value=value: _same_value(stored, value))
        if matches.any():
            label = figures.level_labels(trials[matches].head(1), factors).iloc[0]
            if label in levels:
                return label
    return levels[0] if levels else None


def _same_value(stored: Any, value: Any) -> bool:
    """Whether a trials-table cell (lists and mappings stored as JSON text) holds ``value``."""
    if isinstance(stored, str) and not isinstance(value, str):
        try:
            stored = json.loads(stored)
        except json.JSONDecodeError:
            return False
    if isinstance(stored, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isclose(float(stored), float(value), rel_tol=1e-9)
    return bool(stored == value)


def _pareto_defaults(experiment: Experiment, scores: list[str]) -> tuple[str | None, str | None]:
    """The first two objectives; with one, the objective against the first metric declared smaller-is-better
    (a trade-off), else against the next score."""
    objectives = [f"last/{o.metric}" for o in experiment.objectives if f"last/{o.metric}" in scores]
    if len(objectives) >= 2:
        return objectives[0], objectives[1]
    first = objectives[0] if objectives else (scores[0] if scores else None)
    opposite = next((s for s in scores if s.startswith("last/val/") and s != first
                     and experiment.declared_direction(s) == "min"), None)
    return first, opposite or next((s for s in scores if s != first), first)


def _grid_columns(experiment: Experiment, score: str | None) -> list[str]:
    """Identity, parameters, the chosen score and the objectives, the headline validation metrics, timing."""
    headline = [c for c in experiment.trials.columns if c.startswith("last/val/") and c.count("/") == 2]
    objectives = [c for c in experiment.score_columns() if c.startswith("best/")]
    ordered = ["trial_id", "status", *experiment.params, "seed", "fold", *( [score] if score else []), *objectives,
               *headline, "epochs", "wall_s", "overhead_s", "error"]
    return list(dict.fromkeys(ordered))


def _column_definition(column: str, experiment: Experiment, pinned: bool) -> dict[str, Any]:
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


# --- page ----------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f5f7fa; color: #1f2933; }
header { background: #243b53; color: white; padding: 10px 20px; display: flex; gap: 20px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
.section { background: white; margin: 12px 20px; padding: 12px 16px; border-radius: 6px;
           box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.row { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
.half { flex: 1 1 560px; min-width: 480px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #f0f4f8; padding: 8px 12px; border-radius: 4px; }
.label { font-size: 11px; text-transform: uppercase; color: #627d98; }
.control { min-width: 220px; }
.images { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-start; }
.artifact { max-width: 520px; image-rendering: pixelated; border: 1px solid #d9e2ec; }
figure { margin: 0; }
table.compare { border-collapse: collapse; font-size: 13px; }
table.compare td, table.compare th { border-bottom: 1px solid #e4e7eb; padding: 2px 8px; text-align: left; }
tr.differs { background: #fff3c4; font-weight: 600; }
"""


def _dropdown(component_id: str, label: str, **kwargs: Any) -> html.Div:
    return html.Div([html.Div(label, className="label"), dcc.Dropdown(id=component_id, **kwargs)], className="control")


def layout(explorer: Explorer, refresh_s: float, live: bool) -> html.Div:
    graph = {"config": {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}}
    return html.Div([
        html.Header([
            html.H1("Ablation explorer"),
            html.Div(dcc.Dropdown(id="experiment", value=explorer.initial, clearable=False,
                                  options=[{"label": n, "value": n} for n in explorer.catalog.names()]),
                     style={"minWidth": "320px", "color": "#1f2933"}),
            dcc.Checklist(id="live", options=[{"label": " live refresh every", "value": "on"}],
                          value=["on"] if live else []),
            dcc.Input(id="refresh-s", type="number", min=1, step=1, value=refresh_s, debounce=True,
                      style={"width": "60px", "color": "#1f2933"}),
            html.Span("s"),
            html.Span(id="message", style={"color": "#ffb3b3"}),
        ]),
        dcc.Interval(id="tick", interval=int(refresh_s * 1000), disabled=not live),
        dcc.Store(id="version"), dcc.Store(id="brushes", data={}), dcc.Store(id="axes", data=[]),
        html.Div([html.Div(id="summary", className="cards")], className="section"),
        html.Div([
            html.Div([
                html.Div([html.Div("status", className="label"),
                          dcc.Checklist(id="status", options=STATUSES, value=STATUSES, inline=True)]),
                _dropdown("score", "score (rank by)", clearable=False),
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
        ], className="section"),
        html.Div(dcc.Graph(id="parcoords", **graph), className="section"),
        html.Div([
            html.Div([_dropdown("param", "parameter", clearable=False), dcc.Graph(id="curve", **graph)],
                     className="section half"),
            html.Div([html.Div([_dropdown("factors", "factors", multi=True),
                                _dropdown("baseline", "baseline")], className="row"),
                      dcc.Graph(id="ablation", **graph)], className="section half"),
        ], className="row", style={"margin": "0 8px"}),
        html.Div([
            html.Div([html.Div([_dropdown("pareto-x", "x", clearable=False),
                                dcc.RadioItems(id="pareto-x-mode", options=["max", "min"], value="max", inline=True),
                                _dropdown("pareto-y", "y", clearable=False),
                                dcc.RadioItems(id="pareto-y-mode", options=["max", "min"], value="min", inline=True)],
                               className="row"), dcc.Graph(id="pareto", **graph)], className="section half"),
            html.Div([_dropdown("curve-metric", "learning-curve metric", clearable=False),
                      dcc.Graph(id="curves", **graph)], className="section half"),
        ], className="row", style={"margin": "0 8px"}),
        html.Div([_dropdown("importance-evaluator", "importance evaluator", clearable=False,
                            value="mean_decrease_impurity",
                            options=["mean_decrease_impurity", "fanova", "ped_anova"]),
                  dcc.Graph(id="importance", **graph)], className="section"),
        html.Div([
            html.H3("Compare two trials", style={"margin": "4px 0"}),
            html.Div([_dropdown("compare-a", "A", style={"minWidth": "380px"}),
                      _dropdown("compare-b", "B", style={"minWidth": "380px"})], className="row"),
            html.Div([html.Div(id="compare-config", className="half"),
                      html.Div(id="compare-metrics", className="half")], className="row"),
            html.Div(id="compare-images", className="row"),
        ], className="section"),
    ])


def _rows_table(rows: list[dict[str, Any]], columns: list[str], table_id: str) -> html.Table:
    head = html.Tr([html.Th(c) for c in columns])
    body = [html.Tr([html.Td("" if row.get(c) is None else str(row.get(c))) for c in columns],
                    className="differs" if row.get("differs") else "") for row in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="compare", id=table_id)


def create_app(explorer: Explorer, refresh_s: float = 10.0, live: bool = True) -> dash.Dash:
    app = dash.Dash(__name__, title="Ablation explorer", update_title=None)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    app.layout = layout(explorer, refresh_s, live)
    filters = [Input("version", "data"), Input("status", "value"), Input("brushes", "data"),
               Input("grid", "filterModel")]

    @app.server.route("/artifacts/<name>/<trial_id>/<file_name>")
    def artifact(name: str, trial_id: str, file_name: str) -> Response:
        return explorer.artifact(name, trial_id, file_name)

    @app.server.route("/artifacts/<path:anything>")
    def not_an_artifact(anything: str) -> Response:
        # Any other shape under /artifacts/ (e.g. an encoded "../") is a 404, not Dash's catch-all page.
        return Response("not found", status=404, mimetype="text/plain")

    app.callback(Output("tick", "disabled"), Output("tick", "interval"),
                 Input("live", "value"), Input("refresh-s", "value"))(
        lambda live_value, seconds: (not live_value, int(max(1.0, float(seconds or 10)) * 1000)))
    app.callback(Output("version", "data"), Output("experiment", "options"), Output("message", "children"),
                 Input("tick", "n_intervals"), Input("experiment", "value"), State("version", "data"))(
        explorer.refresh)
    app.callback(
        Output("score", "options"), Output("param", "options"), Output("factors", "options"),
        Output("pareto-x", "options"), Output("pareto-y", "options"), Output("curve-metric", "options"),
        Output("score", "value"), Output("param", "value"), Output("factors", "value"),
        Output("pareto-x", "value"), Output("pareto-y", "value"), Output("curve-metric", "value"),
        Input("version", "data"), State("score", "value"), State("param", "value"), State("factors", "value"),
        State("pareto-x", "value"), State("pareto-y", "value"), State("curve-metric", "value"))(explorer.controls)
    app.callback(Output("summary", "children"), Input("version", "data"), Input("score", "value"))(explorer.summary)
    app.callback(Output("grid", "rowData"), Output("grid", "columnDefs"), Input("version", "data"),
                 Input("status", "value"), Input("brushes", "data"), Input("score", "value"))(explorer.table)
    app.callback(Output("parcoords", "figure"), Output("axes", "data"), Input("version", "data"),
                 Input("status", "value"), Input("grid", "filterModel"), Input("score", "value"),
                 State("brushes", "data"))(explorer.parcoords)
    app.callback(Output("brushes", "data"), Input("parcoords", "restyleData"), Input("clear-brushes", "n_clicks"),
                 State("axes", "data"), State("brushes", "data"), prevent_initial_call=True)(
        explorer.brushes)
    app.callback(Output("curve", "figure"), *filters, Input("score", "value"), Input("param", "value"))(
        explorer.curve)
    app.callback(Output("ablation", "figure"), Output("baseline", "options"), Output("baseline", "value"),
                 *filters, Input("score", "value"), Input("factors", "value"), Input("baseline", "value"))(
        explorer.ablation)
    app.callback(Output("pareto", "figure"), *filters, Input("pareto-x", "value"), Input("pareto-x-mode", "value"),
                 Input("pareto-y", "value"), Input("pareto-y-mode", "value"))(explorer.pareto)
    app.callback(Output("importance", "figure"), *filters, Input("score", "value"),
                 Input("importance-evaluator", "value"))(explorer.importance)
    app.callback(Output("curves", "figure"), *filters, Input("grid", "selectedRows"),
                 Input("curve-metric", "value"), Input("score", "value"))(explorer.learning_curves)
    app.callback(Output("compare-a", "options"), Output("compare-b", "options"), Output("compare-a", "value"),
                 Output("compare-b", "value"), *filters, Input("score", "value"), Input("grid", "selectedRows"),
                 State("compare-a", "value"), State("compare-b", "value"))(explorer.comparison_choices)
    for axis in ("x", "y"):
        # A metric's natural direction (objectives as recorded, else by name) whenever the axis changes.
        app.callback(Output(f"pareto-{axis}-mode", "value"), Input(f"pareto-{axis}", "value"),
                     State("version", "data"))(explorer.natural_mode)

    def comparison(version: dict[str, Any] | None, a: str | None, b: str | None) -> tuple[Any, Any, Any]:
        config_rows, metric_rows, images = explorer.comparison(version, a, b)
        if not config_rows:
            return html.P("choose two trials"), None, None
        return (_rows_table(config_rows, ["key", "a", "b"], "compare-config-table"),
                _rows_table(metric_rows, ["metric", "domain", "class", "a", "b", "diff"], "compare-metrics-table"),
                images)

    app.callback(Output("compare-config", "children"), Output("compare-metrics", "children"),
                 Output("compare-images", "children"), Input("version", "data"), Input("compare-a", "value"),
                 Input("compare-b", "value"))(comparison)
    app.callback(Output("download-html", "data"), Input("export-html", "n_clicks"), State("version", "data"),
                 *[State(graph, "figure") for graph in FIGURES], prevent_initial_call=True)(explorer.export_figures)
    app.callback(Output("download", "data"), Input("export-csv", "n_clicks"), Input("export-parquet", "n_clicks"),
                 State("version", "data"), State("status", "value"), State("brushes", "data"),
                 State("grid", "filterModel"), prevent_initial_call=True)(explorer.export)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.app", description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="./runs", help="results root: a path or s3:// / gs:// URI (./runs)")
    parser.add_argument("--experiment", help="experiment to open first (default: the newest)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--refresh", type=float, default=10.0, help="live refresh interval in seconds (10)")
    parser.add_argument("--no-live", action="store_true", help="start with live refresh off")
    args = parser.parse_args(argv)
    try:
        explorer = Explorer(args.storage, args.experiment)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: serving on {args.host}; the explorer has no login, keep it behind your cluster's access "
              "control (e.g. kubectl port-forward)", file=sys.stderr)
    app = create_app(explorer, args.refresh, not args.no_live)
    print(f"explorer for {explorer.catalog.storage} on http://{args.host}:{args.port}/", file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
