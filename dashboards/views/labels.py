"""Axis titles in words: a trial column's metric, its unit (from the metric's declared kind) and where the score
comes from (split and checkpoint), e.g. ``test/best/dice`` -> "Dice (test, best-on-val checkpoint)",
``last/val/hd95/ct`` -> "HD95 (mm; val, last epoch; ct)"."""

from __future__ import annotations

from typing import Any

# Where a trial column's score comes from, by its prefix.
SOURCES = (("test/best/", "test, best-on-val checkpoint"), ("test/last/", "test, last epoch"),
           ("best/val/", "val, best epoch"), ("last/val/", "val, last epoch"), ("best/train/", "train, best epoch"),
           ("last/train/", "train, last epoch"), ("best/", "best epoch"), ("last/", "last epoch"))
UNITS = {"distance": "mm"}  # a metric's declared kind -> its unit (overlaps and divergences have none)
NAMES = {"dice": "Dice", "hd95": "HD95", "hd": "HD", "asd": "ASD", "assd": "ASSD", "mhd": "MHD", "iou": "IoU",
         "jsd_norm": "JSD (normalised)", "disc_acc": "discriminator accuracy", "loss": "loss"}
DISTANCES = {"hd95", "hd", "asd", "assd", "mhd"}  # surface distances (mm) when a table declares no kind


def metric_name(stem: str) -> str:
    return NAMES.get(stem, stem.replace("_", " "))


def unit_of(stem: str, metrics_meta: dict[str, dict[str, str]] | None) -> str | None:
    kind = (metrics_meta or {}).get(stem, {}).get("kind")
    if kind is None and stem in DISTANCES:
        kind = "distance"
    return UNITS.get(kind or "")


def score_label(column: str | None, metrics_meta: dict[str, dict[str, str]] | None = None) -> str:
    """A trial column in words with its unit; columns that are no score (``wall_s``) come back unchanged."""
    if not column:
        return ""
    for prefix, source in SOURCES:
        if column.startswith(prefix):
            stem, *rest = column[len(prefix):].split("/")
            unit = unit_of(stem, metrics_meta)
            details = "; ".join(part for part in (unit, source, " ".join(rest)) if part)
            return f"{metric_name(stem)} ({details})"
    return {"wall_s": "wall time (s)", "overhead_s": "overhead (s)", "epochs": "epochs"}.get(column, column)


def epoch_label(metric: str, metrics_meta: dict[str, dict[str, str]] | None = None) -> str:
    """A per-epoch metric (``val/dice``, ``train/loss``) in words with its unit."""
    split, _, rest = metric.partition("/")
    if not rest:
        return metric
    stem, *parts = rest.split("/")
    unit = unit_of(stem, metrics_meta)
    details = "; ".join(part for part in (unit, split, " ".join(parts)) if part)
    return f"{metric_name(stem)} ({details})"


def param_label(param: str | None) -> str:
    return (param or "").removeprefix("config/")


def meta_of(experiment: Any) -> dict[str, dict[str, str]]:
    return getattr(experiment, "metrics_meta", None) or {}
