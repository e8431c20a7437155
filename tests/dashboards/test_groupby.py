"""Group-by rows in the grid: one row per value of a config key with each score's mean, 95% Student-t interval
(each trial one repeat) and n, checked against scipy on a hand table; the spec's level order; the grid's sort and
filters on group columns; no interval below n = 2."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboards.app import Explorer
from dashboards.bench import build_experiment
from dashboards.views import grid

HAND = pd.DataFrame({
    "config/arch": ["resnet", "dcgan", "resnet", "unet", "dcgan", "resnet", "dcgan"],
    "best/val/dice": [0.80, 0.70, 0.90, 0.50, 0.74, 0.70, np.nan],
    "last/val/dice": [0.78, 0.69, 0.88, 0.49, 0.70, 0.69, 0.60],
})


def scipy_interval(values: list[float]) -> tuple[float, float, int]:
    """Mean, half width of the 95% t interval (NaN below n = 2) and n, from scipy directly."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return float(array.mean()), math.nan, int(array.size)
    low, high = stats.t.interval(0.95, array.size - 1, loc=array.mean(), scale=stats.sem(array))
    return float(array.mean()), float((high - low) / 2), int(array.size)


@pytest.mark.parametrize(("level", "score", "values"), [
    ("resnet", "best/val/dice", [0.80, 0.90, 0.70]),
    ("dcgan", "best/val/dice", [0.70, 0.74]),  # a NaN score is not a repeat: n = 2, not 3
    ("dcgan", "last/val/dice", [0.69, 0.70, 0.60]),
    ("unet", "best/val/dice", [0.50]),  # n = 1: a mean, no interval
])
def test_group_mean_and_interval_match_scipy(level: str, score: str, values: list[float]) -> None:
    table = grid.group_table(HAND, "config/arch", ["best/val/dice", "last/val/dice"])
    row = table[table["config/arch"] == level].iloc[0]
    mean_field, half_field, n_field = grid.group_fields(score)
    mean, half, n = scipy_interval(values)
    assert row[mean_field] == pytest.approx(mean, rel=1e-12)
    assert row[n_field] == n
    if math.isnan(half):
        assert math.isnan(row[half_field])
    else:
        assert row[half_field] == pytest.approx(half, rel=1e-9)
    assert row[grid.GROUP_TRIALS] == (HAND["config/arch"] == level).sum()


@pytest.mark.parametrize(("order", "expected"), [
    (None, ["dcgan", "resnet", "unet"]),  # natural order without a spec
    (["unet", "resnet", "dcgan"], ["unet", "resnet", "dcgan"]),  # the spec's level order
    (["resnet"], ["resnet", "dcgan", "unet"]),  # levels the spec does not list follow, sorted
])
def test_groups_follow_the_spec_level_order(order: list[str] | None, expected: list[str]) -> None:
    table = grid.group_table(HAND, "config/arch", ["best/val/dice"], order)
    assert table["config/arch"].tolist() == expected


def test_numeric_keys_sort_as_numbers_and_a_missing_value_is_its_own_group_last() -> None:
    trials = pd.DataFrame({"config/lr": [10.0, 2.0, np.nan, 2.0, 0.5], "best/val/dice": [0.1, 0.2, 0.3, 0.4, 0.5]})
    table = grid.group_table(trials, "config/lr", ["best/val/dice"])
    assert table["config/lr"].tolist()[:3] == [0.5, 2.0, 10.0] and math.isnan(table["config/lr"].iloc[3])
    assert table[grid.GROUP_ID].tolist() == ["0.5", "2.0", "10.0", "(absent)"]
    assert table[grid.group_fields("best/val/dice")[0]].tolist()[1] == pytest.approx(0.3)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Explorer, dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("groupby")
    build_experiment(root, "synthetic", trials=60, epochs=3, seeds=3, images=0)
    explorer = Explorer(str(root))
    version = {"experiment": "synthetic"}
    return explorer, version


def test_grouped_grid_rows_are_one_per_level_in_the_spec_order(explorer: tuple[Explorer, dict[str, Any]]) -> None:
    app, version = explorer
    request = {"startRow": 0, "endRow": 50, "sortModel": [], "filterModel": {}}
    answer = app.rows(request, version, None, {}, "best/val/dice", None, None, "config/disc_arch")
    trials = app.experiment(version).trials
    assert answer["rowCount"] == 2
    assert [row["config/disc_arch"] for row in answer["rowData"]] == ["dcgan", "resnet"]  # the spec lists them so
    assert sum(row[grid.GROUP_TRIALS] for row in answer["rowData"]) == len(trials)
    for row in answer["rowData"]:
        values = trials.loc[trials["config/disc_arch"] == row["config/disc_arch"], "best/val/dice"].dropna()
        mean, half, n = scipy_interval(values.tolist())
        fields = grid.group_fields("best/val/dice")
        assert row[fields[0]] == pytest.approx(mean) and row[fields[1]] == pytest.approx(half) and row[fields[2]] == n
        assert "trial_id" not in row  # a group row selects no trial


def test_grouped_rows_sort_and_filter_on_group_columns(explorer: tuple[Explorer, dict[str, Any]]) -> None:
    app, version = explorer
    mean = grid.group_fields("best/val/dice")[0]
    request = {"startRow": 0, "endRow": 50, "sortModel": [{"colId": mean, "sort": "desc"}],
               "filterModel": {grid.GROUP_TRIALS: {"filterType": "number", "type": "greaterThan", "filter": 2}}}
    answer = app.rows(request, version, None, {}, "best/val/dice", None, None, "config/n_steps")
    means = [row[mean] for row in answer["rowData"]]
    assert means == sorted(means, reverse=True) and answer["rowCount"] == len(means) > 0
    assert all(row[grid.GROUP_TRIALS] > 2 for row in answer["rowData"])
    # The same filter model keeps every trial for the other views: "trials" is no column of the trials table.
    assert len(app.filtered(version, None, {}, request["filterModel"])[1]) == len(app.experiment(version).trials)


def test_grouped_column_definitions_say_n_and_the_interval(explorer: tuple[Explorer, dict[str, Any]]) -> None:
    app, version = explorer
    definitions, _, _ = app.columns(version, "best/val/dice", None, "config/disc_arch")
    fields = [d["field"] for d in definitions]
    assert fields[:2] == ["config/disc_arch", grid.GROUP_TRIALS] and grid.group_fields("best/val/dice")[0] in fields
    formatter = next(d for d in definitions if d["field"] == grid.group_fields("best/val/dice")[0])
    assert "no interval at n < 2" in formatter["valueFormatter"]["function"]
    assert "95% CI" in formatter["headerName"]
    options, value = app.group_options(version, "config/nope")
    assert {o["value"] for o in options} == set(app.experiment(version).params) and value is None
