"""What ``--resume`` may change: the ``sweep`` table keeps the resolved spec (JSON) and its hash, and a resume
whose spec differs in what defines the trials is refused, naming the keys that differ.

Defining (refused when changed): the trainer, the data, the fixed trainer values, the search space, the searcher,
the scheduler, the objectives and the repeats: unfinished trials would otherwise run another sweep than the
finished ones. Free to change: the budget (trials, concurrency, time), the resources, the runtime options, the
storage location, the explorer's ``explore`` block and the ``paper`` table.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from platform.spec import SweepSpec

DEFINING = ("trainer", "data", "fixed", "search", "searcher", "scheduler", "objective", "repeats")
SPEC_COLUMN = "spec"  # the sweep table's resolved spec, as JSON
HASH_COLUMN = "spec_hash"  # sha256 of the canonical JSON of the resolved spec


def resolved_spec(spec: SweepSpec) -> dict[str, Any]:
    """The validated spec as plain JSON values (defaults filled in, values coerced)."""
    return json.loads(spec.model_dump_json())


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def spec_hash(spec: SweepSpec | dict[str, Any]) -> str:
    resolved = resolved_spec(spec) if isinstance(spec, SweepSpec) else spec
    return hashlib.sha256(canonical(resolved).encode()).hexdigest()


def spec_columns(spec: SweepSpec) -> dict[str, str]:
    """The sweep table's columns that record the spec."""
    resolved = resolved_spec(spec)
    return {SPEC_COLUMN: canonical(resolved), HASH_COLUMN: spec_hash(resolved)}


def differences(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON values (mappings are compared key by key)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                found.append(path)
            else:
                found += differences(before[key], after[key], path)
        return found
    return [] if canonical(before) == canonical(after) else [prefix]


def defining_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The defining keys (``DEFINING`` and below) in which ``current`` differs from ``stored``."""
    found: list[str] = []
    for key in DEFINING:
        found += differences(stored.get(key), current.get(key), key)
    return found


def _short(value: Any, limit: int = 60) -> str:
    text = "(absent)" if value is None else canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _at(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def resume_problem(experiment: str, spec: SweepSpec) -> str | None:
    """Why ``spec`` cannot continue ``experiment`` (its defining keys differ from the stored spec), or None.
    An experiment written before the spec was stored is not checked."""
    from platform.results import ResultsStore

    try:
        table = ResultsStore(experiment).read("sweep")
    except OSError:
        return None  # the tables cannot be read: Tune's own restore reports what is wrong
    if not table.num_rows or SPEC_COLUMN not in table.column_names:
        return None
    text = table.column(SPEC_COLUMN).to_pylist()[-1]
    if not text:
        return None
    try:
        stored = json.loads(text)
    except json.JSONDecodeError:
        return None
    current = resolved_spec(spec)
    if spec_hash(stored) == spec_hash(current):
        return None
    keys = defining_differences(stored, current)
    if not keys:
        return None
    shown = "; ".join(f"{key}: {_short(_at(stored, key))} -> {_short(_at(current, key))}" for key in keys[:8])
    more = f" (and {len(keys) - 8} more)" if len(keys) > 8 else ""
    sections = ", ".join(dict.fromkeys(key.split(".")[0] for key in keys))
    return (f"--resume: the spec differs from the one experiment {spec.name!r} was started with, in {sections} "
            f"({len(keys)} key(s) that define its trials): {shown}{more}. Unfinished trials would run another "
            "sweep than the finished ones. Resume with the original spec (only budget, resources, runtime, "
            "storage, explore and paper may change), or start a new experiment with a different name (e.g. "
            "name=my-sweep-2).")
