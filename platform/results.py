"""The results store: Parquet tables under ``<storage>/<experiment>/tables/<table>/``, and their vocabulary.

Tables: ``trials`` (one row per trial), ``epochs`` (per trial and epoch), ``artifacts`` (saved images), ``cases``
(per trial, evaluated epoch or checkpoint, and case: each volume's own scores) and ``sweep`` (one row: the
objectives and the metadata of the metrics and the search axes, so readers never guess from names).

One writer (a Tune callback on the driver) appends small part files as results arrive (gathered for up to a
couple of seconds, and always written before Tune saves its experiment state, see
``platform.tuning.ResultsCallback``), so a crash loses nothing Tune would not run again, and readers
(``pyarrow.dataset``) see a consistent table at any moment. Rows carry
a ``_seq`` (write order); a key written twice (a trial's status changing, or an epoch re-run after
``--resume``) resolves to the last write, both when reading and when ``compact`` rewrites a table into one
file at the end of a sweep. ``storage`` is a local path or any pyarrow filesystem URI (``s3://``, ``gs://``).

An experiment has one writer at a time (``platform.lock``). Each ``trials`` row names its writer (``_writer``, a
token per driver), so a rewrite removes only the rows of trials its own lineage of drivers wrote and Tune no
longer knows; rows of any other writer are kept. A write that fails (a full disk, a store that does not answer)
raises and leaves the deferred rows queued, so a later ``flush`` writes them.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from platform.columns import short_repr, table_from_rows
from platform.rows import *  # noqa: F403 (re-exported: the rows' vocabulary, read from here everywhere)
from platform.storage import filesystem

TABLES = ("trials", "epochs", "artifacts", "cases", "sweep")
KEYS = {"trials": ("trial_id",), "epochs": ("trial_id", "epoch"), "artifacts": ("trial_id", "path"),
        "cases": ("trial_id", "epoch", "split", "checkpoint", "domain", "subject"), "sweep": ("experiment",)}
WRITER_COLUMN = "_writer"  # the trials table's record of which driver wrote a row (internal, like ``_seq``)
MERGE_EVERY = 64  # appends by this writer before its small parts are merged into one file
MERGED_LIMIT = 16  # merged files before a table is compacted into one
# Rows per Parquet row group of a merged or compacted part. Compacted parts are sorted by key, so a read of a few
# trials (``trial_ids``) decodes only the row groups whose trial id range holds them: with one row group of a
# million rows, each such read decoded every trial id of the table.
ROW_GROUP_ROWS = 65_536


class ResultsStore:
    """Append-only Parquet tables of one experiment.

    ``declared`` gives column types per table beyond the fixed vocabulary (``COLUMN_TYPES``), e.g. each
    ``config/<axis>`` column's type from the search space, so every part a writer appends agrees with the others.
    Reading never fails on one bad part: an unreadable part is skipped and named in ``problems``, and parts whose
    types disagree (written before types were declared) are read with one unified type per column.
    """

    def __init__(self, experiment: str, declared: dict[str, dict[str, pa.DataType]] | None = None,
                 writer: str | None = None) -> None:
        self.location = experiment
        self.fs, self.root = filesystem(experiment)
        self.declared = {table: dict(types) for table, types in (declared or {}).items()}
        self.writer = writer  # names this writer in every trials row it appends (``WRITER_COLUMN``)
        if writer is not None:
            self.declared.setdefault("trials", {})[WRITER_COLUMN] = pa.string()
        self._seq = time.time_ns()
        self._appended: dict[str, int] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}  # deferred rows per table (``append(defer=True)``)
        self._pending_since: float | None = None
        self.problems: dict[str, dict[str, str]] = {}  # table -> part path -> why it was skipped

    def table_dir(self, table: str) -> str:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables are {TABLES}")
        return f"{self.root.rstrip('/')}/tables/{table}"

    def append(self, table: str, rows: Iterable[dict[str, Any]], defer: bool = False) -> None:
        """Write rows as one new part file (atomically: temporary name, then rename); with ``defer``, keep them
        until ``flush`` (their write order, ``_seq``, is fixed now), so many small appends make one file."""
        rows = list(rows)
        if not rows:
            return
        for row in rows:
            self._seq = max(self._seq + 1, time.time_ns())
            row["_seq"] = self._seq
            if self.writer is not None and table == "trials":
                row[WRITER_COLUMN] = self.writer
        if defer:
            self.table_dir(table)  # an unknown table fails here, not at the flush
            self._pending.setdefault(table, []).extend(rows)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            return
        self._write_part(table, rows)

    def pending_rows(self) -> int:
        return sum(len(rows) for rows in self._pending.values())

    def pending_age(self) -> float:
        """Seconds since the oldest deferred row (0 when none waits)."""
        return 0.0 if self._pending_since is None else time.monotonic() - self._pending_since

    def flush(self) -> None:
        """Write every deferred row: one part file per table. A table whose write fails (OSError, e.g. a full
        disk) keeps its rows queued, in order, and the error is raised; the tables written before it are done."""
        for table in list(self._pending):
            self._write_part(table, self._pending[table])
            del self._pending[table]  # only once written: a failed write leaves the rows for the next flush
        self._pending_since = None

    def _write_part(self, table: str, rows: list[dict[str, Any]]) -> None:
        directory = self.table_dir(table)
        self.fs.create_dir(directory, recursive=True)
        name = f"part-{self._seq}-{uuid.uuid4().hex[:8]}.parquet"
        temporary = f"{directory}/.{name}.tmp"
        try:
            pq.write_table(table_from_rows(rows, table, self.declared.get(table)), temporary, filesystem=self.fs)
        except OSError:
            # A part cut short (no space left) is not left behind; readers skip dot files anyway.
            with contextlib.suppress(OSError):
                self.fs.delete_file(temporary)
            raise
        self.fs.move(temporary, f"{directory}/{name}")
        self._appended[table] = self._appended.get(table, 0) + 1
        if self._appended[table] >= MERGE_EVERY:
            # The rows are written; a merge that fails (no space for the merged copy) is tried again later.
            with contextlib.suppress(OSError):
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
        pq.write_table(data, f"{directory}/.{name}.tmp", filesystem=self.fs, row_group_size=ROW_GROUP_ROWS)
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
                problems[part] = f"not a readable Parquet file ({short_repr(str(exc), 120)})"
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
        if self._pending:
            # This writer reads what it appended; a storage that fails now keeps the rows for a later flush.
            with contextlib.suppress(OSError):
                self.flush()
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
                self.problems.setdefault(table, {})[part] = f"cannot be read ({short_repr(str(exc), 120)})"
                continue
            pieces.append(piece)
            used.append(part)
        if not pieces:
            return pa.table({}), []
        return pa.concat_tables(pieces, promote_options="permissive"), used

    def compact(self, table: str, drop_trials: set[str] | None = None) -> None:
        """Rewrite a table as one file of its latest rows, without the rows of ``drop_trials`` (the trials this
        writer's lineage wrote and may replace: see ``replaceable_trials``); every other row is kept. Parts are
        removed only after the new file exists, and a part that cannot be read is left alone."""
        if self._pending:
            self.flush()
        parts = self._parts(table)
        if not parts or (len(parts) == 1 and not drop_trials):
            return
        data, used = self._scan(table, parts, None, None)
        if not used:
            return
        if data.num_rows:
            data = _latest(data, KEYS[table])
        if drop_trials and data.num_rows and "trial_id" in data.column_names:
            dropped = pc.is_in(data["trial_id"], value_set=pa.array(sorted(drop_trials), pa.string()))
            data = data.filter(pc.invert(pc.fill_null(dropped, False)))
        self._write_whole(table, data, "compact")
        for part in used:
            self.fs.delete_file(part)


    def replaceable_trials(self, known: set[str], writers: set[str]) -> set[str]:
        """Trials of the ``trials`` table that Tune does not know (not in ``known``) and whose rows were written by
        one of ``writers`` (this driver and the earlier drivers of the same experiment): a driver killed before
        Tune saved its state leaves such trials, which Tune starts afresh on ``--resume``. A trial of any other
        writer, or of none recorded, is never among them."""
        trials = self.read("trials", columns=["trial_id", WRITER_COLUMN])
        if not trials.num_rows or WRITER_COLUMN not in trials.column_names:
            return set()
        return {row["trial_id"] for row in trials.to_pylist()
                if row["trial_id"] not in known and row.get(WRITER_COLUMN) in writers}


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
