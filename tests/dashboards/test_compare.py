"""The comparison of 2 to 6 trials: the default pick is the best two distinct configurations (never two seeds of
one), ranked on the mean over repeats in the score's direction; tables get one column per trial; the learning
curves of every compared trial are overlaid."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboards.app import Explorer
from dashboards.bench import build_experiment
from dashboards.views import comparison


def experiment(mode: str) -> SimpleNamespace:
    return SimpleNamespace(mode_of=lambda column: mode)


# "a": two seeds with the best mean; "e": the best single trial but a poor mean; "b" three seeds; "c" one trial;
# "d" no score. The two best trials (e0, a0) or two seeds of "a" are what a pick of the top trials would compare.
TABLE = pd.DataFrame({
    "trial_id": ["a0", "a1", "b0", "b1", "b2", "c0", "d0", "e0", "e1"],
    "config_key": ["a", "a", "b", "b", "b", "c", "d", "e", "e"],
    "score": [0.95, 0.90, 0.80, 0.85, 0.84, 0.70, np.nan, 0.99, 0.40],
})


@pytest.mark.parametrize(("mode", "count", "expected"), [
    ("max", 2, ["a0", "b1"]),  # means: a .925, b .83, c .70, e .695; each configuration by its best trial
    ("min", 2, ["e1", "c0"]),  # smaller is better: e's mean .695, then c's .70 (each by its smallest trial)
    ("max", 3, ["a0", "b1", "c0"]),
    ("max", 5, ["a0", "b1", "c0", "e0", "a1"]),  # beyond the scored configurations: the best other trials
])
def test_default_pick_is_the_best_distinct_configurations(mode: str, count: int, expected: list[str]) -> None:
    picked = comparison.distinct_best(TABLE, "score", experiment(mode), count)
    assert picked == expected
    keys = TABLE.set_index("trial_id")["config_key"]
    assert len({keys[t] for t in picked[:2]}) == 2


def test_without_config_keys_or_a_score_the_first_trials_are_picked() -> None:
    assert comparison.distinct_best(TABLE.drop(columns="config_key"), "score", experiment("max"), 2) == ["a0", "a1"]
    assert comparison.distinct_best(TABLE.iloc[0:0], "score", experiment("max")) == []


@pytest.mark.parametrize(("ids", "columns"), [
    (["a", "b"], ["a", "b"]),
    (["a", "b", "c", "d", "e", "f", "g"], ["a", "b", "c", "d", "e", "f", "g"]),
])
def test_config_table_flags_keys_that_differ_among_any_of_the_trials(ids: list[str], columns: list[str]) -> None:
    configs = {t: {"lr": 0.1, "arch": "unet", "lambda": 1.0 if t != ids[-1] else 2.0} for t in ids}
    rows = comparison.config_table(configs, ids)
    assert [row["key"] for row in rows] == ["lambda", "arch", "lr"]  # the differing key first
    assert rows[0]["differs"] and not rows[1]["differs"]
    assert all(set(columns) <= set(row) for row in rows)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root: Path = tmp_path_factory.mktemp("compare")
    build_experiment(root, "synthetic", trials=36, epochs=3, seeds=3, images=1)
    return {"explorer": Explorer(str(root)), "version": {"experiment": "synthetic"}}


def test_the_page_compares_the_best_two_configurations_by_default(page: dict[str, Any]) -> None:
    explorer, version = page["explorer"], page["version"]
    _, compared, a, b = explorer.comparison_choices(version, None, {}, None, "best/val/dice", [], None)
    keys = explorer.experiment(version).trials.set_index("trial_id")["config_key"]
    assert len(compared) == 2 and (a, b) == tuple(compared) and keys[a] != keys[b]


def test_up_to_six_trials_get_a_column_each_and_their_curves_overlaid(page: dict[str, Any]) -> None:
    explorer, version = page["explorer"], page["version"]
    ids = explorer.experiment(version).trials["trial_id"].tolist()[:8]
    config, metrics, images, curves = explorer.comparison_parts(version, ids, "val/dice")
    assert f"F: {ids[5]}" in str(metrics) and ids[6] not in str(metrics)
    shown = ids[:comparison.MAX_COMPARED]
    assert str(config).count("Th(") >= 1 + len(shown) and f"F: {shown[5]}" in str(config) and ids[6] not in str(config)
    assert len(images) == len(shown)
    assert [trace["name"].split(":")[0] for trace in curves["data"]] == ["A", "B", "C", "D", "E", "F"]
    few = explorer.comparison_parts(version, ids[:1], "val/dice")
    assert "at least two" in str(few[0])
