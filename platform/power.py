"""Power of a t-test over repeats: how many repeats a difference needs, and the smallest difference n repeats
detect (noncentral t; re-exported by :mod:`platform.statistics`)."""

from __future__ import annotations

import math

from scipy import stats


def _power(effect: float, n: int, *, paired: bool, alpha: float, sides: int) -> float:
    """Power of a t-test (noncentral t) at standardised ``effect`` with ``n`` repeats per level."""
    dof = n - 1 if paired else 2 * n - 2
    noncentrality = effect * math.sqrt(n) if paired else effect * math.sqrt(n / 2)
    critical = stats.t.ppf(1 - alpha / sides, dof)
    achieved = stats.nct.sf(critical, dof, noncentrality) + (
        stats.nct.cdf(-critical, dof, noncentrality) if sides == 2 else 0.0)
    if not math.isfinite(achieved):  # scipy's noncentral t fails at large dof and noncentrality: the normal limit
        achieved = stats.norm.sf(critical - noncentrality) + (
            stats.norm.cdf(-critical - noncentrality) if sides == 2 else 0.0)
    return float(achieved)


def repeats_needed(difference: float, spread: float, *, paired: bool, power: float = 0.8, alpha: float = 0.05,
                   sides: int = 2, most: int = 10_000) -> int | None:
    """The fewest repeats per level for a t-test at ``alpha`` (``sides`` 2: two-sided; 1: one-sided) to detect
    ``difference`` with ``power`` (noncentral t), given ``spread``: the standard deviation of the paired differences
    (``paired``) or the pooled one of the two levels (:func:`pooled_sd`). None when the difference is 0 or not
    finite, or more than ``most`` would be needed."""
    if not (math.isfinite(difference) and math.isfinite(spread)) or difference == 0 or spread <= 0:
        return None
    effect = abs(difference) / spread
    high = 2  # power grows with n: double until it is reached (the noncentral t is accurate at small n), bisect
    while _power(effect, high, paired=paired, alpha=alpha, sides=sides) < power:
        if high >= most:
            return None
        high = min(2 * high, most)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if _power(effect, middle, paired=paired, alpha=alpha, sides=sides) >= power:
            high = middle
        else:
            low = middle + 1
    return low


def minimum_detectable_effect(spread: float, n: int, *, paired: bool, power: float = 0.8, alpha: float = 0.05,
                              sides: int = 2) -> float:
    """The smallest true difference a t-test at ``alpha`` (``sides`` as in :func:`repeats_needed`) detects with
    ``power`` at ``n`` repeats per level, given ``spread`` (SD of the paired differences, or the pooled SD).
    NaN below two repeats or without a finite positive spread."""
    if n < 2 or not math.isfinite(spread) or spread <= 0:
        return math.nan
    from scipy.optimize import brentq

    high = 1.0
    while _power(high, n, paired=paired, alpha=alpha, sides=sides) < power:
        high *= 2
    effect = brentq(lambda d: _power(d, n, paired=paired, alpha=alpha, sides=sides) - power, 0.0, high, xtol=1e-10)
    return float(effect * spread)
