"""``python -m platform.reproduce [NAME ...] [--quick] [--storage URI] [--out DIR] [--read]``: the papers' tables
beside the measured ones.

Each spec of ``search_spaces/paper/`` carries a ``paper:`` block (:class:`platform.spec.PaperTable`): its rows
(which trials measure each, and the paper's number) and the orderings the paper reports. For every spec this runs
its sweeps (one per distinct ``run`` override of its rows), or reads them when they already finished, then prints
per row the paper's value and the measured mean with its 95% Student-t interval over seeds and n, and per claim
whether it holds, with the paired difference (by seed; Welch when the seeds do not pair) and its interval. It
writes the same as Markdown (``reproduce.md``), JSON (``reproduce.json``: per table, keyed by the spec's file stem,
``rows`` and ``claims``) and one self-contained HTML page with the figures (``reproduce.html``).

``--quick`` runs every sweep with ``--smoke`` sizes and two seeds: about a minute per table, to check the
machinery; its numbers mean nothing. Results on the phantom are not expected to equal the papers' numbers: the
directions and the significant gaps are the point.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from platform.spec import PaperClaim, PaperTable, SweepSpec, load_spec
from platform.specfile import SpecError
from platform.statistics import mean_interval, paired_or_welch

PAPER_DIR = Path(__file__).resolve().parent.parent / "search_spaces" / "paper"
QUICK_SEEDS = "repeats.seeds=[0, 1]"
EXIT_USER_ERROR = 2


# --- claims -----------------------------------------------------------------------------------------------------------

def claim_result(claim: PaperClaim, values: dict[str, dict[int, float]]) -> dict[str, Any]:
    """Whether ``claim`` holds on the measured ``values`` (row label -> seed -> value), with its difference
    (paired by seed, Welch when the seeds do not pair)."""
    interval = paired_or_welch(values[claim.larger], values[claim.smaller])
    diff = {"difference": interval.mean, "ci95": [interval.low, interval.high], "n": interval.n,
            "test": interval.method if interval.n >= 2 else "none"}
    low, high = diff["ci95"]
    if claim.at_least:  # "larger or equal": holds unless the larger row is significantly smaller
        holds = math.isfinite(diff["difference"]) and (diff["difference"] >= 0 or not high < 0)
    else:
        holds = math.isfinite(diff["difference"]) and diff["difference"] > 0
    return {"claim": claim.text, "larger": claim.larger, "smaller": claim.smaller, "holds": bool(holds),
            "significant": bool(math.isfinite(low) and (low > 0 or high < 0)), **diff}


# --- reading the trials ---------------------------------------------------------------------------------------------

@dataclass
class Table:
    """One paper table: its spec, the sweeps its rows read, and what was measured."""

    stem: str
    path: Path
    spec: SweepSpec
    paper: PaperTable
    runs: dict[tuple[str, ...], SweepSpec] = field(default_factory=dict)
    values: dict[str, dict[int, float]] = field(default_factory=dict)


def _column(rows: list[dict[str, Any]], metric: str) -> str:
    """The trials column of ``metric``: itself (test/..., best/..., model/...) or its last value."""
    present = {key for row in rows for key in row}
    for candidate in (metric, f"last/{metric}"):
        if candidate in present:
            return candidate
    return metric


def _matches(row: dict[str, Any], where: dict[str, Any]) -> bool:
    for key, wanted in where.items():
        value = row.get(f"config/{key}")
        if isinstance(wanted, (list, dict)):
            wanted = json.dumps(wanted)
        if isinstance(wanted, float) and isinstance(value, (int, float)):
            if not math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif value != wanted:
            return False
    return True


def row_values(trials: list[dict[str, Any]], where: dict[str, Any] | list[dict[str, Any]],
               metric: str) -> dict[int, float]:
    """Seed -> the metric of the finished trials matching ``where`` (any of a list of them): per seed, the mean
    over its matching trials (the folds of a seed, or the pooled levels)."""
    column = _column(trials, metric)
    alternatives = where if isinstance(where, list) else [where]
    by_seed: dict[int, list[float]] = {}
    for row in trials:
        value = row.get(column)
        if (row.get("status") != "TERMINATED" or not any(_matches(row, w) for w in alternatives)
                or not isinstance(value, (int, float))):
            continue
        if math.isfinite(value):
            by_seed.setdefault(int(row["seed"]), []).append(float(value))
    return {seed: float(np.mean(v)) for seed, v in sorted(by_seed.items())}


# --- running ----------------------------------------------------------------------------------------------------------

def _run_suffix(run: tuple[str, ...]) -> str:
    return "" if not run else "-" + hashlib.sha256("\n".join(run).encode()).hexdigest()[:8]


def plan_table(path: Path, quick: bool, storage: str | None) -> Table:
    """The table of one paper spec and the sweep spec of each distinct ``run`` of its rows."""
    base = [f"storage={json.dumps(storage)}"] if storage else []
    spec = load_spec(path, [*base, *([QUICK_SEEDS] if quick else [])], smoke=quick)
    if spec.paper is None:
        raise SpecError(f"{path}: no paper: block; platform.reproduce reads the rows and claims from it")
    table = Table(path.stem, path, spec, spec.paper)
    for row in spec.paper.rows:
        run = tuple(row.run)
        if run not in table.runs:
            name = f"name={spec.name.removesuffix('-smoke')}{_run_suffix(run)}"
            table.runs[run] = load_spec(path, [*base, *run, name, *([QUICK_SEEDS] if quick else [])], smoke=quick)
    return table


def _finished(spec: SweepSpec) -> tuple[int, int]:
    """(finished trials, trials the sweep plans) of a sweep's results, (0, n) when it never ran."""
    from platform.results import read_table
    from platform.storage import experiment_uri

    try:
        trials = read_table(experiment_uri(spec.storage, spec.name), "trials").to_pylist()
    except (FileNotFoundError, OSError, ValueError):
        return 0, spec.trial_count()
    return sum(row.get("status") == "TERMINATED" for row in trials), spec.trial_count()


def run_sweeps(table: Table, quick: bool, storage: str | None, read_only: bool) -> list[str]:
    """Run (or resume) every sweep of ``table`` that has not finished; the problems met, one line each."""
    problems = []
    for run, spec in table.runs.items():
        done, planned = _finished(spec)
        if done >= planned:
            continue
        if read_only:
            problems.append(f"{table.stem}: sweep {spec.name} has {done} of {planned} trials finished (--read)")
            continue
        command = [sys.executable, "-m", "platform.sweep", str(table.path), *run,
                   f"name={spec.name.removesuffix('-smoke')}", *([QUICK_SEEDS] if quick else [])]
        if storage:
            command += ["--storage", storage]
        if quick:
            command.append("--smoke")
        if done or _has_state(spec):
            command.append("--resume")
        print(f"[{table.stem}] running {spec.name} ({planned} trials)", flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            problems.append(f"{table.stem}: sweep {spec.name} exited {result.returncode}: {detail[0]}")
    return problems


def _has_state(spec: SweepSpec) -> bool:
    from platform.storage import experiment_uri, filesystem

    fs, path = filesystem(experiment_uri(spec.storage, spec.name))
    import pyarrow.fs as pafs

    return fs.get_file_info(path).type != pafs.FileType.NotFound


def measure(table: Table) -> None:
    """Fill ``table.values`` (row label -> seed -> value) from the trials of its sweeps."""
    from platform.results import read_table
    from platform.storage import experiment_uri

    cache: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in table.paper.rows:
        run = tuple(row.run)
        if run not in cache:
            spec = table.runs[run]
            try:
                cache[run] = read_table(experiment_uri(spec.storage, spec.name), "trials").to_pylist()
            except (FileNotFoundError, OSError, ValueError):
                cache[run] = []
        table.values[row.label] = row_values(cache[run], row.where, row.metric or table.paper.metric)


# --- reports ----------------------------------------------------------------------------------------------------------

def table_result(table: Table) -> dict[str, Any]:
    """The JSON of one table: ``rows`` (name, paper, mean, ci95, n, metric) and ``claims``."""
    rows = []
    for row in table.paper.rows:
        values = table.values.get(row.label, {})
        interval = mean_interval(list(values.values()))
        rows.append({"name": row.label, "paper": row.paper, "mean": interval.mean,
                     "ci95": [interval.low, interval.high], "n": len(values),
                     "metric": row.metric or table.paper.metric, "values": values})
    claims = [claim_result(claim, table.values) for claim in table.paper.claims]
    return {"title": table.paper.title, "spec": str(table.path.name), "rows": rows, "claims": claims,
            "experiments": [spec.name for spec in table.runs.values()]}


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def markdown(results: dict[str, dict[str, Any]], header: str) -> str:
    """Every table as Markdown: rows, then claims."""
    out = [f"# Paper tables, reproduced on this platform\n\n{header}\n"]
    for stem, result in results.items():
        out.append(f"## {stem}: {result['title']}\n")
        out.append("| row | metric | paper | measured mean | 95% CI | n |\n|---|---|---|---|---|---|")
        for row in result["rows"]:
            low, high = row["ci95"]
            out.append(f"| {row['name']} | {row['metric']} | {_number(row['paper'])} | {_number(row['mean'])} | "
                       f"[{_number(low)}, {_number(high)}] | {row['n']} |")
        if result["claims"]:
            out.append("\n| claim | holds | difference | 95% CI | n | test |\n|---|---|---|---|---|---|")
            for claim in result["claims"]:
                low, high = claim["ci95"]
                mark = ("yes" if claim["holds"] else "**no**") + (" (significant)" if claim["significant"] else "")
                if claim["holds"] and claim["difference"] < 0:  # an "at least" claim: lower, not significantly
                    mark = "yes, only as not significantly lower (the mean is lower)"
                out.append(f"| {claim['claim']} | {mark} | {_number(claim['difference'])} | [{_number(low)}, "
                           f"{_number(high)}] | {claim['n']} | {claim['test']} |")
        out.append("")
    return "\n".join(out)


def html(results: dict[str, dict[str, Any]], header: str) -> str:
    """One self-contained page: per table a bar chart (measured mean with its interval, and the paper's value)."""
    import plotly.graph_objects as go

    parts = [f"<h1>Paper tables, reproduced on this platform</h1><p>{header}</p>"]
    first = True
    for stem, result in results.items():
        rows = result["rows"]
        names = [r["name"] for r in rows]
        means = [r["mean"] for r in rows]
        errors = [(r["ci95"][1] - r["mean"]) if math.isfinite(r["ci95"][1]) else 0.0 for r in rows]
        figure = go.Figure([
            go.Bar(name="measured (mean, 95% CI)", x=names, y=means, error_y={"type": "data", "array": errors},
                   text=[f"{_number(m)} (n={r['n']})" for m, r in zip(means, rows, strict=True)]),
            go.Scatter(name="paper", x=names, y=[r["paper"] for r in rows], mode="markers",
                       marker={"symbol": "diamond", "size": 12}),
        ])
        figure.update_layout(title={"text": f"{stem}: {result['title']}"}, xaxis={"title": {"text": "row"}},
                             yaxis={"title": {"text": rows[0]["metric"] if rows else ""}}, height=420)
        parts.append(figure.to_html(full_html=False, include_plotlyjs="inline" if first else False))
        first = False
        claims = "".join(f"<li>{c['claim']}: {'holds' if c['holds'] else 'does not hold'}, difference "
                         f"{_number(c['difference'])} [{_number(c['ci95'][0])}, {_number(c['ci95'][1])}], "
                         f"n={c['n']} ({c['test']})</li>" for c in result["claims"])
        parts.append(f"<ul>{claims}</ul>")
    return "<!DOCTYPE html><html><head><meta charset='utf-8'><title>reproduce</title></head><body>" + "".join(
        parts) + "</body></html>"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="spec stems of search_spaces/paper/ (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke sizes and two seeds: checks the machinery")
    parser.add_argument("--storage", help="where the sweeps write and are read (default: each spec's storage)")
    parser.add_argument("--out", help="directory of reproduce.md/.json/.html (default: <storage>/reproduce)")
    parser.add_argument("--read", action="store_true", help="only read sweeps that already ran; run nothing")
    args = parser.parse_args(argv)
    available = sorted(p.stem for p in PAPER_DIR.glob("*.yaml"))
    names = args.names or available
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"error: unknown paper spec(s) {unknown}: choose from {available} (search_spaces/paper/)",
              file=sys.stderr)
        return EXIT_USER_ERROR
    started = time.monotonic()
    try:
        tables = [plan_table(PAPER_DIR / f"{name}.yaml", args.quick, args.storage) for name in names]
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    problems: list[str] = []
    for table in tables:
        problems += run_sweeps(table, args.quick, args.storage, args.read)
        measure(table)
    results = {table.stem: table_result(table) for table in tables}
    wall = time.monotonic() - started
    header = (f"{'--quick (smoke sizes, 2 seeds: the numbers mean nothing)' if args.quick else 'full size'}; "
              f"{time.strftime('%Y-%m-%d')}; {wall:.0f} s. Measured: test split, networks of the epoch best on val.")
    text = markdown(results, header)
    print(text)
    from platform.storage import is_uri

    storage = args.storage or tables[0].spec.storage
    out = Path(args.out) if args.out else Path("reproduce") if is_uri(storage) else Path(storage) / "reproduce"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.md").write_text(text)
    (out / "reproduce.json").write_text(json.dumps(_json_safe(results), indent=2))
    (out / "reproduce.html").write_text(html(results, header))
    print(f"written: {out}/reproduce.md, reproduce.json, reproduce.html")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
