"""The papers' tables on this platform: each ``search_spaces/paper/`` spec's ``paper:`` block planned into sweeps,
the sweeps run (one private Ray for all of them) or read, every row measured per repeat, the claims judged by
:mod:`platform.statistics`, and the results written as Markdown, HTML and JSON. ``python -m platform.reproduce``
(the command line) and :mod:`platform.reference` (references, ``--check``, the README's tables) both build on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import html as html_module
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform.localray import PrivateHead
from platform.spec import PaperClaim, PaperTable, SweepSpec, load_spec
from platform.specfile import SpecError
from platform.statistics import (
    Claim,
    RepeatKey,
    cell_matches,
    claim_null,
    compare,
    evaluate_claims,
    mean_interval,
    repeat_label,
    repeat_values,
)

PAPER_DIR = Path(__file__).resolve().parent.parent / "search_spaces" / "paper"
# The tables on real anatomy (``dataset: mni``): ``PAPER_DIR/mni/<stem>.yaml``, named ``mni/<stem>`` wherever a user
# sees a table (command line, reproduce.json keys, headings, references under ``reference/mni/``).
MNI_FOLDER = "mni"
QUICK_SEEDS = "repeats.seeds=[0, 1]"
EXIT_USER_ERROR = 2


# --- the paper specs ----------------------------------------------------------------------------------------------

def paper_names(directory: Path | None = None) -> list[str]:
    """Every paper table's name: the phantom specs' stems (``advnorm_table7``), then the real-anatomy ones
    (``mni/advnorm_table7``), each group sorted. ``directory`` defaults to ``PAPER_DIR``."""
    root = PAPER_DIR if directory is None else directory
    return ([path.stem for path in sorted(root.glob("*.yaml"))]
            + [f"{MNI_FOLDER}/{path.stem}" for path in sorted((root / MNI_FOLDER).glob("*.yaml"))])


def spec_path(name: str, directory: Path | None = None) -> Path:
    """The spec file of a table name (``advnorm_table7`` or ``mni/advnorm_table7``)."""
    return (PAPER_DIR if directory is None else directory) / f"{name}.yaml"


def table_name(path: Path, directory: Path | None = None) -> str:
    """The name of the table of a spec file: ``mni/<stem>`` for a spec of ``<directory>/mni/``, else its stem (a
    spec outside the paper folders, as tests write them, is named by its stem)."""
    root = PAPER_DIR if directory is None else directory
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return Path(path).stem
    return relative.with_suffix("").as_posix() if relative.parent.as_posix() == MNI_FOLDER else relative.stem


def is_mni(name: str) -> bool:
    """Whether a table name is one of the real-anatomy tables (``mni/<stem>``)."""
    return name.startswith(f"{MNI_FOLDER}/")


def unknown_names_message(unknown: list[str], available: list[str]) -> str:
    """The one-paragraph error for table names that are no paper spec, listing those of both folders."""
    return (f"unknown paper spec(s) {unknown}: choose from {available} (the stems of search_spaces/paper/*.yaml, "
            f"and {MNI_FOLDER}/<stem> for search_spaces/paper/{MNI_FOLDER}/*.yaml, the tables on real anatomy)")


def shared_experiments(tables: list[Table]) -> list[str]:
    """One line per experiment name that sweeps of two tables would write (say a real-anatomy spec that kept its
    phantom counterpart's ``name:``): their trials would mix in one experiment, so the command refuses them."""
    owners: dict[str, dict[str, Path]] = {}
    for table in tables:
        for spec in table.runs.values():
            owners.setdefault(spec.name, {})[table.stem] = table.path
    lines = []
    for name, by_table in owners.items():
        if len(by_table) > 1:
            lines.append(f"experiment {name!r} would be written by the tables {', '.join(by_table)} "
                         f"({', '.join(map(str, by_table.values()))}): give each of these specs its own name: field")
    return lines


def name_clashes(selected: list[str], directory: Path | None = None) -> list[str]:
    """One line per ``name:`` that a selected table shares with another paper spec of either folder, selected or
    not: its sweeps would resume into (and be read from) the other's experiments, say ``reproduce mni/x`` alone
    writing into ``x``'s when ``mni/x.yaml`` kept ``x.yaml``'s name. Read from the YAML alone, so a spec that does
    not load is reported by its own loading, not here."""
    import yaml

    by_name: dict[str, list[str]] = {}
    for table in paper_names(directory):
        try:
            data = yaml.safe_load(spec_path(table, directory).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            by_name.setdefault(data["name"], []).append(table)
    return [f"the tables {', '.join(tables)} share the experiment name {name!r} (their specs' name: field), so "
            "their sweeps would write one experiment: give each spec its own name"
            for name, tables in by_name.items() if len(tables) > 1 and set(tables) & set(selected)]


def counterpart_problems(directory: Path | None = None) -> list[str]:
    """One line per real-anatomy spec (``<directory>/mni/<stem>.yaml``) that does not answer the same claims as its
    phantom counterpart ``<directory>/<stem>.yaml``: a counterpart that is missing, a ``paper:`` block whose rows,
    claims or metric differ (the title may name the dataset), another ``trainer``, a ``data.dataset`` other than
    ``mni``, or the counterpart's ``name:`` (one experiment for both). ``directory`` defaults to ``PAPER_DIR``."""
    import pydantic
    import yaml

    root = PAPER_DIR if directory is None else directory
    problems = []
    for path in sorted((root / MNI_FOLDER).glob("*.yaml")):
        twin = root / path.name
        if not twin.exists():
            problems.append(f"{path}: no phantom counterpart {twin}, whose rows and claims it would answer")
            continue
        ours, theirs = yaml.safe_load(path.read_text()), yaml.safe_load(twin.read_text())
        if not isinstance(ours, dict) or not isinstance(theirs, dict):
            problems.append(f"{path} or {twin}: not a YAML mapping")
            continue
        try:
            paper, twin_paper = (PaperTable.model_validate(data.get("paper")) for data in (ours, theirs))
        except pydantic.ValidationError as err:
            problems.append(f"{path} or {twin}: a paper: block that does not validate ({err.error_count()} errors)")
            continue
        mine, other = paper.model_dump(exclude={"title"}), twin_paper.model_dump(exclude={"title"})
        problems += [f"{path}: paper.{key} differs from {twin}'s" for key in mine if mine[key] != other[key]]
        if ours.get("trainer") != theirs.get("trainer"):
            problems.append(f"{path}: trainer {ours.get('trainer')!r}, {twin} has {theirs.get('trainer')!r}")
        data = ours.get("data")
        dataset = data.get("dataset") if isinstance(data, dict) else None
        if dataset != "mni":
            problems.append(f"{path}: data.dataset is {dataset!r}, not 'mni'")
        if ours.get("name") == theirs.get("name"):
            problems.append(f"{path}: name {ours.get('name')!r} is {twin}'s: both would write one experiment")
    return problems


# --- claims -----------------------------------------------------------------------------------------------------------

def claim_results(claims: list[PaperClaim], values: dict[str, dict[RepeatKey, float]]) -> list[dict[str, Any]]:
    """The verdict of every claim of one table on the measured ``values`` (row label -> repeat -> value), Holm-
    adjusted over the table's claims (``platform.statistics.evaluate_claims``): the difference larger - smaller
    (paired by repeat, Welch when the repeats do not pair), its 95% interval, the adjusted interval and its level,
    the p-values, and for an inconclusive claim the minimum detectable effect and the repeats needed."""
    family = []
    for claim in claims:
        larger, smaller = values.get(claim.larger, {}), values.get(claim.smaller, {})
        difference = compare(larger, smaller) if larger and smaller else None
        family.append(Claim(claim.kind, claim_null(claim.kind, claim.min_effect, claim.margin), difference,
                            claim.invalid))
    results = []
    for claim, judged in zip(claims, evaluate_claims(family), strict=True):
        results.append({"claim": claim.text, "larger": claim.larger, "smaller": claim.smaller, "kind": claim.kind,
                        "null": judged.null, "verdict": judged.verdict, "difference": judged.difference,
                        "ci95": list(judged.ci95), "adjusted_ci": list(judged.adjusted), "level": judged.level,
                        "p": judged.p, "p_holm": judged.p_holm, "n": judged.n,
                        "test": judged.method if judged.n >= 2 else "none", "detectable": judged.detectable,
                        "repeats_needed": judged.repeats_needed, "reason": judged.reason})
    return results


# --- reading the trials ---------------------------------------------------------------------------------------------

@dataclass
class Table:
    """One paper table: its spec, the sweeps its rows read, and what was measured."""

    stem: str
    path: Path
    spec: SweepSpec
    paper: PaperTable
    runs: dict[tuple[str, ...], SweepSpec] = field(default_factory=dict)
    values: dict[str, dict[RepeatKey, float]] = field(default_factory=dict)
    # The sweeps (their ``runs`` keys) that did not run to the end here: their rows are reported as not measured.
    unmeasured: set[tuple[str, ...]] = field(default_factory=set)


def _column(rows: list[dict[str, Any]], metric: str) -> str:
    """The trials column of ``metric``: itself (test/..., best/..., model/...) or its last value."""
    present = {key for row in rows for key in row}
    for candidate in (metric, f"last/{metric}"):
        if candidate in present:
            return candidate
    return metric


def row_values(trials: list[dict[str, Any]], where: dict[str, Any] | list[dict[str, Any]],
               metric: str) -> dict[RepeatKey, float]:
    """Repeat (seed, fold) -> the metric of the finished trials matching ``where`` (any of a list of them), by
    ``platform.statistics.repeat_values``: the trials of one repeat (pooled levels) are averaged, folds never."""
    column = _column(trials, metric)
    alternatives = where if isinstance(where, list) else [where]
    chosen = [row for row in trials if row.get("status") == "TERMINATED"
              and any(all(cell_matches(row.get(f"config/{key}"), wanted) for key, wanted in w.items())
                      for w in alternatives)]
    return repeat_values([row.get("seed") for row in chosen], [row.get("fold") for row in chosen],
                         [row.get(column) for row in chosen])

# --- running ----------------------------------------------------------------------------------------------------------

def _run_suffix(run: tuple[str, ...]) -> str:
    return "" if not run else "-" + hashlib.sha256("\n".join(run).encode()).hexdigest()[:8]


def plan_table(path: Path, quick: bool, storage: str | None) -> Table:
    """The table of one paper spec and the sweep spec of each distinct ``run`` of its rows."""
    base = [f"storage={json.dumps(storage)}"] if storage else []
    spec = load_spec(path, [*base, *([QUICK_SEEDS] if quick else [])], smoke=quick)
    if spec.paper is None:
        raise SpecError(f"{path}: no paper: block; platform.reproduce reads the rows and claims from it")
    table = Table(table_name(path), path, spec, spec.paper)
    for row in spec.paper.rows:
        run = tuple(row.run)
        if run not in table.runs:
            name = f"name={experiment_name(spec.name, run, quick)}"
            table.runs[run] = load_spec(path, [*base, *run, name, *([QUICK_SEEDS] if quick else [])], smoke=quick)
    return table


def experiment_name(name: str, run: tuple[str, ...], quick: bool) -> str:
    """The experiment of one sweep of a table: the spec's name, the hash of the row's ``run`` overrides, and for
    ``--quick`` a closing ``-smoke`` (``--smoke`` appends it to the spec's name), so smoke results never share an
    experiment with the full size: a full run never resumes into them and ``--read`` never prints them."""
    base = name.removesuffix("-smoke") if quick else name
    return f"{base}{_run_suffix(run)}{'-smoke' if quick else ''}"


def arm_words(table: Table, run: tuple[str, ...]) -> str:
    """One sweep of a table in words: the table's title and the rows it measures, with its overrides."""
    labels = [repr(row.label) for row in table.paper.rows if tuple(row.run) == run]
    overrides = f" with {' '.join(run)}" if run else " (the spec as written)"
    return f"{table.stem} ({table.paper.title}): row{'s' if len(labels) > 1 else ''} {', '.join(labels)}{overrides}"


def _finished(spec: SweepSpec) -> tuple[int, int]:
    """(finished trials, trials the sweep plans) of a sweep's results, (0, n) when it never ran."""
    from platform.results import read_table
    from platform.storage import experiment_uri

    try:
        trials = read_table(experiment_uri(spec.storage, spec.name), "trials").to_pylist()
    except (FileNotFoundError, OSError, ValueError):
        return 0, spec.trial_count()
    return sum(row.get("status") == "TERMINATED" for row in trials), spec.trial_count()


def run_sweeps(table: Table, quick: bool, storage: str | None, read_only: bool,
               head: PrivateHead | None = None) -> list[str]:
    """Run (or resume) every sweep of ``table`` that has not finished; the problems met, one line each. With a
    ``head`` every sweep joins that Ray (``--address``) instead of starting one of its own."""
    problems = []
    for run, spec in table.runs.items():
        done, planned = _finished(spec)
        if done >= planned:
            continue
        if read_only:
            problems.append(f"{table.stem}: sweep {spec.name} has {done} of {planned} trials finished (--read)")
            table.unmeasured.add(run)
            continue
        command = [sys.executable, "-m", "platform.sweep", str(table.path), *run,
                   f"name={spec.name}", *([QUICK_SEEDS] if quick else [])]
        if storage:
            command += ["--storage", storage]
        if quick:
            command.append("--smoke")
        if done or _has_state(spec):
            command.append("--resume")
        if head is not None:
            command += ["--address", head.address]
        words = arm_words(table, run)
        left = f", {done} finished before" if done else ""
        print(f"running {words}: {planned} trials{left} (experiment {spec.name})", flush=True)
        code, detail = _follow(command, head.env if head is not None else None, f"  {table.stem}")
        if code != 0:
            problems.append(f"{table.stem}: sweep {spec.name} exited {code}: {detail} (its rows "
                            "are reported as not measured)")
            table.unmeasured.add(run)
    return problems


# A sweep's progress line (platform.tuning.ProgressCallback): "[  12s] trials 3/12 done, 1 running, ... | text | ..."
_PROGRESS = re.compile(r"^\[\s*(\d+)s\] trials (\d+)/(\d+) done, (\d+) running, (\d+) errored([^|]*)\|(.*?)\|")
_EPOCH = re.compile(r"epoch (\d+)/(\d+)")
PROGRESS_EVERY_S = 15.0  # at most one progress line per this many seconds, besides one per finished trial


def progress_line(line: str) -> str | None:
    """The short form of a sweep's progress line (trials done, running, errored, time left, the reporting trial's
    epoch), None for any other line."""
    match = _PROGRESS.match(line)
    if not match:
        return None
    elapsed, done, total, running, errored, eta, text = match.groups()
    epoch = _EPOCH.search(text)
    at = f"; a trial at epoch {epoch.group(1)}/{epoch.group(2)}" if epoch else ""
    failed = f", {errored} errored" if errored != "0" else ""
    return f"{elapsed} s: trials {done}/{total} done, {running} running{failed}{eta.rstrip()}{at}"


def _follow(command: list[str], env: dict[str, str] | None, prefix: str) -> tuple[int, str]:
    """Run a sweep, printing its progress (shortened, at most every ``PROGRESS_EVERY_S`` seconds and at every
    finished trial) under ``prefix``; (exit code, the last error line or last line it printed)."""
    import collections
    import time

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **env} if env is not None else None)
    tail: collections.deque[str] = collections.deque(maxlen=50)
    shown_at, shown_done = 0.0, None
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip("\n")
        short = progress_line(line)
        if short is None:
            if line.strip():
                tail.append(line.strip())
            continue
        done = short.split("trials ", 1)[1].split(" ", 1)[0]
        if done != shown_done or time.monotonic() - shown_at >= PROGRESS_EVERY_S:
            print(f"{prefix}: {short}", flush=True)
            shown_at, shown_done = time.monotonic(), done
    code = process.wait()
    errors = [line for line in tail if line.startswith("error")]
    return code, (errors or list(tail) or ["no output"])[-1]


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
        if run in table.unmeasured:  # a sweep that did not finish here: none of its trials count
            cache[run] = []
        if run not in cache:
            spec = table.runs[run]
            try:
                cache[run] = read_table(experiment_uri(spec.storage, spec.name), "trials").to_pylist()
            except (FileNotFoundError, OSError, ValueError):
                cache[run] = []
        table.values[row.label] = row_values(cache[run], row.where, row.metric or table.paper.metric)


# --- reports ----------------------------------------------------------------------------------------------------------

def table_result(table: Table) -> dict[str, Any]:
    """The JSON of one table: ``rows`` (name, paper, mean, ci95, n, metric, values per repeat) and ``claims``."""
    rows = []
    for row in table.paper.rows:
        values = table.values.get(row.label, {})
        interval = mean_interval(list(values.values()))
        rows.append({"name": row.label, "paper": row.paper, "mean": interval.mean,
                     "ci95": [interval.low, interval.high], "n": interval.n,
                     "metric": row.metric or table.paper.metric,
                     "values": {repeat_label(key): value for key, value in values.items()}})
    claims = claim_results(table.paper.claims, table.values)
    return {"title": table.paper.title, "spec": str(table.path.name), "rows": rows, "claims": claims,
            "experiments": [spec.name for spec in table.runs.values()]}


def _shown(value: Any, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def md_text(value: Any) -> str:
    """Text from a spec, a table or a path, safe in a Markdown table cell: ``|``, ``<``, ``>`` and backticks
    escaped (no cell split, no HTML tag, no code span)."""
    return (str(value).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "\\`").replace("\n", " "))


def _interval(bounds: list[float]) -> str:
    return f"[{_shown(bounds[0])}, {_shown(bounds[1])}]"


def _adjusted(claim: dict[str, Any]) -> str:
    level = claim["level"]
    return "-" if not isinstance(level, float) or not math.isfinite(level) else \
        f"{_interval(claim['adjusted_ci'])} at {100 * level:.4g}%"


def _repeats(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The per-repeat values of a table: (repeat labels, per row [name, value per repeat])."""
    labels = list(dict.fromkeys(label for row in result["rows"] for label in row["values"]))
    return labels, [[row["name"], *(_shown(row["values"].get(label)) for label in labels)]
                    for row in result["rows"]]


SCHEME = ("Verdicts: `supported` when the claim's interval of larger - smaller, Holm-adjusted over the claims of "
          "its table, lies above the claim's null (0; the min_effect; minus the margin of an 'at least' claim), "
          "`contradicted` when it lies below, `inconclusive` otherwise (with the effect detectable at this n and "
          "the repeats needed at 80% power), `not measured` when rows are absent or n < 2, `invalid` when the spec "
          "marks the claim as measuring a known artefact.")


def markdown(results: dict[str, dict[str, Any]], header: str) -> str:
    """Every table as Markdown: rows, claims with their verdicts, then the value of every row per repeat."""
    out = [f"# Paper tables, reproduced on this platform\n\n{md_text(header)}\n\n{SCHEME}\n"]
    for stem, result in results.items():
        out.append(f"## {md_text(stem)}: {md_text(result['title'])}\n")
        out.append("| row | metric | paper | measured mean | 95% CI | n |\n|---|---|---|---|---|---|")
        for row in result["rows"]:
            out.append(f"| {md_text(row['name'])} | {md_text(row['metric'])} | {_shown(row['paper'])} | "
                       f"{_shown(row['mean'])} | {_interval(row['ci95'])} | {row['n']} |")
        if result["claims"]:
            out.append("\n| claim | verdict | difference | 95% CI | Holm-adjusted CI | n | test | why |\n"
                       "|---|---|---|---|---|---|---|---|")
            for claim in result["claims"]:
                out.append(f"| {md_text(claim['claim'])} | **{claim['verdict']}** | {_shown(claim['difference'])} | "
                           f"{_interval(claim['ci95'])} | {_adjusted(claim)} | {claim['n']} | {claim['test']} | "
                           f"{md_text(claim['reason'])} |")
        labels, rows = _repeats(result)
        if labels:
            out.append(f"\nPer repeat:\n\n| row | {' | '.join(labels)} |\n|---|{'---|' * len(labels)}")
            out += [f"| {md_text(row[0])} | {' | '.join(row[1:])} |" for row in rows]
        out.append("")
    return "\n".join(out)


# The page colours a claim by its verdict, never by the sign of its mean difference.
VERDICT_COLOURS = {"supported": "#d4edda", "contradicted": "#f8d7da", "inconclusive": "#fff3cd",
                   "not measured": "#e2e3e5", "invalid": "#d6d8db"}


def _metric_figures(stem: str, result: dict[str, Any]) -> list[Any]:
    """One bar chart per metric of a table's rows (measured mean with its 95% interval, none below n = 2, and the
    paper's value), its y axis titled with that metric; every text escaped."""
    import plotly.graph_objects as go

    esc = html_module.escape
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for row in result["rows"]:
        by_metric.setdefault(str(row["metric"]), []).append(row)
    figures = []
    for metric, rows in by_metric.items():
        names = [esc(r["name"]) for r in rows]  # plotly renders entities in labels, so escaped text reads as typed
        means = [r["mean"] for r in rows]
        errors = [(r["ci95"][1] - r["mean"]) if r["n"] >= 2 and math.isfinite(r["ci95"][1]) else 0.0 for r in rows]
        figure = go.Figure([
            go.Bar(name="measured (mean, 95% CI; none at n < 2)", x=names, y=means,
                   error_y={"type": "data", "array": errors},
                   text=[f"{_shown(m)} (n={r['n']})" for m, r in zip(means, rows, strict=True)]),
            go.Scatter(name="paper", x=names, y=[r["paper"] for r in rows], mode="markers",
                       marker={"symbol": "diamond", "size": 12}),
        ])
        title = f"{stem}: {result['title']}" + (f" ({metric})" if len(by_metric) > 1 else "")
        figure.update_layout(title={"text": esc(title)}, xaxis={"title": {"text": "row"}},
                             yaxis={"title": {"text": esc(metric)}}, height=420)
        figures.append(figure)
    return figures


def html(results: dict[str, dict[str, Any]], header: str) -> str:
    """One self-contained page: per table its heading (name and title), a bar chart per metric (measured mean with
    its interval, and the paper's value), the claims coloured by verdict and the values per repeat. Every text from
    a spec, a table or a path is escaped (``html.escape``; plotly's JSON escapes ``<`` and ``>`` itself)."""

    esc = html_module.escape
    style = ("<style>table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 6px}"
             + "".join(f".{v.replace(' ', '-')}{{background:{c}}}" for v, c in VERDICT_COLOURS.items()) + "</style>")
    scheme = SCHEME.replace("`", "")  # Markdown's code marks
    parts = [f"<h1>Paper tables, reproduced on this platform</h1><p>{esc(header)}</p><p>{esc(scheme)}</p>"]
    first = True
    for stem, result in results.items():
        # A heading per table, as in the Markdown: ``mni/<stem>`` and ``<stem>`` must be told apart without a chart.
        parts.append(f"<h2 id='{esc(stem.replace('/', '-'))}'>{esc(stem)}: {esc(result['title'])}</h2>")
        for figure in _metric_figures(stem, result):  # one chart per metric: Dice and an accuracy never share an axis
            parts.append(figure.to_html(full_html=False, include_plotlyjs="inline" if first else False))
            first = False
        if result["claims"]:
            head = "".join(f"<th>{h}</th>" for h in ("claim", "verdict", "difference", "95% CI", "Holm-adjusted CI",
                                                      "n", "test", "why"))
            body = "".join(
                f"<tr class='{c['verdict'].replace(' ', '-')}'><td>{esc(c['claim'])}</td><td><b>{c['verdict']}</b>"
                f"</td><td>{_shown(c['difference'])}</td><td>{_interval(c['ci95'])}</td><td>{esc(_adjusted(c))}"
                f"</td><td>{c['n']}</td><td>{esc(c['test'])}</td><td>{esc(c['reason'])}</td></tr>"
                for c in result["claims"])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        labels, values = _repeats(result)
        if labels:
            head = "<th>row</th>" + "".join(f"<th>{esc(label)}</th>" for label in labels)
            body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in values)
            parts.append(f"<p>Per repeat:</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>reproduce</title>" + style + "</head><body>"
            + "".join(parts) + "</body></html>")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def json_text(results: dict[str, dict[str, Any]]) -> str:
    """``reproduce.json``: the results, NaN as null, with ``<``, ``>`` and ``&`` written as JSON escapes so the
    file never carries a tag (a JSON reader gets the same strings back)."""
    text = json.dumps(_json_safe(results), indent=2)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _needs_a_run(table: Table) -> bool:
    return any(done < planned for done, planned in map(_finished, table.runs.values()))


@contextlib.contextmanager
def shared_ray(tables: list[Table], read_only: bool) -> Iterator[PrivateHead | None]:
    """One private Ray for all the sweeps to run (``private_head``), stopped when they are done; None (each
    sweep starts its own, as on its own) when nothing runs, a sweep's storage is a URI, or ``RAY_ADDRESS``
    names a cluster. Sweeps that each start a Ray lose some starts on a loaded machine."""
    from platform.localray import private_head
    from platform.storage import is_uri

    if (read_only or os.environ.get("RAY_ADDRESS") or not any(_needs_a_run(table) for table in tables)
            or any(is_uri(spec.storage) for table in tables for spec in table.runs.values())):
        yield None
        return
    with private_head(os.cpu_count() or 1) as head:
        yield head
