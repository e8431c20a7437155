"""The samplers half of the base trainer: prefetching, samplers built on first use, and samplers dropped until
rebuilt (their states kept), so a resumed trial draws the same batches."""

from __future__ import annotations

from typing import Any

import torch


class SamplerHandling:
    """Mixed into ``Trainer``: ``samplers`` (name -> anything with ``state_dict`` / ``load_state_dict``, and
    ``sample`` for data) and the states of samplers not built yet."""

    samplers: dict[str, Any]
    _pending_samplers: dict[str, Any]
    _prefetch_depth: int
    _prefetch_workers: int
    device: torch.device

    def use_prefetch(self, depth: int, workers: int = 1) -> None:
        """Draw ``depth`` batches ahead of the step for every sampler (those built later too), built by
        ``workers`` threads: see platform.data.prefetch. 0 leaves them drawing in the step."""
        self._prefetch_depth = depth
        self._prefetch_workers = workers
        for name in list(self.samplers):
            self.samplers[name] = self._prefetched(self.samplers[name])

    def _prefetched(self, sampler: Any) -> Any:
        from platform.data.prefetch import Prefetcher

        if self._prefetch_depth < 1 or not hasattr(sampler, "sample") or isinstance(sampler, Prefetcher):
            return sampler
        return Prefetcher(sampler, self._prefetch_depth, pin_memory=self.device.type == "cuda",
                          workers=self._prefetch_workers)

    def close_samplers(self) -> None:
        """Stop the prefetch threads (their samplers keep the position of the last batch taken)."""
        for sampler in self.samplers.values():
            close = getattr(sampler, "close", None)
            if close is not None:
                close()

    def add_sampler(self, name: str, sampler: Any) -> Any:
        """Register a sampler built on first use, not in ``__init__`` (e.g. from a trained stage's output); a state
        restored for it before it existed is applied now, so a resumed trial draws the same batches."""
        if name in self._pending_samplers:
            sampler.load_state_dict(self._pending_samplers.pop(name))
        self.samplers[name] = self._prefetched(sampler)
        return self.samplers[name]

    def defer_samplers(self, *names: str) -> None:
        """Drop built samplers, keeping their states for ``add_sampler`` (they are rebuilt on next use)."""
        for name in names:
            if name in self.samplers:
                sampler = self.samplers.pop(name)
                self._pending_samplers[name] = sampler.state_dict()
                if hasattr(sampler, "close"):
                    sampler.close()
