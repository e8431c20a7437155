"""Losses against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from platform.losses import (
    bce_to,
    discriminator_loss,
    generated_class_loss,
    masked_bce_to,
    mean_dice_ce_loss,
    real_class_loss,
    segmentation_loss,
    weighted_dice_loss,
)


def test_weighted_dice_matches_equation_1() -> None:
    # Two voxels, two classes, logits chosen so softmax is [0.75, 0.25] and [0.25, 0.75]; labels [0, 0].
    a = math.log(3.0)
    logits = torch.tensor([[[a, 0.0], [0.0, a]]])  # (B=1, C=2, V=2)
    target = torch.tensor([[0, 0]])
    weights = [0.4, 0.6]
    s = torch.tensor([[0.75, 0.25], [0.25, 0.75]])  # class x voxel
    y = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    w = torch.tensor(weights)
    expected = 1 - (1e-6 + 2 * (w * (s * y).sum(1)).sum()) / (1e-6 + (w * (s + y).sum(1)).sum())
    assert torch.isclose(weighted_dice_loss(logits, target, weights), expected, atol=1e-6)


def test_weighted_dice_is_zero_when_perfect_and_high_when_wrong() -> None:
    target = torch.randint(0, 4, (2, 8, 8, 8))
    perfect = torch.nn.functional.one_hot(target, 4).movedim(-1, 1).float() * 50
    wrong = torch.nn.functional.one_hot((target + 1) % 4, 4).movedim(-1, 1).float() * 50
    weights = [0.22, 0.28, 0.20, 0.30]
    assert weighted_dice_loss(perfect, target, weights) < 1e-4
    assert weighted_dice_loss(wrong, target, weights) > 0.99


def test_discriminator_losses() -> None:
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])  # K=2 domains + generated
    probs = logits.softmax(1)
    assert torch.isclose(discriminator_loss(logits, torch.tensor([0, 2])),
                         -(probs[0, 0].log() + probs[1, 2].log()) / 2)
    assert torch.isclose(generated_class_loss(logits), -probs[:, 2].log().mean())
    assert torch.isclose(real_class_loss(logits), -(1 - probs[:, 2]).log().mean())


def test_mean_dice_ce_by_hand() -> None:
    # Three voxels, three classes; the Dice of each foreground class, averaged, plus the voxels' cross-entropy.
    logits = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.5, 2.0]]])  # (B=1, C=3, V=3)
    target = torch.tensor([[0, 1, 2]])
    p = logits.softmax(1)[0]  # class x voxel
    y = torch.nn.functional.one_hot(target[0], 3).T.float()
    dice = [(2 * (p[c] * y[c]).sum() + 1e-5) / ((p[c] + y[c]).sum() + 1e-5) for c in (1, 2)]
    ce = -sum(p[target[0, v], v].log() for v in range(3)) / 3
    assert torch.isclose(mean_dice_ce_loss(logits, target), 1 - sum(dice) / 2 + ce, atol=1e-6)


def test_mean_dice_ce_matches_monai() -> None:
    from monai.losses import DiceCELoss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, 6, generator=generator)
    target = torch.randint(0, 4, (2, 6, 6, 6), generator=generator)
    monai = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, smooth_nr=1e-5,
                       smooth_dr=1e-5)
    assert mean_dice_ce_loss(logits, target) == pytest.approx(float(monai(logits, target.unsqueeze(1))), abs=1e-5)


@pytest.mark.parametrize("loss", ["pooled", "mean"])
def test_a_vanished_small_class_costs_the_mean_dice_more_than_eq_1(loss) -> None:
    """A network that never predicts a class of 5% of the voxels: eq. 1 barely notices, the class mean does."""
    target = torch.zeros(1, 100, dtype=torch.long)
    target[0, :45], target[0, 45:50] = 1, 2  # bg 50%, class 1 45%, class 2 (the small one) 5%
    perfect = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float() * 30
    vanished = torch.nn.functional.one_hot(torch.where(target == 2, 1, target), 3).movedim(-1, 1).float() * 30
    if loss == "pooled":
        cost = weighted_dice_loss(vanished, target, [1, 1, 1]) - weighted_dice_loss(perfect, target, [1, 1, 1])
        assert cost < 0.06
    else:
        cost = mean_dice_ce_loss(vanished, target) - mean_dice_ce_loss(perfect, target)
        assert cost > 0.5


@pytest.mark.parametrize(("mask", "expected"), [
    ([1.0, 1.0], (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2),  # a uniform mask: the plain mean
    ([1.0, 0.0], math.log(1 + math.exp(-2.0))),  # a zero weight drops the pixel
    ([0.0, 0.0], 0.0),  # nothing weighted: 0, not a division by zero
])
def test_masked_bce_is_the_mask_weighted_mean_of_the_pixels_bce(mask: list[float], expected: float) -> None:
    logits = torch.tensor([[[[2.0, 0.0]]]])  # (B=1, 1, H=1, W=2): BCE to 1 is log(1 + e^-x) per pixel
    weights = torch.tensor(mask).view(1, 1, 1, 2)
    assert float(masked_bce_to(logits, 1.0, weights)) == pytest.approx(expected, abs=1e-6)
    if all(mask):
        assert float(masked_bce_to(logits, 1.0, weights)) == pytest.approx(float(bce_to(logits, 1.0)), abs=1e-6)


@pytest.mark.parametrize("kind", ["dice", "dice_ce", "mean_dice_ce"])
def test_segmentation_loss_by_name(kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=generator)
    target = torch.randint(0, 3, (2, 4, 4), generator=generator)
    weights = [0.2, 0.3, 0.5]
    expected = {"dice": weighted_dice_loss(logits, target, weights),
                "dice_ce": weighted_dice_loss(logits, target, weights) + torch.nn.functional.cross_entropy(
                    logits, target),
                "mean_dice_ce": mean_dice_ce_loss(logits, target)}[kind]
    assert torch.allclose(segmentation_loss(kind, logits, target, weights), expected)
