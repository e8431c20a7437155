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
    assert 0 < figures["filter_json_bytes"] <= figures["page_json_bytes"] * 2
    assert figures["server_peak_rss_mb"] > 50  # the server imports pandas, plotly and dash at least
    out_text = capsys.readouterr().out
    assert "first full page" in out_text and "server peak memory" in out_text


def test_optuna_dashboard_first_page_is_measured_when_installed() -> None:
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is optional (pip install optuna-dashboard)")
    figures = bench.optuna_dashboard_first_page(trials=30, epochs=4)
    assert figures is not None and figures["page_json_bytes"] > 0 and figures["first_page_s"] > 0


def test_bad_sizes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--trials", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
