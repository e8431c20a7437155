"""One experiment as the explorer sees it: its trials table (one row per trial, config values as the spec's level
labels), its objectives and what the views need to know about its columns (axis kinds, level orders, directions),
read from an experiment's results store by ``read_experiment``."""

from __future__ import annotations

import json
import math
import posixpath
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from platform.results import TIME_COLUMNS, ResultsStore, metric_stem

# Trials columns the first page never needs (large text read on demand for the comparison view).
_HEAVY_COLUMNS = {"config_json", "traceback", "_seq", "_writer"}  # _seq, _writer: the store's own

# A spec's distribution (the ``sweep`` table's axis kind) -> what a view draws: levels, an integer or a real range.
AXIS_KINDS = {"choice": "categorical", "grid": "categorical", "int": "int", "uniform": "float",
              "loguniform": "float"}



@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "max" | "min"


@dataclass
class Experiment:
    """One experiment's trials (one row per trial) and what the views need to know about its columns."""

    name: str
    location: str
    version: tuple[tuple[str, ...], ...]
    trials: pd.DataFrame
    params: list[str]
    categorical: set[str]
    objectives: list[Objective]
    epoch_metrics: list[str]
    artifacts: pd.DataFrame
    problems: list[str] = field(default_factory=list)  # parts of the tables that could not be read (skipped)
    # The sweep's metadata (the ``sweep`` table): metric stems' direction and kind, axes' kind, log scale and
    # values in the spec's order, and the spec's ``explore`` block. Empty for tables written before it existed.
    metrics_meta: dict[str, dict[str, str]] = field(default_factory=dict)
    axes_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    explore: dict[str, Any] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    _levels: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def trainer(self) -> str:
        values = self.trials["trainer"].dropna().unique() if "trainer" in self.trials else []
        return ", ".join(sorted(map(str, values))) or "unknown"

    def score_columns(self) -> list[str]:
        """Trial-level columns a view can rank on: best/ and last/ of the objectives first, then other metrics."""
        first = []
        for objective in self.objectives:
            first += [c for c in (f"best/{objective.metric}", f"last/{objective.metric}") if c in self.trials]
        rest = sorted(c for c in self.trials.columns if c.startswith(("best/", "last/")) and c not in first)
        return first + rest

    def mode_of(self, column: str) -> str:
        """Whether larger is better for a trial column: the objectives say so, else the direction the trainer
        declared for the metric (``sweep`` table); timings are smaller-is-better; anything else larger."""
        metric = column.split("/", 1)[1] if column.startswith(("best/", "last/")) else column
        for objective in self.objectives:
            if objective.metric == metric:
                return objective.mode
        direction = self.metrics_meta.get(metric_stem(metric), {}).get("direction")
        if direction in ("max", "min"):
            return direction
        return "min" if column in TIME_COLUMNS else "max"

    def declared_direction(self, column: str) -> str | None:
        """The declared direction ("max", "min", "none") of a metric column, or None when not declared."""
        metric = column.split("/", 1)[1] if column.startswith(("best/", "last/")) else column
        return self.metrics_meta.get(metric_stem(metric), {}).get("direction")

    def is_log_axis(self, param: str) -> bool | None:
        """Whether the search sampled ``config/<axis>`` on a log scale; None when the tables do not say."""
        axis = self.axes_meta.get(param.removeprefix("config/"))
        return None if axis is None else bool(axis.get("log"))

    def axis_kind(self, param: str) -> str | None:
        """``categorical`` (a choice or grid, whatever its values' type: an int choice stays a set of levels),
        ``int`` or ``float`` (a range) for ``config/<axis>``, as the ``sweep`` table records it; None when the
        tables do not say."""
        axis = self.axes_meta.get(param.removeprefix("config/"))
        return None if axis is None else AXIS_KINDS.get(str(axis.get("kind")))

    @property
    def log_axes(self) -> dict[str, bool]:
        """``config/<axis>`` -> log scale, for every parameter whose axis the ``sweep`` table records."""
        return {param: log for param in self.params if (log := self.is_log_axis(param)) is not None}

    @property
    def level_orders(self) -> dict[str, list[str]]:
        """``config/<axis>`` -> its labels in the spec's order, for every categorical parameter the record lists."""
        return {param: order for param in self.params if (order := self.levels(param))}

    def levels(self, param: str) -> list[str] | None:
        """The labels of a categorical parameter in the spec's order (then any other label the trials carry,
        sorted, e.g. ``(absent)``); None for a numeric parameter or when the tables do not record the values."""
        axis = self.axes_meta.get(param.removeprefix("config/"))
        if param not in self.categorical or axis is None or not isinstance(axis.get("values"), list):
            return None
        if param not in self._levels:  # the trials of one version never change: once per experiment version
            declared = list(dict.fromkeys(_value_label(value) for value in axis["values"]))
            # The distinct labels first, then as text: 100,000 trials hold a handful of levels.
            present = {str(v) for v in self.trials[param].dropna().unique()} if param in self.trials else set()
            self._levels[param] = declared + sorted(present - set(declared))
        return list(self._levels[param])


def read_experiment(name: str, store: ResultsStore, version: tuple[tuple[str, ...], ...]) -> Experiment:
    schema = store.schema("trials")
    columns = [c for c in schema.names if c not in _HEAVY_COLUMNS]
    table = store.read("trials", columns=columns)
    trials = table.to_pandas() if table.num_rows else pd.DataFrame(columns=["trial_id", "status"])
    trials = trials.drop(columns=["_seq"], errors="ignore").reset_index(drop=True)
    params = sorted(c for c in trials.columns if c.startswith("config/"))
    meta = _sweep_meta(store)
    axes = meta["axes_meta"]
    # The axis kind the sweep recorded decides; the dtype only for tables written before the sweep table.
    categorical = {c for c in params
                   if (AXIS_KINDS.get(str((axes.get(c.removeprefix("config/")) or {}).get("kind")))
                       or ("categorical" if _is_categorical(trials[c]) else "float")) == "categorical"}
    for column in params:
        if column in categorical:
            # One label per value (lists are JSON text already), the spec's own spelling when it lists the value
            # (an int choice read back as float where a trial lacks it is still "16", not "16.0"); a conditional
            # parameter absent from a trial is its own level rather than a dropped row.
            declared = (axes.get(column.removeprefix("config/")) or {}).get("values")
            trials[column] = _labels(trials[column], declared if isinstance(declared, list) else [])
    trials["config_key"] = _config_keys(trials, params)
    epoch_metrics = sorted(c for c in store.schema("epochs").names if "/" in c)
    artifacts_table = store.read("artifacts")
    artifacts = artifacts_table.to_pandas() if artifacts_table.num_rows else pd.DataFrame(
        columns=["trial_id", "path", "kind", "domain"])
    artifacts["file"] = artifacts["path"].map(lambda p: posixpath.basename(str(p)))
    root = store.root.rstrip("/") + "/"
    problems = [line.removeprefix(root) for line in store.unreadable()]
    return Experiment(name=name, location=store.location, version=version, trials=trials, params=params,
                      categorical=categorical, objectives=_objectives(trials), epoch_metrics=epoch_metrics,
                      artifacts=artifacts.drop(columns=["_seq"], errors="ignore"), problems=problems, **meta)


def _sweep_meta(store: ResultsStore) -> dict[str, Any]:
    """The metadata row of the ``sweep`` table, decoded (empty dicts for older tables or unreadable JSON)."""
    rows = store.read("sweep").to_pylist()
    meta: dict[str, Any] = {"metrics_meta": {}, "axes_meta": {}, "explore": {}}
    if not rows:
        return meta
    for key, column in (("metrics_meta", "metrics"), ("axes_meta", "axes"), ("explore", "explore")):
        try:
            value = json.loads(rows[-1].get(column) or "{}")
        except json.JSONDecodeError:
            continue
        meta[key] = value if isinstance(value, dict) else {}
    return meta


def _is_categorical(values: pd.Series) -> bool:
    present = values.dropna()
    if present.empty:
        return True
    return not (pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present))


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(absent)"
    return str(value)


def _value_label(value: Any) -> str:
    """The label of a value as a spec lists it (lists and mappings as the JSON text the trials table holds)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else _label(value)


def _value_key(value: Any) -> tuple[str, Any]:
    """A key under which a spec's value and the same value read back from a table meet (16 and 16.0 alike)."""
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return ("number", float(value))
    return ("text", value if isinstance(value, str) else _value_label(value))


def _labels(values: pd.Series, declared: list[Any]) -> pd.Series:
    """Each cell's label: the spec's spelling of the value when ``declared`` lists it, else ``_label``."""
    spelled = {_value_key(value): _value_label(value) for value in declared}

    def label(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return _label(value)
        return spelled.get(_value_key(value), _label(value))

    return values.map(label)


def _config_keys(trials: pd.DataFrame, params: list[str]) -> pd.Series:
    """One key per sampled configuration: the trials that differ only in seed or fold share it."""
    if not params or trials.empty:
        return pd.Series(["all"] * len(trials), index=trials.index, dtype=object)
    # Vectorised text per column (numbers in their shortest round-trip form, as repr writes them): a map over
    # 100,000 rows per parameter took half a second.
    parts = [trials[c].astype(str).fillna("nan") for c in params]
    key = parts[0]
    for part in parts[1:]:
        key = key + " | " + part
    return key


def _objectives(trials: pd.DataFrame) -> list[Objective]:
    """The sweep's objectives as the trials rows record them; older tables: each ``best/`` column, maximised."""
    if "objectives" in trials and trials["objectives"].notna().any():
        try:
            listed = json.loads(trials["objectives"].dropna().iloc[-1])
            return [Objective(str(o["metric"]), str(o.get("mode", "max"))) for o in listed]
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return [Objective(c[len("best/"):], "max") for c in trials.columns if c.startswith("best/")]
