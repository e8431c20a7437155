"""Input intensity normalization (``data.intensity``), applied once per volume before any patch or slice is drawn,
so the patch sampler, the slice sampler and the sliding-window and slice evaluations all read the same voxels.

- ``raw``: the volume as stored (the "no adaptation" input of the adversarial-normalization paper's Table 2).
- ``volume``: each volume (and channel) z-scored with its own mean and standard deviation: the Standardization
  baseline of that paper ("normalizes the intensity of each voxel in a given volume by subtracting from it the
  volume mean and dividing it by the standard deviation", section 3.2), and DualNorm-UNet's per-image z-score
  (section 5.2).
- ``dataset``: z-scored with the mean and standard deviation of its domain's training volumes (the "global
  statistics of the dataset" of that paper's related work). A domain without training volumes (an
  evaluation-only domain) uses all of its volumes: images only, never labels.
- ``patch``: left as stored here; each patch, slice or sliding window is z-scored on its own where it is drawn
  (:func:`platform.data.patches.standardize`): the old behaviour, kept for comparison.

``data.intensity_nonzero`` computes the statistics over non-zero voxels only and leaves zeros (skull-stripped
background) at zero, MONAI's ``nonzero``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
from monai.transforms import NormalizeIntensity

from platform.data.case import Case

MODES = ("raw", "volume", "dataset", "patch")


def normalize_volume(image: np.ndarray, nonzero: bool = False) -> np.ndarray:
    """Each channel of a (C, X, Y, Z) volume z-scored with its own statistics (MONAI ``NormalizeIntensity``)."""
    return np.asarray(NormalizeIntensity(nonzero=nonzero, channel_wise=True)(image.copy()), dtype=np.float32)


def domain_statistics(cases: list[Case], nonzero: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) over every voxel of ``cases`` (non-zero voxels only with ``nonzero``); (C,) each."""
    channels = cases[0].image.shape[0]
    means, stds = np.zeros(channels), np.ones(channels)
    for channel in range(channels):
        values = np.concatenate([case.image[channel].ravel() for case in cases]).astype(np.float64)
        if nonzero:
            values = values[values != 0]
        if values.size:
            means[channel] = values.mean()
            stds[channel] = values.std() or 1.0
    return means, stds


def normalize_cases(mode: str, nonzero: bool, train: list[Case], *others: list[Case]) -> list[list[Case]]:
    """``train`` and each of ``others`` with their images normalized by ``mode`` (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown data.intensity {mode!r}: use one of {', '.join(MODES)}")
    groups = [train, *others]
    if mode in ("raw", "patch"):
        return [list(group) for group in groups]
    if mode == "volume":
        return [[dataclasses.replace(c, image=normalize_volume(c.image, nonzero)) for c in group] for group in groups]
    by_domain: dict[str, list[Case]] = defaultdict(list)
    for case in train:
        by_domain[case.domain].append(case)
    for case in (c for group in others for c in group):
        if case.domain not in {c.domain for c in train}:
            by_domain[case.domain].append(case)  # evaluation-only domain: its own images
    stats = {domain: domain_statistics(cases, nonzero) for domain, cases in by_domain.items()}

    def scaled(case: Case) -> Case:
        mean, std = stats[case.domain]
        transform = NormalizeIntensity(subtrahend=mean, divisor=std, nonzero=nonzero, channel_wise=True)
        return dataclasses.replace(case, image=np.asarray(transform(case.image.copy()), dtype=np.float32))

    return [[scaled(c) for c in group] for group in groups]
