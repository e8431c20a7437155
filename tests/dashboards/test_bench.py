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
    # Where the bytes and the time go, per callback: the grid's block and the comparison among them.
    assert {"rows", "comparison_parts"} <= set(figures["page_json_bytes_by_callback"])
    assert "rows" in figures["filter_seconds_by_callback"] and "slowest callbacks of a filter" in out_text


def test_optuna_dashboard_first_page_is_measured_when_installed() -> None:
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is optional (pip install optuna-dashboard)")
    figures = bench.optuna_dashboard_first_page(trials=30, epochs=4)
    assert figures is not None and figures["page_json_bytes"] > 0 and figures["first_page_s"] > 0


def test_bad_sizes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--trials", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_the_page_is_every_declared_callback_and_says_where_its_bytes_go(tmp_path: Path) -> None:
    from dashboards.app import Explorer

    bench.build_experiment(tmp_path, "bench", trials=40, epochs=3, images=1)
    explorer = Explorer(str(tmp_path))
    page = bench._first_page(explorer, "bench")
    fired = set(page["sizes"])
    # Every filtered view and every callback a load fires, the per-trial views and the grid's block included.
    assert set(explorer.views) <= fired
    assert {"rows", "columns", "comparison_parts", "trial_log", "trial_resources"} <= fired
    assert page["state"][("compare-trials", "value")] and page["state"][("inspect-trial", "value")]
    # A filter fires what follows the filters, not what follows an unchanged pick (the comparison, the log).
    score = page["state"][("score", "value")]
    after = bench._filter(page, {score: {"filterType": "number", "type": "greaterThan", "filter": 0.0}}, {})
    assert set(explorer.views) <= set(after) and "rows" in after and "trial_log" not in after


@pytest.mark.parametrize("trials", [50, 12_000])
def test_the_optimisation_history_sends_a_bounded_sample_and_every_new_best(trials: int) -> None:
    import numpy as np
    import pandas as pd

    from dashboards import figures
    from dashboards.views.history import optimisation_history

    rng = np.random.default_rng(1)
    scores = rng.random(trials)
    table = pd.DataFrame({"trial_id": [f"t{i}" for i in range(trials)], "status": "TERMINATED",
                          "ended_at": np.arange(trials, dtype=float), "score": scores})
    dots, line = optimisation_history(table, "score", "max")["data"][:2]
    best = np.maximum.accumulate(scores)
    assert len(dots["y"]) == min(trials, figures.SCATTER_POINTS)
    records = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    assert set(records + 1) <= set(np.asarray(dots["x"]).tolist())  # every trial that set a new best is drawn
    # The step line (shape hv) holds, at every trial, the best so far.
    steps_x, steps_y = np.asarray(line["x"]), np.asarray(line["y"])
    held = steps_y[np.searchsorted(steps_x, np.arange(1, trials + 1), side="right") - 1]
    assert np.array_equal(held, best) and len(steps_x) <= len(records) + 1
