"""DeepLab-style S_E + S_P, the pixel-wise D1 and its local feature mask, the output-space D2."""

from __future__ import annotations

import pytest
import torch

from platform.nets.deeplab2d import (
    FeatureExtractor,
    OutputDiscriminator,
    PixelDiscriminator,
    Predictor,
    local_feature_mask,
)


@pytest.mark.parametrize("downsample", [0, 1, 2])
def test_segmenter_shapes(downsample: int) -> None:
    torch.set_num_threads(1)
    enc = FeatureExtractor(1, width=4, downsample=downsample, dilated_blocks=1)
    pred = Predictor(enc.out_channels, 4)
    x = torch.rand(2, 1, 24, 24)
    features = enc(x)
    assert features.shape == (2, 4 * 2 ** downsample, 24 // 2 ** downsample, 24 // 2 ** downsample)
    assert pred(features, x.shape[-2:]).shape == (2, 4, 24, 24)


@pytest.mark.parametrize("kind", ["entropy", "margin"])
def test_local_feature_mask_has_the_feature_size_and_values_in_0_1(kind: str) -> None:
    torch.set_num_threads(1)
    enc = FeatureExtractor(1, width=4, downsample=1, dilated_blocks=1)
    d1 = PixelDiscriminator(enc.out_channels, hidden=8)
    with torch.no_grad():
        features = enc(torch.rand(2, 1, 24, 24))
        mask = local_feature_mask(d1(features), kind)
    assert mask.shape == (2, 1, *features.shape[-2:])
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    # Extremes: a certain discriminator gives 0, an undecided one gives 1.
    logits = torch.tensor([-30.0, 0.0, 30.0]).view(1, 1, 1, 3)
    assert torch.allclose(local_feature_mask(logits, kind).flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-4)


def test_mask_kind_is_validated() -> None:
    with pytest.raises(ValueError, match="entropy or margin"):
        local_feature_mask(torch.zeros(1, 1, 2, 2), "softmax")


def test_d1_is_pixel_wise_and_d2_sees_softmax_maps() -> None:
    torch.set_num_threads(1)
    d1 = PixelDiscriminator(8, hidden=8)
    f = torch.rand(1, 8, 6, 6)
    g = f.clone()
    g[..., 0, 0] += 1  # changing one pixel changes only that pixel's logit: 1x1 convolutions
    changed = (d1(f) != d1(g)).squeeze()
    assert changed[0, 0] and changed.sum() == 1
    d2 = OutputDiscriminator(4, channels=4, layers=2)
    assert d2(torch.rand(2, 4, 24, 24).softmax(1)).shape == (2, 1, 6, 6)
