"""Batches drawn ahead of the training step by a background thread, in the order the sampler would draw them.

A sampler's stream is sequential (one generator), so one producer thread per sampler keeps it deterministic:
the batches are exactly those of ``sampler.sample()`` called in the step. The producer records the sampler's
state after each batch, so ``state_dict`` is the position after the last batch the step *took* (not the ones
waiting in the queue): a checkpoint resumes the same sequence as an uninterrupted run. Tensors are pinned when
the step runs on a GPU, so the step's ``to(device, non_blocking=True)`` overlaps the copy with compute.

With ``workers`` > 1 and a sampler that splits ``sample()`` into ``draw()`` (the random part, which advances
its stream) and ``build(plan)`` (the copying, which only reads the cases), the producer thread draws the plans
in order and ``workers`` threads build the batches concurrently (torch's copies release the interpreter lock);
the batches are handed out in the order drawn, so they are still exactly the sequence of ``sample()``.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
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
    the producer is raised by the ``sample()`` that would have returned its batch. ``workers`` builder threads
    are used when the sampler has ``draw``/``build`` (else the producer builds alone); at least ``workers``
    batches are then drawn ahead, so every builder has one.
    """

    def __init__(self, sampler: Any, depth: int, pin_memory: bool = False, workers: int = 1) -> None:
        if depth < 1:
            raise ValueError(f"a Prefetcher draws at least 1 batch ahead, not {depth}")
        if workers < 1:
            raise ValueError(f"a Prefetcher builds with at least 1 worker, not {workers}")
        self.sampler = sampler
        self.workers = workers if hasattr(sampler, "draw") and hasattr(sampler, "build") else 1
        self.depth = max(depth, self.workers)
        self.pin_memory = pin_memory
        self._pool: ThreadPoolExecutor | None = None
        self.waited_s = 0.0  # time sample() spent waiting for the producer (the step starved of data)
        self._state = sampler.state_dict()  # the sampler's position after the last batch handed out
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    def __getattr__(self, name: str) -> Any:  # batch_size and the like: the sampler's own attributes
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)

    def _finish(self, batch: Any) -> Any:
        return _pinned(batch) if self.pin_memory else batch

    def _build(self, plan: Any) -> Any:
        return self._finish(self.sampler.build(plan))

    def _produce(self, out: queue.Queue[Any], halt: threading.Event) -> None:
        try:
            while not halt.is_set():
                if self._pool is None:
                    batch: Any = self._finish(self.sampler.sample())
                else:  # drawn here, in order; built by the pool (a Future the consumer waits on)
                    batch = self._pool.submit(self._build, self.sampler.draw())
                item = (batch, self.sampler.state_dict())
                while not halt.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the consumer, which raises it in the training thread
            out.put((_STOP, exc))

    def _start(self) -> None:
        if self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"build-{type(self.sampler).__name__}")
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
        if isinstance(batch, Future):
            try:
                batch = batch.result()
            except BaseException as exc:  # a build that failed: raised here, as a producer error is
                batch, state = _STOP, exc
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
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._thread, self._queue, self._pool = None, None, None
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
