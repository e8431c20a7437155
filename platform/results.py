"""The results store: Parquet tables under ``<storage>/<experiment>/tables/<table>/``, and their vocabulary.

Tables: ``trials`` (one row per trial), ``epochs`` (per trial and epoch), ``artifacts`` (saved images), ``cases``
(per trial, evaluated epoch or checkpoint, and case: each volume's own scores) and ``sweep`` (one row: the
objectives and the metadata of the metrics and the search axes, so readers never guess from names).

One writer (a Tune callback on the driver) appends small part files as results arrive, so a crash loses
nothing already reported and readers (``pyarrow.dataset``) see a consistent table at any moment. Rows carry
a ``_seq`` (write order); a key written twice (a trial's status changing, or an epoch re-run after
``--resume``) resolves to the last write, both when reading and when ``compact`` rewrites a table into one
file at the end of a sweep. ``storage`` is a local path or any pyarrow filesystem URI (``s3://``, ``gs://``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

TABLES = ("trials", "epochs", "artifacts", "cases", "sweep")
KEYS = {"trials": ("trial_id",), "epochs": ("trial_id", "epoch"), "artifacts": ("trial_id", "path"),
        "cases": ("trial_id", "epoch", "split", "checkpoint", "domain", "subject"), "sweep": ("experiment",)}
MERGE_EVERY = 64  # appends by this writer before its small parts are merged into one file
MERGED_LIMIT = 16  # merged files before a table is compacted into one


def is_uri(location: str) -> bool:
    return "://" in location


def resolve_storage(location: str) -> str:
    """An absolute local path, or the URI unchanged (Tune and pyarrow need absolute paths)."""
    return location if is_uri(location) else str(Path(location).expanduser().resolve())


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for a local path or URI."""
    if is_uri(location):
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), resolve_storage(location)


def experiment_uri(storage: str, name: str) -> str:
    base = resolve_storage(storage)
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else os.path.join(base, name)


def copy_to_storage(local_file: Path, destination_dir: str) -> str:
    """Copy one local file into ``destination_dir`` (path or URI); returns the stored location."""
    fs, directory = filesystem(destination_dir)
    fs.create_dir(directory, recursive=True)
    target = f"{directory.rstrip('/')}/{local_file.name}"
    pafs.copy_files(str(local_file), target, destination_filesystem=fs)
    return f"{destination_dir.rstrip('/')}/{local_file.name}"


def check_writable(location: str) -> None:
    """Raise OSError (with the reason) if ``location`` cannot be created and written."""
    fs, path = filesystem(location)
    fs.create_dir(path, recursive=True)
    probe = f"{path.rstrip('/')}/.write-probe-{uuid.uuid4().hex}"
    with fs.open_output_stream(probe) as stream:
        stream.write(b"ok")
    fs.delete_file(probe)


STORAGE_TIMEOUT_S = float(os.environ.get("SEGSWEEP_STORAGE_TIMEOUT_S", "30"))
# The probe of a remote store runs in a child process: a client that never answers (gs:// without a metadata
# server) blocks inside C++ where no thread can be interrupted, and a child can be killed.
_PROBE = """
import sys, uuid
import pyarrow.fs as pafs
fs, path = pafs.FileSystem.from_uri(sys.argv[1])
fs.create_dir(path, recursive=True)
probe = path.rstrip("/") + "/.write-probe-" + uuid.uuid4().hex
with fs.open_output_stream(probe) as stream:
    stream.write(b"ok")
fs.delete_file(probe)
"""


class StorageError(Exception):
    """The results storage cannot be used; ``str(err)`` says what was tried and how to fix it."""


def check_storage(location: str, timeout_s: float | None = None) -> None:
    """Create ``location`` and write a probe file there within ``timeout_s``; StorageError otherwise."""
    timeout_s = STORAGE_TIMEOUT_S if timeout_s is None else timeout_s
    if not is_uri(location):
        try:
            check_writable(location)
        except OSError as exc:
            raise StorageError(f"storage {location!r} cannot be written ({exc}). Choose a writable path with "
                               "--storage or 'storage:' in the spec.") from None
        return
    import subprocess

    fix = ("Check the bucket name and address, and the credentials: for s3:// set AWS_ACCESS_KEY_ID and "
           "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and for MinIO or Ceph add ?endpoint_override=HOST:PORT"
           "&scheme=http to the URI; for gs:// set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file.")
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE, location], capture_output=True, text=True,
                                timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StorageError(f"storage {location!r} did not answer within {timeout_s:g} s (tried to create the "
                           f"directory and write a probe file there). {fix}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else f"exit code {result.returncode}"
        raise StorageError(f"storage {location!r} cannot be written ({reason}). {fix}")


def _normalise(value: Any) -> Any:
    """Parquet-friendly scalars: lists/dicts become their string form, numpy scalars become Python."""
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    return value


# --- declared column types -----------------------------------------------------------------------------------
# Every part of a table is written with these types, so no two parts can disagree and a merge or compaction
# never meets ``double`` in one part and ``string`` in another.
_STRING, _FLOAT, _INT, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.bool_()
COLUMN_TYPES: dict[str, dict[str, pa.DataType]] = {
    "trials": {"trial_id": _STRING, "experiment": _STRING, "trainer": _STRING, "status": _STRING,
               "error": _STRING, "objectives": _STRING, "config_json": _STRING, "seed": _INT, "fold": _INT,
               "repeat": _INT, "epochs": _INT, "started_at": _FLOAT, "ended_at": _FLOAT, "wall_s": _FLOAT,
               "time_in_epochs_s": _FLOAT, "overhead_s": _FLOAT},
    "epochs": {"trial_id": _STRING, "epoch": _INT, "time_total_s": _FLOAT},
    "artifacts": {"trial_id": _STRING, "path": _STRING, "kind": _STRING, "domain": _STRING},
    "cases": {"trial_id": _STRING, "epoch": _INT, "split": _STRING, "checkpoint": _STRING, "domain": _STRING,
              "subject": _STRING},
    "sweep": {"experiment": _STRING, "trainer": _STRING, "objectives": _STRING, "metrics": _STRING,
              "axes": _STRING, "explore": _STRING},
}
# Columns named by prefix: metrics are floats wherever they appear.
PREFIX_TYPES: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "trials": (("best/", _FLOAT), ("last/", _FLOAT)),
    "epochs": (("", _FLOAT),),  # every other epochs column is a metric or a timing
    "artifacts": (),
    "cases": (("", _FLOAT),),  # every other cases column is a metric (metric or metric/class)
    "sweep": (),
}


def axis_column_type(kind: str, values: list[Any]) -> pa.DataType:
    """The declared type of a ``config/<axis>`` column: ranges by their kind; a choice or grid by its (already
    coerced) values. Lists and mappings are stored as JSON text."""
    if kind in ("uniform", "loguniform"):
        return _FLOAT
    if kind == "int":
        return _INT
    present = {type(value) for value in values if value is not None}
    if not present or present - {bool, int, float, str}:
        return _STRING
    if present == {bool}:
        return _BOOL
    if present <= {int}:
        return _INT
    if present <= {int, float}:
        return _FLOAT
    return _STRING


def _declared(table: str, column: str, declared: dict[str, pa.DataType]) -> pa.DataType | None:
    if column == "_seq":
        return _INT
    if column in declared:
        return declared[column]
    if column in COLUMN_TYPES[table]:
        return COLUMN_TYPES[table][column]
    return next((kind for prefix, kind in PREFIX_TYPES[table] if column.startswith(prefix)), None)


def _conform(value: Any, kind: pa.DataType) -> Any:
    """``value`` as a Python value of ``kind``; None when it cannot be one (the caller reports it)."""
    if value is None:
        return None
    if kind == _STRING:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        return value if kind == _BOOL else None
    if kind == _BOOL:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if kind == _INT:
        return int(number) if number.is_integer() else None
    return number


def _column(table: str, key: str, values: list[Any], declared: dict[str, pa.DataType]) -> pa.Array:
    kind = _declared(table, key, declared)
    if kind is not None:
        conformed = [_conform(v, kind) for v in values]
        lost = [v for v, c in zip(values, conformed, strict=True) if v is not None and c is None]
        if lost:
            # A value that does not fit its declared type is kept as text in a column of its own, never
            # in a second type of the same column (which would make the table unreadable as one).
            raise _Misfit(key, lost[0], kind)
        return pa.array(conformed, type=kind)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types across rows of an undeclared column: keep text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


class _Misfit(Exception):
    def __init__(self, column: str, value: Any, kind: pa.DataType) -> None:
        super().__init__(column, value, kind)
        self.column, self.value, self.kind = column, value, kind


def _table_from_rows(rows: list[dict[str, Any]], table: str = "epochs",
                     declared: dict[str, pa.DataType] | None = None) -> pa.Table:
    declared = declared or {}
    columns: dict[str, list[Any]] = {}
    for index, row in enumerate(rows):
        for key in row:
            columns.setdefault(key, [None] * index)
        for key, values in columns.items():
            values.append(_normalise(row.get(key)))
    arrays = {}
    for key, values in list(columns.items()):
        try:
            arrays[key] = _column(table, key, values, declared)
        except _Misfit as misfit:
            sys.stderr.write(f"warning: results column {key!r} is declared {misfit.kind} but got "
                             f"{_short(misfit.value)}; the value is kept as text in {key + '#text'!r}.\n")
            arrays[key] = pa.array([_conform(v, misfit.kind) for v in values], type=misfit.kind)
            arrays[f"{key}#text"] = pa.array([None if v is None or _conform(v, misfit.kind) is not None
                                              else str(v) for v in values], type=pa.string())
    return pa.table(arrays)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ResultsStore:
    """Append-only Parquet tables of one experiment.

    ``declared`` gives column types per table beyond the fixed vocabulary (``COLUMN_TYPES``), e.g. each
    ``config/<axis>`` column's type from the search space, so every part a writer appends agrees with the others.
    Reading never fails on one bad part: an unreadable part is skipped and named in ``problems``, and parts whose
    types disagree (written before types were declared) are read with one unified type per column.
    """

    def __init__(self, experiment: str, declared: dict[str, dict[str, pa.DataType]] | None = None) -> None:
        self.location = experiment
        self.fs, self.root = filesystem(experiment)
        self.declared = declared or {}
        self._seq = time.time_ns()
        self._appended: dict[str, int] = {}
        self.problems: dict[str, dict[str, str]] = {}  # table -> part path -> why it was skipped

    def table_dir(self, table: str) -> str:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables are {TABLES}")
        return f"{self.root.rstrip('/')}/tables/{table}"

    def append(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Write rows as one new part file (atomically: temporary name, then rename)."""
        rows = list(rows)
        if not rows:
            return
        for row in rows:
            self._seq = max(self._seq + 1, time.time_ns())
            row["_seq"] = self._seq
        directory = self.table_dir(table)
        self.fs.create_dir(directory, recursive=True)
        name = f"part-{self._seq}-{uuid.uuid4().hex[:8]}.parquet"
        temporary = f"{directory}/.{name}.tmp"
        pq.write_table(_table_from_rows(rows, table, self.declared.get(table)), temporary, filesystem=self.fs)
        self.fs.move(temporary, f"{directory}/{name}")
        self._appended[table] = self._appended.get(table, 0) + 1
        if self._appended[table] >= MERGE_EVERY:
            self.merge(table)

    def merge(self, table: str) -> None:
        """Fold the small parts of a live table into one file, so readers open a few files, not one per row.

        Rows keep their ``_seq``, so the last write per key still wins. Merged files pile up to
        ``MERGED_LIMIT`` and are then compacted into one: each row is rewritten O(log) times, not per append.
        The new file is written before the old ones are deleted; a reader listing in between sees rows twice,
        which ``read`` resolves like any rewrite. A part that cannot be read is left where it is.
        """
        self._appended[table] = 0
        parts = self._parts(table)
        small = [p for p in parts if not p.endswith(("-merged.parquet", "-compact.parquet"))]
        if len(parts) - len(small) >= MERGED_LIMIT:
            self.compact(table)
            return
        if len(small) < 2:
            return
        data, used = self._scan(table, small, None, None)
        self._write_whole(table, data, "merged")
        for part in used:
            self.fs.delete_file(part)

    def _write_whole(self, table: str, data: pa.Table, suffix: str) -> None:
        self._seq = max(self._seq + 1, time.time_ns())
        name = f"part-{self._seq}-{suffix}.parquet"
        directory = self.table_dir(table)
        pq.write_table(data, f"{directory}/.{name}.tmp", filesystem=self.fs)
        self.fs.move(f"{directory}/.{name}.tmp", f"{directory}/{name}")

    def _parts(self, table: str) -> list[str]:
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        return sorted(info.path for info in self.fs.get_file_info(selector)
                      if info.is_file and info.base_name.endswith(".parquet")
                      and not info.base_name.startswith("."))

    def version(self) -> tuple[tuple[str, ...], ...]:
        """A cheap fingerprint of every table (its part files; names are unique per write), for caches."""
        return tuple(tuple(self._parts(table)) for table in TABLES)

    def schema(self, table: str, parts: list[str] | None = None) -> pa.Schema:
        """The unified schema of a table's readable parts (empty if nothing was written yet)."""
        if parts is not None:
            return self._schema(table, parts)[0]
        return _retrying(lambda: self._schema(table, self._parts(table))[0])

    def _schema(self, table: str, parts: list[str]) -> tuple[pa.Schema, list[str], set[str]]:
        """(unified schema, the parts whose footer reads, columns whose types disagree between parts)."""
        schemas, readable = [], []
        problems = self.problems.setdefault(table, {})
        for part in parts:
            try:
                schemas.append(pq.read_schema(part, filesystem=self.fs))
                readable.append(part)
                problems.pop(part, None)
            except FileNotFoundError:
                raise
            except (pa.ArrowException, OSError) as exc:
                problems[part] = f"not a readable Parquet file ({_short(str(exc), 120)})"
        if not schemas:
            return pa.schema([]), readable, set()
        # Parts differ in columns (a RUNNING trial row has no metrics yet) and may widen a type (int ->
        # double): unify permissively so no column of a later part is dropped.
        try:
            return pa.unify_schemas(schemas, promote_options="permissive"), readable, set()
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            return _unify_conflicting(schemas), readable, _conflicting(schemas)

    def unreadable(self, table: str | None = None) -> list[str]:
        """One line per part skipped by the last reads (of ``table``, or of every table)."""
        tables = [table] if table else list(self.problems)
        return [f"{path}: {why}" for name in tables for path, why in sorted(self.problems.get(name, {}).items())]

    def read(self, table: str, columns: list[str] | None = None, latest: bool = True,
             where: tuple[str, Any] | None = None, trial_ids: Iterable[str] | None = None) -> pa.Table:
        """The table (last write per key when ``latest``), optionally only rows with ``column == value``
        and/or of ``trial_ids``; only ``columns`` (plus keys) when given; empty if nothing was written yet."""
        trial_ids = None if trial_ids is None else sorted(set(trial_ids))
        return _retrying(lambda: self._read(table, columns, latest, where, trial_ids))

    def _read(self, table: str, columns: list[str] | None, latest: bool, where: tuple[str, Any] | None,
              trial_ids: list[str] | None) -> pa.Table:
        parts = self._parts(table)
        if not parts:
            return pa.table({})
        data, _ = self._scan(table, parts, columns, (where, trial_ids))
        if latest and data.num_rows:
            data = _latest(data, KEYS[table])
        return data

    def _scan(self, table: str, parts: list[str], columns: list[str] | None,
              condition: tuple[tuple[str, Any] | None, list[str] | None] | None) -> tuple[pa.Table, list[str]]:
        """Rows of ``parts`` (those that read) under one schema, and the parts that were read."""
        schema, readable, conflicts = self._schema(table, parts)
        if not readable:
            return pa.table({}), []
        wanted = None
        if columns is not None:
            wanted = sorted(set(columns) | set(KEYS[table]) | {"_seq"})
            wanted = [c for c in wanted if c in schema.names]
        where, trial_ids = condition or (None, None)
        flt = ds.field(where[0]) == where[1] if where and where[0] in schema.names else None
        if trial_ids is not None:
            chosen = ds.field("trial_id").isin(pa.array(trial_ids, pa.string()))
            flt = chosen if flt is None else flt & chosen
        try:
            dataset = ds.dataset(readable, schema=schema, filesystem=self.fs, format="parquet")
            return dataset.to_table(columns=wanted, filter=flt), readable
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError):
            # A conflicting column that does not cast (text that is not a number), or a part whose footer reads
            # but whose data does not: read part by part, as text where types disagree, skipping what fails.
            text = pa.schema([pa.field(f.name, pa.string()) if f.name in conflicts else f for f in schema])
            return self._scan_each(table, readable, text, wanted, flt)

    def _scan_each(self, table: str, parts: list[str], schema: pa.Schema, wanted: list[str] | None,
                   flt: Any) -> tuple[pa.Table, list[str]]:
        pieces, used = [], []
        for part in parts:
            try:
                piece = ds.dataset(part, schema=schema, filesystem=self.fs, format="parquet").to_table(
                    columns=wanted, filter=flt)
            except FileNotFoundError:
                raise
            except (pa.ArrowException, OSError) as exc:
                self.problems.setdefault(table, {})[part] = f"cannot be read ({_short(str(exc), 120)})"
                continue
            pieces.append(piece)
            used.append(part)
        if not pieces:
            return pa.table({}), []
        return pa.concat_tables(pieces, promote_options="permissive"), used

    def compact(self, table: str, keep_trials: set[str] | None = None) -> None:
        """Rewrite a table as one file of its latest rows (only ``keep_trials``' rows when given);
        parts are removed only after the new file exists, and a part that cannot be read is left alone."""
        parts = self._parts(table)
        if not parts or (len(parts) == 1 and keep_trials is None):
            return
        data, used = self._scan(table, parts, None, None)
        if not used:
            return
        if data.num_rows:
            data = _latest(data, KEYS[table])
        if keep_trials is not None and data.num_rows:
            data = data.filter(pc.is_in(data["trial_id"], value_set=pa.array(sorted(keep_trials), pa.string())))
        self._write_whole(table, data, "compact")
        for part in used:
            self.fs.delete_file(part)


def _retrying(read: Any, attempts: int = 5) -> Any:
    """``read()``, listing again when a writer merged parts between our listing and our reading."""
    for attempt in range(attempts):
        try:
            return read()
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _conflicting(schemas: list[pa.Schema]) -> set[str]:
    types: dict[str, set[pa.DataType]] = {}
    for schema in schemas:
        for item in schema:
            if item.type != pa.null():
                types.setdefault(item.name, set()).add(item.type)
    return {name for name, kinds in types.items() if len(kinds) > 1}


def _unify_conflicting(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for parts whose types disagree: numbers and text as double (text that parses), else text."""
    conflicts = _conflicting(schemas)
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for item in schema:
            if item.name in conflicts:
                numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
                              or pa.types.is_large_string(t) or pa.types.is_boolean(t)
                              for t in {s.field(item.name).type for s in schemas if item.name in s.names})
                fields.setdefault(item.name, pa.field(item.name, pa.float64() if numeric else pa.string()))
            elif item.name not in fields or fields[item.name].type == pa.null():
                fields[item.name] = item
    return pa.schema(list(fields.values()))


# --- rows the sweep writes (the one writer is the Tune callback in platform.tuning) --------------------------------
EPOCH_TIME = "time/epoch_s"  # the metric each epoch row times itself with
ARTIFACTS_KEY = "artifacts"  # a trial result's JSON list of saved images
CASES_KEY = "cases"  # a trial result's JSON list of per-case scores
TIME_COLUMNS = ("wall_s", "overhead_s", "time_in_epochs_s", "time_total_s")  # smaller is better


def epoch_row(trial_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """The epochs-table row of one reported result: every numeric ``split/metric`` value, the epoch, the time."""
    metrics = {k: float(v) for k, v in result.items() if ("/" in k or k == "epoch") and _is_number(v)}
    return {"trial_id": trial_id, "time_total_s": float(result.get("time_total_s", 0.0)), **metrics,
            "epoch": int(result.get("epoch", result.get("training_iteration", 0)))}


def listed_rows(trial_id: str, result: dict[str, Any], key: str, **extra: Any) -> list[dict[str, Any]]:
    """Rows a result carries as JSON under ``key`` (artifacts, cases), each with the trial id and ``extra``."""
    text = result.get(key)
    if not isinstance(text, str) or not text:
        return []
    return [{"trial_id": trial_id, **extra, **item} for item in json.loads(text)]


def summary_row(rows: list[dict[str, Any]], objectives: list[tuple[str, str]]) -> dict[str, Any]:
    """Best (per objective: metric, mode) and last metrics and the time spent in epochs, from epoch rows."""
    rows = sorted(rows, key=lambda r: r.get("epoch") or 0)
    row: dict[str, Any] = {"epochs": len(rows)}
    if not rows:
        return row
    for metric, mode in objectives:
        finite = [r[metric] for r in rows if r.get(metric) is not None and math.isfinite(r[metric])]
        if finite:
            row[f"best/{metric}"] = max(finite) if mode == "max" else min(finite)
    for key, value in rows[-1].items():
        if key.startswith(("val/", "train/")) and value is not None:
            row[f"last/{key}"] = value
    row["time_in_epochs_s"] = sum(r.get(EPOCH_TIME) or 0.0 for r in rows)
    return row


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _latest(data: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Keep, for each key, the row with the largest ``_seq``; sorted by key.

    Vectorised: sort by key then newest first, and keep each row whose key differs from the row before.
    """
    present = [k for k in keys if k in data.column_names]
    if not present or data.num_rows < 2:
        return data
    ordered = data.sort_by([(k, "ascending") for k in present] + [("_seq", "descending")])
    changed = None
    for key in present:
        column = ordered[key].combine_chunks()
        differs = pc.fill_null(pc.not_equal(column.slice(1), column.slice(0, len(column) - 1)), True)
        changed = differs if changed is None else pc.or_(changed, differs)
    keep = pa.concat_arrays([pa.array([True]), changed])
    return ordered.filter(keep)


def read_table(experiment: str, table: str, columns: list[str] | None = None) -> pa.Table:
    """Convenience for dashboards and tests."""
    return ResultsStore(experiment).read(table, columns=columns)
