"""The 3D U-Net of Delisle et al. (generator and segmenter).

Çiçek et al.'s contracting path (two conv-BN-ReLU per level, max-pooling) with the paper's lighter
expanding path: a parameter-free upsampling followed by concatenation with the skip and two convolutions
(instead of transposed convolutions), which is why MONAI's BasicUNet/UNet do not match it.
"""

from __future__ import annotations

import torch
from torch import nn


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet3D(nn.Module):
    """3D U-Net with ``depth`` resolution levels and ``base_channels * 2**level`` features per level.

    Input (B, in_channels, D, H, W) with D, H, W divisible by 2**(depth-1); output (B, out_channels, D, H, W),
    through a sigmoid when ``sigmoid_output`` (the generator's normalized image).
    """

    def __init__(self, in_channels: int, out_channels: int, base_channels: int = 32, depth: int = 4,
                 sigmoid_output: bool = False) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        widths = [base_channels * 2**level for level in range(depth)]
        self.encoders = nn.ModuleList()
        channels = in_channels
        for width in widths:
            self.encoders.append(_double_conv(channels, width))
            channels = width
        self.pool = nn.MaxPool3d(2)
        self.up = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        self.decoders = nn.ModuleList(
            _double_conv(widths[level + 1] + widths[level], widths[level]) for level in reversed(range(depth - 1))
        )
        self.head = nn.Conv3d(widths[0], out_channels, 1)
        self.sigmoid_output = sigmoid_output
        self.divisor = 2 ** (depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else self.pool(x))
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1]), strict=True):
            x = decoder(torch.cat([self.up(x), skip], dim=1))
        out = self.head(x)
        return torch.sigmoid(out) if self.sigmoid_output else out
