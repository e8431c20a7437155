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
