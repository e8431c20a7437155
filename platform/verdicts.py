"""Verdicts of claims about a difference (A - B) over repeats: one claim on its interval (:func:`verdict`), a
family of claims (one paper table, or the levels of one ablation) Holm-adjusted (:func:`evaluate_claims`).
Re-exported by :mod:`platform.statistics`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from platform.intervals import Difference, Interval, adjust_p_values
from platform.power import minimum_detectable_effect, repeats_needed

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
    step = _holm_steps(p, alpha / sides)
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
        elif i not in step:
            why = "rows absent" if n == 0 else f"n = {n} (needs 2 repeats or more)"
            results.append(ClaimVerdict("not measured", claim.null, mean, ci95, (math.nan, math.nan), math.nan,
                                        math.nan, math.nan, n, method, reason=why))
        else:
            assert diff is not None
            results.append(_judge(diff, claim.null, 1 - alpha / (m - step[i]), ci95, p[i], holm[i], power))
    return results


def _holm_steps(p: dict[int, float], alpha: float) -> dict[int, int]:
    """The Holm step (0-based) each measured claim is judged at: its rank by p, or the first rank that failed
    ``p < alpha / (m - k)`` for it and every claim after (Holm stops there)."""
    m = len(p)
    step: dict[int, int] = {}
    failed: int | None = None
    for k, i in enumerate(sorted(p, key=lambda i: p[i])):
        if failed is None and not p[i] < alpha / (m - k):
            failed = k
        step[i] = k if failed is None else failed
    return step


def _judge(diff: Difference, null: float, level: float, ci95: tuple[float, float], p: float, p_holm: float,
           power: float) -> ClaimVerdict:
    """The verdict of one measured claim on its interval at the Holm ``level``, with the reason in words and, when
    inconclusive, the detectable effect and the repeats that would decide."""
    adjusted = diff.interval(level)
    outcome = verdict(adjusted.low, adjusted.high, "greater", null)
    detectable, needed = math.nan, None
    where = f"Holm-adjusted {100 * level:.4g}% interval [{adjusted.low:.3g}, {adjusted.high:.3g}]"
    if outcome == "supported":
        reason = f"{where} lies above {null:g}"
    elif outcome == "contradicted":
        reason = f"{where} lies below {null:g}"
    else:
        one_sided = (1 - level) / 2  # the test each bound of this interval makes
        detectable = minimum_detectable_effect(diff.spread, diff.n, paired=diff.paired, power=power,
                                               alpha=one_sided, sides=1)
        needed = repeats_needed(diff.mean - null, diff.spread, paired=diff.paired, power=power,
                                alpha=one_sided, sides=1)
        reason = (f"{where} contains {null:g}; detectable at n = {diff.n}: {detectable:.3g} from the null; "
                  + (f"{needed} repeats would decide at {power:.0%} power" if needed is not None else
                     "no number of repeats would decide at this difference"))
    return ClaimVerdict(outcome, null, diff.mean, ci95, (adjusted.low, adjusted.high), level, p, p_holm, diff.n,
                        diff.method, detectable, needed, reason)
