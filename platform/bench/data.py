"""``data``: how fast the data pipeline produces samples against how fast each trainer consumes them.

For every sampler a trainer draws from in its hot loop (advnorm's 3D ``PatchSampler``; the 2D ``SliceSampler``
of dualnorm and of glua's stage 2; glua's label-free ``ImageSliceSampler``), "produced" is samples per second of
``sampler.sample()`` alone, and "consumed" is what ``train_epoch`` takes from that sampler per second: iterations
per second x batches drawn per iteration x batch size, measured in the same run on the same trainer (the cases of
:mod:`platform.bench.step`, one torch thread). Sampler timings and epochs alternate (A B, B A, ...), medians.
Ratio = produced / consumed: without prefetching the sampler runs inside the loop, so 1 / ratio is the share of
a training iteration spent drawing data. With prefetching on (``runtime.prefetch``: a producer thread per sampler,
2 batches ahead) the step only waits when the queue is empty: "wait share" is that waiting over the epoch, and
"epoch x" the epoch time against drawing in the step (on a GPU the step leaves the cores to the producers; on
these 2 cores the producer competes with the step's own thread).
"""

from __future__ import annotations

import time
from typing import Any

from platform.bench.harness import interleaved, median
from platform.bench.report import BenchResult, Target
from platform.bench.step import build_cases, time_platform_epoch, torch_threads

TARGET_RATIO = 3.0


def sampler_rate(sampler: Any, batch_size: int, seconds: float, min_calls: int = 5) -> float:
    """Samples per second of ``sampler.sample()``, over at least ``seconds`` and ``min_calls`` calls."""
    calls = 0
    started = time.perf_counter()
    while calls < min_calls or time.perf_counter() - started < seconds:
        sampler.sample()
        calls += 1
    return calls * batch_size / (time.perf_counter() - started)


def prefetched_epoch(case: Any, repeats: int) -> tuple[float, float]:
    """(the share of an epoch the step waited for prefetched batches, epoch time prefetched / drawn in the step),
    medians of ``repeats`` interleaved epochs of each kind; the trainer draws in the step again afterwards. Each
    prefetched epoch starts its threads with an empty queue (the wait for the first batches is counted)."""
    from platform.data.prefetch import Prefetcher

    plain = dict(case.trainer.samplers)
    prefetched = {name: Prefetcher(s, 2) if hasattr(s, "sample") else s for name, s in plain.items()}

    def epoch(samplers: dict[str, Any]) -> float:
        case.trainer.samplers = samplers
        return time_platform_epoch(case)

    shares: list[float] = []

    def timed_prefetched() -> float:
        for sampler in prefetched.values():
            if isinstance(sampler, Prefetcher):
                sampler.waited_s = 0.0
        seconds = epoch(prefetched)
        waited = sum(s.waited_s for s in prefetched.values() if isinstance(s, Prefetcher))
        for sampler in prefetched.values():  # the threads stop, so the next in-step epoch draws alone
            if isinstance(sampler, Prefetcher):
                sampler.close()
        shares.append(waited / (seconds * case.iterations))
        return seconds

    try:
        times = interleaved({"plain": lambda: epoch(plain), "prefetched": timed_prefetched}, repeats=repeats,
                            warmup=1)
    finally:
        case.trainer.samplers = plain
    return median(shares[1:]), median(times["prefetched"]) / median(times["plain"])


def run(quick: bool = False) -> BenchResult:
    repeats, window = (3, 0.2) if quick else (7, 1.0)
    rows, ratios, waits = [], [], []
    with torch_threads(1):
        for case in build_cases(quick):
            time_platform_epoch(case)  # warm-up; glua's stage-2 samplers exist only after its first epoch
            start = len(rows)
            for label, sampler, draws in case.samplers():
                times = interleaved({
                    "epoch": lambda c=case: time_platform_epoch(c),
                    "sampler": lambda s=sampler, b=case.batch_size: 1.0 / sampler_rate(s, b, window),
                }, repeats=repeats, warmup=0)
                produced = 1.0 / median(times["sampler"])  # samples/s (median of seconds per sample)
                consumed = draws * case.batch_size / median(times["epoch"])  # samples/s
                ratios.append(produced / consumed)
                rows.append([case.name, label, draws * case.batch_size, produced, consumed, produced / consumed])
            wait, slowdown = prefetched_epoch(case, repeats)
            waits.append(wait)
            for row in rows[start:]:
                row += [wait, slowdown]
    return BenchResult(
        name="data",
        description="samples per second from the data pipeline against what the trainer consumes per second",
        headers=["trainer", "sampler", "samples/it", "produced /s", "consumed /s", "ratio", "prefetched: wait share",
                 "epoch x"],
        rows=rows, figures={"min_ratio": min(ratios), "median_ratio": median(ratios),
                            "max_prefetch_wait_share": max(waits)},
        targets=[Target("min_ratio", ">=", TARGET_RATIO)],
        settings={"repeats": repeats, "sampler_window_s": window, "torch_threads": 1},
    )
