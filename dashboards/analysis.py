"""The numbers behind the views, as pure functions of a trials table (pandas, one row per trial).

DataFrame shaping shared by several views and the report: the filters (status, parallel-coordinate brushes, the
grid's filter model), level labels and the spec's level order and baseline, the ablation table (its statistics from
``platform.statistics``), per-case scores per level and the two-trial comparison rows. What one view alone needs
lives in that view's module (``dashboards/views/``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import optuna
import pandas as pd

from platform.statistics import (
    Claim,
    RepeatKey,
    adjust_p_values,
    cell_matches,
    compare,
    evaluate_claims,
    hedges_g,
    mean_interval,
    probability_of_improvement,
    rank_bootstrap,
    repeat_values,
    repeats_needed,
    t_half_widths,
)

ABSENT = "(absent)"
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one study per importance request: no per-study log line


# --- filters -------------------------------------------------------------------------------------------------


def encode(values: pd.Series, categorical: bool,
           order: list[str] | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Numbers for an axis: a numeric column as float, a categorical one as codes of its labels, in ``order`` (the
    spec's level order, ``Experiment.levels``) where given, else sorted; only labels present get a code."""
    if not categorical:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), None
    codes, labels = pd.factorize(values.astype(str), sort=True)  # one pass, not a map per row
    if order:
        rank = {label: index for index, label in enumerate(order)}
        ordered = sorted(labels, key=lambda label: (rank.get(label, len(rank)), label))
        recode = np.array([ordered.index(label) for label in labels], dtype=float)
        return recode[codes], [str(label) for label in ordered]
    return codes.astype(float), [str(label) for label in labels]


def brush_mask(trials: pd.DataFrame, brushes: dict[str, Any] | None) -> np.ndarray:
    """Rows inside every brush: ``{column: {"ranges": [[lo, hi], ...]}}`` or ``{column: {"labels": [...]}}``."""
    mask = np.ones(len(trials), dtype=bool)
    for column, brush in (brushes or {}).items():
        if column not in trials:
            continue
        if "labels" in brush:
            mask &= trials[column].astype(str).isin(brush["labels"]).to_numpy()
        elif brush.get("ranges"):
            values = pd.to_numeric(trials[column], errors="coerce").to_numpy(dtype=float)
            inside = np.zeros(len(trials), dtype=bool)
            for low, high in brush["ranges"]:
                inside |= (values >= low) & (values <= high)
            mask &= inside
    return mask


_NUMBER_TESTS = {
    "equals": lambda v, a, b: v == a,
    "notEqual": lambda v, a, b: v != a,
    "lessThan": lambda v, a, b: v < a,
    "lessThanOrEqual": lambda v, a, b: v <= a,
    "greaterThan": lambda v, a, b: v > a,
    "greaterThanOrEqual": lambda v, a, b: v >= a,
    "inRange": lambda v, a, b: (v >= a) & (v <= b),
}
_TEXT_TESTS = {
    "contains": lambda v, a: v.str.contains(a, regex=False),
    "notContains": lambda v, a: ~v.str.contains(a, regex=False),
    "equals": lambda v, a: v == a,
    "notEqual": lambda v, a: v != a,
    "startsWith": lambda v, a: v.str.startswith(a),
    "endsWith": lambda v, a: v.str.endswith(a),
}


def _condition_mask(values: pd.Series, condition: dict[str, Any]) -> np.ndarray:
    kind = condition.get("type")
    if kind == "blank":
        return values.isna().to_numpy()
    if kind == "notBlank":
        return values.notna().to_numpy()
    if condition.get("filterType") == "number" and kind in _NUMBER_TESTS:
        numbers = pd.to_numeric(values, errors="coerce")
        a = float(condition.get("filter")) if condition.get("filter") is not None else math.nan
        b = float(condition.get("filterTo")) if condition.get("filterTo") is not None else math.nan
        return _NUMBER_TESTS[kind](numbers, a, b).fillna(False).to_numpy(dtype=bool)
    if condition.get("filterType") == "text" and kind in _TEXT_TESTS:
        # AG Grid's text filters are case-insensitive.
        text = values.astype(str).str.lower()
        return _TEXT_TESTS[kind](text, str(condition.get("filter", "")).lower()).fillna(False).to_numpy(dtype=bool)
    return np.ones(len(values), dtype=bool)  # a filter type the server does not know keeps rows, never drops


def grid_filter_mask(trials: pd.DataFrame, model: dict[str, Any] | None) -> np.ndarray:
    """Rows the AG Grid ``filterModel`` keeps (number and text filters, combined conditions)."""
    mask = np.ones(len(trials), dtype=bool)
    for column, spec in (model or {}).items():
        if column not in trials:
            continue
        values = trials[column]
        if "conditions" in spec:
            parts = [_condition_mask(values, {"filterType": spec.get("filterType"), **c}) for c in spec["conditions"]]
            combined = np.logical_or.reduce(parts) if spec.get("operator") == "OR" else np.logical_and.reduce(parts)
            mask &= combined
        else:
            mask &= _condition_mask(values, spec)
    return mask


def filter_trials(trials: pd.DataFrame, statuses: list[str] | None = None, brushes: dict[str, Any] | None = None,
                  grid_model: dict[str, Any] | None = None) -> pd.DataFrame:
    """The trials every view shows: status in ``statuses``, inside the brushes, kept by the grid's filters."""
    mask = brush_mask(trials, brushes) & grid_filter_mask(trials, grid_model)
    if statuses is not None and "status" in trials:
        mask &= filter_status(trials).isin(statuses).to_numpy()
    return trials[mask]


# The status box of finished trials a scheduler stopped before their planned epochs: the page leaves it unticked,
# so a curve or a bar does not mix the scores of 2-epoch and 6-epoch trials unless asked to.
STOPPED_EARLY = "STOPPED_EARLY"


def stopped_early(trials: pd.DataFrame) -> pd.Series:
    """Per trial, whether it finished because the scheduler stopped it before its planned epochs."""
    if "stopped_early" not in trials or "status" not in trials:
        return pd.Series(False, index=trials.index)
    return (trials["stopped_early"].astype(str) == "True") & (trials["status"] == "TERMINATED")


def filter_status(trials: pd.DataFrame) -> pd.Series:
    """The status the status boxes filter on: Tune's, with ``STOPPED_EARLY`` for trials stopped early."""
    return trials["status"].where(~stopped_early(trials), STOPPED_EARLY)


# --- statistics ----------------------------------------------------------------------------------------------


def by_config(trials: pd.DataFrame, score: str, params: list[str]) -> pd.DataFrame:
    """One row per sampled configuration: its parameters, the mean of ``score`` over its repeats and the
    95% interval (columns mean, low, high, n). Vectorised: 10,000 trials take milliseconds."""
    columns = [*params, "config_key", "mean", "low", "high", "n"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    values = pd.to_numeric(trials[score], errors="coerce").replace([np.inf, -np.inf], np.nan)
    groups = trials.assign(_value=values).groupby("config_key", sort=False)
    summary = groups["_value"].agg(["mean", "std", "count"])
    counts = summary["count"].to_numpy(dtype=float)
    half = t_half_widths(summary["std"].to_numpy(dtype=float), counts)
    # The first trial's parameters stand for the configuration (they are equal across its repeats).
    firsts = groups.nth(0).set_index("config_key")
    result = pd.DataFrame({p: firsts[p] for p in params}, index=summary.index)
    result["config_key"] = summary.index
    result["mean"] = summary["mean"].to_numpy()
    result["low"], result["high"] = result["mean"] - half, result["mean"] + half
    result["n"] = counts.astype(int)
    return result.reset_index(drop=True)[columns]


ABLATION_COLUMNS = ["level", "mean", "low", "high", "n", "diff", "diff_low", "diff_high", "method", "p", "p_adjusted",
                    "verdict", "p_improvement", "p_improvement_low", "p_improvement_high", "hedges_g",
                    "repeats_needed"]


def level_repeats(trials: pd.DataFrame, values: np.ndarray) -> dict[RepeatKey, float]:
    """Score per repeat (seed, fold) of one level's trials (``platform.statistics.repeat_values``: the trials of
    one repeat averaged, folds never). Without a seed column every trial is its own repeat (its row label), so
    nothing pairs."""
    if "seed" not in trials:
        return repeat_values([f"row {i}" for i in trials.index], None, values.tolist())
    folds = trials["fold"].to_numpy() if "fold" in trials else None
    frame = pd.DataFrame({"seed": trials["seed"].to_numpy(), "fold": folds, "value": np.asarray(values, dtype=float)})
    frame = frame[np.isfinite(frame["value"].to_numpy())]
    # One mean per (seed, fold) in pandas first, so repeat_values loops over the repeats, not over 100,000 trials.
    means = frame.groupby(["seed", "fold"], dropna=False, sort=False)["value"].mean().reset_index()
    return repeat_values(means["seed"].tolist(), means["fold"].tolist() if folds is not None else None,
                         means["value"].tolist())


def ablation(trials: pd.DataFrame, factors: list[str], score: str, baseline: str | None, mode: str = "max",
             adjust: str = "holm", order: list[str] | None = None) -> pd.DataFrame:
    """Per level of the factor combination: mean and 95% interval of ``score`` over every trial at that level
    (repeats, and any other parameter the sweep varied), and against the ``baseline`` level, on the scores per
    repeat (:func:`level_repeats`): the difference with its interval (``platform.statistics.compare``: paired t
    when repeats pair up by seed and fold, else Welch; ``method`` says which), its p-value adjusted over the
    levels shown (``adjust``: holm or bh), the ``verdict`` of "this level beats the baseline" (better under
    ``mode``; ``platform.statistics.evaluate_claims`` against 0, two-sided, Holm over the levels shown:
    supported, contradicted, inconclusive, or not measured below two repeats), P(improvement) (P(level beats
    baseline) on the per-repeat scores, rliable's definition, with a bootstrap interval), Hedges' g and the
    repeats that would detect the observed difference at 80% power. ``order`` fixes the level order (the
    spec's), else natural order.

    Columns: ``ABLATION_COLUMNS``.
    """
    if not factors or trials.empty:
        return pd.DataFrame(columns=ABLATION_COLUMNS)
    levels = level_labels(trials, factors)
    values = pd.to_numeric(trials[score], errors="coerce").to_numpy(dtype=float)
    present = list(levels.unique())
    ranked = [level for level in (order or []) if level in present]
    ranked += sorted((level for level in present if level not in ranked), key=natural_key)
    chosen_base = (levels == baseline).to_numpy()
    base = level_repeats(trials[chosen_base], values[chosen_base]) if baseline is not None else {}
    sign = 1.0 if mode == "max" else -1.0
    rows, family = [], []
    for level in ranked:
        chosen = (levels == level).to_numpy()
        interval = mean_interval(values[chosen])
        row: dict[str, Any] = {"level": level, "mean": interval.mean, "low": interval.low, "high": interval.high,
                               "n": interval.n}
        repeats = level_repeats(trials[chosen], values[chosen])
        if base and level != baseline and repeats:
            difference = compare(repeats, base)
            diff = difference.interval()
            # The claim "this level beats the baseline": the difference better - worse under mode.
            family.append((len(rows), difference if mode == "max" else compare(base, repeats)))
            better = probability_of_improvement([sign * v for v in repeats.values()], [sign * v for v in base.values()],
                                                resamples=2000)
            row.update(diff=diff.mean, diff_low=diff.low, diff_high=diff.high,
                       method="Welch" if difference.method == "none" else difference.method,
                       p=difference.p_value() if difference.n >= 2 else math.nan,
                       p_improvement=better.mean, p_improvement_low=better.low, p_improvement_high=better.high,
                       hedges_g=hedges_g(list(repeats.values()), list(base.values())),
                       repeats_needed=repeats_needed(difference.mean, difference.spread, paired=difference.paired))
        elif level == baseline:
            row.update(diff=0.0, diff_low=0.0, diff_high=0.0, method="baseline")
        rows.append(row)
    judged = evaluate_claims([Claim("greater", 0.0, difference) for _, difference in family], sides=2)
    for (index, _), result in zip(family, judged, strict=True):
        rows[index]["verdict"] = result.verdict
    table = pd.DataFrame(rows).reindex(columns=ABLATION_COLUMNS)
    tested = table["p"].notna()
    if tested.any():
        table.loc[tested, "p_adjusted"] = adjust_p_values(table.loc[tested, "p"].tolist(), adjust)
    return table


def level_labels(trials: pd.DataFrame, factors: list[str]) -> pd.Series:
    """A readable label per trial for a combination of factors, e.g. ``style_transfer=True, use_d1=False``."""
    if len(factors) == 1:
        return _level_text(trials[factors[0]])
    parts = [short_name(f) + "=" + _level_text(trials[f]) for f in factors]
    label = parts[0]
    for part in parts[1:]:
        label = label + ", " + part
    return label


def _level_text(values: pd.Series) -> pd.Series:
    """Readable level names: floats to 4 significant digits (a sampled lambda is not 0.011508094377692606)."""
    if pd.api.types.is_float_dtype(values):
        return values.map(lambda v: "nan" if v != v else f"{v:.4g}")
    return values.astype(str)


def natural_key(label: str) -> list[Any]:
    """Sort "[2]" before "[10]" and "lambda=0.5" before "lambda=10": digit runs compare as numbers."""
    return [(0, float(part), "") if part.replace(".", "", 1).isdigit() else (1, 0.0, part)
            for part in re.split(r"(\d+(?:\.\d+)?)", label) if part]


def short_name(column: str) -> str:
    return column.split("/", 1)[1] if column.startswith("config/") else column


# --- parameter importance ------------------------------------------------------------------------------------


# --- comparison ----------------------------------------------------------------------------------------------


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{key, a, b, differs}`` over the union of two flat configs, differing keys first."""
    rows = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, ABSENT), b.get(key, ABSENT)
        rows.append({"key": key, "a": _text(left), "b": _text(right), "differs": _text(left) != _text(right)})
    return sorted(rows, key=lambda row: (not row["differs"], row["key"]))


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


# What each score of a trial is: the prefix of its trials-table column, and the label the comparison shows.
SCORE_SOURCES = (("last/val/", "val, last epoch"), ("best/val/", "val, best epoch"),
                 ("test/best/", "test, networks of the best val epoch"), ("test/last/", "test, last networks"))


# --- per-case evidence (the cases table) -----------------------------------------------------------------------------


def rank_stability(scores: pd.DataFrame, mode: str = "max", resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """How often each level takes each rank when the evidence is resampled, as challengeR's blob plot shows it.

    ``scores``: columns ``level``, ``unit`` (what is resampled: a case, or a (seed, case) pair) and ``value``.
    Each bootstrap draw resamples the units with replacement (seeded), ranks the levels by their mean over the
    drawn units (rank 1: the best under ``mode``; ties share the lower rank) and counts the ranks. Returns one row
    per (level, rank) with the fraction of draws (``share``), and the level's rank on all the data (``observed``).
    """
    wide = scores.pivot_table(index="unit", columns="level", values="value", aggfunc="mean")
    levels = list(wide.columns)
    columns = ["level", "rank", "share", "observed"]
    if wide.empty or not levels:
        return pd.DataFrame(columns=columns)
    observed, drawn = rank_bootstrap(wide.to_numpy(dtype=float), mode, resamples, seed)
    rows = [{"level": level, "rank": rank, "share": float((drawn[:, i] == rank).mean()), "observed": int(observed[i])}
            for i, level in enumerate(levels) for rank in range(1, len(levels) + 1)]
    return pd.DataFrame(rows, columns=columns)


CASE_KEYS = ("trial_id", "epoch", "split", "checkpoint", "domain", "subject")


def case_metrics(cases: pd.DataFrame) -> list[str]:
    """The per-case score columns of a cases table (``dice``, ``dice/gm``, ``hd95``, ...), overall ones first."""
    columns = [c for c in cases.columns if c not in CASE_KEYS and not c.startswith("_")
               and pd.api.types.is_numeric_dtype(cases[c])]
    return sorted(columns, key=lambda c: (c.split("/")[0], c.count("/"), c))


def level_case_scores(trials: pd.DataFrame, cases: pd.DataFrame, factors: list[str], metric: str,
                      split: str = "test", checkpoint: str = "best") -> pd.DataFrame:
    """Per level of ``factors``, its score on each (seed, case) unit: the mean of ``metric`` over that level's
    trials of that seed on that case (the last evaluated epoch for val), for :func:`rank_stability`.

    Columns: level, unit (``seed <s> | <domain>/<subject>``), value.
    """
    columns = ["level", "unit", "value"]
    if cases.empty or metric not in cases or trials.empty:
        return pd.DataFrame(columns=columns)
    rows = cases[cases["split"] == split]
    if split == "test" and "checkpoint" in rows:
        rows = rows[rows["checkpoint"] == checkpoint]
    elif "epoch" in rows and not rows.empty:
        rows = rows[rows["epoch"] == rows.groupby("trial_id")["epoch"].transform("max")]
    levels = pd.DataFrame({"trial_id": trials["trial_id"].to_numpy(), "level": level_labels(trials, factors).to_numpy(),
                           "seed": trials["seed"].to_numpy() if "seed" in trials else 0})
    joined = rows[["trial_id", "domain", "subject", metric]].merge(levels, on="trial_id")
    joined = joined[np.isfinite(pd.to_numeric(joined[metric], errors="coerce").to_numpy(dtype=float))]
    if joined.empty:
        return pd.DataFrame(columns=columns)
    joined["unit"] = ("seed " + joined["seed"].astype(str) + " | " + joined["domain"].astype(str) + "/"
                      + joined["subject"].astype(str))
    means = joined.groupby(["level", "unit"], sort=False)[metric].mean().reset_index()
    return means.rename(columns={metric: "value"})[columns]


# --- the spec's view of an ablation (level order, baseline) --------------------------------------------------

def spec_order(experiment: Any, factors: list[str]) -> list[str]:
    """The level labels of one factor in the spec's order (its choice or grid values, from the sweep table)."""
    if len(factors) != 1:
        return []
    values = (experiment.axes_meta.get(factors[0].removeprefix("config/")) or {}).get("values") or []
    stored = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in values]
    return list(level_labels(pd.DataFrame({factors[0]: stored}), factors)) if stored else []


def default_baseline(experiment: Any, trials: pd.DataFrame, factors: list[str], levels: list[str],
                     score: str | None = None) -> str | None:
    """The level of the spec's ``explore.baseline`` for these factors, else the first level in the spec's order
    with data (a finite ``score`` in some trial; ``levels`` not in the spec's order follow in theirs)."""
    baseline = experiment.explore.get("baseline") or {}
    wanted = {factor: baseline[factor.removeprefix("config/")] for factor in factors
              if factor.removeprefix("config/") in baseline}
    if factors and len(wanted) == len(factors) and not trials.empty:
        matches = pd.Series(True, index=trials.index)
        for factor, value in wanted.items():
            matches &= trials[factor].map(lambda stored, value=value: cell_matches(stored, value))
        if matches.any():
            label = level_labels(trials[matches].head(1), factors).iloc[0]
            if label in levels:
                return label
    order = spec_order(experiment, factors)
    ranked = [level for level in order if level in levels] + [level for level in levels if level not in order]
    if score and score in trials and factors and not trials.empty:
        finite = np.isfinite(pd.to_numeric(trials[score], errors="coerce").to_numpy(dtype=float))
        with_data = set(level_labels(trials[finite], factors)) if finite.any() else set()
        return next((level for level in ranked if level in with_data), ranked[0] if ranked else None)
    return ranked[0] if ranked else None
