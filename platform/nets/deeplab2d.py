"""Segmentation subnet of GLUA (Su et al.): a small DeepLab-style residual network S = S_P(S_E(x)), plus
D1 (pixel-wise, on S_E's features) and D2 (fully convolutional, on S_P's softmax maps).

The paper uses DeepLab-ResNet50; here S_E is a residual backbone of configurable width: a stem, ``downsample``
stride-2 residual stages, then dilated (rate 2) residual blocks keeping the resolution (DeepLab's atrous
trick), so features have output stride 2**downsample. S_P is a DeepLab-v2 style classifier (parallel atrous
3x3 convolutions at rates 1, 2, 3, summed) upsampled bilinearly to the input size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class FeatureExtractor(nn.Module):
    """S_E: image (B, C, H, W) -> features (B, out_channels, H / 2**downsample, W / 2**downsample)."""

    def __init__(self, in_channels: int, width: int = 32, downsample: int = 1, dilated_blocks: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True), _Residual(width, width)]
        c = width
        for _ in range(downsample):
            layers.append(_Residual(c, 2 * c, stride=2))
            c *= 2
        layers += [_Residual(c, c, dilation=2) for _ in range(dilated_blocks)]
        self.body = nn.Sequential(*layers)
        self.out_channels = c
        self.stride = 2 ** downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Predictor(nn.Module):
    """S_P: features -> class logits at the input size ``size`` (DeepLab-v2 ASPP classifier, summed)."""

    def __init__(self, in_channels: int, num_classes: int, rates: tuple[int, ...] = (1, 2, 3)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r) for r in rates)

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        logits = sum(branch(features) for branch in self.branches)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class PixelDiscriminator(nn.Module):
    """D1: per-feature-pixel domain logits (B, 1, h, w), 1x1 convolutions only (no spatial context)."""

    def __init__(self, in_channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(hidden, hidden, 1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(hidden, 1, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class OutputDiscriminator(nn.Module):
    """D2: softmax maps (B, K, H, W) -> patch logits; AdaptSegNet-style stride-2 4x4 convs, no normalization."""

    def __init__(self, num_classes: int, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        c_in, c = num_classes, channels
        for _ in range(layers):
            modules += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_in, c = c, 2 * c
        modules.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.net = nn.Sequential(*modules)

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:
        return self.net(probabilities)


def local_feature_mask(d1_logits: torch.Tensor, kind: str = "entropy", domain: str = "target") -> torch.Tensor:
    """A weight per feature pixel in [0, 1] from D1's logits (p = sigmoid(logit), D1's probability of "source").

    ``gap``: D1's confidence that the pixel belongs to its own ``domain`` (1 - p for target features, p for
    source ones): high where the domains still differ, the paper's "features with larger domain gap".
    ``entropy``: binary entropy of p / ln 2, and ``margin``: 1 - |2p - 1|: high where D1 is uncertain.
    """
    p = torch.sigmoid(d1_logits)
    if kind == "gap":
        if domain not in ("source", "target"):
            raise ValueError(f"unknown domain {domain!r} of a gap mask: use source or target")
        return p if domain == "source" else 1 - p
    if kind == "entropy":
        eps = 1e-6
        q = p.clamp(eps, 1 - eps)
        return (-(q * q.log() + (1 - q) * (1 - q).log()) / math.log(2)).clamp(0, 1)
    if kind == "margin":
        return 1 - (2 * p - 1).abs()
    raise ValueError(f"unknown mask kind {kind!r}: use gap, entropy or margin")
