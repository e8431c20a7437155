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


def test_bca_bootstrap_matches_scipy_and_is_seeded() -> None:
    from platform.statistics import bootstrap_interval

    a, b = np.array(list(A.values())), np.array(list(B.values()))
    interval = bootstrap_interval(a, b, paired=True, resamples=2000, seed=3)
    expected = stats.bootstrap((a - b,), np.mean, n_resamples=2000, method="BCa",
                               random_state=np.random.default_rng(3)).confidence_interval
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))
    assert interval == bootstrap_interval(a, b, paired=True, resamples=2000, seed=3)  # the same seed, the same
    assert interval.low <= interval.mean <= interval.high


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
