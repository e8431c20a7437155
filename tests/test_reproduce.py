"""``platform.reproduce``: the row selection, the claims, one quick run (statistics: tests/test_statistics.py)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from platform.papertables import (
    PAPER_DIR,
    claim_results,
    experiment_name,
    markdown,
    paper_names,
    plan_table,
    progress_line,
    row_values,
    spec_path,
)
from platform.spec import PaperClaim, PaperTable, load_spec
from platform.statistics import repeat_key
from tests.conftest import REPO_ROOT

A = {repeat_key(s): v for s, v in enumerate([0.81, 0.78, 0.86, 0.80])}
B = {repeat_key(s): v for s, v in enumerate([0.70, 0.74, 0.71, 0.69])}
SAME = {key: v + (0.01 if key[0] % 2 else -0.01) for key, v in A.items()}


def claim(larger: str, smaller: str, **kind: object) -> PaperClaim:
    return PaperClaim(text=f"{larger} over {smaller}", larger=larger, smaller=smaller, **kind)


@pytest.mark.parametrize(("larger", "smaller", "kind", "expected"), [
    ("a", "b", {}, "supported"),
    ("b", "a", {}, "contradicted"),
    ("a", "same", {}, "inconclusive"),  # a mean above 0 alone is no support
    ("a", "b", {"min_effect": 0.02}, "supported"),  # A - B = .1025 [.0297, .175]
    ("a", "b", {"min_effect": 0.05}, "inconclusive"),  # the interval holds the claimed effect
    ("a", "b", {"min_effect": 0.2}, "contradicted"),  # the whole interval below the claimed effect
    ("a", "same", {"at_least": True, "margin": 0.05}, "supported"),  # non-inferior within the margin
    ("b", "a", {"at_least": True, "margin": 0.02}, "contradicted"),
    ("a", "missing", {}, "not measured"),
    ("a", "one", {}, "not measured"),  # n = 1
    ("a", "b", {"invalid": "D's accuracy is an artefact"}, "invalid"),
])
def test_each_verdict_kind_alone(larger: str, smaller: str, kind: dict[str, object], expected: str) -> None:
    values = {"a": A, "b": B, "same": SAME, "one": {repeat_key(0): 0.5}}
    [result] = claim_results([claim(larger, smaller, **kind)], values)
    assert result["verdict"] == expected, result["reason"]
    if expected == "inconclusive":
        assert result["detectable"] > 0 and "repeats would decide" in result["reason"]
    if expected == "invalid":
        assert "artefact" in result["reason"]


# Hand-made differences per repeat: (A - B values, claim kind, expected verdict alone).
FAMILY = {
    "clear": [0.10, 0.12, 0.11, 0.13],
    "borderline": [0.02, 0.05, -0.005, 0.04],
    "wide": [0.3, -0.2, 0.1, -0.05],
    "negative": [-0.10, -0.12, -0.09, -0.11],
}


@pytest.mark.parametrize("subset", [["clear"], ["clear", "borderline"], ["borderline", "wide", "negative"],
                                    list(FAMILY)])
def test_no_support_or_contradiction_when_the_adjusted_interval_holds_the_null(subset: list[str]) -> None:
    from scipy import stats

    values = {"zero": {repeat_key(s): 0.0 for s in range(4)}}
    for name in subset:
        values[name] = {repeat_key(s): v for s, v in enumerate(FAMILY[name])}
    results = claim_results([claim(name, "zero") for name in subset], values)
    m = len(subset)
    p = [stats.ttest_1samp(FAMILY[name], 0.0, alternative="greater").pvalue for name in subset]
    order = sorted(range(m), key=lambda i: p[i])
    holm, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):  # Holm by hand
        running = max(running, min(1.0, (m - rank) * p[i]))
        holm[i] = running
    for i, result in enumerate(results):
        low, high = result["adjusted_ci"]
        if low <= 0 <= high:
            assert result["verdict"] == "inconclusive"
        assert (result["verdict"] == "supported") == (holm[i] < 0.025)
        assert result["p_holm"] == pytest.approx(holm[i])
        assert result["level"] >= 0.95


def test_a_table_read_with_nothing_there_says_not_measured_with_n_0() -> None:
    results = claim_results([claim("a", "b")], {"a": {}, "b": {}})
    assert results[0]["verdict"] == "not measured" and results[0]["n"] == 0
    text = markdown({"t": {"title": "T", "rows": [], "claims": results}}, "header")
    assert "**not measured**" in text and "**no**" not in text and "| 0 |" in text


def test_rows_pick_finished_trials_by_axis_value_and_pool_levels() -> None:
    trials = [
        {"status": "TERMINATED", "seed": 0, "config/lambda": 0.1, "config/blocks": "[1]", "test/best/dice": 0.8},
        {"status": "TERMINATED", "seed": 1, "config/lambda": 0.1, "config/blocks": "[2]", "test/best/dice": 0.6},
        {"status": "TERMINATED", "seed": 0, "config/lambda": 1.5, "config/blocks": "[2]", "test/best/dice": 0.4},
        {"status": "ERROR", "seed": 2, "config/lambda": 0.1, "config/blocks": "[1]", "test/best/dice": 0.9},
        {"status": "TERMINATED", "seed": 0, "config/lambda": 0.1, "last/train/disc_acc": 0.7},
    ]
    s0, s1 = repeat_key(0), repeat_key(1)
    assert row_values(trials, {"lambda": 0.1}, "test/best/dice") == {s0: 0.8, s1: 0.6}
    assert row_values(trials, {"blocks": [2]}, "test/best/dice") == {s0: 0.4, s1: 0.6}
    assert row_values(trials, [{"blocks": [1]}, {"blocks": [2]}], "test/best/dice") == pytest.approx({s0: 0.6,
                                                                                                      s1: 0.6})
    assert row_values(trials, {"lambda": 0.1}, "train/disc_acc") == {s0: 0.7}  # a last/ column


def test_folds_are_repeats_never_averaged() -> None:
    trials = [{"status": "TERMINATED", "seed": s, "fold": f, "config/x": "a", "test/best/dice": 0.1 * s + 0.01 * f}
              for s in range(2) for f in range(3)]
    values = row_values(trials, {"x": "a"}, "test/best/dice")
    assert len(values) == 6 and values[repeat_key(1, 2)] == pytest.approx(0.12)


@pytest.mark.parametrize("name", paper_names())  # both folders: the phantom's and mni/
def test_every_paper_spec_loads_with_its_table(name: str) -> None:
    spec = load_spec(spec_path(name))
    assert spec.paper is not None and spec.paper.rows
    assert spec.scheduler.type == "none" and len(spec.repeats.seeds) >= (1 if "table6" in name else 3)


@pytest.mark.slow
def test_a_quick_reproduction_writes_markdown_json_and_html(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "dualnorm_table6", "--quick", "--storage",
                             str(tmp_path / "runs"), "--out", str(out)], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((out / "reproduce.json").read_text())
    table = data["dualnorm_table6"]
    assert [row["name"] for row in table["rows"]] == ["block 1", "blocks 1-4"]
    for row in table["rows"]:
        assert row["n"] == 2 and row["mean"] > 1.0 and len(row["ci95"]) == 2
    assert table["claims"][0]["verdict"] == "supported"  # a parameter count: no spread over seeds
    assert "| block 1 | model/params_ratio | 1.001 |" in (out / "reproduce.md").read_text()
    page = (out / "reproduce.html").read_text()
    assert "<script" in page and "plotly" in page.lower() and "http" not in page.split("<body>")[1][:200]
    # One line per sweep in words (the table and its rows, not the hash), then its progress.
    assert "running dualnorm_table6 (" in result.stdout and "'block 1'" in result.stdout, result.stdout[-2000:]
    assert re.search(r"dualnorm_table6: \d+ s: trials (\d+)/\1 done", result.stdout), result.stdout[-2000:]
    # Only '-smoke' experiments were written: a full run never resumes into them.
    written = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.name != "reproduce")
    assert written and all(name.endswith("-smoke") for name in written), written
    # Read again, running nothing: the finished sweep is reused, and the heading says which size it read.
    again = subprocess.run([sys.executable, "-m", "platform.reproduce", "dualnorm_table6", "--quick", "--read",
                            "--storage", str(tmp_path / "runs"), "--out", str(out)], capture_output=True, text=True,
                           cwd=REPO_ROOT, timeout=300)
    assert again.returncode == 0 and "running" not in again.stdout, again.stdout + again.stderr
    assert "smoke size" in again.stdout and "| block 1 | model/params_ratio | 1.001 |" in again.stdout
    # The full size reads its own experiments: none ran, so no smoke number is printed as a full-size one.
    full = subprocess.run([sys.executable, "-m", "platform.reproduce", "dualnorm_table6", "--read", "--storage",
                           str(tmp_path / "runs"), "--out", str(tmp_path / "full")], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)
    assert full.returncode == 1 and "full size" in full.stdout and "smoke size" not in full.stdout, full.stdout
    assert "| block 1 | model/params_ratio | 1.001 | - |" in full.stdout and "(--read)" in full.stderr
    # A full-size sweep refuses to resume the smoke experiment, under its own name or the smoke one.
    spec = str(PAPER_DIR / "dualnorm_table6.yaml")
    for extra in ([], ["name=paper-dualnorm-table6-smoke"]):
        resume = subprocess.run([sys.executable, "-m", "platform.sweep", spec, *extra, "--resume", "--dry-run",
                                 "--storage", str(tmp_path / "runs")], capture_output=True, text=True,
                                cwd=REPO_ROOT, timeout=300)
        assert resume.returncode == 2 and "Traceback" not in resume.stderr, resume.stdout + resume.stderr


@pytest.mark.parametrize(("run", "quick", "expected"), [
    ((), False, "paper-x"),
    ((), True, "paper-x-smoke"),
    (("generator=none",), False, "paper-x-" + hashlib.sha256(b"generator=none").hexdigest()[:8]),
    (("generator=none",), True, "paper-x-" + hashlib.sha256(b"generator=none").hexdigest()[:8] + "-smoke"),
])
def test_quick_experiments_end_in_smoke_and_full_ones_never_do(run: tuple[str, ...], quick: bool,
                                                              expected: str) -> None:
    name = "paper-x-smoke" if quick else "paper-x"  # load_spec(smoke=True) appends '-smoke' to the spec's name
    assert experiment_name(name, run, quick) == expected


@pytest.mark.parametrize("path", [spec_path(name) for name in paper_names()], ids=paper_names())
def test_no_quick_experiment_shares_a_name_with_a_full_one(path: Path) -> None:
    full = {spec.name for spec in plan_table(path, False, None).runs.values()}
    quick = {spec.name for spec in plan_table(path, True, None).runs.values()}
    assert all(name.endswith("-smoke") for name in quick) and not full & quick
    assert not any(name.endswith("-smoke") for name in full)


@pytest.mark.parametrize(("line", "expected"), [
    ("[    12s] trials 3/12 done, 1 running, 0 errored, ETA 1m | t1 (lambda=1.5) epoch 4/20 val/dice 0.5000 | best",
     "12 s: trials 3/12 done, 1 running, ETA 1m; a trial at epoch 4/20"),
    ("[   300s] trials 12/12 done, 0 running, 2 errored | sweep ended | best val/dice 0.8 (t1)",
     "300 s: trials 12/12 done, 0 running, 2 errored"),
    ("== Status ==", None),
])
def test_progress_lines_are_shortened_and_others_dropped(line: str, expected: str | None) -> None:
    assert progress_line(line) == expected


def test_an_unknown_table_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "nope"], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 2 and "unknown paper spec" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("fields", "message"), [
    ({"at_least": True}, "without a margin"),
    ({"margin": 0.02}, "margin without at_least"),
    ({"at_least": True, "margin": 0.02, "min_effect": 0.1}, "both min_effect and at_least"),
    ({"margin": -0.02, "at_least": True}, "greater than 0"),
    ({"min_effect": 0}, "greater than 0"),
    ({"invalid": ""}, "at least 1 character"),
    ({"p_value": 0.05}, "Extra inputs are not permitted"),
])
def test_claim_fields_are_validated(fields: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        PaperClaim(text="t", larger="a", smaller="b", **fields)


def test_claim_kinds_follow_the_fields() -> None:
    assert claim("a", "b").kind == "greater"
    assert claim("a", "b", min_effect=0.2).kind == "min_effect"
    assert claim("a", "b", at_least=True, margin=0.02).kind == "at_least"
    kinds = {c.text: c.kind for name in paper_names() for c in load_spec_paper(spec_path(name)).claims}
    assert kinds["training on adult, infant scores far lower than adult"] == "min_effect"
    assert kinds["the supervised target bounds full GLUA"] == "at_least"


def load_spec_paper(path: Path) -> PaperTable:
    """The paper block of a paper spec alone (the sweep parts are tested elsewhere)."""
    import yaml

    return PaperTable.model_validate(yaml.safe_load(path.read_text())["paper"])


def test_an_invalid_claim_is_reported_with_its_reason_in_markdown() -> None:
    results = claim_results([claim("a", "b", invalid="D's accuracy measures a frozen discriminator")], {"a": A, "b": B})
    text = markdown({"t": {"title": "T", "rows": [], "claims": results}}, "header")
    line = next(line for line in text.splitlines() if line.startswith("| a over b"))
    assert "**invalid**" in line and "frozen discriminator" in line and "supported" not in line


def _head_pids(temp_dir: Path) -> set[int]:
    from platform.localray import _session_processes

    return {pid for session in temp_dir.glob("session_*") if not session.is_symlink()
            for pid in _session_processes(session)}


@pytest.mark.slow
def test_the_private_head_serves_a_client_and_leaves_no_process_behind() -> None:
    from platform.localray import _process_start, private_head

    client = ("import ray; ray.init(address='{}', logging_level='ERROR'); "
              "print('answer', ray.get(ray.remote(lambda: 41 + 1).remote()))")
    with private_head(num_cpus=1) as head:
        assert head.address.startswith("127.0.0.1:")
        pids = _head_pids(head.temp_dir)
        assert pids, "no process of the head's session found"
        import os

        result = subprocess.run([sys.executable, "-c", client.format(head.address)], capture_output=True,
                                text=True, env={**os.environ, **head.env}, cwd=REPO_ROOT, timeout=300)
        assert "answer 42" in result.stdout, result.stderr[-2000:]
        pids |= _head_pids(head.temp_dir)  # and the worker the task started
        temp_dir = head.temp_dir
    assert [pid for pid in pids if _process_start(pid) is not None] == []
    assert not temp_dir.exists()


def test_a_head_that_does_not_start_in_time_is_one_paragraph_with_exit_2(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "SEGSWEEP_RAY_START_TIMEOUT_S": "0.01"}
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "dualnorm_table6", "--quick", "--storage",
                             str(tmp_path / "runs"), "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, cwd=REPO_ROOT, env=env, timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "SEGSWEEP_RAY_START_TIMEOUT_S=" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "running" not in result.stdout


def test_the_html_page_draws_each_metric_on_its_own_axis() -> None:
    """Dice and a discriminator accuracy in one table are two charts, each axis titled with its metric."""
    from platform.papertables import _metric_figures

    def row(name: str, metric: str, mean: float, n: int) -> dict[str, object]:
        return {"name": name, "metric": metric, "mean": mean, "ci95": [mean - 0.1, mean + 0.1], "n": n,
                "paper": None}

    result = {"title": "t", "rows": [row("Dice, a", "test/best/dice", 0.8, 3), row("Dice, b", "test/best/dice", 0.7, 1),
                                     row("D acc", "train/disc_acc", 0.9, 3)]}
    figures = _metric_figures("x", result)
    assert [f.layout.yaxis.title.text for f in figures] == ["test/best/dice", "train/disc_acc"]
    assert list(figures[0].data[0].x) == ["Dice, a", "Dice, b"] and list(figures[1].data[0].x) == ["D acc"]
    assert list(figures[0].data[0].error_y.array) == [pytest.approx(0.1), 0.0]  # no interval drawn at n = 1
