"""The paper's 3D U-Net."""

from __future__ import annotations

import pytest
import torch

from platform.nets.unet3d import UNet3D


@pytest.mark.parametrize(("depth", "size"), [(1, 8), (2, 16), (3, 16), (4, 32)])
def test_shapes_and_sigmoid(depth: int, size: int) -> None:
    net = UNet3D(2, 2, base_channels=4, depth=depth, sigmoid_output=True)
    out = net(torch.randn(1, 2, size, size, size))
    assert out.shape == (1, 2, size, size, size)
    assert out.min() >= 0 and out.max() <= 1


def test_paper_width_parameter_count_grows_with_width() -> None:
    small = sum(p.numel() for p in UNet3D(1, 4, 8, 4).parameters())
    paper = sum(p.numel() for p in UNet3D(1, 4, 32, 4).parameters())
    assert paper > 10 * small  # widths scale parameters quadratically
    assert paper > 5_000_000  # Çiçek's 3D U-Net widths (32..256) have millions of parameters
