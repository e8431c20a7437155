"""The ``DATASETS`` registry (``phantom``, ``mni``, ``abdomen``, ``manifest``), what a data config loads, and the
subject splits.

Each dataset has ``check(config) -> list[str]`` (problems found at spec time, before Ray starts, with no data
read and nibabel not imported) and ``load(config) -> list[Case]``. ``load_cases`` adds the optional DualNorm
Appendix A alignment; ``split_cases`` decides train, validation and test subjects per domain;
:mod:`platform.data.intensity` normalizes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.phantom_names import (
    ABDOMEN_CLASS_NAMES,
    ABDOMEN_DOMAINS,
    CLASS_NAMES,
    VALID_DOMAINS_TEXT,
    known_domain,
)
from platform.registry import Registry
from platform.seeds import stable_seed


@dataclass(frozen=True)
class Dataset:
    """One kind of data: its spec-time check and its loader."""

    check: Callable[[DataConfig], list[str]]
    load: Callable[[DataConfig], list[Case]]


DATASETS: Registry[Dataset] = Registry("dataset")

def _check_generated(cfg: DataConfig, what: str, known: Callable[[str], bool], valid: str,
                     classes: tuple[str, ...]) -> list[str]:
    """Spec-time problems of an embedded (generated) dataset: its domains and its number of classes."""
    problems = []
    if not cfg.domains:
        problems.append(f"data.domains: the {what} needs at least one domain; choose from {valid}")
    unknown = [d for d in cfg.domains if not known(d)]
    if unknown:
        problems.append(f"data.domains: unknown {what} domain(s) {unknown}; valid domains are {valid}")
    if cfg.num_classes != len(classes):
        problems.append(f"data.num_classes: the {what} has {len(classes)} classes {list(classes)}, "
                        f"not {cfg.num_classes}; set num_classes: {len(classes)}")
    return problems


def _check_phantom(cfg: DataConfig) -> list[str]:
    return _check_generated(cfg, "phantom", known_domain, VALID_DOMAINS_TEXT, CLASS_NAMES)


def _check_mni(cfg: DataConfig) -> list[str]:
    # The phantom's domains and classes, so every phantom spec runs with data.dataset=mni.
    return _check_generated(cfg, "mni dataset", known_domain, VALID_DOMAINS_TEXT, CLASS_NAMES)


def _check_abdomen(cfg: DataConfig) -> list[str]:
    return _check_generated(cfg, "abdomen dataset", ABDOMEN_DOMAINS.__contains__, ", ".join(ABDOMEN_DOMAINS),
                            ABDOMEN_CLASS_NAMES)


def _load_phantom(cfg: DataConfig) -> list[Case]:
    from platform.data.manifest import load_manifest
    from platform.data.phantom import build_phantom

    return load_manifest(build_phantom(cfg), cfg.num_classes, cfg.domains or None)


def _load_mni(cfg: DataConfig) -> list[Case]:
    from platform.data.manifest import load_manifest
    from platform.data.mni import build_mni

    return load_manifest(build_mni(cfg), cfg.num_classes, cfg.domains or None)


def _load_abdomen(cfg: DataConfig) -> list[Case]:
    from platform.data.abdomen import build_abdomen
    from platform.data.manifest import load_manifest

    return load_manifest(build_abdomen(cfg), cfg.num_classes, cfg.domains or None)


def _check_manifest(cfg: DataConfig) -> list[str]:
    return [] if cfg.manifest else ["data.manifest: dataset 'manifest' needs a manifest path: set data.manifest "
                                    "to a CSV or JSON file"]


def _load_manifest(cfg: DataConfig) -> list[Case]:
    from platform.data.manifest import load_manifest

    assert cfg.manifest is not None  # checked at spec time
    return load_manifest(Path(cfg.manifest), cfg.num_classes, cfg.domains or None)


DATASETS.register("phantom")(Dataset(check=_check_phantom, load=_load_phantom))
DATASETS.register("mni")(Dataset(check=_check_mni, load=_load_mni))
DATASETS.register("abdomen")(Dataset(check=_check_abdomen, load=_load_abdomen))
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


def _held_out(subjects: list[str], fraction: float) -> list[str]:
    """The last ``ceil(fraction * n)`` of the sorted ``subjects`` (none for a fraction of 0)."""
    count = math.ceil(fraction * len(subjects) - 1e-9)
    return sorted(subjects)[len(subjects) - count:] if count else []


Split = tuple[list[Case], list[Case], list[Case]]


def split_cases(cases: list[Case], cfg: DataConfig, fold: int | None = None) -> Split:
    """(train, val, test) subjects, decided per domain and independently of the domains' roles, so a domain's
    training subjects are the same whether or not it is also an evaluation domain.

    A ``split`` column wins. Otherwise the last ``ceil(test_fraction * n)`` subjects of each domain (sorted by id)
    are the test set; of the rest, with ``fold`` given, K-fold by subject (``cfg.folds``; the manifest's ``fold``
    column if present, else a seeded assignment) chooses val, otherwise the last ``ceil(val_fraction * n)``. Each
    training domain (``cfg.train_domains``) must keep a training subject and each evaluation domain
    (``cfg.eval_domains``) a validation subject, and a test subject when there is a test set.
    """
    if not cases:
        raise ValueError("no cases to split: the dataset is empty")
    domains = list(dict.fromkeys(case.domain for case in cases))
    if any(case.split is not None for case in cases):
        if fold is not None:
            raise ValueError(
                f"fold {fold} requested, but the manifest has a split column, which fixes train/val/test: "
                "remove data.folds or the manifest's split column"
            )
        parts = {name: [case for case in cases if case.split == name] for name in ("train", "val", "test")}
        how = "the manifest's split column"
    else:
        test_ids = {(domain, s) for domain in domains
                    for s in _held_out([c.subject for c in cases if c.domain == domain], cfg.test_fraction)}
        rest = [case for case in cases if (case.domain, case.subject) not in test_ids]
        val_ids: set[tuple[str, str]] = set()
        if fold is not None:
            if cfg.folds is None:
                raise ValueError(f"fold {fold} requested but data.folds is not set: set data.folds (e.g. 5)")
            if not 0 <= fold < cfg.folds:
                raise ValueError(
                    f"fold {fold} is out of range for data.folds={cfg.folds}: use 0..{cfg.folds - 1}"
                )
            for domain in domains:
                folds = _fold_of_subjects([c for c in rest if c.domain == domain], domain, cfg)
                too_big = sorted({f for f in folds.values() if f >= cfg.folds})
                if too_big:
                    raise ValueError(
                        f"domain {domain!r}: manifest folds {too_big} are >= data.folds={cfg.folds}: "
                        "raise data.folds or renumber the fold column"
                    )
                val_ids |= {(domain, s) for s, f in folds.items() if f == fold}
            how = f"fold {fold} of {cfg.folds} (test_fraction={cfg.test_fraction})"
        else:
            for domain in domains:
                subjects = sorted(c.subject for c in cases if c.domain == domain)
                count = math.ceil(cfg.val_fraction * len(subjects) - 1e-9)
                remaining = [s for s in subjects if (domain, s) not in test_ids]
                val_ids |= {(domain, s) for s in remaining[max(0, len(remaining) - count):]}
            how = f"val_fraction={cfg.val_fraction}, test_fraction={cfg.test_fraction}"
        parts = {"train": [c for c in rest if (c.domain, c.subject) not in val_ids],
                 "val": [c for c in rest if (c.domain, c.subject) in val_ids],
                 "test": [c for c in cases if (c.domain, c.subject) in test_ids]}
    _check_roles(cfg, domains, parts, how)
    return parts["train"], parts["val"], parts["test"]


def _check_roles(cfg: DataConfig, domains: list[str], parts: dict[str, list[Case]], how: str) -> None:
    """Every training domain keeps a training subject, every evaluation domain a val (and test) subject."""
    missing = [d for d in (cfg.train_domains or []) + (cfg.eval_domains or []) if d not in domains]
    if missing:
        raise ValueError(f"data.train_domains/eval_domains name {sorted(set(missing))}, which have no subjects "
                         f"(domains present: {domains}): fix the domain names or add subjects")
    needs = {"train": cfg.training_domains(domains), "val": cfg.evaluation_domains(domains)}
    if parts["test"]:
        needs["test"] = cfg.evaluation_domains(domains)
    short = []
    for part, wanted in needs.items():
        for domain in wanted:
            if not any(case.domain == domain for case in parts[part]):
                short.append(f"{domain!r} has no {part} subject")
    if short:
        counts = ", ".join(f"{d}: " + "/".join(str(sum(c.domain == d for c in parts[p])) for p in parts)
                           for d in domains)
        raise ValueError(
            f"splitting by {how}: {'; '.join(short)} (train/val/test subjects per domain: {counts}). A training "
            "domain needs a training subject, an evaluation domain a validation subject (and a test subject when "
            "there is a test set): add subjects, or change the split, folds, val_fraction or test_fraction"
        )
