"""2D / 2.5D slices: padding, context channels, foreground sampling, balance, augmentation, resumption."""

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
from platform.data.slices import SliceSampler, pad_to_multiple, volume_slices


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    cache = tmp_path_factory.mktemp("cache")
    return load_cases(DataConfig(size=24, subjects_per_domain=2, cache_dir=str(cache)))


def make_case(image: np.ndarray, label: np.ndarray, domain: str = "d", subject: str = "s0") -> Case:
    return Case(subject, domain, image.astype(np.float32), label.astype(np.int64), None, None, np.eye(4))


def coded(channels: int, shape: tuple[int, int, int]) -> Case:
    """Image whose voxel (c, x, y, z) holds 1000c + 10z + x/100 + y/10000: every slice and channel distinct."""
    c, x, y, z = np.meshgrid(*(np.arange(n) for n in (channels, *shape)), indexing="ij")
    return make_case(1000 * c + 10 * z + x / 100 + y / 10000, np.ones(shape))


def slab(shape: tuple[int, int, int], fg: list[int], domain: str = "d", subject: str = "s0") -> Case:
    """Image equal to its label; foreground (an asymmetric L of classes 1 and 2) only in slices ``fg``."""
    label = np.zeros(shape, np.int64)
    label[1:4, 1, fg] = 1
    label[1, 2:6, fg] = 2
    return make_case(label.astype(np.float32)[None], label, domain, subject)


@pytest.mark.parametrize(
    ("shape", "multiple", "padded"),
    [((10, 13, 5), 8, (16, 16)), ((16, 16, 3), 16, (16, 16)), ((17, 5, 2), 16, (32, 16)), ((7, 9, 4), 1, (7, 9))],
)
def test_padding_is_at_the_end_and_cropping_undoes_it(
    shape: tuple[int, int, int], multiple: int, padded: tuple[int, int]
) -> None:
    case = coded(2, shape)
    label = np.arange(np.prod(shape)).reshape(shape)
    image, padded_label = pad_to_multiple(case.image, label, multiple)
    assert image.shape == (2, *padded, shape[2]) and padded_label.shape == (*padded, shape[2])
    np.testing.assert_array_equal(image[:, : shape[0], : shape[1]], case.image)
    np.testing.assert_array_equal(padded_label[: shape[0], : shape[1]], label)
    assert image.sum() == pytest.approx(case.image.sum())  # the rest is zeros
    slices = volume_slices(case, context=0, multiple=multiple)  # (Z, C, X', Y') back to (C, X, Y, Z)
    np.testing.assert_array_equal(slices[:, :, : shape[0], : shape[1]].permute(1, 2, 3, 0).numpy(), case.image)


@pytest.mark.parametrize(("channels", "context"), [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)])
def test_volume_slices_context_channels_replicate_at_the_edges(channels: int, context: int) -> None:
    case = coded(channels, (10, 12, 6))
    slices = volume_slices(case, context, multiple=16)
    width = 2 * context + 1
    assert slices.shape == (6, channels * width, 16, 16) and slices.dtype == torch.float32
    for z in range(6):
        for c in range(channels):
            for j, offset in enumerate(range(-context, context + 1)):
                neighbour = min(max(z + offset, 0), 5)
                got = slices[z, c * width + j, :10, :12].numpy()
                np.testing.assert_array_equal(got, case.image[c, :, :, neighbour])


@pytest.mark.parametrize("context", [0, 1])
def test_sampler_shapes_and_dtypes(cases: list[Case], context: int) -> None:
    sampler = SliceSampler(cases, ["infant", "adult"], batch_size=3, seed=0, context=context)
    x, y, z = sampler.sample()
    assert x.shape == (3, 2 * context + 1, 32, 32) and x.dtype == torch.float32  # 24 padded to 32
    assert y.shape == (3, 32, 32) and y.dtype == torch.int64
    assert z.shape == (3,) and z.dtype == torch.int64
    assert set(y.unique().tolist()) <= {0, 1, 2, 3}
    assert (y[:, 24:] == 0).all() and (x[:, :, :, 24:] == 0).all()  # end padding


def test_every_sampled_slice_has_foreground_and_all_are_drawn() -> None:
    pool = [slab((8, 8, 12), [2, 5, 9], subject="a"), slab((8, 8, 12), [0, 11], subject="b")]
    for case in pool:  # image 10z + label: the corner voxel (background) tells the slice
        case.image[0] += 10 * np.arange(12, dtype=np.float32)
    sampler = SliceSampler(pool, ["d"], batch_size=16, seed=0, multiple=8)
    seen: Counter[int] = Counter()
    for _ in range(20):
        x, y, _ = sampler.sample()
        assert (y.flatten(1) > 0).any(dim=1).all()
        z = (x[:, 0, 0, 0] / 10).round().long()
        assert torch.equal(x[:, 0] - 10 * z[:, None, None], y.float())
        seen.update(z.tolist())
    assert set(seen) == {0, 2, 5, 9, 11}
    # A case is drawn uniformly, then one of its slices: case b's two slices come up 1.5x as often as a's.
    assert seen[0] + seen[11] == pytest.approx(seen[2] + seen[5] + seen[9], rel=0.2)


def test_context_of_a_sampled_slice_is_its_neighbours() -> None:
    case = coded(2, (8, 8, 9))
    label = np.zeros((8, 8, 9), np.int64)
    label[2, 2, [0, 4, 8]] = 1
    case = make_case(case.image, label)
    sampler = SliceSampler([case], ["d"], batch_size=12, seed=3, context=1, multiple=8)
    x, _, _ = sampler.sample()
    for sample in x:
        z = round(sample[1, 0, 0].item() / 10)  # the centre channel of modality 0 is 10z
        assert z in {0, 4, 8}
        for c in range(2):
            for j, neighbour in enumerate(np.clip([z - 1, z, z + 1], 0, 8)):
                np.testing.assert_array_equal(sample[3 * c + j].numpy(), case.image[c, :, :, neighbour])


@pytest.mark.parametrize(
    ("batch", "domains", "counts"),
    [(4, 2, [2, 2]), (6, 3, [2, 2, 2]), (5, 2, [3, 2]), (4, 3, [2, 1, 1]), (3, 1, [3])],
)
def test_batches_are_domain_balanced_and_z_is_the_domain(batch: int, domains: int, counts: list[int]) -> None:
    names = [f"site{k + 1}" for k in range(domains)]
    pool = []
    for k, name in enumerate(names):
        for i in range(2):
            label = np.zeros((8, 8, 4), np.int64)
            label[2:5, 2:5, 1:3] = 1
            pool.append(make_case(np.full((1, 8, 8, 4), 10.0 * k), label, name, f"s{i}"))
    sampler = SliceSampler(pool, names, batch_size=batch, seed=1, multiple=8)
    x, _, z = sampler.sample()
    assert [Counter(z.tolist())[k] for k in range(domains)] == counts
    assert torch.equal(x[:, 0, 0, 0], 10.0 * z.float())
    for _ in range(20):  # the cycle continues across batches: no domain is ever more than one ahead
        batch_counts = Counter(sampler.sample()[2].tolist())
        assert max(batch_counts.values()) - min(batch_counts.get(k, 0) for k in range(domains)) <= 1


def test_domains_without_cases_keep_their_index() -> None:
    sampler = SliceSampler([slab((8, 8, 4), [1], "b")], ["a", "b", "c"], batch_size=4, seed=0, multiple=8)
    assert sampler.sample()[2].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(("flip", "rotate", "variants"), [(False, False, 1), (True, False, 4), (False, True, 4),
                                                         (True, True, 8)])
def test_flip_and_rotate_keep_x_and_y_aligned(flip: bool, rotate: bool, variants: int) -> None:
    # The image equals its label and is the same in every slice, so every context channel must equal y.
    pool = [slab((8, 8, 5), list(range(5)))]
    sampler = SliceSampler(pool, ["d"], batch_size=32, seed=0, context=1, flip=flip, rotate=rotate, multiple=8)
    seen = set()
    for _ in range(4):
        x, y, _ = sampler.sample()
        assert torch.equal(x, y[:, None].float().expand_as(x))
        seen |= {tuple(s.flatten().tolist()) for s in y}
    assert len(seen) == variants  # the L has no symmetry: each flip/rotation combination is distinct


def test_rotation_needs_square_slices() -> None:
    case = slab((8, 20, 3), [1])
    with pytest.raises(ValueError, match=r"rotate needs square slices.*16 x 32"):
        SliceSampler([case], ["d"], batch_size=2, seed=0, rotate=True)
    SliceSampler([case], ["d"], batch_size=2, seed=0, flip=True)  # flipping is fine


def test_cases_of_different_sizes_share_one_padded_size() -> None:
    pool = [slab((8, 8, 3), [1], subject="a"), slab((20, 10, 4), [2], subject="b")]
    x, y, _ = SliceSampler(pool, ["d"], batch_size=4, seed=0).sample()
    assert x.shape == (4, 1, 32, 16) and y.shape == (4, 32, 16)


def test_same_seed_same_stream_and_state_dict_resumes(cases: list[Case]) -> None:
    def make(seed: int) -> SliceSampler:
        return SliceSampler(cases, ["infant", "adult"], batch_size=4, seed=seed, context=1, flip=True, rotate=True)

    first, second, other = make(5), make(5), make(6)
    assert all(torch.equal(a, b) for a, b in zip(first.sample(), second.sample(), strict=True))
    assert not torch.equal(first.sample()[0], other.sample()[0])
    first.sample()
    state = json.loads(json.dumps(copy.deepcopy(first.state_dict())))  # checkpoints store it as plain data
    expected = [first.sample() for _ in range(3)]
    resumed = make(0)
    resumed.load_state_dict(state)
    for batch in expected:
        assert all(torch.equal(a, b) for a, b in zip(batch, resumed.sample(), strict=True))


def test_context_larger_than_the_volume_names_the_case() -> None:
    case = slab((8, 8, 3), [1], domain="infant", subject="infant-007")
    message = r"infant/infant-007 has Z = 3 .* context 2"
    with pytest.raises(ValueError, match=message):
        volume_slices(case, context=2)
    with pytest.raises(ValueError, match=message):
        SliceSampler([case], ["infant"], batch_size=2, seed=0, context=2)
    assert volume_slices(case, context=1).shape == (3, 3, 16, 16)


@pytest.mark.parametrize(
    ("pool", "domains", "message"),
    [
        ([], ["d"], "at least one case"),
        ([slab((8, 8, 3), [1], "x")], ["d"], r"\['x'\] are not among"),
        ([slab((8, 8, 3), [1], "d"), slab((8, 8, 3), [], "e")], ["d", "e"], r"\['e'\] have cases but no slice"),
        ([slab((8, 8, 3), [1])], ["d", "d"], "twice"),
        (
            [slab((8, 8, 3), [1]), make_case(np.zeros((2, 8, 8, 3)), np.ones((8, 8, 3)), subject="s1")],
            ["d"],
            "different numbers of image channels",
        ),
    ],
)
def test_invalid_sampler_arguments(pool: list[Case], domains: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SliceSampler(pool, domains, batch_size=2, seed=0)


def test_sampling_is_fast(cases: list[Case]) -> None:
    sampler = SliceSampler(cases, ["infant", "adult"], batch_size=16, seed=0, context=2, flip=True, rotate=True)
    threads = torch.get_num_threads()
    # One thread, as trainers run: on a busy 2-core machine torch's intra-op pool makes tiny ops 100x slower.
    torch.set_num_threads(1)
    try:
        sampler.sample()
        start = time.perf_counter()
        for _ in range(50):
            sampler.sample()
        elapsed = (time.perf_counter() - start) / 50
    finally:
        torch.set_num_threads(threads)
    assert elapsed < 0.01  # measured under 1 ms per batch of 16


def test_builder_threads_hand_out_the_batches_of_sample_in_order(cases: list[Case]) -> None:
    """A prefetcher drawing plans in one thread and building them in three gives the sequence of ``sample()``,
    and its state resumes a plain sampler after the last batch taken."""
    from platform.data.prefetch import Prefetcher

    def make() -> SliceSampler:
        return SliceSampler(cases, ["infant", "adult"], batch_size=4, seed=2, context=1, flip=True, rotate=True)

    plain, prefetched = make(), Prefetcher(make(), depth=2, workers=3)
    try:
        assert prefetched.workers == 3 and prefetched.depth == 3  # at least one batch ahead per builder
        for _ in range(12):
            assert all(torch.equal(a, b) for a, b in zip(plain.sample(), prefetched.sample(), strict=True))
        resumed = make()
        resumed.load_state_dict(prefetched.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(plain.sample(), resumed.sample(), strict=True))
    finally:
        prefetched.close()
