"""One comparison, three consumers: the explorer's ablation table, ``dashboards.report`` and ``platform.reproduce``
read the same trials table through ``platform.statistics`` and give the same n, difference and interval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dashboards.analysis import ablation
from dashboards.report import report_table
from dashboards.tables import Catalog
from platform.papertables import claim_results, row_values
from platform.results import ResultsStore
from platform.spec import PaperClaim
from platform.storage import experiment_uri
from tests.conftest import REPO_ROOT

SEEDS = [0, 1, 2]
NAME = "grid"


def write_grid(storage: Path, folds: list[int] | None) -> dict[str, dict[tuple[int, int | None], float]]:
    """A finished 2-level x 3-seed grid (x, each seed across ``folds`` when given), with a seed effect shared by
    both levels; returns level -> (seed, fold) -> the val score."""
    rng = np.random.default_rng(3)
    scores: dict[str, dict[tuple[int, int | None], float]] = {}
    rows = []
    for level, shift in (("a", 0.0), ("b", 0.04)):
        for seed in SEEDS:
            for fold in folds or [None]:
                value = 0.7 + shift + 0.05 * (seed - 1) + 0.02 * rng.standard_normal()
                scores.setdefault(level, {})[(seed, fold)] = value
                rows.append({"trial_id": f"{level}-{seed}-{fold}", "experiment": NAME, "trainer": "fault",
                             "status": "TERMINATED", "seed": seed, "repeat": seed, "config/x": level,
                             **({"fold": fold} if folds else {}),
                             "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]),
                             "best/val/dice": value, "test/best/dice": value - 0.01})
    store = ResultsStore(experiment_uri(str(storage), NAME))
    store.append("trials", rows)
    store.append("sweep", [{"experiment": NAME, "trainer": "fault",
                            "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]),
                            "metrics": json.dumps({"dice": {"direction": "max", "kind": "overlap"}}),
                            "axes": json.dumps({"x": {"kind": "grid", "log": False, "values": ["a", "b"]}}),
                            "explore": json.dumps({"baseline": {"x": "a"}})}])
    return scores


@pytest.mark.parametrize("folds", [None, [0, 1]], ids=["seeds", "seeds-and-folds"])
def test_explorer_report_and_reproduce_agree(tmp_path: Path, folds: list[int] | None) -> None:
    scores = write_grid(tmp_path, folds)
    experiment = Catalog(str(tmp_path)).load(NAME)
    explorer = ablation(experiment.trials, ["config/x"], "best/val/dice", "a").set_index("level").loc["b"]
    report = report_table(experiment, ["x"], None, "best/val/dice").set_index("level").loc["b"]
    trials = experiment.trials.to_dict("records")
    values = {level: row_values(trials, {"x": level}, "best/val/dice") for level in ("a", "b")}
    [claim] = claim_results([PaperClaim(text="b > a", larger="b", smaller="a")], values)

    keys = sorted(scores["a"])
    differences = np.array([scores["b"][k] - scores["a"][k] for k in keys])
    expected = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    n = len(SEEDS) * len(folds or [None])  # every (seed, fold) is a repeat: folds are not averaged away
    for source in (explorer, report):
        assert source["method"] == "paired t"
        assert source["diff"] == pytest.approx(differences.mean(), abs=1e-12)
        assert (source["diff_low"], source["diff_high"]) == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert claim["test"] == "paired t" and claim["n"] == n and len(values["a"]) == n
    assert claim["difference"] == pytest.approx(differences.mean(), abs=1e-12)
    assert claim["ci95"] == pytest.approx([expected.low, expected.high], abs=1e-12)
    # The verdict of the same comparison alone in its family: one rule everywhere.
    assert explorer["verdict"] == report["verdict"] == claim["verdict"]


def test_the_report_cli_on_val_is_scipys_paired_t(tmp_path: Path) -> None:
    scores = write_grid(tmp_path, None)
    result = subprocess.run([sys.executable, "-m", "dashboards.report", "--storage", str(tmp_path), "--experiment",
                             NAME, "--factor", "x", "--split", "val", "--format", "json"], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout)["rows"] if r["level"] == "b")
    b = [scores["b"][(s, None)] for s in SEEDS]
    a = [scores["a"][(s, None)] for s in SEEDS]
    paired = stats.ttest_rel(b, a)
    ci = paired.confidence_interval()
    assert row["n"] == 3 and row["method"] == "paired t"
    assert row["diff"] == pytest.approx(float(np.mean(np.subtract(b, a))), rel=1e-12)
    assert (row["diff_low"], row["diff_high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert row["p"] == pytest.approx(paired.pvalue, rel=1e-9)


def test_ablation_bars_name_the_adjustment_they_use(tmp_path: Path) -> None:
    from dashboards.views.ablation import ablation_bars

    write_grid(tmp_path, None)
    trials = Catalog(str(tmp_path)).load(NAME).trials
    for adjust, name in (("holm", "Holm-adjusted p"), ("bh", "BH-adjusted p")):
        figure = ablation_bars(trials, ["config/x"], "best/val/dice", "a", adjust=adjust)
        hover = figure["data"][1]["hovertemplate"]
        assert name in hover and "beats the baseline" in hover
