"""The prefetching sampler: the same batches in the same order, the position of the last batch taken, errors
raised in the training thread."""

from __future__ import annotations

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
