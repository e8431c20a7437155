"""Style-transfer auto-encoder: AdaIN follows the domain MLP, two labels give two styles, conditioned PatchGAN."""

from __future__ import annotations

import torch

from platform.nets.styletransfer import ConditionalPatchDiscriminator, DomainMLP, StyleDecoder, StyleEncoder, adain


def test_adain_output_statistics_follow_gamma_and_beta() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mlp = DomainMLP(num_domains=2, channels=[3], hidden=8)
    x = torch.randn(2, 3, 16, 16) * 5 + 2
    (gamma, beta), = mlp(torch.tensor([0, 1]))
    out = adain(x, gamma, beta)
    assert torch.allclose(out.mean(dim=(2, 3)), beta, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), gamma.abs(), atol=1e-3)
    assert not torch.allclose(gamma[0], gamma[1])  # one style per domain label


def test_two_domain_labels_decode_the_same_content_in_two_styles() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    enc, dec = StyleEncoder(1, 2, width=4, downsample=2, res_blocks=1, mlp_hidden=8), \
        StyleDecoder(1, 2, width=4, downsample=2, res_blocks=1, mlp_hidden=8)
    x = torch.rand(1, 1, 16, 16)
    content = enc(x, torch.tensor([0]))
    assert content.shape == (1, 16, 4, 4)
    as_0, as_1 = dec(content, torch.tensor([0])), dec(content, torch.tensor([1]))
    assert as_0.shape == x.shape == as_1.shape
    assert not torch.allclose(as_0, as_1, atol=1e-4)
    # The same label twice is deterministic: the difference is the style, not noise.
    assert torch.equal(as_1, dec(content, torch.tensor([1])))


def test_conditioned_patch_discriminator_depends_on_the_domain() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    disc = ConditionalPatchDiscriminator(1, 2, channels=4, layers=2)
    x = torch.rand(2, 1, 24, 24)
    out_0, out_1 = disc(x, torch.tensor([0, 0])), disc(x, torch.tensor([1, 1]))
    assert out_0.shape[:2] == (2, 1) and out_0.shape[-1] > 1  # a map of patch logits
    assert not torch.allclose(out_0, out_1)
