"""The declared type of every column of the results tables, and the conversion of rows to Arrow tables.

Every part of a table is written with these types, so no two parts can disagree and a merge or compaction never
meets ``double`` in one part and ``string`` in another. Fixed columns are typed by name, metrics by prefix, and a
sweep declares the rest (each ``config/<axis>`` from its search space).
"""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa


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


_STRING, _FLOAT, _INT, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.bool_()
COLUMN_TYPES: dict[str, dict[str, pa.DataType]] = {
    "trials": {"trial_id": _STRING, "experiment": _STRING, "trainer": _STRING, "status": _STRING,
               "error": _STRING, "objectives": _STRING, "config_json": _STRING, "seed": _INT, "fold": _INT,
               "repeat": _INT, "epochs": _INT, "started_at": _FLOAT, "ended_at": _FLOAT, "wall_s": _FLOAT,
               "time_in_epochs_s": _FLOAT, "overhead_s": _FLOAT, "planned_epochs": _INT, "stopped_early": _BOOL,
               "traceback": _STRING, "warnings": _STRING},
    "epochs": {"trial_id": _STRING, "epoch": _INT, "time_total_s": _FLOAT},
    "artifacts": {"trial_id": _STRING, "path": _STRING, "kind": _STRING, "domain": _STRING, "subject": _STRING,
                  "split": _STRING, "legend": _STRING, "epoch": _INT, "checkpoint": _STRING},
    "cases": {"trial_id": _STRING, "epoch": _INT, "split": _STRING, "checkpoint": _STRING, "domain": _STRING,
              "subject": _STRING},
    "sweep": {"experiment": _STRING, "trainer": _STRING, "objectives": _STRING, "metrics": _STRING,
              "axes": _STRING, "explore": _STRING, "provenance": _STRING},
}
# Columns named by prefix: metrics are floats wherever they appear.
PREFIX_TYPES: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "trials": (("best/", _FLOAT), ("last/", _FLOAT), ("test/", _FLOAT), ("model/", _FLOAT)),
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


def table_from_rows(rows: list[dict[str, Any]], table: str = "epochs",
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
                             f"{short_repr(misfit.value)}; the value is kept as text in {key + '#text'!r}.\n")
            arrays[key] = pa.array([_conform(v, misfit.kind) for v in values], type=misfit.kind)
            arrays[f"{key}#text"] = pa.array([None if v is None or _conform(v, misfit.kind) is not None
                                              else str(v) for v in values], type=pa.string())
    return pa.table(arrays)


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
