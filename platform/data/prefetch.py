"""Batches drawn ahead of the training step by a background thread, in the order the sampler would draw them.

A sampler's stream is sequential (one generator), so one producer thread per sampler keeps it deterministic:
the batches are exactly those of ``sampler.sample()`` called in the step. The producer records the sampler's
state after each batch, so ``state_dict`` is the position after the last batch the step *took* (not the ones
waiting in the queue): a checkpoint resumes the same sequence as an uninterrupted run. Tensors are pinned when
the step runs on a GPU, so the step's ``to(device, non_blocking=True)`` overlaps the copy with compute.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import torch

_STOP = object()


def _pinned(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, tuple):
        return tuple(_pinned(item) for item in batch)
    return batch


class Prefetcher:
    """``sample()`` / ``state_dict()`` / ``load_state_dict()`` of ``sampler``, with ``depth`` batches drawn ahead.

    The thread starts at the first ``sample()``; ``close()`` (or ``load_state_dict``) stops it. An exception in
    the producer is raised by the ``sample()`` that would have returned its batch.
    """

    def __init__(self, sampler: Any, depth: int, pin_memory: bool = False) -> None:
        if depth < 1:
            raise ValueError(f"a Prefetcher draws at least 1 batch ahead, not {depth}")
        self.sampler = sampler
        self.depth = depth
        self.pin_memory = pin_memory
        self.waited_s = 0.0  # time sample() spent waiting for the producer (the step starved of data)
        self._state = sampler.state_dict()  # the sampler's position after the last batch handed out
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    def __getattr__(self, name: str) -> Any:  # batch_size and the like: the sampler's own attributes
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)

    def _produce(self, out: queue.Queue[Any], halt: threading.Event) -> None:
        try:
            while not halt.is_set():
                batch = self.sampler.sample()
                item = (_pinned(batch) if self.pin_memory else batch, self.sampler.state_dict())
                while not halt.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the consumer, which raises it in the training thread
            out.put((_STOP, exc))

    def _start(self) -> None:
        self._halt = threading.Event()
        self._queue = queue.Queue(maxsize=self.depth)
        self._thread = threading.Thread(target=self._produce, args=(self._queue, self._halt), daemon=True,
                                        name=f"prefetch-{type(self.sampler).__name__}")
        self._thread.start()

    def sample(self) -> Any:
        if self._thread is None:
            self._start()
        assert self._queue is not None
        started = time.perf_counter()
        batch, state = self._queue.get()
        self.waited_s += time.perf_counter() - started
        if batch is _STOP:
            self.close()
            raise state
        self._state = state
        return batch

    def close(self) -> None:
        """Stop the producer and drop the batches drawn ahead; the sampler is put back at the position after the
        last batch handed out, so drawing on (with or without a new thread) continues the same sequence."""
        if self._thread is not None:
            self._halt.set()
            self._thread.join()
            self._thread, self._queue = None, None
            self.sampler.load_state_dict(self._state)

    def state_dict(self) -> dict[str, Any]:
        return self._state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.close()
        self.sampler.load_state_dict(state)
        self._state = self.sampler.state_dict()

    def __del__(self) -> None:  # a dropped trainer does not leave its producers running
        try:  # noqa: SIM105 - at interpreter exit, module globals such as contextlib may already be gone
            self.close()
        except Exception:
            pass
