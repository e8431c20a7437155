"""What the explorer reads: the experiments under a storage root and their results tables, read-only.

Only ``platform.results`` is used (the tables contract); never trainer code. An experiment is a direct child
of the storage root holding ``tables/trials``; a name from a URL or a form field is accepted only if it is one
of those children, so nothing outside the root is ever opened. Reads are projected to the columns a view
needs and cached per experiment *version* (the set of part files, whose names are unique per write), so a
live refresh that finds nothing new costs three directory listings.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from platform.results import TIME_COLUMNS, ResultsStore, metric_stem
from platform.storage import experiment_uri, filesystem, is_uri, resolve_storage

# Letters, digits, dot, dash, underscore; no leading dot: no "..", no separators, no hidden directories.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
# Trials columns the first page never needs (large text read on demand for the comparison view).
_HEAVY_COLUMNS = {"config_json", "traceback", "_seq", "_writer"}  # _seq, _writer: the store's own
_CACHE_SIZE = 8  # experiment versions kept: the experiment comparison reads several at once
# A spec's distribution (the ``sweep`` table's axis kind) -> what a view draws: levels, an integer or a real range.
AXIS_KINDS = {"choice": "categorical", "grid": "categorical", "int": "int", "uniform": "float",
              "loguniform": "float"}


LOG_FILE = "log.txt"  # where a trial keeps its log in its artifacts folder when no artifact row names one
LOG_BYTES = 200_000  # the end of a log the explorer reads and sends
_WORKER_LOG = re.compile(r"^log-rank(\d+)\.txt$")  # the log of Train worker k > 0 beside rank 0's log.txt


@dataclass(frozen=True)
class TrialLog:
    """The end of a trial's log: its file name, the text read, the file's size and whether the start was cut."""

    file: str
    text: str
    size: int
    truncated: bool


class ExplorerError(Exception):
    """A user-facing problem (unknown experiment, unreadable storage): shown as a message, never a traceback."""


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
        declared = list(dict.fromkeys(_value_label(value) for value in axis["values"]))
        present = set(self.trials[param].dropna().astype(str)) if param in self.trials else set()
        return declared + sorted(present - set(declared))


class Catalog:
    """The experiments under one storage root, with a small per-version cache of their tables."""

    def __init__(self, storage: str) -> None:
        self.storage = resolve_storage(storage)
        try:
            self.fs, self.root = filesystem(self.storage)
        except Exception as exc:  # a malformed URI or missing credentials: say which storage
            raise ExplorerError(f"cannot open storage {storage!r}: {exc}") from exc
        self._cache: OrderedDict[tuple[str, Any], Experiment] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Experiments (children of the root with a trials table), newest first."""
        try:
            children = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        except OSError as exc:
            raise ExplorerError(f"cannot list storage {self.storage!r}: {exc}") from exc
        found = []
        for info in children:
            if info.type != pafs.FileType.Directory or not _SAFE_NAME.match(info.base_name):
                continue
            trials = self.fs.get_file_info(posixpath.join(info.path, "tables", "trials"))
            if trials.type == pafs.FileType.Directory:
                found.append((info.mtime or 0, info.base_name))
        return [name for _, name in sorted(found, key=lambda item: (-_timestamp(item[0]), item[1]))]

    def check_name(self, name: str | None) -> str:
        """``name`` if it is an experiment of this root, else ExplorerError (never a path outside the root).

        One metadata call, not a listing of the root: every read goes through here (on s3:// a listing of the
        root costs a request per experiment)."""
        if not name or not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise ExplorerError(f"{name!r} is not an experiment name")
        trials = self.fs.get_file_info(posixpath.join(self.root, name, "tables", "trials"))
        if trials.type != pafs.FileType.Directory:
            raise ExplorerError(f"no experiment {name!r} under {self.storage}")
        return name

    def location(self, name: str) -> str:
        return experiment_uri(self.storage, self.check_name(name))

    def store(self, name: str) -> ResultsStore:
        return ResultsStore(self.location(name))

    def load(self, name: str) -> Experiment:
        """The experiment's trials and column facts, from cache when no table changed since the last read."""
        store = self.store(name)
        for attempt in range(5):
            version = store.version()
            key = (name, version)
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            try:
                experiment = _read_experiment(name, store, version)
                break
            except FileNotFoundError:
                # A live writer merged parts between the listing and a read (schemas included): list again.
                if attempt == 4:
                    raise ExplorerError(f"the tables of {name!r} changed during five reads in a row; reload the "
                                        "page") from None
                time.sleep(0.02 * (attempt + 1))
        with self._lock:
            self._cache[key] = experiment
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return experiment

    def epochs(self, name: str, trial_ids: list[str], metrics: list[str]) -> pd.DataFrame:
        """Epoch rows of ``trial_ids`` with only ``metrics`` (plus trial_id, epoch)."""
        if not trial_ids:
            return pd.DataFrame(columns=["trial_id", "epoch", *metrics])
        table = self.store(name).read("epochs", columns=["epoch", *metrics], trial_ids=trial_ids)
        frame = table.to_pandas() if table.num_rows else pd.DataFrame(columns=["trial_id", "epoch", *metrics])
        return frame.drop(columns=["_seq"], errors="ignore").sort_values(["trial_id", "epoch"])

    def case_columns(self, name: str) -> list[str]:
        """The columns of the experiment's cases table (its schema only: no rows are read)."""
        return list(self.store(name).schema("cases").names)

    def cases(self, name: str, trial_ids: list[str] | None = None, split: str | None = None,
              metrics: list[str] | None = None) -> pd.DataFrame:
        """Per-case rows (one per trial, epoch, split, checkpoint, domain and subject) of ``trial_ids`` (every
        trial when None), of ``split`` only when given, with only ``metrics`` (plus the keys) when given; empty
        (with the key columns) when none were written."""
        store = self.store(name)
        columns = None
        if metrics is not None:
            present = set(self.case_columns(name))
            columns = [c for c in ("epoch", "split", "checkpoint", "domain", "subject", *metrics) if c in present]
        table = store.read("cases", columns=columns, where=("split", split) if split else None, trial_ids=trial_ids)
        if not table.num_rows:
            return pd.DataFrame(columns=["trial_id", "epoch", "split", "checkpoint", "domain", "subject"])
        return table.to_pandas().drop(columns=["_seq"], errors="ignore")

    def configs(self, name: str, trial_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each trial's full resolved trainer config (``config_json``), for the comparison view."""
        table = self.store(name).read("trials", columns=["config_json"], trial_ids=trial_ids)
        result: dict[str, dict[str, Any]] = {}
        for row in table.to_pylist():
            try:
                result[row["trial_id"]] = json.loads(row.get("config_json") or "{}")
            except json.JSONDecodeError:
                result[row["trial_id"]] = {"config_json": row.get("config_json")}
        return result

    def tracebacks(self, name: str, trial_ids: list[str]) -> dict[str, str]:
        """Each failed trial's traceback (read on demand: tracebacks are long), for the errors view."""
        store = self.store(name)
        if "traceback" not in store.schema("trials").names:
            return {}  # tables written before tracebacks were kept
        table = store.read("trials", columns=["traceback"], trial_ids=trial_ids)
        return {row["trial_id"]: row["traceback"] for row in table.to_pylist() if row.get("traceback")}

    def volume(self, name: str, trial_id: str, file_name: str) -> dict[str, np.ndarray]:
        """A case's volumes a trial saved for the slice viewer (a listed ``.npz``): ``image``, ``pred`` and
        ``label``, each (X, Y, Z) uint8; ExplorerError if it is not listed or does not read."""
        import io

        data = self.artifact_bytes(name, trial_id, file_name)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                volumes = {key: np.asarray(arrays[key], dtype=np.uint8) for key in ("image", "pred", "label")}
        except (OSError, KeyError, ValueError) as exc:
            raise ExplorerError(f"volume {file_name!r} of trial {trial_id!r} does not read ({exc})") from None
        if len({v.shape for v in volumes.values()}) != 1 or volumes["image"].ndim != 3:
            raise ExplorerError(f"volume {file_name!r} of trial {trial_id!r} has arrays of different shapes")
        return volumes

    def worker_logs(self, name: str, trial_id: str) -> list[str]:
        """The file names of the logs the trial's other Train workers kept (``log-rank<k>.txt``), by rank."""
        experiment = self.load(name)
        if not _SAFE_NAME.match(trial_id):
            return []
        fs, root = filesystem(experiment.location)
        try:
            found = fs.get_file_info(pafs.FileSelector(posixpath.join(root, "artifacts", trial_id),
                                                       allow_not_found=True))
        except OSError:
            return []
        ranks = [(int(match.group(1)), info.base_name) for info in found
                 if info.type == pafs.FileType.File and (match := _WORKER_LOG.match(info.base_name))]
        return [file_name for _, file_name in sorted(ranks)]

    def trial_log(self, name: str, trial_id: str, limit: int = LOG_BYTES, file_name: str | None = None
                  ) -> TrialLog | None:
        """The log a trial kept (its stdout and stderr), or None when it recorded none: an artifact row of kind
        ``log`` (or a listed ``.log``/``log.txt`` file), else ``<experiment>/artifacts/<trial_id>/log.txt``. Only
        the last ``limit`` bytes are read (the end of a log says how the trial ended), from a line start; bytes
        that are not UTF-8 are replaced. The file must lie inside the experiment directory (as for images).
        ``file_name``: another worker's log (one of ``worker_logs``) instead."""
        experiment = self.load(name)
        if not _SAFE_NAME.match(trial_id) or not (experiment.trials["trial_id"] == trial_id).any():
            return None
        rows = experiment.artifacts
        listed = rows[rows["trial_id"] == trial_id] if len(rows) else rows
        names = [str(row["file"]) for _, row in listed.iterrows()
                 if str(row.get("kind")) == "log" or str(row["file"]).endswith((".log", "log.txt"))]
        fs, root = filesystem(experiment.location)
        candidates = [file_name] if file_name and _WORKER_LOG.match(file_name) else [*names, LOG_FILE]
        for file_name in candidates:
            if not _SAFE_NAME.match(file_name):
                continue
            path = posixpath.normpath(posixpath.join(root, "artifacts", trial_id, file_name))
            if not path.startswith(root.rstrip("/") + "/"):
                continue
            try:
                if not is_uri(experiment.location):
                    _check_confined(path, root, ExplorerError("not confined"))
                size = fs.get_file_info(path).size or 0
                with fs.open_input_file(path) as stream:
                    if size > limit:
                        stream.seek(size - limit)
                    data = stream.read()
            except (ExplorerError, OSError):
                continue
            if size > limit:
                data = data[data.find(b"\n") + 1:]  # from the first whole line
            return TrialLog(file_name, data.decode("utf-8", errors="replace"), size, size > limit)
        return None

    def artifact_bytes(self, name: str, trial_id: str, file_name: str) -> bytes:
        """The bytes of an image a trial saved, if the artifacts table lists it; ExplorerError otherwise.

        The file is looked up as ``<experiment>/artifacts/<trial_id>/<file_name>`` where both parts must
        match a row of the table (the stored absolute path may come from another machine). On a local disk it
        must be a regular file with one hard link whose real path (symbolic links resolved) lies inside the
        experiment directory. Messages never show server paths.
        """
        experiment = self.load(name)
        rows = experiment.artifacts
        listed = rows[(rows["trial_id"] == trial_id) & (rows["file"] == file_name)] if len(rows) else rows
        missing = ExplorerError(f"no artifact {file_name!r} of trial {trial_id!r} in {name!r}")
        if not len(listed) or not _SAFE_NAME.match(trial_id) or not _SAFE_NAME.match(file_name):
            raise missing
        fs, root = filesystem(experiment.location)
        path = posixpath.normpath(posixpath.join(root, "artifacts", trial_id, file_name))
        if not path.startswith(root.rstrip("/") + "/"):
            raise missing
        if not is_uri(experiment.location):
            _check_confined(path, root, missing)
        try:
            with fs.open_input_file(path) as stream:
                return stream.read()
        except (OSError, FileNotFoundError):
            raise ExplorerError(f"artifact {file_name!r} of trial {trial_id!r} cannot be read") from None


def _check_confined(path: str, experiment_root: str, missing: ExplorerError) -> None:
    """Raise ``missing`` unless ``path`` is a regular, singly linked file really inside ``experiment_root``.

    A symbolic link may point anywhere and a hard link may share the bytes of a file anywhere on the disk, so
    neither the listed name nor the storage root is enough."""
    real, real_root = os.path.realpath(path), os.path.realpath(experiment_root)
    if os.path.commonpath([real, real_root]) != real_root or real == real_root:
        raise missing
    try:
        status = os.stat(real)
    except OSError:
        raise missing from None
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        raise missing


def _timestamp(value: Any) -> float:
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return float(value or 0)


def _read_experiment(name: str, store: ResultsStore, version: tuple[tuple[str, ...], ...]) -> Experiment:
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


def finite(values: pd.Series) -> np.ndarray:
    """The finite float values of a column (NaN, inf and missing dropped)."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return array[np.isfinite(array)]
