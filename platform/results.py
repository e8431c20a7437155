"""The results store: Parquet tables under ``<storage>/<experiment>/tables/<table>/``.

One writer (a Tune callback on the driver) appends small part files as results arrive, so a crash loses
nothing already reported and readers (``pyarrow.dataset``) see a consistent table at any moment. Rows carry
a ``_seq`` (write order); a key written twice (a trial's status changing, or an epoch re-run after
``--resume``) resolves to the last write, both when reading and when ``compact`` rewrites a table into one
file at the end of a sweep. ``storage`` is a local path or any pyarrow filesystem URI (``s3://``, ``gs://``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

TABLES = ("trials", "epochs", "artifacts")
KEYS = {"trials": ("trial_id",), "epochs": ("trial_id", "epoch"), "artifacts": ("trial_id", "path")}
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


def _table_from_rows(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {}
    for index, row in enumerate(rows):
        for key in row:
            columns.setdefault(key, [None] * index)
        for key, values in columns.items():
            values.append(_normalise(row.get(key)))
    arrays = {}
    for key, values in columns.items():
        try:
            arrays[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed types across rows (e.g. a config value int in one trial, str in another): keep text.
            arrays[key] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.table(arrays)


class ResultsStore:
    """Append-only Parquet tables of one experiment."""

    def __init__(self, experiment: str) -> None:
        self.location = experiment
        self.fs, self.root = filesystem(experiment)
        self._seq = time.time_ns()
        self._appended: dict[str, int] = {}

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
        pq.write_table(_table_from_rows(rows), temporary, filesystem=self.fs)
        self.fs.move(temporary, f"{directory}/{name}")
        self._appended[table] = self._appended.get(table, 0) + 1
        if self._appended[table] >= MERGE_EVERY:
            self.merge(table)

    def merge(self, table: str) -> None:
        """Fold the small parts of a live table into one file, so readers open a few files, not one per row.

        Rows keep their ``_seq``, so the last write per key still wins. Merged files pile up to
        ``MERGED_LIMIT`` and are then compacted into one: each row is rewritten O(log) times, not per append.
        The new file is written before the old ones are deleted; a reader listing in between sees rows twice,
        which ``read`` resolves like any rewrite.
        """
        self._appended[table] = 0
        parts = self._parts(table)
        small = [p for p in parts if not p.endswith(("-merged.parquet", "-compact.parquet"))]
        if len(parts) - len(small) >= MERGED_LIMIT:
            self.compact(table)
            return
        if len(small) < 2:
            return
        data = ds.dataset(small, schema=self.schema(table, small), filesystem=self.fs, format="parquet").to_table()
        self._seq = max(self._seq + 1, time.time_ns())
        name = f"part-{self._seq}-merged.parquet"
        directory = self.table_dir(table)
        pq.write_table(data, f"{directory}/.{name}.tmp", filesystem=self.fs)
        self.fs.move(f"{directory}/.{name}.tmp", f"{directory}/{name}")
        for part in small:
            self.fs.delete_file(part)

    def _parts(self, table: str) -> list[str]:
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        return sorted(info.path for info in self.fs.get_file_info(selector)
                      if info.is_file and info.base_name.endswith(".parquet")
                      and not info.base_name.startswith("."))

    def version(self) -> tuple[tuple[str, ...], ...]:
        """A cheap fingerprint of every table (its part files; names are unique per write), for caches."""
        return tuple(tuple(self._parts(table)) for table in TABLES)

    def schema(self, table: str, parts: list[str] | None = None) -> pa.Schema:
        """The unified schema of a table's parts (empty if nothing was written yet)."""
        parts = self._parts(table) if parts is None else parts
        # Parts differ in columns (a RUNNING trial row has no metrics yet) and may widen a type (int ->
        # double): read every footer and unify permissively so no column of a later part is dropped.
        schemas = [pq.read_schema(part, filesystem=self.fs) for part in parts]
        return pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])

    def read(self, table: str, columns: list[str] | None = None, latest: bool = True,
             where: tuple[str, Any] | None = None, trial_ids: Iterable[str] | None = None) -> pa.Table:
        """The table (last write per key when ``latest``), optionally only rows with ``column == value``
        and/or of ``trial_ids``; only ``columns`` (plus keys) when given; empty if nothing was written yet."""
        trial_ids = None if trial_ids is None else sorted(set(trial_ids))
        for attempt in range(3):
            try:
                return self._read(table, columns, latest, where, trial_ids)
            except FileNotFoundError:
                # The writer merged parts between our listing and our reading: list again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read(self, table: str, columns: list[str] | None, latest: bool, where: tuple[str, Any] | None,
              trial_ids: list[str] | None) -> pa.Table:
        parts = self._parts(table)
        if not parts:
            return pa.table({})
        schema = self.schema(table, parts)
        dataset = ds.dataset(parts, schema=schema, filesystem=self.fs, format="parquet")
        wanted = None
        if columns is not None:
            wanted = sorted(set(columns) | set(KEYS[table]) | {"_seq"})
            wanted = [c for c in wanted if c in dataset.schema.names]
        condition = ds.field(where[0]) == where[1] if where and where[0] in schema.names else None
        if trial_ids is not None:
            chosen = ds.field("trial_id").isin(pa.array(trial_ids, pa.string()))
            condition = chosen if condition is None else condition & chosen
        data = dataset.to_table(columns=wanted, filter=condition)
        if latest and data.num_rows:
            data = _latest(data, KEYS[table])
        return data

    def compact(self, table: str, keep_trials: set[str] | None = None) -> None:
        """Rewrite a table as one file of its latest rows (only ``keep_trials``' rows when given);
        parts are removed only after the new file exists."""
        parts = self._parts(table)
        if not parts or (len(parts) == 1 and keep_trials is None):
            return
        data = self.read(table)
        if keep_trials is not None and data.num_rows:
            data = data.filter(pc.is_in(data["trial_id"], value_set=pa.array(sorted(keep_trials), pa.string())))
        directory = self.table_dir(table)
        self._seq = max(self._seq + 1, time.time_ns())
        name = f"part-{self._seq}-compact.parquet"
        pq.write_table(data, f"{directory}/.{name}.tmp", filesystem=self.fs)
        self.fs.move(f"{directory}/.{name}.tmp", f"{directory}/{name}")
        for part in parts:
            self.fs.delete_file(part)


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


def filter_equal(data: pa.Table, column: str, value: Any) -> pa.Table:
    return data.filter(pc.equal(data[column], value))
