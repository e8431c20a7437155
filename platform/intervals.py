"""Intervals and tests of a difference between two levels' scores over repeats (pure functions, re-exported by
:mod:`platform.statistics`, the one statistics core that the rest of the platform imports).

:func:`compare` chooses the test: the paired Student t interval when the repeats of the two levels pair up (at
least two common repeats), Welch's interval otherwise. Non-finite values are ignored everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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



def t_half_widths(std: np.ndarray, counts: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Half the width of the Student-t interval of a mean, per group: ``t(0.5 + level/2, n-1) * std / sqrt(n)``
    (NaN where n < 2), the vectorised form of :func:`mean_interval`. ``std``, ``counts``: shape (groups,), the
    sample standard deviation (ddof 1) and n."""
    std, counts = np.asarray(std, dtype=float), np.asarray(counts, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        critical = np.where(counts >= 2, stats.t.ppf(0.5 + level / 2, np.maximum(counts - 1, 1)), np.nan)
        return critical * std / np.sqrt(counts)


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


@dataclass(frozen=True)
class Difference:
    """``a - b`` over repeats, as :func:`compare` measured it: the mean difference, its standard error and degrees
    of freedom (paired: n - 1; Welch: Welch-Satterthwaite), n (paired: the pairs; Welch: the smaller side),
    ``method`` (``paired t``, ``Welch`` or ``none`` below two repeats), ``spread`` (the SD that power uses: of the
    paired differences, or :func:`pooled_sd`) and the repeats it used on each side."""

    mean: float
    se: float
    dof: float
    n: int
    method: str
    spread: float
    a: dict[Any, float] = field(default_factory=dict)
    b: dict[Any, float] = field(default_factory=dict)

    @property
    def paired(self) -> bool:
        return self.method == "paired t"

    def interval(self, level: float = 0.95) -> Interval:
        """The two-sided interval at ``level`` (NaN bounds when it cannot be computed)."""
        if not (math.isfinite(self.mean) and math.isfinite(self.se)):
            return Interval(self.mean, math.nan, math.nan, self.n, self.method)
        half = float(stats.t.ppf(0.5 + level / 2, self.dof) * self.se) if self.se > 0 else 0.0
        return Interval(self.mean, self.mean - half, self.mean + half, self.n, self.method)

    def p_value(self, null: float = 0.0, alternative: str = "two-sided") -> float:
        """The t-test p-value of H0 ``mean == null`` (``two-sided``), ``mean <= null`` (``greater``) or ``mean >=
        null`` (``less``); a constant difference (no spread) gives 0 or 1; NaN when nothing can be tested."""
        if not (math.isfinite(self.mean) and math.isfinite(self.se)):
            return math.nan
        if self.se == 0:
            distance = self.mean - null
            side = {"two-sided": distance != 0, "greater": distance > 0, "less": distance < 0}[alternative]
            return 0.0 if side else 1.0
        t = (self.mean - null) / self.se
        if alternative == "greater":
            return float(stats.t.sf(t, self.dof))
        if alternative == "less":
            return float(stats.t.cdf(t, self.dof))
        return float(2 * stats.t.sf(abs(t), self.dof))


def compare(a: Mapping[Any, float], b: Mapping[Any, float]) -> Difference:
    """``a - b`` for scores keyed by repeat (:func:`repeat_values`): the paired t comparison over the common repeats
    when at least two pair up (non-finite ones drop), else Welch's over every finite score of each side."""
    common = [key for key in a if key in b and math.isfinite(a[key]) and math.isfinite(b[key])]
    if len(common) >= 2:
        d = np.array([a[k] - b[k] for k in common], dtype=float)
        n = int(d.size)
        sd = float(d.std(ddof=1))
        return Difference(float(d.mean()), sd / math.sqrt(n), n - 1, n, "paired t", sd,
                          {k: float(a[k]) for k in common}, {k: float(b[k]) for k in common})
    x = {k: float(v) for k, v in a.items() if math.isfinite(v)}
    y = {k: float(v) for k, v in b.items() if math.isfinite(v)}
    xs, ys = np.array(list(x.values())), np.array(list(y.values()))
    if not xs.size or not ys.size:
        return Difference(math.nan, math.nan, math.nan, 0, "none", math.nan, x, y)
    diff, n = float(xs.mean() - ys.mean()), int(min(xs.size, ys.size))
    if xs.size < 2 or ys.size < 2:
        return Difference(diff, math.nan, math.nan, n, "none", math.nan, x, y)
    va, vb = xs.var(ddof=1) / xs.size, ys.var(ddof=1) / ys.size
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (xs.size - 1) + vb**2 / (ys.size - 1)) if se > 0 else xs.size + ys.size - 2
    return Difference(diff, se, float(dof), n, "Welch", pooled_sd(xs, ys), x, y)


def paired_or_welch(a: Mapping[object, float], b: Mapping[object, float], level: float = 0.95) -> Interval:
    """``a - b`` for scores keyed by repeat: the interval of :func:`compare` (method ``paired t`` or ``Welch``)."""
    difference = compare(a, b)
    interval = difference.interval(level)
    method = "Welch" if difference.method == "none" else difference.method
    return Interval(interval.mean, interval.low, interval.high, interval.n, method)


def difference_test(a: Mapping[object, float], b: Mapping[object, float]) -> tuple[Interval, float]:
    """(the interval of :func:`paired_or_welch`, its two-sided p-value: paired t-test or Welch's t-test)."""
    difference = compare(a, b)
    return paired_or_welch(a, b), difference.p_value() if difference.n >= 2 else math.nan


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


def pooled_sd(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """The pooled standard deviation ``sqrt(((n_a-1) s_a^2 + (n_b-1) s_b^2) / (n_a + n_b - 2))``; NaN below two
    values a side. The spread of Hedges' g and of the power of an unpaired comparison."""
    a, b = _finite(a), _finite(b)
    if a.size < 2 or b.size < 2:
        return math.nan
    return math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))


def hedges_g(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Hedges' g of a against b: Cohen's d with the pooled standard deviation, times the small-sample correction
    J = 1 - 3 / (4 (n_a + n_b) - 9). NaN below two values a side or with no spread."""
    a, b = _finite(a), _finite(b)
    pooled = pooled_sd(a, b)
    if not math.isfinite(pooled) or pooled == 0:
        return math.nan
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (a.size + b.size) - 9)))
