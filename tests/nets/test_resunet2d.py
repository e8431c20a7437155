"""The DualNorm-UNet network: DNRB modulation, parameter groups, the paper's parameter overheads."""

from __future__ import annotations

import pytest
import torch

from platform.nets.resunet2d import DualNorm, ResUNet2D


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_dnrb_modulates_by_region() -> None:
    torch.manual_seed(0)
    norm = DualNorm(8, label_channels=3).train()
    x = torch.randn(2, 8, 16, 16)
    background = torch.zeros(2, 3, 16, 16)
    background[:, 0] = 1
    two_regions = background.clone()
    two_regions[:, :, :, 8:] = 0
    two_regions[:, 1, :, 8:] = 1  # right half is class 1
    out_background = norm(x, background)
    out_regions = norm(x, two_regions)
    assert not torch.allclose(out_background, out_regions)
    # Where both masks say background the modulation is the same; where they differ it is not.
    assert torch.allclose(out_background[..., 2:6], out_regions[..., 2:6], atol=1e-5)
    assert not torch.allclose(out_background[..., 10:14], out_regions[..., 10:14], atol=1e-3)
    # Without a mask the BN branch is used, which ignores the mask entirely.
    assert torch.allclose(norm(x, None), norm.bn(x))


@pytest.mark.parametrize(("blocks", "limit"), [([1], 1.01), ([1, 2, 3, 4], 1.10)])
def test_parameter_overhead_at_paper_widths(blocks: list[int], limit: float) -> None:
    base = count(ResUNet2D(1, 2, base_channels=32))
    ratio = count(ResUNet2D(1, 2, base_channels=32, dnrb_blocks=blocks)) / base
    assert 1.0 < ratio <= limit  # paper: 1.001x and 1.073x


def test_parameter_groups_partition_the_network() -> None:
    net = ResUNet2D(1, 4, base_channels=4, dnrb_blocks=[1, 7])
    groups = net.parameter_groups()
    ids = [id(p) for group in groups.values() for p in group]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    assert groups["bn"] and groups["spade"]
    assert not ResUNet2D(1, 4, base_channels=4).parameter_groups()["spade"]


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "layer", "dsbn"])
def test_norm_baselines_forward(norm: str) -> None:
    net = ResUNet2D(2, 3, base_channels=4, norm=norm, domains=2)
    domain = torch.tensor([0, 1, 1])
    assert net(torch.randn(3, 2, 32, 32), domain=domain).shape == (3, 3, 32, 32)


def test_dsbn_uses_one_batchnorm_per_domain() -> None:
    net = ResUNet2D(1, 2, base_channels=4, norm="dsbn", domains=2).train()
    net(torch.randn(4, 1, 32, 32) * 5 + 3, domain=torch.zeros(4, dtype=torch.long))
    first = net.blocks[0].norm1
    assert first.norms[0].num_batches_tracked == 1 and first.norms[1].num_batches_tracked == 0
