"""(K+1)-class discriminators."""

from __future__ import annotations

import pytest
import torch

from platform.nets.discriminators import DCGANDiscriminator3D, resnet_discriminator


@pytest.mark.parametrize("patch", [16, 32])
def test_dcgan_outputs_k_plus_one(patch: int) -> None:
    net = DCGANDiscriminator3D(1, 3, patch, base_channels=4)
    assert net(torch.randn(2, 1, patch, patch, patch)).shape == (2, 3)
    with pytest.raises(ValueError, match="built for"):
        net(torch.randn(2, 1, patch * 2, patch * 2, patch * 2))


@pytest.mark.parametrize("depth", [10, 18])
def test_resnet_option(depth: int) -> None:
    assert resnet_discriminator(1, 4, depth)(torch.randn(2, 1, 16, 16, 16)).shape == (2, 4)
    with pytest.raises(ValueError, match="10 or 18"):
        resnet_discriminator(1, 4, 34)
