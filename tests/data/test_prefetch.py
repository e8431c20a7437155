"""The prefetching sampler: the same batches in the same order, the position of the last batch taken, errors
raised in the training thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import torch

from platform.data.prefetch import Prefetcher


class CountingSampler:
    """Draws from its own generator; fails at draw ``fail_at`` (0-based) if given."""

    def __init__(self, seed: int = 0, fail_at: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self.drawn = 0
        self.fail_at = fail_at
        self.batch_size = 3

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.drawn == self.fail_at:
            raise ValueError(f"draw {self.drawn} failed")
        self.drawn += 1
        return torch.as_tensor(self._rng.random(3)), torch.tensor([self.drawn])

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng.bit_generator.state, "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self.drawn = state["drawn"]


class PlannedSampler(CountingSampler):
    """CountingSampler split into ``draw`` and ``build``; a build sleeps by its plan (so builds finish out of
    order), records its thread, and fails at build ``fail_build`` if given."""

    def __init__(self, seed: int = 0, fail_build: int | None = None) -> None:
        super().__init__(seed)
        self.fail_build = fail_build
        self.threads: set[str] = set()

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.build(self.draw())

    def draw(self) -> tuple[np.ndarray, int]:
        self.drawn += 1
        return self._rng.random(3), self.drawn

    def build(self, plan: tuple[np.ndarray, int]) -> tuple[torch.Tensor, torch.Tensor]:
        values, number = plan
        if number - 1 == self.fail_build:
            raise ValueError(f"build {number - 1} failed")
        time.sleep(0.004 * (number % 3))
        self.threads.add(threading.current_thread().name)
        return torch.as_tensor(values), torch.tensor([number])


def draws(sampler: Any, count: int) -> list[list[float]]:
    return [sampler.sample()[0].tolist() for _ in range(count)]


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_the_same_batches_in_the_same_order(depth: int) -> None:
    prefetcher = Prefetcher(CountingSampler(), depth)
    try:
        assert draws(prefetcher, 20) == draws(CountingSampler(), 20)
        assert prefetcher.batch_size == 3  # the sampler's attributes pass through
    finally:
        prefetcher.close()


def test_state_is_the_position_after_the_last_batch_taken_and_resumes_it() -> None:
    prefetcher = Prefetcher(CountingSampler(), 4)
    draws(prefetcher, 5)
    state = prefetcher.state_dict()
    assert state["drawn"] == 5  # not the batches waiting in the queue
    following = draws(prefetcher, 5)
    restored = Prefetcher(CountingSampler(seed=99), 4)
    restored.load_state_dict(state)
    assert draws(restored, 5) == following
    direct = CountingSampler(seed=99)
    direct.load_state_dict(state)
    assert draws(direct, 5) == following
    for p in (prefetcher, restored):
        p.close()


def test_close_puts_the_sampler_back_after_the_last_batch_taken() -> None:
    sampler = CountingSampler()
    prefetcher = Prefetcher(sampler, 6)
    first = draws(prefetcher, 3)
    prefetcher.close()
    assert sampler.drawn == 3 and prefetcher._thread is None
    assert first + draws(prefetcher, 3) == draws(CountingSampler(), 6)  # a new thread continues the sequence
    prefetcher.close()


def test_a_producer_error_is_raised_by_the_sample_that_would_have_returned_it() -> None:
    prefetcher = Prefetcher(CountingSampler(fail_at=3), 2)
    assert len(draws(prefetcher, 3)) == 3
    with pytest.raises(ValueError, match="draw 3 failed"):
        prefetcher.sample()


def test_depth_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Prefetcher(CountingSampler(), 0)


@pytest.mark.parametrize("workers", [2, 4])
def test_builders_hand_out_batches_in_the_order_drawn_and_resume(workers: int) -> None:
    sampler = PlannedSampler()
    prefetcher = Prefetcher(sampler, 2, workers=workers)
    try:
        assert draws(prefetcher, 15) == draws(CountingSampler(), 15)
        assert len(sampler.threads) > 1  # built concurrently
        state = prefetcher.state_dict()
        assert state["drawn"] == 15
        following = draws(prefetcher, 5)
    finally:
        prefetcher.close()
    direct = PlannedSampler(seed=99)
    direct.load_state_dict(state)
    assert draws(direct, 5) == following
    assert sampler.drawn == 20  # close put the sampler back after the last batch taken


def test_a_build_error_is_raised_by_the_sample_that_would_have_returned_it() -> None:
    prefetcher = Prefetcher(PlannedSampler(fail_build=4), 2, workers=3)
    assert len(draws(prefetcher, 4)) == 4
    with pytest.raises(ValueError, match="build 4 failed"):
        prefetcher.sample()
    assert prefetcher._thread is None and prefetcher._pool is None


def test_a_sampler_without_draw_and_build_is_built_by_the_producer_alone() -> None:
    prefetcher = Prefetcher(CountingSampler(), 2, workers=4)
    try:
        assert prefetcher.workers == 1 and prefetcher.depth == 2
        assert draws(prefetcher, 5) == draws(CountingSampler(), 5)
    finally:
        prefetcher.close()
