"""Patch sampling: shapes, domain balance, centring, determinism, resumption, padding; standardize."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter

import numpy as np
import pytest
import torch

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.datasets import load_cases
from platform.data.patches import PatchSampler, standardize


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    cache = tmp_path_factory.mktemp("cache")
    return load_cases(DataConfig(size=24, subjects_per_domain=2, cache_dir=str(cache)))


def synthetic(subject: str, domain: str, shape: tuple[int, int, int], value: float, fg: slice) -> Case:
    """A constant image ``value`` with a foreground cube at ``fg`` on every axis."""
    label = np.zeros(shape, np.int64)
    label[fg, fg, fg] = 1
    return Case(subject, domain, np.full((1, *shape), value, np.float32), label, None, None, np.eye(4))


def test_shapes_and_dtypes(cases: list[Case]) -> None:
    sampler = PatchSampler(cases, ["infant", "adult"], patch_size=16, batch_size=3, seed=0)
    x, y, z = sampler.sample()
    assert x.shape == (3, 1, 16, 16, 16) and x.dtype == torch.float32
    assert y.shape == (3, 16, 16, 16) and y.dtype == torch.int64
    assert z.shape == (3,) and z.dtype == torch.int64
    assert set(y.unique().tolist()) <= {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("batch", "domains", "counts"),
    [(4, 2, [2, 2]), (6, 3, [2, 2, 2]), (2, 2, [1, 1]), (5, 2, [3, 2]), (4, 3, [2, 1, 1]), (3, 1, [3])],
)
def test_batches_are_domain_balanced(batch: int, domains: int, counts: list[int]) -> None:
    names = [f"site{k + 1}" for k in range(domains)]
    pool = [
        synthetic(f"s{i}", name, (8, 8, 8), k, slice(2, 6)) for k, name in enumerate(names) for i in range(2)
    ]
    sampler = PatchSampler(pool, names, patch_size=8, batch_size=batch, seed=1)
    first = Counter(sampler.sample()[2].tolist())
    assert [first[k] for k in range(domains)] == counts
    for _ in range(20):  # the cycle continues across batches: no domain is ever more than one ahead
        batch_counts = Counter(sampler.sample()[2].tolist())
        assert max(batch_counts.values()) - min(batch_counts.get(k, 0) for k in range(domains)) <= 1


def test_z_is_the_domain_of_the_patch() -> None:
    pool = [
        synthetic(f"s{i}", name, (10, 10, 10), 10.0 * k, slice(3, 7))
        for k, name in enumerate("abc")
        for i in range(2)
    ]
    sampler = PatchSampler(pool, ["a", "b", "c"], patch_size=8, batch_size=6, seed=0)
    for _ in range(5):
        x, _, z = sampler.sample()
        assert torch.equal(x[:, 0, 4, 4, 4], 10.0 * z.float())


def test_domains_without_cases_keep_their_index() -> None:
    pool = [synthetic("s0", "adult", (8, 8, 8), 1.0, slice(2, 6))]
    _, _, z = PatchSampler(pool, ["infant", "adult"], patch_size=8, batch_size=4, seed=0).sample()
    assert z.tolist() == [1, 1, 1, 1]


def test_every_patch_is_centred_on_foreground(cases: list[Case]) -> None:
    sampler = PatchSampler(cases, ["infant", "adult"], patch_size=16, batch_size=8, seed=3)
    for _ in range(25):
        _, y, _ = sampler.sample()
        assert (y[:, 8, 8, 8] > 0).all()


def test_patches_cover_the_foreground_evenly() -> None:
    """Centres are drawn uniformly over foreground voxels, including those at the volume's border."""
    pool = [synthetic("s0", "a", (4, 4, 4), 1.0, slice(0, 4))]
    pool[0].image[0] = np.arange(1, 65).reshape(4, 4, 4)  # each voxel's value names it
    sampler = PatchSampler(pool, ["a"], patch_size=8, batch_size=64, seed=0)
    centres = Counter(v for _ in range(50) for v in sampler.sample()[0][:, 0, 4, 4, 4].tolist())
    assert sorted(centres) == list(range(1, 65))  # every voxel was a centre, never the zero padding
    assert min(centres.values()) > 0.4 * 50  # about 50 each


def test_same_seed_same_stream_different_seed_different(cases: list[Case]) -> None:
    def stream(seed: int) -> list[torch.Tensor]:
        sampler = PatchSampler(cases, ["infant", "adult"], 16, 4, seed)
        return [t for _ in range(3) for t in sampler.sample()]

    for a, b in zip(stream(7), stream(7), strict=True):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(stream(7), stream(8), strict=True))


def test_state_dict_resumes_the_stream(cases: list[Case]) -> None:
    original = PatchSampler(cases, ["infant", "adult"], 16, 3, seed=11)
    for _ in range(4):
        original.sample()
    state = copy.deepcopy(original.state_dict())
    json.dumps(state)  # plain data: fits in any checkpoint
    expected = [original.sample() for _ in range(3)]
    resumed = PatchSampler(cases, ["infant", "adult"], 16, 3, seed=999)
    resumed.load_state_dict(state)
    for batch, again in zip(expected, [resumed.sample() for _ in range(3)], strict=True):
        for a, b in zip(batch, again, strict=True):
            assert torch.equal(a, b)


def test_small_volumes_are_zero_padded() -> None:
    small = synthetic("s0", "a", (5, 6, 7), 3.0, slice(1, 4))
    x, y, _ = PatchSampler([small], ["a"], patch_size=16, batch_size=4, seed=0).sample()
    assert x.shape == (4, 1, 16, 16, 16) and y.shape == (4, 16, 16, 16)
    assert (y[:, 8, 8, 8] == 1).all()
    assert ((x == 0) | (x == 3.0)).all()
    assert ((x == 3.0).flatten(1).sum(dim=1) == 5 * 6 * 7).all()  # the whole volume, plus zeros around it
    assert (y.flatten(1).sum(dim=1) == 27).all()


def test_case_without_foreground_still_yields_patches() -> None:
    empty = Case(
        "s0",
        "a",
        np.ones((2, 12, 12, 12), np.float32),
        np.zeros((12, 12, 12), np.int64),
        None,
        None,
        np.eye(4),
    )
    x, y, _ = PatchSampler([empty], ["a"], patch_size=8, batch_size=2, seed=0).sample()
    assert x.shape == (2, 2, 8, 8, 8) and (x == 1).all() and (y == 0).all()


@pytest.mark.parametrize(
    ("pool", "domains", "message"),
    [
        ([], ["a"], "at least one case"),
        ([synthetic("s0", "b", (8, 8, 8), 1, slice(2, 4))], ["a"], r"domain\(s\) \['b'\] are not among"),
        ([synthetic("s0", "a", (8, 8, 8), 1, slice(2, 4))], ["a", "a"], "lists a domain twice"),
    ],
)
def test_invalid_sampler_arguments(pool: list[Case], domains: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PatchSampler(pool, domains, 8, 2, seed=0)


def test_sampling_is_fast(cases: list[Case]) -> None:
    sampler = PatchSampler(cases, ["infant", "adult"], patch_size=16, batch_size=8, seed=0)
    start = time.perf_counter()
    for _ in range(200):
        sampler.sample()
    # ~1 ms per batch here; a tiny 3D U-Net step on such a batch takes tens of milliseconds.
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("shape", [(2, 3, 8, 8, 8), (4, 1, 16, 16), (1, 2, 5, 6, 7)])
def test_standardize(shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(0)
    image = 5.0 + 3.0 * torch.randn(shape, generator=generator)
    out = standardize(image)
    assert out.shape == image.shape
    dims = tuple(range(2, len(shape)))
    torch.testing.assert_close(out.mean(dim=dims), torch.zeros(shape[:2]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=dims, correction=0), torch.ones(shape[:2]), atol=1e-4, rtol=0)


def test_standardize_is_per_sample_and_channel_and_safe_on_constants() -> None:
    image = torch.zeros(2, 2, 4, 4, 4)
    image[0, 1] = torch.arange(64.0).view(4, 4, 4)
    image[1, 0] = 7.0  # constant: maps to zeros, not NaN
    out = standardize(image)
    assert torch.isfinite(out).all()
    assert (out[1, 0] == 0).all() and (out[0, 0] == 0).all()
    torch.testing.assert_close(out[0, 1], standardize(image[:1, 1:])[0, 0])
    with pytest.raises(ValueError, match="expected"):
        standardize(torch.zeros(4, 4))


def test_builder_threads_hand_out_the_patches_of_sample_in_order(cases: list[Case]) -> None:
    from platform.data.prefetch import Prefetcher

    def make() -> PatchSampler:
        return PatchSampler(cases, ["infant", "adult"], patch_size=16, batch_size=3, seed=4)

    plain, prefetched = make(), Prefetcher(make(), depth=2, workers=3)
    try:
        for _ in range(10):
            assert all(torch.equal(a, b) for a, b in zip(plain.sample(), prefetched.sample(), strict=True))
    finally:
        prefetched.close()


# --- class-aware oversampling (class_share) --------------------------------------------------------------------


def _rare_class_pool() -> list[Case]:
    """Two domains; class 3 fills one 2x2x2 corner of a 12^3 foreground (0.5% of it)."""
    pool = []
    for domain in ("a", "b"):
        for i in range(2):
            label = np.zeros((16, 16, 16), np.int64)
            label[2:14, 2:8, 2:14], label[2:14, 8:14, 2:14] = 1, 2
            label[2:4, 2:4, 2:4] = 3
            pool.append(Case(f"{domain}{i}", domain, np.random.default_rng(i).random((1, 16, 16, 16), np.float32),
                             label, None, None, np.eye(4)))
    return pool


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 1 / 3])
def test_each_class_is_centre_of_at_least_its_share_of_patches(share: float) -> None:
    sampler = PatchSampler(_rare_class_pool(), ["a", "b"], patch_size=8, batch_size=6, seed=0, class_share=share)
    batches = [sampler.sample() for _ in range(50)]
    centres = torch.cat([y[:, 4, 4, 4] for _, y, _ in batches])
    present = torch.stack([torch.stack([(y == c).flatten(1).any(1) for c in (1, 2, 3)], 1) for _, y, _ in batches])
    rare = float((centres == 3).float().mean())
    if share == 0:
        assert rare < 0.02  # uniform over the foreground: the rare class is almost never the centre
    else:
        assert rare >= share - 1 / len(centres)
        assert float(present.flatten(0, 1)[:, 2].float().mean()) >= share - 1 / len(centres)
    z = torch.cat([z for _, _, z in batches])
    assert (z == 0).sum() == (z == 1).sum()  # still domain-balanced


def test_class_share_keeps_the_stream_deterministic_and_resumable() -> None:
    def make(seed: int) -> PatchSampler:
        return PatchSampler(_rare_class_pool(), ["a", "b"], 8, 5, seed=seed, class_share=0.2)

    first, again = make(3), make(3)
    for _ in range(3):
        assert all(torch.equal(a, b) for a, b in zip(first.sample(), again.sample(), strict=True))
    state = copy.deepcopy(first.state_dict())
    resumed = make(99)
    resumed.load_state_dict(state)
    plan = first.draw()
    assert resumed.draw() == plan  # draw/build split: the plan alone decides the batch
    assert all(torch.equal(a, b) for a, b in zip(first.build(plan), resumed.build(plan), strict=True))


def test_class_share_over_the_possible_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 1 / "):
        PatchSampler(_rare_class_pool(), ["a", "b"], 8, 2, seed=0, class_share=0.4)


def test_without_class_share_the_stream_is_unchanged(cases: list[Case]) -> None:
    plain = PatchSampler(cases, ["infant", "adult"], 16, 4, seed=5)
    explicit = PatchSampler(cases, ["infant", "adult"], 16, 4, seed=5, class_share=0.0)
    assert [plain.draw() for _ in range(3)] == [explicit.draw() for _ in range(3)]
