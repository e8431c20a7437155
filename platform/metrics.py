"""Metrics as pure functions (MONAI for overlap and surface distances; shapes in the docstrings), and one
segmentation accumulator that every trainer's evaluation uses."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

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


def mhd_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                  spacing: Sequence[float] | None = None) -> torch.Tensor:
    """Mean Hausdorff distance per foreground class, the adversarial-normalization paper's equation 5:
    ``MHD(S, G) = (dist(S, G) + dist(G, S)) / 2``, each ``dist`` the maximum over one surface of the distance to the
    nearest point of the other (the directed Hausdorff distance). Shapes as ``hd95_per_class``."""
    p, t = _onehot(pred, num_classes), _onehot(target, num_classes)
    forward = compute_hausdorff_distance(p, t, include_background=False, directed=True, spacing=spacing)
    backward = compute_hausdorff_distance(t, p, include_background=False, directed=True, spacing=spacing)
    return (forward + backward) / 2


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
    probs = _shared_histograms(samples, bins)
    if probs is None:
        return 0.0
    values = []
    for i in range(len(probs)):
        for j in range(i + 1, len(probs)):
            p, q = probs[i], probs[j]
            m = 0.5 * (p + q)
            values.append(0.5 * _kl(p, m) + 0.5 * _kl(q, m))
    return float(np.mean(values))


def generalized_jsd(samples: Sequence[np.ndarray], bins: int = 64) -> float:
    """The Jensen-Shannon divergence of K domains' intensity histograms taken together (nats):
    ``H(mean_k p_k) - mean_k H(p_k)``, equal-weighted, on bins shared over the joint range.

    This is the divergence of K distributions (Lin, 1991), the form "the JSD between the intensity distributions of
    images from different datasets" takes for more than two; 0 for identical distributions, at most ln K. The
    adversarial-normalization paper does not state its formula, and its values (2.08 for two datasets, 12.22 for
    three) exceed ln K, so they are not on this scale: compare directions, not numbers.

    Args:
        samples: one 1-D array of intensities per domain.
    """
    probs = _shared_histograms(samples, bins)
    if probs is None:
        return 0.0
    mixture = np.mean(probs, axis=0)
    return float(_entropy(mixture) - np.mean([_entropy(p) for p in probs]))


def _shared_histograms(samples: Sequence[np.ndarray], bins: int) -> list[np.ndarray] | None:
    """Each sample's normalized histogram on ``bins`` shared over the joint range; None (a divergence of 0) for
    fewer than two samples or a joint range of one value."""
    if len(samples) < 2:
        return None
    low = min(float(s.min()) for s in samples)
    high = max(float(s.max()) for s in samples)
    if high <= low:
        return None
    hists = [np.histogram(s, bins=bins, range=(low, high))[0].astype(np.float64) for s in samples]
    return [h / h.sum() for h in hists]


def _entropy(p: np.ndarray) -> float:
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


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


class SegmentationSummary:
    """Per-volume segmentation scores, accumulated volume by volume and aggregated once (MONAI's cumulative
    metrics pattern), so a trainer's ``evaluate`` and its ``metric_names`` come from one place.

    ``add`` scores one volume: foreground Dice per class and, for each of ``surface`` (``"hd95"``, ``"asd"``), the
    distance per class. ``metrics(split)`` gives, per domain, the mean over cases of each class's Dice
    (``split/<name>/<domain>/<class>`` when ``per_class``), their mean (``split/<name>/<domain>``), each surface
    distance's mean over cases and classes (``split/<surface>/<domain>``), and the mean of the domain values over
    ``headline`` domains (``split/<name>``, ``split/<surface>``). NaN marks an undefined value (an absent class, an
    empty prediction) and is left out of every mean. ``cases()`` keeps each volume's own scores.
    """

    def __init__(self, class_names: Sequence[str], *, name: str = "dice", surface: Sequence[str] = (),
                 per_class: bool = True) -> None:
        self.class_names = list(class_names)
        self.name, self.surface, self.per_class = name, tuple(surface), per_class
        self._rows: list[dict[str, Any]] = []

    def add(self, domain: str, subject: str, pred: torch.Tensor, label: torch.Tensor,
            spacing: Sequence[float] | None = None) -> None:
        """Score one volume. pred, label: (*spatial) or (1, *spatial) integer labels."""
        if pred.dim() == 3:
            pred = pred.unsqueeze(0)
        if label.dim() == 3:
            label = label.unsqueeze(0)
        classes = len(self.class_names)
        row: dict[str, Any] = {"domain": domain, "subject": subject,
                               self.name: dice_per_class(pred, label, classes)[0].float()}
        with warnings.catch_warnings():
            # MONAI warns for every class a poor early prediction misses; the distance is then NaN, as wanted.
            warnings.simplefilter("ignore")
            for metric in self.surface:
                values = SURFACE[metric](pred, label, classes, spacing)[0].float()
                row[metric] = torch.where(torch.isfinite(values), values, torch.nan)
        self._rows.append(row)

    def reset(self) -> None:
        self._rows = []

    def domains(self) -> list[str]:
        return list(dict.fromkeys(row["domain"] for row in self._rows))

    def metrics(self, split: str, domains: Sequence[str] | None = None,
                headline: Sequence[str] | None = None) -> dict[str, float]:
        """Aggregate the volumes added so far (see the class docstring); ``domains`` fixes their order."""
        domains = list(domains) if domains is not None else self.domains()
        out: dict[str, float] = {}
        means: dict[str, list[float]] = {m: [] for m in (self.name, *self.surface)}
        for domain in domains:
            rows = [row for row in self._rows if row["domain"] == domain]
            if not rows:
                continue
            per_class = torch.nanmean(torch.stack([row[self.name] for row in rows]), dim=0)
            if self.per_class:
                for index, cls in enumerate(self.class_names[1:]):
                    out[f"{split}/{self.name}/{domain}/{cls}"] = float(per_class[index])
            values = {self.name: nanmean(per_class.tolist())}
            for metric in self.surface:
                values[metric] = nanmean(torch.stack([row[metric] for row in rows]).flatten().tolist())
            for metric, value in values.items():
                out[f"{split}/{metric}/{domain}"] = value
                if headline is None or domain in headline:
                    means[metric].append(value)
        for metric, values in means.items():
            out[f"{split}/{metric}"] = nanmean(values)
        return out

    def names(self, split: str, domains: Sequence[str]) -> set[str]:
        """Every name ``metrics(split, domains)`` can return."""
        return summary_names(split, domains, self.class_names, self.name, self.surface, self.per_class)

    def cases(self) -> list[dict[str, Any]]:
        """One row per volume: domain, subject, each metric's mean over classes and its value per class."""
        rows = []
        for row in self._rows:
            out: dict[str, Any] = {"domain": row["domain"], "subject": row["subject"]}
            for metric in (self.name, *self.surface):
                values = row[metric].tolist()
                out[metric] = nanmean(values)
                for cls, value in zip(self.class_names[1:], values, strict=True):
                    out[f"{metric}/{cls}"] = float(value)
            rows.append(out)
        return rows


def summary_names(split: str, domains: Sequence[str], class_names: Sequence[str], name: str = "dice",
                  surface: Sequence[str] = (), per_class: bool = True) -> set[str]:
    """The metric names a ``SegmentationSummary`` of these settings reports."""
    names = {f"{split}/{name}", *(f"{split}/{metric}" for metric in surface)}
    for domain in domains:
        names |= {f"{split}/{metric}/{domain}" for metric in (name, *surface)}
        if per_class:
            names |= {f"{split}/{name}/{domain}/{cls}" for cls in list(class_names)[1:]}
    return names


SURFACE = {"hd95": hd95_per_class, "asd": asd_per_class, "mhd": mhd_per_class}
