"""Input-distribution alignment of DualNorm's Appendix A (Xiao et al.), and its global (image-wise) alternative.

Every domain other than the reference (the paper's target domain T) is remapped towards it, per image channel:

1. per case j and class c: mean mu and (population) std sigma of the voxels of class c (eqs 11-12);
2. per domain i: the means of mu and sigma over its cases (13-14), and their spreads (population std over the
   cases); a case's new mean standardises its mu within its domain and rescales it to T's spread and mean
   (15), likewise its new std (16);
3. the voxels of class c become ``(x - mu) / sigma * new_sigma + new_mu`` (17).

``region`` mode uses the label values 0..num_classes-1 present in each case as the classes; ``global`` mode one
"class" holding every voxel of the image, i.e. an affine intensity map per case that matches whole-image
statistics and leaves the contrast between classes as it was.

Choices the paper leaves open:

- a domain's means and spreads of class c are over its cases that contain c;
- when a domain's spread is 0 (e.g. a single case) eq 15/16 divides by zero: the new statistic is then T's mean;
- sigma is floored at ``EPS`` before dividing (a constant region), and the new sigma too, since eq 16 can go
  negative for an outlying case and would flip the region's contrast;
- voxels of a class the reference domain never contains are left unchanged (there is no target to align to).

Region mode uses each case's own annotation, validation cases included, as the paper's Appendix A analysis
does: it is an oracle analysis of how much aligning inputs helps, not a deployable pre-processing (a test image
has no label to align by).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from platform.data.case import Case

MODES = ("none", "global", "region")
# Intensity floor of a std: below it a region is treated as constant (its voxels map to the new mean).
EPS = 1e-6
Moments = tuple[np.ndarray, np.ndarray]  # (mean, spread) over a domain's cases, each (C, K)


def _case_statistics(image: np.ndarray, classes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel and class of one case: mean (C, K), std (C, K), and whether the class is present (K,)."""
    flat = classes.ravel()
    counts = np.bincount(flat, minlength=k)
    present = counts > 0
    safe = np.maximum(counts, 1)
    channels = image.reshape(image.shape[0], -1).astype(np.float64)
    mu = np.stack([np.bincount(flat, weights=ch, minlength=k) for ch in channels]) / safe
    # Two passes (not E[x^2] - E[x]^2), which cancels catastrophically for bright, low-contrast regions.
    squares = [(ch - m[flat]) ** 2 for ch, m in zip(channels, mu, strict=True)]
    var = np.stack([np.bincount(flat, weights=sq, minlength=k) for sq in squares])
    return mu, np.sqrt(var / safe), present


def _domain_moments(values: np.ndarray, present: np.ndarray) -> Moments:
    """Mean and population std over cases (axis 0) of values (M, C, K); a case counts only where the class is."""
    weight = present[:, None, :].astype(np.float64)
    n = np.maximum(weight.sum(axis=0), 1.0)
    mean = (values * weight).sum(axis=0) / n
    spread = np.sqrt((((values - mean) ** 2) * weight).sum(axis=0) / n)
    return mean, spread


def _retarget(value: np.ndarray, domain: Moments, ref: Moments) -> np.ndarray:
    """Eq 15/16: standardise within the domain (mean, spread), rescale to the reference's; if spread is 0, its mean."""
    (mean, spread), (ref_mean, ref_spread) = domain, ref
    # Relative threshold: identical cases give a spread of float round-off, not exactly 0.
    degenerate = spread <= EPS * np.maximum(1.0, np.abs(mean))
    scaled = (value - mean) / np.where(degenerate, 1.0, spread) * ref_spread + ref_mean
    return np.where(degenerate, ref_mean, scaled)


def align_cases(
    cases: list[Case], mode: Literal["none", "global", "region"], reference: str, num_classes: int
) -> list[Case]:
    """Cases of every domain but ``reference`` aligned to it (module docstring); reference cases as they were.

    Returns new :class:`Case` objects (float32 images, labels untouched) in the input order.
    """
    if mode not in MODES:
        raise ValueError(f"unknown alignment mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "none":
        return list(cases)
    present_domains = sorted({case.domain for case in cases})
    if reference not in present_domains:
        raise ValueError(
            f"reference domain {reference!r} of the alignment has no cases (domains present: {present_domains}): "
            "choose one of those as the reference"
        )
    k = num_classes if mode == "region" else 1
    stats: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # classes, mu, sigma, present
    for case in cases:
        label = np.asarray(case.label)
        if mode == "region" and label.size and (label.min() < 0 or label.max() >= num_classes):
            raise ValueError(
                f"case {case.domain}/{case.subject} has label values outside 0..{num_classes - 1}: "
                "region alignment needs labels within num_classes"
            )
        classes = label.astype(np.int64) if mode == "region" else np.zeros(label.shape, np.int64)
        stats.append((classes, *_case_statistics(np.asarray(case.image), classes, k)))

    def moments(domain: str) -> tuple[list[int], Moments, Moments, np.ndarray]:
        """The domain's cases, (mean, spread) of their mu and of their sigma, and which classes it contains."""
        members = [j for j, case in enumerate(cases) if case.domain == domain]
        present = np.stack([stats[j][3] for j in members])
        mu = _domain_moments(np.stack([stats[j][1] for j in members]), present)
        sigma = _domain_moments(np.stack([stats[j][2] for j in members]), present)
        return members, mu, sigma, present.any(axis=0)

    _, ref_mu, ref_sigma, ref_present = moments(reference)
    aligned = list(cases)
    for domain in present_domains:
        if domain == reference:
            continue
        members, domain_mu, domain_sigma, _ = moments(domain)
        for j in members:
            classes, mu, sigma, present = stats[j]
            new_mu = _retarget(mu, domain_mu, ref_mu)
            new_sigma = np.maximum(_retarget(sigma, domain_sigma, ref_sigma), EPS)
            # Eq 17 as scale and shift per (channel, class); identity for classes the reference lacks.
            keep = ~(present & ref_present)
            scale = np.where(keep, 1.0, new_sigma / np.maximum(sigma, EPS))
            shift = np.where(keep, 0.0, new_mu - mu * scale)
            image = np.asarray(cases[j].image, dtype=np.float64)
            out = image * scale[:, classes] + shift[:, classes]
            aligned[j] = dataclasses.replace(cases[j], image=out.astype(np.float32))
    return aligned
