"""Statistics of ablations over repeats, as pure functions (tested against scipy or a hand computation).

The one statistics core of the platform: ``platform.reproduce``, ``dashboards.report`` and the explorer call only
these functions, so one comparison gets one n, one difference and one interval wherever it is shown.

A *repeat* is one (seed, fold) pair (:func:`repeat_key`): folds of a seed are separate repeats, never averaged
together. :func:`repeat_values` turns a level's trials into ``{repeat: score}`` (the trials of one repeat, e.g.
several pooled levels, are averaged). Every other function takes plain arrays of scores (one per repeat) or such
mappings and ignores non-finite values. :func:`compare` chooses the test: the paired Student t interval when the
repeats of the two levels pair up (at least two common repeats), Welch's interval otherwise. Claims are judged by
:func:`verdict` and, for a family of claims (one paper table), by :func:`evaluate_claims` with Holm's adjustment.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
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


RepeatKey = tuple[Any, "int | None"]


def repeat_key(seed: Any, fold: Any = None) -> RepeatKey:
    """The one definition of a repeat: ``(seed, fold)``, fold None without cross-validation. Numbers become ints
    (a Parquet int64, a numpy int or a float 2.0 all key alike); a missing fold (None, NaN) is None."""
    def number(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
                and float(value).is_integer():
            return int(value)
        return value

    return number(seed), number(fold)


def repeat_label(key: RepeatKey) -> str:
    """``seed 0`` or ``seed 0 fold 2``: a repeat as a table prints it."""
    seed, fold = key
    return f"seed {seed}" if fold is None else f"seed {seed} fold {fold}"


def repeat_values(seeds: Iterable[Any], folds: Iterable[Any] | None, values: Iterable[Any]) -> dict[RepeatKey, float]:
    """Score per repeat of one level: ``seeds``, ``folds`` (None: no folds) and ``values`` are parallel, one
    entry per trial. The trials of one repeat (pooled levels, or a parameter that varies within the level) are
    averaged; folds are separate repeats and never averaged. Non-finite or non-numeric values drop. Keys sorted."""
    seeds = list(seeds)
    folds = [None] * len(seeds) if folds is None else list(folds)
    groups: dict[RepeatKey, list[float]] = {}
    for seed, fold, value in zip(seeds, folds, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(value)):
            continue
        groups.setdefault(repeat_key(seed, fold), []).append(float(value))
    return {key: float(np.mean(groups[key])) for key in sorted(groups, key=_repeat_order)}


def _repeat_order(key: RepeatKey) -> tuple[int, Any, int]:
    seed, fold = key
    fold_order = -1 if fold is None else fold
    return (0, seed, fold_order) if isinstance(seed, int) else (1, str(seed), fold_order)


def cell_matches(stored: Any, wanted: Any) -> bool:
    """Whether a trials-table cell holds the axis value ``wanted`` (how a level's trials are picked everywhere).
    Lists and mappings are stored as JSON text; numbers compare with a relative tolerance of 1e-9 (a float axis
    read back from Parquet); a bool never equals a number."""
    if isinstance(stored, str) and not isinstance(wanted, str):
        try:
            stored = json.loads(stored)
        except json.JSONDecodeError:
            return False
    numeric = (int, float, np.integer, np.floating)
    if isinstance(stored, numeric) and isinstance(wanted, numeric) and not isinstance(stored, bool) \
            and not isinstance(wanted, bool):
        return math.isclose(float(stored), float(wanted), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(stored, bool) != isinstance(wanted, bool):
        return False
    return bool(stored == wanted)


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


def wilcoxon_signed_rank(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of paired per-case scores (pairs with a non-finite side
    drop); NaN below two pairs or when every difference is 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size < 2 or np.all(d == 0):
        return math.nan
    return float(stats.wilcoxon(a[keep], b[keep]).pvalue)


def rank_bootstrap(data: np.ndarray, mode: str = "max", resamples: int = 1000,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of levels on all the data and on bootstrap draws of its units (challengeR's rank stability).

    ``data``: shape (units, levels), a level's score on each unit (NaN where it has none). Each draw resamples the
    units with replacement (seeded) and ranks the levels by their mean over the drawn units (NaN ignored; rank 1
    the best under ``mode``; ties share the lower rank). Returns (observed ranks, shape (levels,); drawn ranks,
    shape (resamples, levels))."""
    data = np.asarray(data, dtype=float)
    sign = -1.0 if mode == "max" else 1.0

    def ranks(matrix: np.ndarray) -> np.ndarray:
        means = np.nanmean(matrix, axis=-2) * sign  # (..., levels): smaller is better
        return (means[..., :, None] > means[..., None, :]).sum(axis=-1) + 1

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw where a level has no finite unit
        observed = ranks(data)
        rng = np.random.default_rng(seed)
        draws = data[rng.integers(0, len(data), size=(resamples, len(data)))]  # (resamples, units, levels)
        return observed, ranks(draws)


# --- verdicts ---------------------------------------------------------------------------------------------------------

VERDICTS = ("supported", "contradicted", "inconclusive", "not measured", "invalid")
CLAIM_KINDS = ("greater", "min_effect", "at_least")
FAMILY_ALPHA = 0.05  # two-sided, over one family: an unadjusted single claim is judged on its 95% interval


def claim_null(kind: str, min_effect: float | None = None, margin: float | None = None) -> float:
    """The value a claim's difference (A - B) must exceed: 0 for ``greater`` ("A > B"), ``min_effect`` for
    ``min_effect`` ("A far above B"), ``-margin`` for ``at_least`` ("A at least B", non-inferiority)."""
    if kind == "greater":
        return 0.0
    if kind == "min_effect":
        if min_effect is None:
            raise ValueError("a min_effect claim needs its min_effect")
        return float(min_effect)
    if kind == "at_least":
        if margin is None:
            raise ValueError("an at_least claim needs its margin")
        return -float(margin)
    raise ValueError(f"unknown claim kind {kind!r}: use one of {CLAIM_KINDS}")


def verdict(low: float, high: float, kind: str, null: float | None = None) -> str:
    """The verdict of one claim on its (adjusted) interval [low, high] of A - B: ``supported`` when the interval
    lies wholly above the null (low > null), ``contradicted`` when wholly below (high < null), else
    ``inconclusive``; ``not measured`` without finite bounds. ``null`` defaults to the kind's (0 for greater)."""
    if kind not in CLAIM_KINDS:
        raise ValueError(f"unknown claim kind {kind!r}: use one of {CLAIM_KINDS}")
    null = claim_null(kind) if null is None else null
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not measured"
    if low > null:
        return "supported"
    if high < null:
        return "contradicted"
    return "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One claim of a family: "A - B exceeds ``null``" (``kind``, see :func:`claim_null`), measured as
    ``difference`` (None: rows absent), or ``invalid`` with the reason (it measures a known artefact)."""

    kind: str
    null: float
    difference: Difference | None
    invalid: str | None = None


@dataclass(frozen=True)
class ClaimVerdict:
    """The judgement of one claim: the verdict, the difference, its unadjusted 95% interval, the Holm-adjusted
    interval and its confidence ``level``, the p-values (unadjusted and Holm-adjusted, of the family's test), n and
    the test; for ``inconclusive``, the minimum detectable effect at this n and the repeats per level needed to
    decide at 80% power (None: more than 10,000 or no difference to detect); ``reason`` says why in words."""

    verdict: str
    null: float
    difference: float
    ci95: tuple[float, float]
    adjusted: tuple[float, float]
    level: float
    p: float
    p_holm: float
    n: int
    method: str
    detectable: float = math.nan
    repeats_needed: int | None = None
    reason: str = ""


def evaluate_claims(claims: Sequence[Claim], *, sides: int = 1, alpha: float = FAMILY_ALPHA,
                    power: float = 0.8) -> list[ClaimVerdict]:
    """Verdicts for a family of claims (one paper table, or the levels of one ablation), Holm-adjusted.

    The m claims measured (n >= 2, not invalid) are tested with the p-value of :meth:`Difference.p_value` against
    their null: one-sided in the claimed direction (``sides`` 1, paper claims) or two-sided (``sides`` 2, an
    ablation's rows against 0). Holm orders them by p; the claim at step k (0-based) is judged on its two-sided
    interval at confidence ``1 - alpha / (m - k)``, and every claim after the first step that fails on the level
    of that step (Holm stops there). So ``supported`` (low > null) holds exactly when the Holm-adjusted p is below
    ``alpha / sides`` with the difference above the null, and a single claim is judged on its 95% interval.
    ``contradicted`` is the interval wholly below the null. Claims with rows absent or n < 2 are ``not measured``;
    claims marked invalid are ``invalid``; neither counts in m."""
    measured = [i for i, c in enumerate(claims) if c.invalid is None and c.difference is not None
                and c.difference.n >= 2 and math.isfinite(c.difference.se)]
    alternative = "greater" if sides == 1 else "two-sided"
    p = {i: claims[i].difference.p_value(claims[i].null, alternative) for i in measured}  # type: ignore[union-attr]
    holm = dict(zip(measured, adjust_p_values([p[i] for i in measured], "holm"), strict=True))
    m = len(measured)
    order = sorted(measured, key=lambda i: p[i])
    step: dict[int, int] = {}
    failed: int | None = None
    for k, i in enumerate(order):
        if failed is None and not p[i] < alpha / sides / (m - k):
            failed = k
        step[i] = k if failed is None else failed
    results = []
    for i, claim in enumerate(claims):
        diff = claim.difference
        mean = diff.mean if diff is not None else math.nan
        n = diff.n if diff is not None else 0
        method = diff.method if diff is not None else "none"
        plain = diff.interval(0.95) if diff is not None else Interval(math.nan, math.nan, math.nan, 0)
        ci95 = (plain.low, plain.high)
        if claim.invalid is not None:
            results.append(ClaimVerdict("invalid", claim.null, mean, ci95, (math.nan, math.nan), math.nan, math.nan,
                                        math.nan, n, method, reason=f"invalid: {claim.invalid}"))
            continue
        if i not in step:
            why = "rows absent" if n == 0 else f"n = {n} (needs 2 repeats or more)"
            results.append(ClaimVerdict("not measured", claim.null, mean, ci95, (math.nan, math.nan), math.nan,
                                        math.nan, math.nan, n, method, reason=why))
            continue
        assert diff is not None
        level = 1 - alpha / (m - step[i])
        adjusted = diff.interval(level)
        outcome = verdict(adjusted.low, adjusted.high, "greater", claim.null)
        detectable, needed = math.nan, None
        where = f"Holm-adjusted {100 * level:.4g}% interval [{adjusted.low:.3g}, {adjusted.high:.3g}]"
        if outcome == "supported":
            reason = f"{where} lies above {claim.null:g}"
        elif outcome == "contradicted":
            reason = f"{where} lies below {claim.null:g}"
        else:
            one_sided = (1 - level) / 2  # the test each bound of this interval makes
            detectable = minimum_detectable_effect(diff.spread, n, paired=diff.paired, power=power,
                                                   alpha=one_sided, sides=1)
            needed = repeats_needed(diff.mean - claim.null, diff.spread, paired=diff.paired, power=power,
                                    alpha=one_sided, sides=1)
            reason = (f"{where} contains {claim.null:g}; detectable at n = {n}: {detectable:.3g} from the null; "
                      + (f"{needed} repeats would decide at {power:.0%} power" if needed is not None else
                         "no number of repeats would decide at this difference"))
        results.append(ClaimVerdict(outcome, claim.null, mean, ci95, (adjusted.low, adjusted.high), level, p[i],
                                    holm[i], n, method, detectable, needed, reason))
    return results
