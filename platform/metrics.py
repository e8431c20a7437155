"""Metrics as pure functions (MONAI for overlap and surface distances; shapes in the docstrings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance


def _onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, *spatial) int -> (B, C, *spatial) float."""
    return F.one_hot(labels.long(), num_classes).movedim(-1, 1).float()


def dice_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Foreground Dice per class.

    Args:
        pred, target: (B, *spatial) integer labels.
    Returns:
        (B, num_classes - 1); NaN where a class is absent from both (MONAI's ignore_empty).
    """
    return compute_dice(_onehot(pred, num_classes), _onehot(target, num_classes), include_background=False)


def hd95_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                   spacing: Sequence[float] | None = None) -> torch.Tensor:
    """95th-percentile symmetric Hausdorff distance per foreground class (in spacing units).

    Args:
        pred, target: (B, *spatial) integer labels.
    Returns:
        (B, num_classes - 1); inf/NaN where a class is missing from one side (MONAI's convention).
    """
    return compute_hausdorff_distance(_onehot(pred, num_classes), _onehot(target, num_classes),
                                      include_background=False, percentile=95, spacing=spacing)


def asd_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                  spacing: Sequence[float] | None = None) -> torch.Tensor:
    """Symmetric average surface distance per foreground class. Shapes as ``hd95_per_class``."""
    return compute_average_surface_distance(_onehot(pred, num_classes), _onehot(target, num_classes),
                                            include_background=False, symmetric=True, spacing=spacing)


def histogram_jsd(samples: Sequence[np.ndarray], bins: int = 64) -> float:
    """Mean pairwise Jensen-Shannon divergence (nats) between the intensity histograms of several domains.

    Histograms share bins over the joint range of all samples, so a domain shifted in intensity scores high.

    Args:
        samples: one 1-D array of intensities per domain (e.g. brain voxels of all its validation volumes).
    Returns:
        0 for identical distributions, at most ln 2.
    """
    if len(samples) < 2:
        return 0.0
    low = min(float(s.min()) for s in samples)
    high = max(float(s.max()) for s in samples)
    if high <= low:
        return 0.0
    hists = [np.histogram(s, bins=bins, range=(low, high))[0].astype(np.float64) for s in samples]
    probs = [h / h.sum() for h in hists]
    values = []
    for i in range(len(probs)):
        for j in range(i + 1, len(probs)):
            p, q = probs[i], probs[j]
            m = 0.5 * (p + q)
            values.append(0.5 * _kl(p, m) + 0.5 * _kl(q, m))
    return float(np.mean(values))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def nanmean(values: Sequence[float]) -> float:
    """Mean of the finite values (NaN marks a metric undefined for a case, e.g. an absent class); NaN if none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def classification_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct argmax predictions. logits (N, K), labels (N,)."""
    return float((logits.argmax(dim=1) == labels).float().mean()) if labels.numel() else float("nan")


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Row-normalized confusion matrix (true class rows). logits (N, K), labels (N,) -> (K, K)."""
    pred = logits.argmax(dim=1).cpu().numpy()
    matrix = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(matrix, (labels.cpu().numpy(), pred), 1.0)
    rows = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)


def intensity_position_correlation(image: np.ndarray, mask: np.ndarray, axis: int = 1) -> float:
    """Pearson correlation between voxel intensity and position along ``axis`` inside ``mask``.

    The journal paper's Table 6 measure of a linear bias field. image, mask: same 3-D shape.
    """
    coords = np.nonzero(mask)
    values = image[coords]
    position = coords[axis].astype(np.float64)
    if values.size < 2 or values.std() == 0 or position.std() == 0:
        return 0.0
    return float(np.corrcoef(values, position)[0, 1])
