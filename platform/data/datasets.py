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
