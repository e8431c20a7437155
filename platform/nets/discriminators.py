"""(K+1)-class 3D patch discriminators of Delisle et al.: DCGAN-style (the paper's) and a small ResNet."""

from __future__ import annotations

import torch
from monai.networks.nets import resnet10, resnet18
from torch import nn


class DCGANDiscriminator3D(nn.Module):
    """DCGAN's discriminator adapted to 3D, as in the paper: four blocks of strided conv, LeakyReLU and
    dropout, then a linear classifier over K+1 classes.

    Input (B, C, P, P, P); output logits (B, num_classes).
    """

    def __init__(self, in_channels: int, num_classes: int, patch_size: int, base_channels: int = 64,
                 dropout: float = 0.2, layers: int = 4) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels, size = in_channels, patch_size
        for index in range(layers):
            width = base_channels * 2**index
            blocks += [nn.Conv3d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
                       nn.Dropout3d(dropout)]
            channels, size = width, max(1, size // 2)
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels * size**3, num_classes)
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.patch_size:
            raise ValueError(f"discriminator built for {self.patch_size}^3 patches, got {tuple(x.shape[2:])}")
        return self.classifier(self.features(x).flatten(1))


def resnet_discriminator(in_channels: int, num_classes: int, depth: int = 10) -> nn.Module:
    """MONAI's 3D ResNet as the (K+1)-class classifier (the paper's alternative, which it found overfits)."""
    factory = {10: resnet10, 18: resnet18}.get(depth)
    if factory is None:
        raise ValueError(f"resnet_depth must be 10 or 18, got {depth}")
    return factory(spatial_dims=3, n_input_channels=in_channels, num_classes=num_classes)


def patch_discriminator(kind: str, in_channels: int, num_classes: int, patch_size: int, channels: int,
                        dropout: float, resnet_depth: int) -> nn.Module:
    """The (K+1)-class discriminator named by ``kind``: ``dcgan`` (the paper's) or ``resnet``."""
    if kind == "dcgan":
        return DCGANDiscriminator3D(in_channels, num_classes, patch_size, channels, dropout)
    if kind == "resnet":
        return resnet_discriminator(in_channels, num_classes, resnet_depth)
    raise ValueError(f"discriminator must be dcgan or resnet, got {kind!r}")
