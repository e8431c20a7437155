"""Losses as pure functions (shapes in the docstrings).

Each takes logits and computes in float32 whatever dtype they come in (bf16 or fp16 under autocast): softmax,
log-probabilities and sums over a whole batch lose too much in half precision, and the adversarial terms stay
in their numerically safe logit form (``log_softmax``, ``binary_cross_entropy_with_logits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    probs = logits.float().softmax(dim=1)
    onehot = F.one_hot(target.long(), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    weights = torch.as_tensor(class_weights, dtype=probs.dtype, device=probs.device)
    if weights.numel() != probs.shape[1]:
        raise ValueError(f"{weights.numel()} class weights for {probs.shape[1]} classes")
    dims = (0, *range(2, probs.ndim))
    intersection = (probs * onehot).sum(dim=dims)
    total = (probs + onehot).sum(dim=dims)
    return 1.0 - (eps + 2.0 * (weights * intersection).sum()) / (eps + (weights * total).sum())


def mean_dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, include_background: bool = False,
                      smooth: float = 1e-5) -> torch.Tensor:
    """nnU-Net's segmentation loss: soft Dice of each class (pooled over the batch), averaged over the classes,
    plus the voxels' cross-entropy. Unlike eq. (1)'s one pooled ratio, a class the network stops predicting costs
    ``1 / classes`` of the Dice term whatever its size, so a small class cannot vanish cheaply.

    Args:
        logits: (B, C, *spatial) raw scores.
        target: (B, *spatial) integer labels in [0, C).
        include_background: average over class 0 too (nnU-Net: no).
        smooth: added to both sides of each class's ratio (a class absent from the batch and not predicted
            scores 1).
    Returns:
        scalar ``1 - mean_c (2 I_c + smooth) / (P_c + Y_c + smooth) + CE``.
    """
    probs = logits.float().softmax(dim=1)
    onehot = F.one_hot(target.long(), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    dims = (0, *range(2, probs.ndim))
    intersection = (probs * onehot).sum(dim=dims)
    total = (probs + onehot).sum(dim=dims)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    if not include_background:
        dice = dice[1:]
    return 1.0 - dice.mean() + F.cross_entropy(logits.float(), target.long())


def discriminator_loss(logits: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """Delisle et al. eq. (2): mean ``-log D_z(x)`` over the batch.

    Args:
        logits: (B, K+1) discriminator scores; class K (0-based) is "generated".
        domain: (B,) integer class in [0, K].
    """
    return F.cross_entropy(logits.float(), domain.long())


def generated_class_loss(logits: torch.Tensor) -> torch.Tensor:
    """``L_dis(D(x), K+1) = -log D_{K+1}(x)``, the generated class being the last one.

    Args:
        logits: (B, K+1).
    Returns:
        scalar mean over the batch.
    """
    return -logits.float().log_softmax(dim=1)[:, -1].mean()


def real_class_loss(logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating counterpart: ``-log(1 - D_{K+1}(x)) = -log sum_{z<=K} D_z(x)``.

    Args:
        logits: (B, K+1).
    """
    log_probs = logits.float().log_softmax(dim=1)
    return -torch.logsumexp(log_probs[:, :-1], dim=1).mean()


def bce_to(logits: torch.Tensor, label: float) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` (any shape) against the constant ``label`` (1: real/source, 0: fake)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of two tensors of one shape, in float32."""
    return F.l1_loss(prediction.float(), target.float())


def style_transfer_losses(encoder: Any, decoder: Any, discriminator: Any, x_s: torch.Tensor, x_t: torch.Tensor,
                          d_s: torch.Tensor, d_t: torch.Tensor) -> dict[str, torch.Tensor]:
    """The terms of GLUA's stage-1 generator objective (Mind the Gap, section III-A; MUNIT-style), with the
    discriminator frozen: image reconstruction ``L1(x_ii, x_i)``, cycle ``L1(x_iji, x_i)``, content reconstruction
    ``L1(G_E(x_ij, d_j), c_i)`` and the non-saturating adversarial term on the translations.

    Args:
        encoder, decoder: ``(x, domain) -> content`` and ``(content, domain) -> image``.
        discriminator: ``(x, domain) -> logits`` (a PatchGAN map).
        x_s, x_t: (B, C, H, W) source and target images; d_s, d_t: (B,) their domain indices.
    Returns:
        ``rec_im``, ``cyc``, ``rec_c``, ``adv`` (scalars) and the translations ``x_st``, ``x_ts``.
    """
    c_s, c_t = encoder(x_s, d_s), encoder(x_t, d_t)
    rec_im = l1(decoder(c_s, d_s), x_s) + l1(decoder(c_t, d_t), x_t)
    x_st, x_ts = decoder(c_s, d_t), decoder(c_t, d_s)
    c_st, c_ts = encoder(x_st, d_t), encoder(x_ts, d_s)
    rec_c = l1(c_st, c_s) + l1(c_ts, c_t)
    cyc = l1(decoder(c_st, d_s), x_s) + l1(decoder(c_ts, d_t), x_t)
    discriminator.requires_grad_(False)
    adv = bce_to(discriminator(x_st, d_t), 1.0) + bce_to(discriminator(x_ts, d_s), 1.0)
    discriminator.requires_grad_(True)
    return {"rec_im": rec_im, "cyc": cyc, "rec_c": rec_c, "adv": adv, "x_st": x_st, "x_ts": x_ts}


def conditional_discriminator_loss(discriminator: Any, real: list[tuple[torch.Tensor, torch.Tensor]],
                                   fake: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean BCE of a domain-conditioned discriminator: (image, domain) pairs of ``real`` labelled 1, of ``fake``
    (detached here) labelled 0; the mean over the pairs, times 2 as the stage-1 objective writes it (halved)."""
    terms = [bce_to(discriminator(x, d), 1.0) for x, d in real]
    terms += [bce_to(discriminator(x.detach(), d), 0.0) for x, d in fake]
    return sum(terms) / 2


class Float32Loss(torch.nn.Module):
    """A loss module (e.g. MONAI's ``DiceCELoss``) called on float32 logits, so it computes in float32 under
    autocast; ``(logits (B, C, *spatial), target) -> scalar``."""

    def __init__(self, loss: torch.nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(logits.float(), target)


def dualnorm_loss(lambda_: float, num_classes: int) -> Float32Loss:
    """Xiao et al. equation 9, ``lambda * L_Dice + (1 - lambda) * L_CE``: L_Dice as equation 7 (squared
    denominators, mean over the classes), L_CE as equation 8, ``-1/(D |L|) sum y log y_hat``: MONAI's CE is the
    pixel mean, so its weight carries the extra 1/|L|. Input logits (B, L, H, W), target (B, 1, H, W)."""
    from monai.losses import DiceCELoss  # MONAI loads in the processes of the methods that use it

    return Float32Loss(DiceCELoss(include_background=True, to_onehot_y=True, softmax=True, squared_pred=True,
                                  lambda_dice=lambda_, lambda_ce=(1 - lambda_) / num_classes))


def dice_ce_loss(dice_weight: float) -> Float32Loss:
    """``w * Dice + (1 - w) * CE`` over all classes (MONAI's, softmax of the logits): input logits (B, C, H, W),
    target (B, 1, H, W)."""
    from monai.losses import DiceCELoss

    return Float32Loss(DiceCELoss(include_background=True, to_onehot_y=True, softmax=True, lambda_dice=dice_weight,
                                  lambda_ce=1 - dice_weight))


# Delisle et al.'s Dice class weights, keyed by class name (a manifest in iSEG order BG, CSF, GM, WM gets them right).
PAPER_CLASS_WEIGHTS = {"bg": 0.22, "wm": 0.28, "gm": 0.20, "csf": 0.30}


def class_weights_for(weights: Sequence[float] | dict[str, float] | None, class_names: Sequence[str]) -> list[float]:
    """Dice weight of each class, in the data's class order: a list as given (background first), a mapping by
    class name, or (None) the paper's weights when the classes are its four, else uniform."""
    if isinstance(weights, dict):
        return [float(weights[name]) for name in class_names]
    if weights is not None:
        return [float(w) for w in weights]
    if sorted(class_names) == sorted(PAPER_CLASS_WEIGHTS):
        return [PAPER_CLASS_WEIGHTS[name] for name in class_names]
    return [1.0] * len(class_names)


def segmentation_loss(kind: str, logits: torch.Tensor, target: torch.Tensor,
                      class_weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Delisle et al.'s segmenter loss by name: ``dice`` eq. 1's weighted Dice, ``dice_ce`` it plus the voxels'
    cross-entropy, ``mean_dice_ce`` nnU-Net's per-class mean Dice + CE. Logits (B, C, *spatial), target
    (B, *spatial) integer labels, class weights (C,)."""
    if kind == "mean_dice_ce":
        return mean_dice_ce_loss(logits, target)
    loss = weighted_dice_loss(logits, target, class_weights)
    if kind == "dice_ce":
        loss = loss + F.cross_entropy(logits, target.long())
    return loss


def masked_bce_to(logits: torch.Tensor, label: float, mask: torch.Tensor) -> torch.Tensor:
    """``bce_to`` weighted per pixel by ``mask`` (same shape as ``logits``, e.g. (B, 1, H, W)): the mask-weighted
    mean of the pixels' binary cross-entropy to the constant ``label``, in float32."""
    per_pixel = F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits, label, dtype=torch.float32),
                                                   reduction="none")
    return (mask * per_pixel).sum() / mask.sum().clamp_min(1e-6)
