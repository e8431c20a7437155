"""Metrics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from platform.metrics import (
    classification_accuracy,
    confusion_matrix,
    dice_per_class,
    hd95_per_class,
    histogram_jsd,
    intensity_position_correlation,
)


def test_dice_per_class_hand_computed() -> None:
    target = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    target[0, :2] = 1  # 32 voxels of class 1
    pred = torch.zeros_like(target)
    pred[0, :1] = 1  # 16 of them predicted
    pred[0, 3, 0, 0] = 2  # one voxel of class 2 that is not in the target
    dice = dice_per_class(pred, target, 3)
    assert dice.shape == (1, 2)
    assert math.isclose(dice[0, 0].item(), 2 * 16 / (16 + 32), rel_tol=1e-6)
    assert math.isnan(dice[0, 1].item())  # MONAI ignores a class absent from the ground truth


def test_hd95_of_a_shifted_cube() -> None:
    target = torch.zeros(1, 16, 16, 16, dtype=torch.long)
    target[0, 4:10, 4:10, 4:10] = 1
    pred = torch.roll(target, shifts=2, dims=1)
    assert hd95_per_class(pred, target, 2)[0, 0].item() == pytest.approx(2.0)
    assert hd95_per_class(target, target, 2)[0, 0].item() == 0.0


def test_jsd_bounds() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(size=5000)
    assert histogram_jsd([same, same]) == 0.0
    assert histogram_jsd([np.zeros(100), np.ones(100)]) == pytest.approx(math.log(2))
    close = histogram_jsd([rng.normal(size=5000), rng.normal(size=5000)])
    far = histogram_jsd([rng.normal(size=5000), rng.normal(3, 1, size=5000)])
    assert 0 < close < far < math.log(2)


def test_accuracy_confusion_and_bias_correlation() -> None:
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 0]])
    labels = torch.tensor([0, 1, 2])
    assert classification_accuracy(logits, labels) == pytest.approx(2 / 3)
    matrix = confusion_matrix(logits, labels, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    ramp = np.broadcast_to(np.arange(10.0)[None, :, None], (10, 10, 10)).copy()
    mask = np.ones_like(ramp, dtype=bool)
    assert intensity_position_correlation(ramp, mask) == pytest.approx(1.0)
    assert abs(intensity_position_correlation(np.ones_like(ramp), mask)) == 0.0


def test_mhd_is_the_mean_of_the_two_directed_maximum_distances() -> None:
    """Equation 5 of the adversarial-normalization paper, against scipy's directed Hausdorff distance between the
    two surfaces (the voxels of each mask that touch its outside)."""
    from scipy import ndimage
    from scipy.spatial.distance import directed_hausdorff

    from platform.metrics import hd95_per_class, mhd_per_class

    pred = torch.zeros(1, 12, 12, 12, dtype=torch.long)
    target = torch.zeros_like(pred)
    pred[0, 2:6, 2:6, 2:6] = 1
    target[0, 2:9, 3:7, 2:6] = 1

    def surface(mask: torch.Tensor) -> np.ndarray:
        array = mask[0].numpy() == 1
        return np.argwhere(array & ~ndimage.binary_erosion(array))

    forward = directed_hausdorff(surface(pred), surface(target))[0]
    backward = directed_hausdorff(surface(target), surface(pred))[0]
    assert forward != backward  # the two directions differ here, so the mean is a real test
    assert float(mhd_per_class(pred, target, 2)[0, 0]) == pytest.approx((forward + backward) / 2)
    assert float(hd95_per_class(pred, target, 2)[0, 0]) != pytest.approx((forward + backward) / 2)


def test_generalized_jsd_of_k_domains_against_scipy() -> None:
    """H(mixture) - mean H(p_k): for two domains it equals the pairwise JSD; for K it is bounded by ln K."""
    from scipy.stats import entropy

    from platform.metrics import generalized_jsd, histogram_jsd

    rng = np.random.default_rng(0)
    samples = [rng.normal(0, 1, 5000), rng.normal(1.5, 1, 5000), rng.normal(4, 0.5, 5000)]
    low, high = min(s.min() for s in samples), max(s.max() for s in samples)
    hists = [np.histogram(s, bins=64, range=(low, high))[0] / 5000 for s in samples]
    expected = entropy(np.mean(hists, axis=0)) - np.mean([entropy(h) for h in hists])
    assert generalized_jsd(samples) == pytest.approx(expected)
    assert 0 < generalized_jsd(samples) <= math.log(3)
    assert generalized_jsd(samples[:2]) == pytest.approx(histogram_jsd(samples[:2]))
    assert generalized_jsd([samples[0], samples[0]]) == pytest.approx(0.0)
