"""Statistics of ablations over repeats, as pure functions (tested against scipy or a hand computation).

Every function takes plain arrays of scores (one per repeat: a seed or a fold) and ignores non-finite values.
``paired_or_welch`` chooses the test an ablation table should use: the paired Student t interval when the repeats
of the two levels pair up (the same seeds or folds on both sides), Welch's interval otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided interval (NaN bounds when it cannot be computed), its n and the method."""

    mean: float
    low: float
    high: float
    n: int
    method: str = "t"


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def mean_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean of n values with a Student-t interval (NaN bounds when n < 2)."""
    array = _finite(values)
    n = int(array.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * array.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def difference_interval(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                        level: float = 0.95) -> Interval:
    """mean(a) - mean(b) with Welch's interval (unequal variances); NaN bounds if either has n < 2."""
    a, b = _finite(a), _finite(b)
    if not a.size or not b.size:
        return Interval(math.nan, math.nan, math.nan, 0, "Welch")
    diff = float(a.mean() - b.mean())
    n = int(min(a.size, b.size))
    if a.size < 2 or b.size < 2:
        return Interval(diff, math.nan, math.nan, n, "Welch")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(diff, diff, diff, n, "Welch")
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return Interval(diff, diff - half, diff + half, n, "Welch")


def paired_interval(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                    level: float = 0.95) -> Interval:
    """mean(a - b) over pairs (a[i], b[i]) with the paired Student-t interval; pairs with a non-finite side drop."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    result = mean_interval(a[keep] - b[keep], level)
    return Interval(result.mean, result.low, result.high, result.n, "paired t")


def paired_or_welch(a: Mapping[object, float], b: Mapping[object, float], level: float = 0.95) -> Interval:
    """``a - b`` for scores keyed by repeat (seed or fold): paired when at least two keys pair, else Welch."""
    common = [key for key in a if key in b and math.isfinite(a[key]) and math.isfinite(b[key])]
    if len(common) >= 2:
        return paired_interval([a[k] for k in common], [b[k] for k in common], level)
    return difference_interval(list(a.values()), list(b.values()), level)
