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


def difference_test(a: Mapping[object, float], b: Mapping[object, float]) -> tuple[Interval, float]:
    """(the interval of ``paired_or_welch``, its two-sided p-value: paired t-test or Welch's t-test)."""
    interval = paired_or_welch(a, b)
    if interval.n < 2 or not math.isfinite(interval.mean):
        return interval, math.nan
    if interval.method == "paired t":
        common = [k for k in a if k in b and math.isfinite(a[k]) and math.isfinite(b[k])]
        x, y = np.array([a[k] for k in common]), np.array([b[k] for k in common])
        if np.all(x - y == (x - y)[0]):
            return interval, 0.0 if (x - y)[0] != 0 else 1.0  # a constant difference: no spread to test
        return interval, float(stats.ttest_rel(x, y).pvalue)
    x, y = _finite(list(a.values())), _finite(list(b.values()))
    if x.std() == 0 and y.std() == 0:
        return interval, 0.0 if x.mean() != y.mean() else 1.0
    return interval, float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def bootstrap_interval(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, paired: bool,
                       resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> Interval:
    """mean(a) - mean(b) (paired: the mean of a - b) with a BCa bootstrap interval (scipy, seeded)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    else:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = int(min(a.size, b.size))
    diff = float(np.mean(a - b)) if paired and n else float(a.mean() - b.mean()) if n else math.nan
    if n < 2 or (paired and np.all(a - b == (a - b)[0])):
        return Interval(diff, math.nan, math.nan, n, "BCa bootstrap")
    data = (a - b,) if paired else (a, b)

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return samples[0].mean(axis=axis) if paired else samples[0].mean(axis=axis) - samples[1].mean(axis=axis)

    result = stats.bootstrap(data, statistic, n_resamples=resamples, confidence_level=level, method="BCa",
                             random_state=np.random.default_rng(seed), vectorized=True)
    return Interval(diff, float(result.confidence_interval.low), float(result.confidence_interval.high), n,
                    "BCa bootstrap")


def probability_of_improvement(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *,
                               resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> Interval:
    """P(X > Y) as rliable defines it: the Mann-Whitney U statistic over n*m (ties count one half), with a seeded
    percentile bootstrap interval (x and y resampled independently)."""
    x, y = _finite(x), _finite(y)
    if not x.size or not y.size:
        return Interval(math.nan, math.nan, math.nan, 0, "P(X > Y)")

    def statistic(xs: np.ndarray, ys: np.ndarray, axis: int = -1) -> np.ndarray:
        greater = (xs[..., :, None] > ys[..., None, :]).mean(axis=(-2, -1))
        ties = (xs[..., :, None] == ys[..., None, :]).mean(axis=(-2, -1))
        return greater + 0.5 * ties

    value = float(statistic(x, y))
    if x.size < 2 or y.size < 2:
        return Interval(value, math.nan, math.nan, int(min(x.size, y.size)), "P(X > Y)")
    result = stats.bootstrap((x, y), statistic, n_resamples=resamples, confidence_level=level, method="percentile",
                             random_state=np.random.default_rng(seed), vectorized=True)
    return Interval(value, float(result.confidence_interval.low), float(result.confidence_interval.high),
                    int(min(x.size, y.size)), "P(X > Y)")


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """p-values adjusted over a family (the levels shown): Holm's step-down (controls the family-wise error) or
    Benjamini-Hochberg (``bh``, the false discovery rate). NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    if not valid.size:
        return out.tolist()
    if method == "bh":
        out[valid] = stats.false_discovery_control(p[valid], method="bh")
        return out.tolist()
    if method != "holm":
        raise ValueError(f"unknown p-value adjustment {method!r}: use holm or bh")
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def hedges_g(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Hedges' g of a against b: Cohen's d with the pooled standard deviation, times the small-sample correction
    J = 1 - 3 / (4 (n_a + n_b) - 9). NaN below two values a side or with no spread."""
    a, b = _finite(a), _finite(b)
    if a.size < 2 or b.size < 2:
        return math.nan
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    if pooled == 0:
        return math.nan
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (a.size + b.size) - 9)))


def repeats_needed(difference: float, spread: float, *, paired: bool, power: float = 0.8, alpha: float = 0.05,
                   most: int = 10_000) -> int | None:
    """The fewest repeats per level for a two-sided t-test at ``alpha`` to detect ``difference`` with ``power``
    (noncentral t), given ``spread``: the standard deviation of the paired differences (``paired``) or of each level.
    None when the difference is 0 or not finite, or more than ``most`` would be needed."""
    if not (math.isfinite(difference) and math.isfinite(spread)) or difference == 0 or spread <= 0:
        return None
    effect = abs(difference) / spread
    for n in range(2, most + 1):
        dof = n - 1 if paired else 2 * n - 2
        noncentrality = effect * math.sqrt(n) if paired else effect * math.sqrt(n / 2)
        critical = stats.t.ppf(1 - alpha / 2, dof)
        achieved = stats.nct.sf(critical, dof, noncentrality) + stats.nct.cdf(-critical, dof, noncentrality)
        if achieved >= power:
            return n
    return None


def wilcoxon_signed_rank(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of paired per-case scores (pairs with a non-finite side
    drop); NaN below two pairs or when every difference is 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size < 2 or np.all(d == 0):
        return math.nan
    return float(stats.wilcoxon(a[keep], b[keep]).pvalue)
