"""The explorer's numbers: intervals by hand, Pareto fronts, filters, brushes, importance, comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboards.analysis import (
    ablation,
    brush_mask,
    by_config,
    config_differences,
    filter_trials,
    grid_filter_mask,
    natural_key,
)
from dashboards.views.comparison import metric_table
from dashboards.views.importance import importance
from dashboards.views.parcoords import brushes_from_restyle
from dashboards.views.pareto import pareto_mask
from platform.statistics import difference_interval, mean_interval

# t(0.975, df) from tables: df=2 -> 4.302653, df=1 -> 12.706205
T2, T1 = 4.302653, 12.706205


def test_mean_interval_matches_hand_computation() -> None:
    values = [0.5, 0.6, 0.7]
    sd = math.sqrt(((0.1**2) * 2) / 2)  # sample sd = 0.1
    interval = mean_interval(values)
    assert interval.mean == pytest.approx(0.6)
    assert interval.high - interval.mean == pytest.approx(T2 * sd / math.sqrt(3), rel=1e-5)
    assert interval.n == 3


@pytest.mark.parametrize(("values", "n", "has_bounds"), [([], 0, False), ([0.3], 1, False), ([0.3, math.nan], 1, False),
                                                         ([0.3, 0.5, math.inf], 2, True)])
def test_mean_interval_ignores_non_finite_and_needs_two_values(values: list[float], n: int, has_bounds: bool) -> None:
    interval = mean_interval(values)
    assert interval.n == n
    assert math.isfinite(interval.low) == has_bounds


def test_difference_interval_is_welch() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0, 1.0])
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 4
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    from scipy import stats

    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    interval = difference_interval(a, b)
    assert interval.mean == pytest.approx(1.5)
    assert (interval.low, interval.high) == pytest.approx((1.5 - half, 1.5 + half))


def _trials() -> pd.DataFrame:
    return pd.DataFrame({
        "trial_id": ["a", "b", "c", "d", "e", "f"],
        "status": ["TERMINATED", "TERMINATED", "ERROR", "TERMINATED", "TERMINATED", "RUNNING"],
        "config/lambda": [0.1, 0.1, 1.0, 1.0, 10.0, 10.0],
        "config/norm": ["batch", "batch", "instance", "instance", "batch", "instance"],
        "config_key": ["0.1", "0.1", "1", "1", "10", "10"],
        "score": [0.8, 0.6, 0.5, 0.3, 0.2, np.nan],
    })


def test_by_config_averages_repeats_with_interval() -> None:
    table = by_config(_trials(), "score", ["config/lambda"]).set_index("config_key")
    assert table.loc["0.1", "mean"] == pytest.approx(0.7)
    sd = float(np.std([0.8, 0.6], ddof=1))
    assert table.loc["0.1", "high"] == pytest.approx(0.7 + T1 * sd / math.sqrt(2), rel=1e-5)
    assert table.loc["10", "n"] == 1 and math.isnan(table.loc["10", "low"])  # one finite value: no interval


def test_ablation_levels_and_difference_to_baseline() -> None:
    table = ablation(_trials(), ["config/norm"], "score", "batch").set_index("level")
    assert table.loc["batch", "mean"] == pytest.approx((0.8 + 0.6 + 0.2) / 3)
    assert table.loc["instance", "n"] == 2  # the NaN score of the running trial is not a sample
    assert table.loc["instance", "diff"] == pytest.approx(0.4 - (0.8 + 0.6 + 0.2) / 3)
    assert table.loc["batch", "diff"] == pytest.approx(0.0)


def test_ablation_of_two_factors_labels_combinations() -> None:
    table = ablation(_trials(), ["config/norm", "config/lambda"], "score", None)
    assert "norm=batch, lambda=0.1" in set(table["level"])
    assert table["diff"].isna().all()  # no baseline chosen


@pytest.mark.parametrize(("x", "y", "modes", "front"), [
    ([1, 2, 3], [3, 2, 1], ("max", "max"), [True, True, True]),
    ([1, 2, 3], [1, 2, 3], ("max", "max"), [False, False, True]),
    ([1, 2, 3], [1, 2, 3], ("max", "min"), [True, True, True]),
    ([1, 2, 3], [3, 2, 1], ("max", "min"), [False, False, True]),
    ([1, 2, 3], [1, 2, 3], ("min", "min"), [True, False, False]),
    ([1, 1, 2], [2, 2, 1], ("max", "max"), [True, True, True]),  # ties stay on the front
    ([1, 1, 2], [2, 1, 1], ("max", "max"), [True, False, True]),
    ([1, math.nan, 2], [1, 5, 0], ("max", "max"), [True, False, True]),
])
def test_pareto_mask(x: list[float], y: list[float], modes: tuple[str, str], front: list[bool]) -> None:
    assert pareto_mask(np.array(x), np.array(y), *modes).tolist() == front


@pytest.mark.parametrize(("model", "kept"), [
    ({"score": {"filterType": "number", "type": "greaterThan", "filter": 0.5}}, ["a", "b"]),
    ({"score": {"filterType": "number", "type": "inRange", "filter": 0.3, "filterTo": 0.6}}, ["b", "c", "d"]),
    ({"score": {"filterType": "number", "type": "blank"}}, ["f"]),
    ({"config/norm": {"filterType": "text", "type": "contains", "filter": "INST"}}, ["c", "d", "f"]),
    ({"config/norm": {"filterType": "text", "type": "equals", "filter": "batch"},
      "score": {"filterType": "number", "type": "lessThan", "filter": 0.7}}, ["b", "e"]),
    ({"score": {"filterType": "number", "operator": "OR", "conditions": [
        {"type": "lessThan", "filter": 0.25}, {"type": "greaterThan", "filter": 0.75}]}}, ["a", "e"]),
    ({"score": {"filterType": "set", "values": ["x"]}}, ["a", "b", "c", "d", "e", "f"]),  # unknown: keeps rows
    ({"not-a-column": {"filterType": "text", "type": "equals", "filter": "x"}}, ["a", "b", "c", "d", "e", "f"]),
])
def test_grid_filter_model_is_applied_like_ag_grid(model: dict, kept: list[str]) -> None:
    trials = _trials()
    assert list(trials[grid_filter_mask(trials, model)]["trial_id"]) == kept


def test_brushes_filter_numbers_and_labels_and_statuses_combine() -> None:
    trials = _trials()
    brushes = {"config/lambda": {"ranges": [[0.05, 2.0]]}, "config/norm": {"labels": ["instance"]}}
    assert list(trials[brush_mask(trials, brushes)]["trial_id"]) == ["c", "d"]
    kept = filter_trials(trials, ["TERMINATED"], brushes, None)
    assert list(kept["trial_id"]) == ["d"]


def test_restyle_events_become_brushes_in_parameter_units() -> None:
    axes = [{"column": "config/lambda", "labels": None, "log": True},
            {"column": "config/norm", "labels": ["batch", "instance", "layer"], "log": False},
            {"column": "score", "labels": None, "log": False}]
    brushes = brushes_from_restyle([{"dimensions[0].constraintrange": [[-1.5, 0.5]]}, [0]], axes, {})
    low, high = brushes["config/lambda"]["ranges"][0]
    assert (low, high) == pytest.approx((10**-1.5, 10**0.5))
    brushes = brushes_from_restyle([{"dimensions[1].constraintrange": [[0.7, 2.2]]}, [0]], axes, brushes)
    assert brushes["config/norm"] == {"labels": ["instance", "layer"]}
    brushes = brushes_from_restyle([{"dimensions[2].constraintrange": [0.1, 0.4]}, [0]], axes, brushes)
    assert brushes["score"] == {"ranges": [[0.1, 0.4]]}
    cleared = brushes_from_restyle([{"dimensions[0].constraintrange": None}, [0]], axes, brushes)
    assert "config/lambda" not in cleared and "config/norm" in cleared


def test_importance_ranks_the_parameter_that_drives_the_score() -> None:
    rng = np.random.default_rng(0)
    n = 80
    trials = pd.DataFrame({"trial_id": [f"t{i}" for i in range(n)], "status": "TERMINATED",
                           "config/lambda": 10 ** rng.uniform(-2, 1, n), "config/noise": rng.uniform(0, 1, n),
                           "config/arch": rng.choice(["a", "b"], n)})
    trials["score"] = -np.log10(trials["config/lambda"]) ** 2 + rng.normal(0, 0.01, n)
    for evaluator in ("mean_decrease_impurity", "ped_anova"):
        values = importance(trials, ["config/arch", "config/lambda", "config/noise"], {"config/arch"}, "score", "max",
                            evaluator)
        assert max(values, key=values.get) == "config/lambda", evaluator


def test_importance_is_empty_without_varied_parameters_and_rejects_unknown_evaluator() -> None:
    trials = _trials().assign(**{"config/constant": 1.0})
    assert importance(trials, ["config/constant"], set(), "score", "max") == {}
    with pytest.raises(ValueError, match="unknown importance evaluator"):
        importance(trials, ["config/lambda"], set(), "score", "max", evaluator="shap")


def test_config_differences_put_differing_keys_first() -> None:
    rows = config_differences({"lambda": 0.1, "norm": "batch", "epochs": 6}, {"lambda": 1.5, "norm": "batch"})
    assert [(r["key"], r["differs"]) for r in rows] == [("epochs", True), ("lambda", True), ("norm", False)]
    assert rows[0]["b"] == "(absent)"


def test_metric_table_splits_domain_and_class() -> None:
    a = pd.Series({"last/val/dice": 0.5, "last/val/dice/infant": 0.4, "last/val/dice/infant/wm": 0.3, "seed": 0})
    b = pd.Series({"last/val/dice": 0.7, "last/val/dice/infant": 0.6, "last/val/dice/infant/wm": 0.2, "seed": 1})
    rows = {(r["metric"], r["domain"], r["class"]): r for r in metric_table({"a": a, "b": b}, ["a", "b"])}
    assert set(rows) == {("dice", "all", "mean"), ("dice", "infant", "mean"), ("dice", "infant", "wm")}
    assert (rows[("dice", "infant", "wm")]["a"], rows[("dice", "infant", "wm")]["b"]) == (0.3, 0.2)


def test_metric_table_labels_last_best_and_test_scores() -> None:
    """A last-epoch value is labelled as such beside the best epoch's and the test scores, never only "dice"."""
    a = pd.Series({"last/val/dice": 0.0016, "best/val/dice": 0.0649, "test/best/dice": 0.05, "test/last/dice": 0.01,
                   "test/selected_epoch": 3.0})
    b = pd.Series({"last/val/dice": 0.2, "best/val/dice": 0.3})
    rows = metric_table({"a": a, "b": b}, ["a", "b"])
    assert [(r["score"], r["a"]) for r in rows] == [
        ("val, last epoch", 0.0016), ("val, best epoch", 0.0649), ("test, networks of the best val epoch", 0.05),
        ("test, last networks", 0.01)]
    assert math.isnan(rows[2]["b"])


def test_natural_order_of_levels() -> None:
    levels = ["[10]", "[2]", "[]", "lambda=10", "lambda=0.5", "[1]"]
    assert sorted(levels, key=natural_key) == ["[1]", "[2]", "[10]", "[]", "lambda=0.5", "lambda=10"]


def test_summary_counts_best_and_elapsed() -> None:
    from dashboards.views.summary import summary_numbers

    trials = _trials().assign(started_at=[100.0, 110, 120, 130, 140, 150],
                              ended_at=[200.0, 210, 220, 230, 240, math.nan])
    numbers = summary_numbers(trials, "score", "max", now=400.0)
    assert numbers["counts"] == {"TERMINATED": 4, "ERROR": 1, "RUNNING": 1} and numbers["total"] == 6
    assert (numbers["best"], numbers["best_trial"]) == (0.8, "a")
    assert numbers["elapsed_s"] == 300.0  # a trial still runs: until now
    finished = summary_numbers(trials.iloc[:5], "score", "min", now=400.0)
    assert (finished["best_trial"], finished["elapsed_s"]) == ("e", 140.0)  # until the last trial ended


def test_numeric_levels_read_as_short_numbers() -> None:
    from dashboards.analysis import level_labels

    trials = pd.DataFrame({"config/lambda": [0.011508094377692606, 1.5], "config/norm": ["batch", "instance"]})
    assert list(level_labels(trials, ["config/lambda"])) == ["0.01151", "1.5"]
    assert list(level_labels(trials, ["config/norm", "config/lambda"])) == ["norm=batch, lambda=0.01151",
                                                                          "norm=instance, lambda=1.5"]


def _seeded(shift: dict[str, float], seeds: dict[str, list[int]]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = {seed: 0.7 + 0.05 * rng.standard_normal() for seed in range(6)}
    rows = [{"trial_id": f"{level}{seed}", "status": "TERMINATED", "seed": seed, "config/norm": level,
             "score": base[seed] + shift[level] + 0.01 * rng.standard_normal()}
            for level in shift for seed in seeds[level]]
    return pd.DataFrame(rows)


def test_ablation_pairs_repeats_by_seed_and_says_so() -> None:
    from scipy import stats

    levels = ("batch", "instance", "group")
    trials = _seeded({"batch": 0.0, "instance": 0.05, "group": -0.01}, {level: list(range(6)) for level in levels})
    table = ablation(trials, ["config/norm"], "score", "batch", order=["batch", "instance", "group"])
    assert list(table["level"]) == ["batch", "instance", "group"]  # the spec's order, not alphabetical
    row = table.set_index("level").loc["instance"]
    a = trials[trials["config/norm"] == "instance"].sort_values("seed")["score"].to_numpy()
    b = trials[trials["config/norm"] == "batch"].sort_values("seed")["score"].to_numpy()
    expected = stats.ttest_rel(a, b)
    assert row["method"] == "paired t"
    assert (row["diff_low"], row["diff_high"]) == pytest.approx(tuple(expected.confidence_interval(0.95)))
    assert row["p"] == pytest.approx(expected.pvalue)
    tested = table.set_index("level")[["p", "p_adjusted"]].dropna()
    assert len(tested) == 2 and (tested["p_adjusted"] >= tested["p"]).all()  # Holm over the two levels shown
    u = stats.mannwhitneyu(a, b).statistic
    assert row["p_improvement"] == pytest.approx(u / (len(a) * len(b)))
    assert row["hedges_g"] > 0 and row["repeats_needed"] >= 2


def test_ablation_uses_welch_when_the_seeds_do_not_pair() -> None:
    from scipy import stats

    trials = _seeded({"batch": 0.0, "instance": 0.05}, {"batch": [0, 1, 2], "instance": [3, 4, 5]})
    row = ablation(trials, ["config/norm"], "score", "batch").set_index("level").loc["instance"]
    a = trials[trials["config/norm"] == "instance"]["score"].to_numpy()
    b = trials[trials["config/norm"] == "batch"]["score"].to_numpy()
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert row["method"] == "Welch" and row["p"] == pytest.approx(expected.pvalue)
    assert (row["diff_low"], row["diff_high"]) == pytest.approx(tuple(expected.confidence_interval(0.95)))


def _cases() -> pd.DataFrame:
    rows = []
    for trial, shift in (("A", 0.05), ("B", 0.0)):
        for index, base in enumerate([0.7, 0.8, 0.6, 0.9, 0.75]):
            bump = shift if index != 2 else -0.1  # A hurts subject s2 and helps the others
            rows.append({"trial_id": trial, "epoch": 4, "split": "test", "checkpoint": "best", "domain": "ct",
                         "subject": f"s{index}", "dice": base + (bump if trial == "A" else 0.0)})
            rows.append({"trial_id": trial, "epoch": 4, "split": "test", "checkpoint": "last", "domain": "ct",
                         "subject": f"s{index}", "dice": 0.1})
    return pd.DataFrame(rows)


def test_per_case_comparison_pairs_subjects_and_runs_wilcoxon() -> None:
    from scipy import stats

    from dashboards.views.cases import helps_and_hurts, per_case_comparison

    table, p = per_case_comparison(_cases(), "A", "B")
    assert len(table) == 5 and table.loc[0, "diff"] == pytest.approx(0.05) and table["diff"].iloc[-1] == pytest.approx(
        -0.1)
    assert p == pytest.approx(stats.wilcoxon(table["a"], table["b"]).pvalue)
    helped, hurt = helps_and_hurts(table, 2)  # B against A: s2 is the one case where B scores higher
    assert list(helped["subject"]) == ["s2"] and len(hurt) == 2
    assert list(helps_and_hurts(table, 2, mode="min")[1]["subject"]) == ["s2"]  # smaller is better: B hurts s2
    last, _ = per_case_comparison(_cases(), "A", "B", checkpoint="last")
    assert (last["diff"] == 0).all()  # the checkpoint is honoured


def test_rank_stability_by_hand_and_bootstrap() -> None:
    from dashboards.analysis import rank_stability

    units = range(6)
    scores = pd.DataFrame([{"level": level, "unit": u, "value": value + 0.001 * u}
                           for level, value in (("good", 0.9), ("mid", 0.7), ("bad", 0.2)) for u in units])
    table = rank_stability(scores, resamples=200)
    observed = table.drop_duplicates("level").set_index("level")["observed"]
    assert observed.to_dict() == {"bad": 3, "good": 1, "mid": 2}
    shares = table.set_index(["level", "rank"])["share"]
    assert shares[("good", 1)] == 1.0 and shares[("bad", 3)] == 1.0  # separated levels never swap
    assert table.groupby("level")["share"].sum().round(9).eq(1.0).all()
    close = pd.DataFrame([{"level": level, "unit": u, "value": v}
                          for u in units for level, v in (("x", 0.5 + 0.1 * (u % 2)), ("y", 0.55))])
    mixed = rank_stability(close, resamples=400).set_index(["level", "rank"])["share"]
    assert 0.05 < mixed[("x", 1)] < 0.95  # overlapping levels share the ranks
    lowest_first = rank_stability(scores, mode="min", resamples=50).drop_duplicates("level").set_index("level")
    assert lowest_first["observed"].to_dict() == {"bad": 1, "good": 3, "mid": 2}


def _two_trial_cases() -> pd.DataFrame:
    """Trials A and B on four subjects of two domains, with a per-class column."""
    rows = []
    scores = {"A": [0.70, 0.60, 0.80, 0.50], "B": [0.75, 0.58, 0.90, 0.65]}
    for trial, values in scores.items():
        for index, value in enumerate(values):
            rows.append({"trial_id": trial, "epoch": 3, "split": "test", "checkpoint": "best",
                         "domain": "mr" if index < 2 else "ct", "subject": f"s{index}", "dice": value,
                         "dice/gm": value - 0.1, "hd95": 10 * (1 - value)})
    return pd.DataFrame(rows)


def test_case_breakdown_per_domain_and_structure_matches_scipy() -> None:
    from scipy import stats

    from dashboards.analysis import case_metrics
    from dashboards.views.cases import case_breakdown

    cases = _two_trial_cases()
    assert case_metrics(cases) == ["dice", "dice/gm", "hd95"]
    table = case_breakdown(cases, "A", "B", "dice").set_index(["metric", "domain"])
    a, b = np.array([0.70, 0.60, 0.80, 0.50]), np.array([0.75, 0.58, 0.90, 0.65])
    overall = table.loc[("dice", "all")]
    assert overall["n"] == 4 and overall["diff"] == pytest.approx((b - a).mean())
    assert overall["p"] == pytest.approx(stats.wilcoxon(b, a).pvalue)
    ct = table.loc[("dice", "ct")]
    assert ct["mean_a"] == pytest.approx(0.65) and ct["mean_b"] == pytest.approx(0.775) and ct["n"] == 2
    assert table.loc[("dice/gm", "all"), "diff"] == pytest.approx((b - a).mean())  # the structure's own rows
    assert set(table.index.get_level_values("domain")) == {"all", "mr", "ct"}


def test_level_case_scores_average_a_levels_trials_per_seed_and_case() -> None:
    from dashboards.analysis import level_case_scores

    trials = pd.DataFrame({"trial_id": ["A", "B", "C"], "config/x": ["on", "on", "off"], "seed": [0, 0, 0]})
    cases = pd.concat([_two_trial_cases(), _two_trial_cases().query("trial_id == 'A'").assign(trial_id="C")])
    scores = level_case_scores(trials, cases, ["config/x"], "dice").set_index(["level", "unit"])["value"]
    # "on" holds A and B (same seed): their mean per case; "off" is C alone.
    assert scores[("on", "seed 0 | mr/s0")] == pytest.approx((0.70 + 0.75) / 2)
    assert scores[("off", "seed 0 | ct/s3")] == pytest.approx(0.50)
    assert len(scores) == 8


@pytest.mark.parametrize(("explore", "scores", "expected"), [
    ({}, {"b": [0.5, 0.6], "a": [0.7, 0.8], "c": [0.1, 0.2]}, "b"),  # the spec's order: b first
    ({}, {"b": [math.nan, math.nan], "a": [0.7, 0.8], "c": [0.1, 0.2]}, "a"),  # b has no data (n = 0): next
    ({"baseline": {"x": "c"}}, {"b": [0.5, 0.6], "a": [0.7, 0.8], "c": [0.1, 0.2]}, "c"),  # the spec's baseline
])
def test_the_default_baseline_is_the_specs_else_the_first_level_in_spec_order_with_data(
        explore: dict, scores: dict, expected: str) -> None:
    from types import SimpleNamespace

    from dashboards.analysis import default_baseline

    experiment = SimpleNamespace(explore=explore, axes_meta={"x": {"values": ["b", "a", "c"]}})
    trials = pd.DataFrame([{"config/x": level, "score": v} for level, values in scores.items() for v in values])
    levels = ["a", "b", "c"]  # as the labels sort: not the spec's order
    assert default_baseline(experiment, trials, ["config/x"], levels, "score") == expected
