"""``python -m dashboards.report``: the ablation table of a sweep with repeats, its numbers against scipy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from platform.results import ResultsStore
from platform.storage import experiment_uri
from tests.conftest import REPO_ROOT

LEVELS = ["[]", "[1]", "[2]", "[8]"]  # in the spec's order; [8] sorts before [2] alphabetically only
SHIFT = {"[]": 0.0, "[1]": 0.06, "[2]": 0.01, "[8]": -0.04}
SEEDS = [0, 1, 2, 3]


def write_sweep(storage: Path, name: str = "placement") -> dict[str, dict[int, float]]:
    """A finished dualnorm-like sweep: dnrb_blocks x 4 seeds, with a seed effect shared by every level."""
    rng = np.random.default_rng(7)
    seed_effect = {seed: 0.05 * rng.standard_normal() for seed in SEEDS}
    scores: dict[str, dict[int, float]] = {}
    rows = []
    for level in LEVELS:
        for seed in SEEDS:
            value = 0.7 + SHIFT[level] + seed_effect[seed] + 0.01 * rng.standard_normal()
            scores.setdefault(level, {})[seed] = value
            rows.append({"trial_id": f"{level}-{seed}", "experiment": name, "trainer": "dualnorm",
                         "status": "TERMINATED", "seed": seed, "repeat": seed, "config/dnrb_blocks": level,
                         "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]),
                         "best/val/dice": value + 0.01, "test/best/dice": value})
    store = ResultsStore(experiment_uri(str(storage), name))
    store.append("trials", rows)
    store.append("cases", [{"trial_id": row["trial_id"], "epoch": 5, "split": "test", "checkpoint": "best",
                            "domain": "mr", "subject": f"s{subject}", "dice": row["test/best/dice"] + 0.01 * subject}
                           for row in rows for subject in range(3)])
    store.append("sweep", [{"experiment": name, "trainer": "dualnorm",
                            "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]),
                            "metrics": json.dumps({"dice": {"direction": "max", "kind": "overlap"}}),
                            "axes": json.dumps({"dnrb_blocks": {"kind": "grid", "log": False,
                                                                "values": [json.loads(v) for v in LEVELS]}}),
                            "explore": json.dumps({"baseline": {"dnrb_blocks": []}})}])
    return scores


def run_report(storage: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dashboards.report", "--storage", str(storage), "--experiment",
                           "placement", "--factor", "dnrb_blocks", *extra], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)


def test_the_markdown_table_equals_an_independent_scipy_computation(tmp_path: Path) -> None:
    scores = write_sweep(tmp_path)
    result = run_report(tmp_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {row["level"]: row for row in report["rows"]}
    assert [row["level"] for row in report["rows"]] == LEVELS  # the spec's order, baseline from explore
    assert rows["[]"]["method"] == "baseline"
    base = np.array([scores["[]"][s] for s in SEEDS])
    p_values = []
    for level in LEVELS[1:]:
        values = np.array([scores[level][s] for s in SEEDS])
        mean_ci = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        paired = stats.ttest_rel(values, base)
        row = rows[level]
        assert row["mean"] == pytest.approx(values.mean()) and row["n"] == 4
        assert (row["low"], row["high"]) == pytest.approx(mean_ci)
        assert row["method"] == "paired t"
        assert row["diff"] == pytest.approx((values - base).mean())
        assert (row["diff_low"], row["diff_high"]) == pytest.approx(tuple(paired.confidence_interval(0.95)))
        assert row["p"] == pytest.approx(paired.pvalue)
        assert row["p_improvement"] == pytest.approx(stats.mannwhitneyu(values, base).statistic / 16)
        p_values.append(paired.pvalue)
    # Holm by hand over the three levels compared.
    order = np.argsort(p_values)
    holm = np.empty(3)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p_values[index]))
        holm[index] = running
    assert [rows[level]["p_adjusted"] for level in LEVELS[1:]] == pytest.approx(holm.tolist())
    markdown = run_report(tmp_path)
    assert markdown.returncode == 0, markdown.stderr
    text = markdown.stdout
    assert "| level | mean [95% CI] | n |" in text and "holm" in text
    line = next(line for line in text.splitlines() if line.startswith("| [1]"))
    assert f"{rows['[1]']['mean']:.3f}" in line and "paired t" in line
    assert line.startswith("| [1] *") == (rows["[1]"]["p_adjusted"] < 0.05)


@pytest.mark.parametrize("form", ["latex", "csv", "html"])
def test_other_formats(tmp_path: Path, form: str) -> None:
    write_sweep(tmp_path)
    out = tmp_path / f"table.{form}"
    result = run_report(tmp_path, "--format", form, "--out", str(out), "--baseline", "[1]", "--adjust", "bh")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    if form == "latex":
        assert r"\begin{tabular}" in text and "baseline [1]" in text
    elif form == "csv":
        assert text.splitlines()[0].startswith("level,mean,low,high,n,diff")
    else:
        assert "<table>" in text and "<script" in text and "Plotly" in text
        # Every view of the ablation: bars, the score against the factor, parallel coordinates, rank blobs.
        assert text.count("Plotly.newPlot") == 4 and "Rank stability" in text


@pytest.mark.parametrize(("extra", "message"), [
    (["--baseline", "[9]"], "baseline '[9]' is not a level"),
    (["--metric", "val/hd95"], "has no column 'test/best/hd95'"),
])
def test_mistakes_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    write_sweep(tmp_path)
    result = run_report(tmp_path, *extra)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("mode", "better"), [("max", "> 0 is better"), ("min", "< 0 is better")])
def test_the_difference_column_says_which_sign_is_better(mode: str, better: str) -> None:
    from dashboards.report import headers

    assert any(better in h for h in headers(mode) if h.startswith("difference"))


def test_an_interval_from_one_repeat_says_why_it_is_missing() -> None:
    from dashboards.report import _interval

    assert _interval(0.5, float("nan"), float("nan")) == "0.500 (no interval: n < 2)"
    assert _interval(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]"
