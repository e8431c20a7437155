"""``scale``: trials per hour of many short trials on logical GPUs, against the ideal for that concurrency.

A local Ray with logical GPUs (``num_gpus`` 8; 2 in the quick form) and this machine's 2 CPUs runs a sweep of
short fixed-work trials (:mod:`platform.bench.fixed_work`: sleeps, so the cores stay free for the driver and
Ray) with a fractional ``gpus_per_worker`` (0.5) and a small ``cpus_per_worker``, so the GPUs bound the
concurrency (``default_concurrency``, as ``python -m platform.sweep`` derives it). No GPU is used: torch sees
none and the trainer runs on the CPU, which is what makes the figure about scheduling and the driver.

Achieved = trials / span (first trial start to last trial end, from the ``trials`` table); ideal = concurrency /
mean trial wall time (every slot busy all the time with trials as long as they really were). Their ratio is
the share of slot-time the platform keeps busy; "ideal (work only)" is the ceiling if trials had no overhead.
The idle slot-time is split into ramp-up (before every slot first holds a trial), gaps between trials (the
driver starting the next one) and tail (slots emptying as the last trials end). The start-up before the first
trial starts (the trial processes' imports of Ray Tune and torch, all at once on this machine's cores) is outside
the span; the table reports it and the trials per hour over the whole sweep beside the target's figure.
"""

from __future__ import annotations

import time

from platform.bench.harness import local_ray, mean, run_sweep, temporary_storage, trial_rows
from platform.bench.report import BenchResult, Target

TARGET_EFFICIENCY = 0.90


def idle_shares(intervals: list[tuple[float, float]], concurrency: int) -> dict[str, float]:
    """Idle slot-time of trials running over ``intervals`` (start, end) with ``concurrency`` slots, as shares of
    all slot-time ``concurrency x span``: ``ramp`` before the ``concurrency``-th start, ``tail`` after the
    ``concurrency``-th last end, ``gaps`` in between. ``1 - sum`` is the busy share (achieved / ideal)."""
    begin, finish = min(s for s, _ in intervals), max(e for _, e in intervals)
    starts, ends = sorted(s for s, _ in intervals), sorted(e for _, e in intervals)
    ramp_end = starts[min(concurrency, len(starts)) - 1]
    tail_start = max(ramp_end, ends[max(0, len(ends) - concurrency)])
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    idle = {"ramp": 0.0, "gaps": 0.0, "tail": 0.0}
    running, previous = 0, begin
    for moment, change in events:
        # Split the stretch [previous, moment] at the ramp and tail boundaries.
        for low, high, part in ((previous, min(moment, ramp_end), "ramp"),
                                (max(previous, ramp_end), min(moment, tail_start), "gaps"),
                                (max(previous, tail_start), moment, "tail")):
            if high > low:
                idle[part] += max(0, concurrency - running) * (high - low)
        running += change
        previous = moment
    total = concurrency * (finish - begin)
    return {part: value / total for part, value in idle.items()} if total > 0 else idle


def ideal_trials_per_hour(concurrency: int, trial_s: float) -> float:
    """Trials per hour with ``concurrency`` slots always busy with trials of ``trial_s`` seconds."""
    return concurrency * 3600.0 / trial_s


def achieved_trials_per_hour(trials: int, span_s: float) -> float:
    return trials * 3600.0 / span_s


def run(quick: bool = False) -> BenchResult:
    from platform.bench.fixed_work import sweep_spec
    from platform.tuning import default_concurrency

    gpus, per_gpu, cpus_per_trial = 2, 0.5, 0.25
    trials, epochs, work_s = (12, 2, 0.5) if quick else (128, 3, 1.0)
    if not quick:
        gpus, cpus_per_trial = 8, 0.125
    with temporary_storage("scale") as root, local_ray(num_cpus=2, num_gpus=gpus):
        import ray

        spec = sweep_spec("scale", root, trials=trials, epochs=epochs, work_s=work_s, cpus=cpus_per_trial,
                          gpus=per_gpu)
        concurrency = default_concurrency(spec, ray.cluster_resources())
        fit_started = time.time()
        experiment, fit_s = run_sweep(spec)
        rows = trial_rows(experiment)

    span = max(r["ended_at"] for r in rows) - min(r["started_at"] for r in rows)
    # Before the first trial starts, the sweep starts its trial processes (each imports Ray Tune and torch):
    # outside the span, reported beside it.
    startup = min(r["started_at"] for r in rows) - fit_started
    wall = mean([r["wall_s"] for r in rows])
    work = mean([r["time_in_epochs_s"] for r in rows])
    idle = idle_shares([(r["started_at"], r["ended_at"]) for r in rows], concurrency)
    achieved = achieved_trials_per_hour(len(rows), span)
    ideal = ideal_trials_per_hour(concurrency, wall)
    ideal_work = ideal_trials_per_hour(concurrency, work)
    return BenchResult(
        name="scale",
        description="trials per hour on logical GPUs against the ideal (concurrency / trial time)",
        headers=["GPUs", "GPU/trial", "concurrent", "trials", "trial wall s", "work s", "span s", "trials/h",
                 "ideal/h", "of ideal", "idle: ramp", "gaps", "tail", "of work-only ideal",
                 "start-up s", "trials/h incl. start-up"],
        rows=[[gpus, per_gpu, concurrency, len(rows), wall, work, span, achieved, ideal, achieved / ideal,
               idle["ramp"], idle["gaps"], idle["tail"], achieved / ideal_work, startup,
               achieved_trials_per_hour(len(rows), fit_s)]],
        figures={"efficiency": achieved / ideal, "trials_per_hour": achieved, "ideal_trials_per_hour": ideal,
                 "efficiency_vs_work_only": achieved / ideal_work, "concurrency": float(concurrency),
                 "mean_trial_wall_s": wall, "span_s": span, "sweep_s": fit_s, "idle_ramp": idle["ramp"],
                 "idle_gaps": idle["gaps"], "idle_tail": idle["tail"], "startup_s": startup,
                 "trials_per_hour_incl_startup": achieved_trials_per_hour(len(rows), fit_s)},
        targets=[Target("efficiency", ">=", TARGET_EFFICIENCY)],
        settings={"num_gpus": gpus, "num_cpus": 2, "gpus_per_worker": per_gpu, "cpus_per_worker": cpus_per_trial,
                  "trials": trials, "epochs": epochs, "work_s_per_epoch": work_s},
    )
