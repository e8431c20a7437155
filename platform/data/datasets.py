"""The ``DATASETS`` registry (``phantom``, ``manifest``), what a data config loads, and the subject splits.

Each dataset has ``check(config) -> list[str]`` (problems found at spec time, before Ray starts, with no data
read and nibabel not imported) and ``load(config) -> list[Case]``. ``load_cases`` adds the optional DualNorm
Appendix A alignment; ``split_cases`` decides train and validation subjects per domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.phantom_names import CLASS_NAMES, VALID_DOMAINS_TEXT, known_domain
from platform.registry import Registry
from platform.seeds import stable_seed


@dataclass(frozen=True)
class Dataset:
    """One kind of data: its spec-time check and its loader."""

    check: Callable[[DataConfig], list[str]]
    load: Callable[[DataConfig], list[Case]]


DATASETS: Registry[Dataset] = Registry("dataset")

def _check_phantom(cfg: DataConfig) -> list[str]:
    problems = []
    if not cfg.domains:
        problems.append(f"data.domains: the phantom needs at least one domain; choose from {VALID_DOMAINS_TEXT}")
    unknown = [d for d in cfg.domains if not known_domain(d)]
    if unknown:
        problems.append(f"data.domains: unknown phantom domain(s) {unknown}; valid domains are {VALID_DOMAINS_TEXT}")
    if cfg.num_classes != len(CLASS_NAMES):
        problems.append(f"data.num_classes: the phantom has {len(CLASS_NAMES)} classes {list(CLASS_NAMES)}, "
                        f"not {cfg.num_classes}; set num_classes: {len(CLASS_NAMES)}")
    return problems


def _load_phantom(cfg: DataConfig) -> list[Case]:
    from platform.data.manifest import load_manifest
    from platform.data.phantom import build_phantom

    return load_manifest(build_phantom(cfg), cfg.num_classes, cfg.domains or None)


def _check_manifest(cfg: DataConfig) -> list[str]:
    return [] if cfg.manifest else ["data.manifest: dataset 'manifest' needs a manifest path: set data.manifest "
                                    "to a CSV or JSON file"]


def _load_manifest(cfg: DataConfig) -> list[Case]:
    from platform.data.manifest import load_manifest

    assert cfg.manifest is not None  # checked at spec time
    return load_manifest(Path(cfg.manifest), cfg.num_classes, cfg.domains or None)


DATASETS.register("phantom")(Dataset(check=_check_phantom, load=_load_phantom))
DATASETS.register("manifest")(Dataset(check=_check_manifest, load=_load_manifest))


def check_data(cfg: DataConfig) -> list[str]:
    """Spec-time problems of a data config (its dataset's own checks)."""
    return DATASETS.get(cfg.dataset).check(cfg)


def load_cases(cfg: DataConfig) -> list[Case]:
    """The validated cases of ``cfg``, restricted to ``cfg.domains``.

    With ``cfg.align`` set, every domain but the reference (``cfg.align_reference``, else the first of
    ``cfg.domains``, else the alphabetically first domain present) is aligned to it (:mod:`platform.data.align`).
    """
    cases = DATASETS.get(cfg.dataset).load(cfg)
    if cfg.align == "none":
        return cases
    from platform.data.align import align_cases

    reference = cfg.align_reference or (cfg.domains[0] if cfg.domains else sorted({c.domain for c in cases})[0])
    return align_cases(cases, cfg.align, reference, cfg.num_classes)


def _fold_of_subjects(domain_cases: list[Case], domain: str, cfg: DataConfig) -> dict[str, int]:
    """Fold of each subject of one domain: the manifest's fold column, else a seeded round-robin deal."""
    if all(case.fold is not None for case in domain_cases):
        return {case.subject: int(case.fold) for case in domain_cases}  # type: ignore[arg-type]
    subjects = sorted(case.subject for case in domain_cases)
    # Shuffled so folds do not follow subject-id order (often acquisition order), seeded so every trial of
    # a sweep agrees on the folds.
    order = np.random.default_rng(stable_seed("folds", cfg.seed, domain)).permutation(len(subjects))
    assert cfg.folds is not None
    return {subjects[i]: rank % cfg.folds for rank, i in enumerate(order)}


def split_cases(cases: list[Case], cfg: DataConfig, fold: int | None = None) -> tuple[list[Case], list[Case]]:
    """(train, val) subjects, decided per domain.

    A ``split`` column wins ("test" rows go to neither list). Otherwise, with ``fold`` given, K-fold by
    subject within each domain (``cfg.folds`` folds; the manifest's ``fold`` column if present, else a seeded
    assignment); otherwise the last ``ceil(val_fraction * n)`` subjects of each domain, sorted by id, are
    held out. Every domain must keep at least one training and one validation subject.
    """
    if not cases:
        raise ValueError("no cases to split: the dataset is empty")
    domains = list(dict.fromkeys(case.domain for case in cases))
    if any(case.split is not None for case in cases):
        if fold is not None:
            raise ValueError(
                f"fold {fold} requested, but the manifest has a split column, which fixes train/val: "
                "remove data.folds or the manifest's split column"
            )
        train = [case for case in cases if case.split == "train"]
        val = [case for case in cases if case.split == "val"]
        how = "the manifest's split column"
    elif fold is not None:
        if cfg.folds is None:
            raise ValueError(f"fold {fold} requested but data.folds is not set: set data.folds (e.g. 5)")
        if not 0 <= fold < cfg.folds:
            raise ValueError(
                f"fold {fold} is out of range for data.folds={cfg.folds}: use 0..{cfg.folds - 1}"
            )
        val_ids: set[tuple[str, str]] = set()
        for domain in domains:
            folds = _fold_of_subjects([c for c in cases if c.domain == domain], domain, cfg)
            too_big = sorted({f for f in folds.values() if f >= cfg.folds})
            if too_big:
                raise ValueError(
                    f"domain {domain!r}: manifest folds {too_big} are >= data.folds={cfg.folds}: "
                    "raise data.folds or renumber the fold column"
                )
            val_ids |= {(domain, s) for s, f in folds.items() if f == fold}
        train = [case for case in cases if (case.domain, case.subject) not in val_ids]
        val = [case for case in cases if (case.domain, case.subject) in val_ids]
        how = f"fold {fold} of {cfg.folds}"
    else:
        val_ids = set()
        for domain in domains:
            subjects = sorted(case.subject for case in cases if case.domain == domain)
            n_val = math.ceil(cfg.val_fraction * len(subjects))
            val_ids |= {(domain, s) for s in subjects[len(subjects) - n_val :]}
        train = [case for case in cases if (case.domain, case.subject) not in val_ids]
        val = [case for case in cases if (case.domain, case.subject) in val_ids]
        how = f"val_fraction={cfg.val_fraction}"
    _check_every_domain_split(domains, train, val, how)
    return train, val


def _check_every_domain_split(domains: list[str], train: list[Case], val: list[Case], how: str) -> None:
    short = []
    for domain in domains:
        n_train = sum(case.domain == domain for case in train)
        n_val = sum(case.domain == domain for case in val)
        if n_train == 0 or n_val == 0:
            short.append(f"{domain!r} ({n_train} train, {n_val} val)")
    if short:
        raise ValueError(
            f"splitting by {how} leaves domain(s) {', '.join(short)} without training or validation "
            "subjects: every domain needs at least one of each; add subjects, or change the split, folds "
            "or val_fraction"
        )
