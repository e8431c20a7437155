"""``platform.reproduce``: the row selection, the claims, one quick run (statistics: tests/test_statistics.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from platform.reproduce import PAPER_DIR, claim_result, row_values
from platform.spec import PaperClaim, load_spec
from tests.conftest import REPO_ROOT

A = {0: 0.81, 1: 0.78, 2: 0.86, 3: 0.80}
B = {0: 0.70, 1: 0.74, 2: 0.71, 3: 0.69}


@pytest.mark.parametrize(("larger", "smaller", "at_least", "holds", "significant"), [
    ("a", "b", False, True, True),
    ("b", "a", False, False, True),
    ("b", "a", True, False, True),  # "larger or equal" fails only when significantly smaller
    ("a", "same", True, True, False),
])
def test_claims(larger: str, smaller: str, at_least: bool, holds: bool, significant: bool) -> None:
    values = {"a": A, "b": B, "same": {k: v + (0.01 if k % 2 else -0.01) for k, v in A.items()}}
    result = claim_result(PaperClaim(text="t", larger=larger, smaller=smaller, at_least=at_least), values)
    assert (result["holds"], result["significant"]) == (holds, significant)


def test_rows_pick_finished_trials_by_axis_value_and_pool_levels() -> None:
    trials = [
        {"status": "TERMINATED", "seed": 0, "config/lambda": 0.1, "config/blocks": "[1]", "test/best/dice": 0.8},
        {"status": "TERMINATED", "seed": 1, "config/lambda": 0.1, "config/blocks": "[2]", "test/best/dice": 0.6},
        {"status": "TERMINATED", "seed": 0, "config/lambda": 1.5, "config/blocks": "[2]", "test/best/dice": 0.4},
        {"status": "ERROR", "seed": 2, "config/lambda": 0.1, "config/blocks": "[1]", "test/best/dice": 0.9},
        {"status": "TERMINATED", "seed": 0, "config/lambda": 0.1, "last/train/disc_acc": 0.7},
    ]
    assert row_values(trials, {"lambda": 0.1}, "test/best/dice") == {0: 0.8, 1: 0.6}
    assert row_values(trials, {"blocks": [2]}, "test/best/dice") == {0: 0.4, 1: 0.6}
    assert row_values(trials, [{"blocks": [1]}, {"blocks": [2]}], "test/best/dice") == pytest.approx({0: 0.6, 1: 0.6})
    assert row_values(trials, {"lambda": 0.1}, "train/disc_acc") == {0: 0.7}  # a last/ column


@pytest.mark.parametrize("path", sorted(PAPER_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_paper_spec_loads_with_its_table(path: Path) -> None:
    spec = load_spec(path)
    assert spec.paper is not None and spec.paper.rows
    assert spec.scheduler.type == "none" and len(spec.repeats.seeds) >= (1 if "table6" in path.stem else 3)


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
    assert table["claims"][0]["holds"] is True
    assert "| block 1 | model/params_ratio | 1.001 |" in (out / "reproduce.md").read_text()
    page = (out / "reproduce.html").read_text()
    assert "<script" in page and "plotly" in page.lower() and "http" not in page.split("<body>")[1][:200]
    # Read again, running nothing: the finished sweep is reused.
    again = subprocess.run([sys.executable, "-m", "platform.reproduce", "dualnorm_table6", "--quick", "--read",
                            "--storage", str(tmp_path / "runs"), "--out", str(out)], capture_output=True, text=True,
                           cwd=REPO_ROOT, timeout=300)
    assert again.returncode == 0 and "running" not in again.stdout, again.stdout + again.stderr


def test_an_unknown_table_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "nope"], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2 and "unknown paper spec" in result.stderr and "Traceback" not in result.stderr
