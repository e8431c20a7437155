"""``platform.statistics`` against scipy on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from platform.statistics import difference_interval, mean_interval, paired_interval, paired_or_welch

A = {0: 0.81, 1: 0.78, 2: 0.86, 3: 0.80}
B = {0: 0.70, 1: 0.74, 2: 0.71, 3: 0.69}


def test_mean_interval_is_students_t() -> None:
    values = list(A.values())
    interval = mean_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert interval.mean == pytest.approx(np.mean(values)) and (interval.low, interval.high) == pytest.approx(expected)
    assert math.isnan(mean_interval([0.5]).low) and math.isnan(mean_interval([]).mean)


def test_paired_interval_matches_scipy() -> None:
    interval = paired_interval(list(A.values()), list(B.values()))
    expected = stats.ttest_rel(list(A.values()), list(B.values())).confidence_interval(0.95)
    assert interval.method == "paired t" and interval.n == 4
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))


def test_welch_matches_scipy() -> None:
    interval = difference_interval(list(A.values()), list(B.values()))
    expected = stats.ttest_ind(list(A.values()), list(B.values()), equal_var=False).confidence_interval(0.95)
    assert interval.method == "Welch" and (interval.low, interval.high) == pytest.approx((expected.low, expected.high))


def test_paired_when_repeats_pair_and_welch_otherwise() -> None:
    assert paired_or_welch(A, B).method == "paired t"
    assert paired_or_welch(A, {k + 10: v for k, v in B.items()}).method == "Welch"
    assert paired_or_welch(A, {0: 0.7, 9: 0.6, 8: 0.65}).method == "Welch"  # one pair is not enough


def test_difference_test_p_values_are_scipys() -> None:
    from platform.statistics import difference_test

    _, p = difference_test(A, B)
    assert p == pytest.approx(stats.ttest_rel(list(A.values()), list(B.values())).pvalue)
    _, p = difference_test(A, {k + 10: v for k, v in B.items()})
    assert p == pytest.approx(stats.ttest_ind(list(A.values()), list(B.values()), equal_var=False).pvalue)


def test_probability_of_improvement_is_the_mann_whitney_statistic_over_nm() -> None:
    from platform.statistics import probability_of_improvement

    x, y = [0.9, 0.8, 0.7, 0.7], [0.7, 0.6, 0.75]
    u = stats.mannwhitneyu(x, y).statistic  # U of x: pairs with x > y, plus half the ties
    result = probability_of_improvement(x, y, resamples=2000)
    assert result.mean == pytest.approx(u / (len(x) * len(y)))
    # By hand: 8 of 12 pairs have x > y (.9 and .8 beat all three, each .7 beats .6), 2 ties -> (8 + 1) / 12.
    assert result.mean == pytest.approx(9 / 12) and 0 <= result.low <= result.mean <= result.high <= 1


def test_holm_and_benjamini_hochberg_by_hand() -> None:
    from platform.statistics import adjust_p_values

    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    # Holm over the 4 finite values: sorted .005 .01 .03 .04 -> x4 .02, x3 .03, x2 .06, x1 .04 -> monotone .06
    assert adjust_p_values(p) == pytest.approx([0.03, 0.06, 0.06, float("nan"), 0.02], nan_ok=True)
    # BH: sorted .005 .01 .03 .04 -> .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04 (then cumulative minimum)
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, float("nan"), 0.02], nan_ok=True)
    with pytest.raises(ValueError, match="holm or bh"):
        adjust_p_values(p, "bonferroni")


def test_hedges_g_by_hand() -> None:
    from platform.statistics import hedges_g

    a, b = np.array(list(A.values())), np.array(list(B.values()))
    pooled = math.sqrt((3 * a.var(ddof=1) + 3 * b.var(ddof=1)) / 6)
    assert hedges_g(a, b) == pytest.approx((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 8 - 9)))
    assert math.isnan(hedges_g([1.0], [2.0, 3.0]))


@pytest.mark.parametrize(("effect", "paired", "expected"), [
    (0.5, False, 64), (0.8, False, 26), (1.0, False, 17),  # Cohen's tables for a two-sample t-test
    (0.5, True, 34), (1.0, True, 10),  # paired (one-sample) t-test
])
def test_repeats_needed_for_80_percent_power(effect: float, paired: bool, expected: int) -> None:
    from platform.statistics import repeats_needed

    assert repeats_needed(effect, 1.0, paired=paired) == expected
    assert repeats_needed(0.0, 1.0, paired=paired) is None


def test_wilcoxon_signed_rank_is_scipys() -> None:
    from platform.statistics import wilcoxon_signed_rank

    a, b = [0.8, 0.7, 0.9, 0.6, 0.75, 0.85], [0.7, 0.72, 0.8, 0.5, 0.7, 0.8]
    assert wilcoxon_signed_rank(a, b) == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert math.isnan(wilcoxon_signed_rank([0.5, 0.5], [0.5, 0.5]))


# --- repeats, pairing, the core's comparison --------------------------------------------------------------------------

def test_a_repeat_is_seed_and_fold_and_folds_are_never_averaged() -> None:
    from platform.statistics import repeat_key, repeat_label, repeat_values

    assert repeat_key(np.int64(2), float("nan")) == (2, None) == repeat_key(2.0, None)
    assert repeat_key(1, np.int32(3)) == (1, 3) and repeat_label((1, 3)) == "seed 1 fold 3"
    values = repeat_values([0, 0, 0, 1, 1], [0, 1, 1, 0, 1], [0.1, 0.2, 0.4, 0.5, float("nan")])
    # Two trials of repeat (0, 1) (pooled levels) average; folds stay apart; NaN drops.
    assert values == pytest.approx({(0, 0): 0.1, (0, 1): 0.3, (1, 0): 0.5})
    assert list(repeat_values([2, 10, 1], None, [1, 2, 3])) == [(1, None), (2, None), (10, None)]


@pytest.mark.parametrize(("stored", "wanted", "expected"), [
    ("[1, 2]", [1, 2], True), ("[1]", [1, 2], False), (0.1, 0.1 + 1e-12, True), (0.1, 0.1001, False),
    ("st", "st", True), (True, 1, False), (2, 2.0, True), ('{"a": 1}', {"a": 1}, True), ("x", 1, False),
])
def test_cell_matches(stored: object, wanted: object, expected: bool) -> None:
    from platform.statistics import cell_matches

    assert cell_matches(stored, wanted) is expected


def test_t_half_widths_are_mean_intervals() -> None:
    from platform.statistics import t_half_widths

    groups = [[0.1, 0.3, 0.2], [0.5, 0.9], [0.4]]
    std = np.array([np.std(g, ddof=1) if len(g) > 1 else np.nan for g in groups])
    half = t_half_widths(std, np.array([len(g) for g in groups]))
    for g, h in zip(groups[:2], half[:2], strict=True):
        interval = mean_interval(g)
        assert h == pytest.approx(interval.high - interval.mean)
    assert math.isnan(half[2])


def test_compare_paired_and_welch_against_scipy() -> None:
    from platform.statistics import compare, pooled_sd

    paired = compare(A, B)
    a, b = np.array(list(A.values())), np.array(list(B.values()))
    assert paired.method == "paired t" and paired.n == 4 and paired.spread == pytest.approx(np.std(a - b, ddof=1))
    ci = stats.ttest_rel(a, b).confidence_interval(0.9)
    assert (paired.interval(0.9).low, paired.interval(0.9).high) == pytest.approx((ci.low, ci.high))
    for alternative in ("two-sided", "greater", "less"):
        assert paired.p_value(0.05, alternative) == pytest.approx(
            stats.ttest_1samp(a - b, 0.05, alternative=alternative).pvalue)
    welch = compare({"x": 0.8, "y": 0.7, "z": 0.75}, {"u": 0.6, "v": 0.65})
    assert welch.method == "Welch" and welch.n == 2
    result = stats.ttest_ind([0.8, 0.7, 0.75], [0.6, 0.65], equal_var=False)
    assert welch.p_value() == pytest.approx(result.pvalue)
    ci = result.confidence_interval(0.95)
    assert (welch.interval().low, welch.interval().high) == pytest.approx((ci.low, ci.high))
    assert welch.spread == pytest.approx(pooled_sd([0.8, 0.7, 0.75], [0.6, 0.65]))
    assert compare({0: 0.5}, {1: 0.4}).method == "none" and compare({}, {0: 1.0}).n == 0


def test_pooled_sd_and_hedges_g_by_hand() -> None:
    from platform.statistics import hedges_g, pooled_sd

    a, b = [1.0, 2.0, 3.0], [2.0, 4.0]
    pooled = math.sqrt((2 * 1.0 + 1 * 2.0) / 3)  # variances 1 and 2
    assert pooled_sd(a, b) == pytest.approx(pooled)
    assert hedges_g(a, b) == pytest.approx((2.0 - 3.0) / pooled * (1 - 3 / (4 * 5 - 9)))


@pytest.mark.parametrize(("paired", "sides", "alpha"), [(True, 2, 0.05), (False, 2, 0.05), (True, 1, 0.0125)])
def test_minimum_detectable_effect_inverts_repeats_needed(paired: bool, sides: int, alpha: float) -> None:
    from platform.power import _power, minimum_detectable_effect, repeats_needed

    for n in (3, 5, 12):
        effect = minimum_detectable_effect(0.2, n, paired=paired, alpha=alpha, sides=sides)
        assert _power(effect / 0.2, n, paired=paired, alpha=alpha, sides=sides) == pytest.approx(0.8, abs=1e-6)
        assert repeats_needed(effect * 1.001, 0.2, paired=paired, alpha=alpha, sides=sides) == n
    # By hand: the one-sample normal approximation (z_0.975 + z_0.8) / sqrt(n) for large n.
    assert minimum_detectable_effect(1.0, 2000, paired=True) == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / math.sqrt(2000), rel=1e-3)
    assert math.isnan(minimum_detectable_effect(0.2, 1, paired=True))


def test_rank_bootstrap_observed_ranks_by_hand() -> None:
    from platform.statistics import rank_bootstrap

    data = np.array([[0.9, 0.5, 0.5], [0.8, 0.6, 0.6]])  # units x levels; the last two tie
    observed, drawn = rank_bootstrap(data, "max", resamples=50)
    assert observed.tolist() == [1, 2, 2] and drawn.shape == (50, 3) and (drawn[:, 0] == 1).all()
    assert rank_bootstrap(data, "min", resamples=5)[0].tolist() == [3, 1, 1]


# --- verdicts ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("low", "high", "kind", "null", "expected"), [
    (0.01, 0.2, "greater", None, "supported"),
    (-0.01, 0.2, "greater", None, "inconclusive"),
    (0.0, 0.2, "greater", None, "inconclusive"),  # a bound on the null decides nothing
    (-0.3, -0.01, "greater", None, "contradicted"),
    (0.15, 0.3, "min_effect", 0.1, "supported"),
    (0.05, 0.3, "min_effect", 0.1, "inconclusive"),
    (0.01, 0.08, "min_effect", 0.1, "contradicted"),  # above 0, but below the claimed effect
    (-0.015, 0.01, "at_least", -0.02, "supported"),  # non-inferior within 0.02
    (-0.05, 0.01, "at_least", -0.02, "inconclusive"),
    (-0.09, -0.03, "at_least", -0.02, "contradicted"),
    (math.nan, math.nan, "greater", None, "not measured"),
])
def test_verdict_of_an_interval(low: float, high: float, kind: str, null: float | None, expected: str) -> None:
    from platform.statistics import verdict

    assert verdict(low, high, kind, null) == expected


def test_claim_nulls_and_unknown_kinds() -> None:
    from platform.statistics import claim_null, verdict

    assert (claim_null("greater"), claim_null("min_effect", min_effect=0.2), claim_null("at_least", margin=0.02)) \
        == (0.0, 0.2, -0.02)
    with pytest.raises(ValueError, match="unknown claim kind"):
        verdict(0.1, 0.2, "bigger")
    with pytest.raises(ValueError, match="margin"):
        claim_null("at_least")


def test_evaluate_claims_holm_steps_and_non_answers() -> None:
    from platform.statistics import Claim, compare, evaluate_claims

    zero = {s: 0.0 for s in range(4)}
    strong = compare({s: v for s, v in enumerate([0.10, 0.12, 0.11, 0.13])}, zero)
    weak = compare({s: v for s, v in enumerate([0.02, 0.05, -0.005, 0.04])}, zero)
    claims = [Claim("greater", 0.0, weak), Claim("greater", 0.0, strong), Claim("greater", 0.0, None),
              Claim("greater", 0.0, compare({0: 0.5}, {0: 0.1})), Claim("greater", 0.0, strong, "an artefact")]
    weak_result, strong_result, absent, single, invalid = evaluate_claims(claims)
    # m = 2 measured: the strong claim is Holm's first step (97.5%), the weak one its second (95%).
    assert strong_result.level == pytest.approx(0.975) and weak_result.level == pytest.approx(0.95)
    ci = stats.ttest_1samp([0.10, 0.12, 0.11, 0.13], 0.0).confidence_interval(0.975)
    assert strong_result.adjusted == pytest.approx((ci.low, ci.high)) and strong_result.verdict == "supported"
    p_weak = stats.ttest_1samp([0.02, 0.05, -0.005, 0.04], 0.0, alternative="greater").pvalue
    assert weak_result.p == pytest.approx(p_weak) and weak_result.verdict == ("supported" if p_weak < 0.025 else
                                                                                "inconclusive")
    assert (absent.verdict, absent.n, single.verdict, single.n) == ("not measured", 0, "not measured", 1)
    assert invalid.verdict == "invalid" and "artefact" in invalid.reason
    if weak_result.verdict == "inconclusive":
        assert weak_result.repeats_needed is not None and weak_result.repeats_needed > 4
        assert weak_result.detectable > weak_result.difference
