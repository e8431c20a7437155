"""``data.intensity``: each mode against a hand computation, and the same voxels in training and inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from platform.data.case import Case
from platform.data.intensity import MODES, domain_statistics, normalize_cases, normalize_volume


def case(domain: str, values: np.ndarray, subject: str = "s") -> Case:
    return Case(subject=subject, domain=domain, image=values.astype(np.float32), label=np.zeros(values.shape[1:],
                np.int64), split=None, fold=None, affine=np.eye(4))


RNG = np.random.default_rng(0)
A1, A2 = RNG.normal(100, 20, (2, 4, 4, 4)), RNG.normal(300, 50, (2, 4, 4, 4))  # two channels each
B1 = RNG.normal(2000, 400, (2, 4, 4, 4))


def test_volume_mode_z_scores_each_volume_and_channel() -> None:
    out = normalize_volume(A1.astype(np.float32))
    for channel in range(2):
        expected = (A1[channel] - A1[channel].mean()) / A1[channel].std()
        np.testing.assert_allclose(out[channel], expected, rtol=1e-4, atol=1e-4)


def test_nonzero_ignores_and_keeps_the_zeros() -> None:
    image = A1.astype(np.float32).copy()
    image[:, :2] = 0.0
    out = normalize_volume(image, nonzero=True)
    inside = image[0] != 0
    np.testing.assert_allclose(out[0][inside], (image[0][inside] - image[0][inside].mean()) / image[0][inside].std(),
                               rtol=1e-4, atol=1e-4)
    assert (out[:, :2] == 0).all()


def test_dataset_mode_uses_the_training_volumes_of_each_domain() -> None:
    train = [case("a", A1, "1"), case("a", A2, "2")]
    val = [case("a", A2, "3"), case("b", B1, "4")]  # b is evaluation-only: its own images give its statistics
    (train_out, val_out) = normalize_cases("dataset", False, train, val)
    pooled = np.concatenate([A1.reshape(2, -1), A2.reshape(2, -1)], axis=1)
    mean, std = pooled.mean(axis=1), pooled.std(axis=1)
    np.testing.assert_allclose(domain_statistics(train)[0], mean)
    for out, source in ((train_out[1], A2), (val_out[0], A2)):
        np.testing.assert_allclose(out.image, (source - mean[:, None, None, None]) / std[:, None, None, None],
                                   rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(val_out[1].image.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)


@pytest.mark.parametrize("mode", ["raw", "patch"])
def test_raw_and_patch_leave_the_volumes_as_stored(mode: str) -> None:
    (out,) = normalize_cases(mode, False, [case("a", A1)])
    np.testing.assert_array_equal(out[0].image, A1.astype(np.float32))


def test_an_unknown_mode_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="raw, volume, dataset, patch"):
        normalize_cases("histogram", False, [case("a", A1)])
    assert MODES == ("raw", "volume", "dataset", "patch")


def crops_of(window: torch.Tensor, image: np.ndarray) -> bool:
    """Whether every (C, P, P, P) window of a batch is a crop of the (C, X, Y, Z) image (zero padding allowed)."""
    p = window.shape[-1]
    padded = np.pad(image, [(0, 0)] + [(p, p)] * 3)
    view = np.lib.stride_tricks.sliding_window_view(padded[0], (p, p, p))
    for sample in window.numpy():
        target = sample[0]
        hits = np.argwhere(np.isclose(view[..., 0, 0, 0], target[0, 0, 0], atol=1e-6))
        if not any(np.allclose(view[tuple(h)], target, atol=1e-5) for h in hits):
            return False
    return True


@pytest.mark.parametrize("intensity", ["volume", "dataset"])
def test_training_patches_and_sliding_windows_read_the_same_normalized_voxels(cache_dir: Path,
                                                                              intensity: str) -> None:
    """The per-volume transform is applied once: a training patch and an inference window are crops of one
    normalized volume, whose voxels equal the transform of the stored (raw) volume."""
    from platform.data.config import DataConfig
    from platform.data.datasets import load_cases, split_cases
    from platform.trainers.advnorm import AdvNormTrainer, Config

    data = DataConfig(domains=["infant", "adult"], subjects_per_domain=3, size=24, patch_size=16, batch_size=2,
                      patches_per_epoch=4, intensity=intensity, cache_dir=str(cache_dir))
    trainer = AdvNormTrainer(Config(epochs=1, generator="none", s_channels=4, s_depth=2, sw_overlap=0.25), data)
    raw_train, raw_val, _ = split_cases(load_cases(data), data)
    case_val = trainer.val_cases[0]
    raw = next(c for c in raw_val if (c.domain, c.subject) == (case_val.domain, case_val.subject))
    if intensity == "volume":
        np.testing.assert_allclose(case_val.image, normalize_volume(raw.image), rtol=1e-5, atol=1e-5)
    else:
        mean, std = domain_statistics([c for c in raw_train if c.domain == raw.domain])
        np.testing.assert_allclose(case_val.image, (raw.image - mean[0]) / std[0], rtol=1e-4, atol=1e-4)
    assert abs(float(case_val.image.mean())) < 2.0 and not np.allclose(case_val.image, raw.image)
    # A training patch is a crop of a normalized training volume.
    x, _, z = trainer.samplers["patches"].sample()
    domain = trainer.train_domains[int(z[0])]
    assert any(crops_of(x[:1], c.image) for c in trainer.train_cases if c.domain == domain)
    # The windows the segmenter sees at inference are crops of the normalized validation volume.
    windows: list[torch.Tensor] = []
    hook = trainer.net("S").register_forward_pre_hook(lambda module, args: windows.append(args[0].detach().clone()))
    trainer.val_cases = [case_val]
    try:
        trainer.evaluate("val")
    finally:
        hook.remove()
    assert windows and all(crops_of(w, case_val.image) for w in windows)
    assert not crops_of(windows[0], raw.image)  # the check can fail: the stored voxels are not what it saw
