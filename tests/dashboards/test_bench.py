"""The explorer benchmark runs end to end in a reduced size and reports every figure (values not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboards import bench


def test_reduced_benchmark_writes_figures_with_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "explorer.json"
    assert bench.main(["--trials", "300", "--epochs", "5", "--repeat", "1", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())["benchmarks"]["explorer"]
    for key in ("first_page_s", "filter_s", "baseline_read_trials_s", "first_page_vs_baseline", "filter_vs_baseline"):
        assert figures[key] > 0, key
    assert figures["epoch_rows"] == 1500 and figures["target_first_page_s"] == 2.0
    assert "first full page" in capsys.readouterr().out


def test_bad_sizes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--trials", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
