"""Losses as pure functions (shapes in the docstrings)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def weighted_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, class_weights: Sequence[float] | torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Delisle et al. eq. (1): ``1 - (eps + 2 sum_c w_c sum_v s*y) / (eps + sum_c w_c sum_v (s + y))``.

    One ratio over all weighted classes (not a weighted mean of per-class Dice, which is what MONAI's
    ``DiceLoss(weight=...)`` computes), over the whole batch.

    Args:
        logits: (B, C, *spatial) raw scores.
        target: (B, *spatial) integer labels in [0, C).
        class_weights: (C,) weights w_c.
    Returns:
        scalar loss in [0, 1].
    """
    probs = logits.softmax(dim=1)
    onehot = F.one_hot(target.long(), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    weights = torch.as_tensor(class_weights, dtype=probs.dtype, device=probs.device)
    if weights.numel() != probs.shape[1]:
        raise ValueError(f"{weights.numel()} class weights for {probs.shape[1]} classes")
    dims = (0, *range(2, probs.ndim))
    intersection = (probs * onehot).sum(dim=dims)
    total = (probs + onehot).sum(dim=dims)
    return 1.0 - (eps + 2.0 * (weights * intersection).sum()) / (eps + (weights * total).sum())


def discriminator_loss(logits: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """Delisle et al. eq. (2): mean ``-log D_z(x)`` over the batch.

    Args:
        logits: (B, K+1) discriminator scores; class K (0-based) is "generated".
        domain: (B,) integer class in [0, K].
    """
    return F.cross_entropy(logits, domain.long())


def generated_class_loss(logits: torch.Tensor) -> torch.Tensor:
    """``L_dis(D(x), K+1) = -log D_{K+1}(x)``, the generated class being the last one.

    Args:
        logits: (B, K+1).
    Returns:
        scalar mean over the batch.
    """
    return -logits.log_softmax(dim=1)[:, -1].mean()


def real_class_loss(logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating counterpart: ``-log(1 - D_{K+1}(x)) = -log sum_{z<=K} D_z(x)``.

    Args:
        logits: (B, K+1).
    """
    log_probs = logits.log_softmax(dim=1)
    return -torch.logsumexp(log_probs[:, :-1], dim=1).mean()
