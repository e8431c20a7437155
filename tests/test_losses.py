"""Losses against hand computations."""

from __future__ import annotations

import math

import torch

from platform.losses import discriminator_loss, generated_class_loss, real_class_loss, weighted_dice_loss


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
