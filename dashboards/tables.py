"""What the explorer reads: the experiments under a storage root and their results tables, read-only.

Only ``platform.results`` is used (the tables contract); never trainer code. An experiment is a direct child
of the storage root holding ``tables/trials``; a name from a URL or a form field is accepted only if it is one
of those children, so nothing outside the root is ever opened. Reads are projected to the columns a view
needs and cached per experiment *version* (the set of part files, whose names are unique per write), so a
live refresh that finds nothing new costs three directory listings.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from dashboards.experiment import AXIS_KINDS, Experiment, Objective, read_experiment  # noqa: F401 (re-exported)
from platform.results import ResultsStore
from platform.storage import experiment_uri, filesystem, is_uri, resolve_storage

# Letters, digits, dot, dash, underscore; no leading dot: no "..", no separators, no hidden directories.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_CACHE_SIZE = 8  # experiment versions kept: the experiment comparison reads several at once
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
                experiment = read_experiment(name, store, version)
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
