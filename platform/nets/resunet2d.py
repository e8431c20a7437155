"""The 2D residual U-Net of DualNorm-UNet (Xiao et al.), with DualNorm Residual Blocks and the norm baselines.

Ten blocks, numbered as in the paper's Figure 6 and laid out as in the authors' code (inc, down1-4, mid,
up1-4): encoder blocks 1-5 at resolutions 1, 1/2, 1/4, 1/8, 1/16 (block 1 a 1x1 entry convolution, blocks 2-5
max-pooling and a 3x3 entry convolution), block 6 the bottleneck ("mid"), decoder blocks 7-10 each upsample
(bilinear, parameter-free), concatenate the skip of blocks 4, 3, 2, 1 and apply a 3x3 entry convolution.
Each block then applies a pre-activation residual unit: norm-ReLU-conv-norm-ReLU-conv plus identity.

A DualNorm Residual Block (DNRB) keeps the convolutions and replaces each norm by ``DualNorm``: a BN branch
(affine BatchNorm) and a SPADE branch (parameter-free BatchNorm modulated by gamma/beta from a two-layer conv
net on the semantic mask, hidden width C/2 by default). ``forward(x)`` uses the BN branch; ``forward(x, mask)``
the SPADE branch, the mask being resized to each block.

SPADE is written here rather than taken from MONAI: ``monai.networks.blocks.SPADE`` builds its gamma and beta
convolutions with MONAI's default instance normalization, which makes the modulation zero-mean over the whole
map instead of the per-location affine of Park et al. that DualNorm-UNet uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "instance", "group", "layer", "dsbn"]
BLOCKS = tuple(range(1, 11))


class DomainBatchNorm(nn.Module):
    """Domain-specific BatchNorm (DSBN): one BatchNorm2d per domain, chosen per sample by its domain index."""

    def __init__(self, channels: int, domains: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(domains))

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None) -> torch.Tensor:
        if domain is None:
            raise ValueError("DSBN needs the domain index of every sample")
        out = torch.empty_like(x)
        for index in torch.unique(domain).tolist():
            rows = domain == index
            out[rows] = self.norms[index](x[rows])
        return out


class SPADE(nn.Module):
    """Park et al.'s spatially-adaptive normalization: ``BN(x) * (1 + gamma(m)) + beta(m)``.

    x: (B, C, H, W); mask: (B, L, h, w) class probabilities, resized to (H, W) (area-averaged when smaller).
    """

    def __init__(self, channels: int, label_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden_channels, kernel_size, padding=pad), nn.ReLU())
        self.gamma = nn.Conv2d(hidden_channels, channels, kernel_size, padding=pad)
        self.beta = nn.Conv2d(hidden_channels, channels, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, normalized: torch.Tensor | None = None) -> torch.Tensor:
        """``normalized``: ``x`` already normalized by another layer's statistics (else this one's own BN)."""
        size = x.shape[-2:]
        if mask.shape[-2:] != size:
            smaller = mask.shape[-2] > size[0]
            mask = F.interpolate(mask, size=size, mode="area" if smaller else "nearest")
        hidden = self.shared(mask)
        base = self.param_free_norm(x) if normalized is None else normalized
        return base * (1 + self.gamma(hidden)) + self.beta(hidden)


class DualNorm(nn.Module):
    """BN branch and SPADE branch over the same features (B, C, H, W).

    ``spade_statistics: bn`` (the paper's equation 4): the SPADE branch normalizes with the BN branch's statistics
    (its batch statistics in training, its running ones in evaluation; the SPADE forward's batches update them
    too), then modulates. ``own``: SPADE keeps a parameter-free BatchNorm of its own (Park et al.'s layer).
    """

    def __init__(self, channels: int, label_channels: int, hidden_ratio: float = 0.5,
                 spade_statistics: str = "bn") -> None:
        super().__init__()
        if spade_statistics not in ("bn", "own"):
            raise ValueError(f"unknown spade_statistics {spade_statistics!r}: use bn or own")
        self.bn = nn.BatchNorm2d(channels)
        self.spade = SPADE(channels, label_channels, hidden_channels=max(1, round(channels * hidden_ratio)))
        self.spade_statistics = spade_statistics

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return self.bn(x)
        if self.spade_statistics == "own":
            return self.spade(x, mask)
        bn = self.bn
        normalized = F.batch_norm(x, bn.running_mean, bn.running_var, None, None, bn.training or not
                                  bn.track_running_stats, 0.0 if bn.momentum is None else bn.momentum, bn.eps)
        return self.spade(x, mask, normalized)


def make_norm(norm: Norm, channels: int, domains: int, groups: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "group":
        return nn.GroupNorm(min(groups, channels), channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W), as GroupNorm with one group
    if norm == "dsbn":
        return DomainBatchNorm(channels, domains)
    raise ValueError(f"unknown norm {norm!r}")


class ResidualBlock(nn.Module):
    """Entry conv (Cin -> C; none when Cin == C and ``entry_kernel`` is 0), then a pre-activation residual unit
    norm-ReLU-conv-norm-ReLU-conv + identity. Norms are plain, DSBN, or DualNorm (the block is then a DNRB)."""

    def __init__(self, in_channels: int, out_channels: int, norm: Norm, *, dnrb: bool, label_channels: int,
                 hidden_ratio: float, domains: int, groups: int, entry_kernel: int,
                 spade_statistics: str = "bn") -> None:
        super().__init__()
        self.entry = (nn.Conv2d(in_channels, out_channels, entry_kernel, padding=entry_kernel // 2)
                      if entry_kernel else None)
        self.conv1 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.dnrb = dnrb
        if dnrb:
            self.norm1: nn.Module = DualNorm(out_channels, label_channels, hidden_ratio, spade_statistics)
            self.norm2: nn.Module = DualNorm(out_channels, label_channels, hidden_ratio, spade_statistics)
        else:
            self.norm1 = make_norm(norm, out_channels, domains, groups)
            self.norm2 = make_norm(norm, out_channels, domains, groups)
        self.act = nn.ReLU()

    def _norm(self, layer: nn.Module, x: torch.Tensor, mask: torch.Tensor | None,
              domain: torch.Tensor | None) -> torch.Tensor:
        if isinstance(layer, DualNorm):
            return layer(x, mask)
        if isinstance(layer, DomainBatchNorm):
            return layer(x, domain)
        return layer(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                domain: torch.Tensor | None = None) -> torch.Tensor:
        if self.entry is not None:
            x = self.entry(x)
        out = self.conv1(self.act(self._norm(self.norm1, x, mask, domain)))
        out = self.conv2(self.act(self._norm(self.norm2, out, mask, domain)))
        return out + x


class ResUNet2D(nn.Module):
    """Residual U-Net with blocks 1..10; ``dnrb_blocks`` chooses the DualNorm Residual Blocks.

    Input (B, in_channels, H, W), H and W divisible by 16; output logits (B, num_classes, H, W).
    ``mask``: (B, num_classes, h, w) class probabilities for the SPADE branch (None: BN branch);
    ``domain``: (B,) domain indices, needed by DSBN.
    """

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 32, norm: Norm = "batch",
                 dnrb_blocks: Sequence[int] = (), spade_hidden_ratio: float = 0.5, domains: int = 1,
                 groups: int = 8, spade_statistics: str = "bn") -> None:
        super().__init__()
        bad = [b for b in dnrb_blocks if b not in BLOCKS]
        if bad:
            raise ValueError(f"dnrb_blocks {bad} outside 1..10")
        widths = [base_channels * 2**level for level in range(5)]
        # (in channels, out channels, entry kernel) of blocks 1..10
        shapes = [(in_channels, widths[0], 1), *((widths[i - 1], widths[i], 3) for i in range(1, 5))]
        shapes += [(widths[4], widths[4], 0)]
        shapes += [(widths[4 - i] + widths[3 - i], widths[3 - i], 3) for i in range(4)]

        def block(number: int) -> ResidualBlock:
            cin, cout, kernel = shapes[number - 1]
            return ResidualBlock(cin, cout, norm, dnrb=number in dnrb_blocks, label_channels=num_classes,
                                 hidden_ratio=spade_hidden_ratio, domains=domains, groups=groups,
                                 entry_kernel=kernel, spade_statistics=spade_statistics)

        self.blocks = nn.ModuleList(block(number) for number in BLOCKS)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.dnrb_blocks = tuple(sorted(dnrb_blocks))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                domain: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        for number in range(1, 6):
            x = self.blocks[number - 1](x if number == 1 else self.pool(x), mask, domain)
            skips.append(x)
        x = self.blocks[5](x, mask, domain)
        for offset, skip in enumerate(reversed(skips[:-1])):
            x = self.blocks[6 + offset](torch.cat([self.up(x), skip], dim=1), mask, domain)
        return self.head(x)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters split as in the paper: ``bn`` (DNRB BN-branch affines), ``spade`` (SPADE modulation
        nets) and ``shared`` (everything else, theta_s)."""
        bn, spade = [], []
        for module in self.modules():
            if isinstance(module, DualNorm):
                bn += list(module.bn.parameters())
                spade += list(module.spade.parameters())
        special = {id(p) for p in bn + spade}
        shared = [p for p in self.parameters() if id(p) not in special]
        return {"shared": shared, "bn": bn, "spade": spade}
