"""Style-transfer auto-encoder of GLUA (Su et al., "Mind The Gap"), stage 1 "global alignment".

The shared encoder ``G_E`` and decoder ``G_D`` both use Adaptive Instance Normalization whose per-channel
(gamma, beta) come from a :class:`DomainMLP` on the one-hot domain label (the paper's "unified domain style":
no style encoder, one learned style per domain). ``x_ij = G_D(G_E(x_i, d_i), d_j)``.
The image discriminator is a Markovian (PatchGAN) discriminator conditioned on the domain by concatenating
one constant one-hot plane per domain to the image, built on ``monai.networks.nets.PatchDiscriminator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator
from torch import nn


def one_hot(domain: torch.Tensor, num_domains: int) -> torch.Tensor:
    """(B,) int domain indices -> (B, num_domains) float."""
    return F.one_hot(domain.long(), num_domains).float()


class DomainMLP(nn.Module):
    """One-hot domain label -> (gamma, beta) for each AdaIN layer (``channels`` lists their widths)."""

    def __init__(self, num_domains: int, channels: list[int], hidden: int = 64) -> None:
        super().__init__()
        self.num_domains = num_domains
        self.channels = list(channels)
        self.mlp = nn.Sequential(nn.Linear(num_domains, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 2 * sum(channels)))

    def forward(self, domain: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """domain (B,) int -> per layer (gamma, beta), each (B, C); gamma = 1 + output (identity at zero)."""
        out = self.mlp(one_hot(domain, self.num_domains))
        params, start = [], 0
        for c in self.channels:
            gamma = 1.0 + out[:, start:start + c]
            beta = out[:, start + c:start + 2 * c]
            params.append((gamma, beta))
            start += 2 * c
        return params


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN: instance-normalize x (B, C, H, W), then scale by gamma and shift by beta (B, C)."""
    return F.instance_norm(x, eps=eps) * gamma[:, :, None, None] + beta[:, :, None, None]


class _ConvAdaIN(nn.Module):
    """conv -> AdaIN -> ReLU, optionally down- (stride 2) or up-sampling (nearest x2 first)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, up: bool = False) -> None:
        super().__init__()
        self.up = up
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect")
        self.out_channels = cout

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(adain(self.conv(x), gamma, beta))


class _ResAdaIN(nn.Module):
    """Residual block of two conv-AdaIN layers (the second without ReLU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor, p1: tuple[torch.Tensor, torch.Tensor],
                p2: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        h = F.relu(adain(self.conv1(x), *p1))
        return x + adain(self.conv2(h), *p2)


class StyleEncoder(nn.Module):
    """G_E(x, d) -> content c: 7x7 conv, ``downsample`` stride-2 convs (doubling width), residual blocks."""

    def __init__(self, in_channels: int, num_domains: int, width: int = 32, downsample: int = 2,
                 res_blocks: int = 2, mlp_hidden: int = 64) -> None:
        super().__init__()
        layers = [_ConvAdaIN(in_channels, width, 7)]
        c = width
        for _ in range(downsample):
            layers.append(_ConvAdaIN(c, 2 * c, 3, stride=2))
            c *= 2
        self.layers = nn.ModuleList(layers)
        self.res = nn.ModuleList(_ResAdaIN(c) for _ in range(res_blocks))
        self.out_channels = c
        self.mlp = DomainMLP(num_domains, [m.out_channels for m in layers] + [c] * (2 * res_blocks), mlp_hidden)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        params = iter(self.mlp(domain))
        for layer in self.layers:
            x = layer(x, *next(params))
        for block in self.res:
            x = block(x, next(params), next(params))
        return x


class StyleDecoder(nn.Module):
    """G_D(c, d) -> image: residual blocks, ``downsample`` upsampling convs (halving width), 7x7 conv out."""

    def __init__(self, out_channels: int, num_domains: int, width: int = 32, downsample: int = 2,
                 res_blocks: int = 2, mlp_hidden: int = 64) -> None:
        super().__init__()
        c = width * 2 ** downsample
        self.res = nn.ModuleList(_ResAdaIN(c) for _ in range(res_blocks))
        layers = []
        for _ in range(downsample):
            layers.append(_ConvAdaIN(c, c // 2, 3, up=True))
            c //= 2
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(c, out_channels, 7, padding=3, padding_mode="reflect")
        self.mlp = DomainMLP(num_domains, [width * 2 ** downsample] * (2 * res_blocks)
                             + [m.out_channels for m in layers], mlp_hidden)

    def forward(self, content: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        params = iter(self.mlp(domain))
        x = content
        for block in self.res:
            x = block(x, next(params), next(params))
        for layer in self.layers:
            x = layer(x, *next(params))
        return self.out(x)


class ConditionalPatchDiscriminator(nn.Module):
    """D(x | d): PatchGAN logits (B, 1, h, w) for "x is a real image of domain d".

    The condition enters as ``num_domains`` constant one-hot planes concatenated to the image channels.
    """

    def __init__(self, in_channels: int, num_domains: int, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.num_domains = num_domains
        self.net = PatchDiscriminator(spatial_dims=2, channels=channels, in_channels=in_channels + num_domains,
                                      out_channels=1, num_layers_d=layers, norm="INSTANCE")

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        planes = one_hot(domain, self.num_domains)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.net(torch.cat([x, planes], dim=1))[-1]
