"""Small PNG grids of what a trainer sees and produces (input | normalized | segmentation over truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Label colours: background transparent, then WM, GM, CSF and further classes.
_PALETTE = np.array([[0, 0, 0], [230, 80, 60], [70, 180, 90], [60, 120, 230], [220, 200, 50], [180, 80, 200]],
                    dtype=np.float32)


def legend(class_names: list[str]) -> list[dict[str, str]]:
    """The overlay colour of each foreground class (index 1 onwards), as ``{"name", "color"}`` (hex)."""
    return [{"name": name, "color": "#{:02x}{:02x}{:02x}".format(*(int(c) for c in _PALETTE[index % len(_PALETTE)]))}
            for index, name in enumerate(class_names) if index > 0]


def _gray(slice_2d: np.ndarray) -> np.ndarray:
    low, high = np.percentile(slice_2d, [1, 99])
    scaled = np.clip((slice_2d - low) / max(high - low, 1e-6), 0, 1)
    return np.repeat((scaled * 255)[..., None], 3, axis=2)


def _overlay(base: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    colours = _PALETTE[labels % len(_PALETTE)]
    mask = (labels > 0)[..., None]
    return np.where(mask, (1 - alpha) * base + alpha * colours, base)


def save_grid(path: Path, image: np.ndarray, normalized: np.ndarray, pred: np.ndarray, label: np.ndarray,
              num_classes: int, scale: int = 3) -> Path:
    """Write the middle axial slice of 3-D volumes as a PNG: input | normalized | prediction | ground truth.

    image, normalized: (X, Y, Z) float; pred, label: (X, Y, Z) int in [0, num_classes).
    """
    z = image.shape[2] // 2
    base = _gray(image[:, :, z])
    panels = [base, _gray(normalized[:, :, z]), _overlay(base, pred[:, :, z], 0.6), _overlay(base, label[:, :, z], 0.6)]
    grid = np.concatenate([np.pad(p, ((2, 2), (2, 2), (0, 0)), constant_values=255) for p in panels], axis=1)
    picture = Image.fromarray(grid.astype(np.uint8)).resize((grid.shape[1] * scale, grid.shape[0] * scale),
                                                            Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


VOLUME_SUFFIX = ".npz"  # a case's volumes for the explorer's slice viewer, beside its picture


def save_volume(path: Path, image: np.ndarray, pred: np.ndarray, label: np.ndarray) -> Path:
    """Write a case's input and the two segmentations as compressed uint8 arrays ``image`` (the 1st-99th
    percentile of the volume stretched to 0-255), ``pred`` and ``label``, for scrolling through its slices.

    image: (X, Y, Z) float; pred, label: (X, Y, Z) int in [0, 255]. A 64^3 phantom case takes about 180 KB.
    """
    low, high = np.percentile(image, [1, 99])
    scaled = np.clip((image - low) / max(float(high - low), 1e-6), 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:  # a file object: np.savez would add ".npz" to a name without it
        np.savez_compressed(stream, image=(scaled * 255).astype(np.uint8), pred=np.asarray(pred).astype(np.uint8),
                            label=np.asarray(label).astype(np.uint8))
    return path

