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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from platform.intervals import (
    Difference,
    Interval,
    _finite,
    adjust_p_values,
    compare,
    difference_interval,
    difference_test,
    hedges_g,
    mean_interval,
    paired_interval,
    paired_or_welch,
    pooled_sd,
    t_half_widths,
)
from platform.power import minimum_detectable_effect, repeats_needed
from platform.verdicts import (
    CLAIM_KINDS,
    FAMILY_ALPHA,
    VERDICTS,
    Claim,
    ClaimVerdict,
    claim_null,
    evaluate_claims,
    verdict,
)

__all__ = [
    "CLAIM_KINDS", "FAMILY_ALPHA", "VERDICTS", "Claim", "ClaimVerdict", "Difference", "Interval", "RepeatKey",
    "adjust_p_values", "cell_matches", "claim_null", "compare", "difference_interval",
    "difference_test", "evaluate_claims", "hedges_g", "mean_interval", "minimum_detectable_effect",
    "paired_interval", "paired_or_welch", "pooled_sd", "probability_of_improvement", "rank_bootstrap",
    "repeat_key", "repeat_label", "repeat_values", "repeats_needed", "t_half_widths", "verdict",
    "wilcoxon_signed_rank",
]


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
