"""``drivers``: what the Tune driver holds and spends per trial over many trivial trials, against bare Tune.

Ray's own driver keeps state per finished trial (its trial objects, their last results, the experiment state it
snapshots); a platform must not add much to it. Two sweeps of N one-epoch trials of no work, each in a fresh
child process (so one's heap cannot hide the other's) with its own local Ray (2 CPUs, 2 concurrent trials,
reused actors):

* ``bare tune``: the bare function trainable of :mod:`platform.bench.overhead` (one report, no checkpoint);
* ``platform``: ``build_tuner`` with the fixed-work trainer (one epoch of 0 s): the results tables written by
  the driver, the progress callback, the summaries, a checkpoint at the last epoch.

A callback in each driver samples, at every trial's end, the driver's resident set and its CPU time (every
thread of the process: Tune's loop, the callbacks, Ray's client). Per trial = the slope of a least-squares line
through the samples of the last three quarters of the trials (the first quarter holds one-time costs: imports,
first allocations), so the figures are what each further trial adds. Totals (after ``fit`` - before, / N) are
in the table too. Targets: memory at most bare + 20 KB per trial, bookkeeping at most 1.2x bare.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

from platform.bench.report import BenchResult, Target

MEMORY_MARGIN_KB = 20.0
TARGET_BOOKKEEPING_RATIO = 1.2


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS in /proc/self/status")


def _probe() -> Any:
    """A Tune callback recording (RSS bytes, CPU seconds) of the driver at each trial's end."""
    from ray import tune

    class DriverProbe(tune.Callback):
        def __init__(self) -> None:
            self.samples: list[tuple[int, float]] = []

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.samples.append((_rss_bytes(), time.process_time()))

    return DriverProbe()


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index, over the last three quarters (per step)."""
    import numpy as np

    tail = values[len(values) // 4:]
    if len(tail) < 2:
        return float("nan")
    return float(np.polyfit(np.arange(len(tail), dtype=float), np.asarray(tail, dtype=float), 1)[0])


def _child(kind: str, trials: int, out: Any) -> None:
    """Runs in a fresh process: one sweep, its driver figures sent back through ``out``."""
    from ray import tune

    from platform.bench.harness import local_ray, quiet_environment, run_sweep, temporary_storage

    quiet_environment()
    probe = _probe()
    with temporary_storage(f"drivers-{kind}") as root, local_ray(num_cpus=2):
        if kind == "bare":
            from platform.bench.overhead import CONCURRENT, bare_trainable

            tuner = tune.Tuner(
                tune.with_resources(bare_trainable, {"CPU": 1}),
                param_space={"epochs": 1, "work_s": 0.0, "tag": tune.uniform(0.0, 1.0)},
                tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=CONCURRENT, reuse_actors=True),
                run_config=tune.RunConfig(name="bare", storage_path=str(root), verbose=0, callbacks=[probe],
                                          failure_config=tune.FailureConfig(max_failures=0)))
            fit = tuner.fit
        else:
            from platform.bench.fixed_work import sweep_spec

            spec = sweep_spec("platform", Path(root), trials=trials, epochs=1, work_s=0.0, cpus=1.0, concurrent=2)

            def fit() -> Any:
                return run_sweep(spec, callbacks=[probe])

        before_rss, before_cpu, started = _rss_bytes(), time.process_time(), time.monotonic()
        fit()
        out.send({"rss_bytes": _rss_bytes() - before_rss, "cpu_s": time.process_time() - before_cpu,
                  "wall_s": time.monotonic() - started,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rss_slope_bytes": slope([float(rss) for rss, _ in probe.samples]),
                  "cpu_slope_s": slope([cpu for _, cpu in probe.samples]), "samples": len(probe.samples)})
    out.close()


def measure(kind: str, trials: int) -> dict[str, float]:
    """The driver figures of one sweep (``bare`` or ``platform``) of ``trials`` trials, in a fresh process."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(kind, trials, send), daemon=False)
    process.start()
    send.close()
    try:
        figures = receive.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"the {kind} driver process ended without its figures (exit code {process.exitcode})"
                           ) from None
    process.join()
    return figures


def run(quick: bool = False) -> BenchResult:
    trials = 100 if quick else 2000
    bare, platform = measure("bare", trials), measure("platform", trials)
    rows, per_trial = [], {}
    for label, figures in (("bare tune", bare), ("platform", platform)):
        kb, ms = figures["rss_slope_bytes"] / 1024, figures["cpu_slope_s"] * 1000
        per_trial[label] = (kb, ms)
        rows.append([label, trials, figures["wall_s"], figures["cpu_s"] / trials * 1000, ms,
                     figures["rss_bytes"] / 2**20, figures["rss_bytes"] / trials / 1024, kb,
                     figures["peak_rss_bytes"] / 2**20])
    memory_excess = per_trial["platform"][0] - per_trial["bare tune"][0]
    ratio = per_trial["platform"][1] / per_trial["bare tune"][1]
    return BenchResult(
        name="drivers",
        description="driver memory and bookkeeping CPU per trial over many trivial trials, against bare Tune",
        headers=["driver", "trials", "fit s", "CPU ms/trial (total)", "CPU ms/trial (slope)", "RSS growth MB",
                 "KB/trial (total)", "KB/trial (slope)", "peak RSS MB"],
        rows=rows,
        figures={"memory_excess_kb_per_trial": memory_excess, "bookkeeping_ratio": ratio,
                 "bare_kb_per_trial": per_trial["bare tune"][0], "platform_kb_per_trial": per_trial["platform"][0],
                 "bare_cpu_ms_per_trial": per_trial["bare tune"][1],
                 "platform_cpu_ms_per_trial": per_trial["platform"][1]},
        targets=[Target("memory_excess_kb_per_trial", "<=", MEMORY_MARGIN_KB),
                 Target("bookkeeping_ratio", "<=", TARGET_BOOKKEEPING_RATIO)],
        settings={"trials": trials, "epochs": 1, "work_s": 0.0, "concurrent": 2, "ray_cpus": 2,
                  "process": "a fresh spawned process per driver"},
    )
