"""What a benchmark hands back and how it is shown and kept: the result model, the machine description and
package versions, an aligned text table, and the JSON results file."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

PACKAGES = ("torch", "ray", "optuna", "monai", "numpy", "pyarrow")


class BenchSkipped(Exception):
    """A benchmark that cannot run on this machine (e.g. ``gpu`` without CUDA): its one-line reason is printed and
    recorded, and the command still exits 0."""


@dataclass
class Target:
    """A goal on one figure: ``figures[figure] op value``."""

    figure: str
    op: Literal["<=", ">="]
    value: float

    def met(self, figures: dict[str, Any]) -> bool:
        measured = figures.get(self.figure)
        if not isinstance(measured, (int, float)) or not math.isfinite(measured):
            return False
        return measured <= self.value if self.op == "<=" else measured >= self.value


@dataclass
class BenchResult:
    """One benchmark's outcome: headline figures with targets, a table of the detail, the settings used."""

    name: str
    description: str
    headers: list[str]
    rows: list[list[Any]]
    figures: dict[str, float]
    targets: list[Target]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "settings": self.settings,
            "figures": self.figures,
            "targets": [{"figure": t.figure, "op": t.op, "value": t.value, "measured": self.figures.get(t.figure),
                         "met": t.met(self.figures)} for t in self.targets],
            "met": all(t.met(self.figures) for t in self.targets),
            "table": {"headers": self.headers, "rows": self.rows},
            "notes": self.notes,
            "seconds": self.seconds,
        }


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, missing values as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_text(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def result_text(result: BenchResult) -> str:
    """The printed form of a result: title, detail table, each target with its verdict, notes."""
    lines = [f"== {result.name}: {result.description} ({result.seconds:.0f} s)", table_text(result.headers,
                                                                                            result.rows)]
    for target in result.targets:
        measured = result.figures.get(target.figure)
        verdict = "met" if target.met(result.figures) else "MISSED"
        lines.append(f"target {target.figure} {target.op} {target.value:g}: measured {cell(measured)} -> {verdict}")
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def _ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> dict[str, Any]:
    """This machine, from ``os``/``sys`` only (the platform's rule: no stdlib ``platform`` calls)."""
    uname = os.uname()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "ram_gb": _ram_gb(),
        "os": f"{uname.sysname} {uname.release} {uname.machine}",
        "python": sys.version.split()[0],
        # Other work on the machine skews every figure; the load when the run started says how much.
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically (a temporary file, then rename), so an interrupted run leaves the last complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(_finite(document), indent=2, default=str) + "\n")
    os.replace(temporary, path)
