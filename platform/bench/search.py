"""``search``: epochs ASHA + TPE spend to get within 0.01 ``val/dice`` of a full grid's best, against the grid.

Both sweeps are ``search_spaces/lambda.yaml`` (advnorm on the phantom) at reduced size, run through the
platform's own ``build_tuner`` on a local Ray (2 CPUs):

* grid: ``lambda`` at N log-spaced points over the spec's range, every point for the full epochs, no scheduler;
* ASHA + TPE: the spec as shipped (its first points, grace period, reduction factor), same epochs as ``max_t``.

Epochs come from the ``epochs`` table (one row per reported epoch, in the order the driver received them). The
grid's best is the largest ``best/val/dice`` over its trials; "epochs to reach" is the number of epochs ASHA +
TPE had reported, over all its trials, when a ``val/dice`` first came within ``TOLERANCE`` of it. Fraction =
epochs to reach / grid epochs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from platform.bench.harness import epoch_rows, load_shipped_spec, local_ray, run_sweep, temporary_storage, trial_rows
from platform.bench.report import BenchResult, Target

SPEC = "search_spaces/lambda.yaml"
METRIC = "val/dice"
TOLERANCE = 0.01
TARGET_FRACTION = 0.40


def epochs_to_reach(rows: list[dict[str, Any]], threshold: float, metric: str = METRIC,
                    mode: str = "max") -> int | None:
    """How many epoch rows (in the given, chronological order) had been reported when ``metric`` first reached
    ``threshold`` (>= for max, <= for min), counting that row; None if it never did."""
    for count, row in enumerate(rows, start=1):
        value = row.get(metric)
        if value is None or not math.isfinite(value):
            continue
        if (value >= threshold) if mode == "max" else (value <= threshold):
            return count
    return None


def grid_points(low: float, high: float, count: int) -> list[float]:
    """``count`` log-spaced values from ``low`` to ``high`` (both included), rounded to 4 significant digits."""
    return [float(f"{value:.4g}") for value in np.geomspace(low, high, count)]


def run(quick: bool = False) -> BenchResult:
    if quick:
        # A smoke test of the benchmark: too little training for the figures to mean much.
        points, trials = 3, 3
        reduced = ["data.size=24", "data.subjects_per_domain=3", "data.patches_per_epoch=16", "fixed.epochs=3",
                   "fixed.eval_patches=2", "fixed.sw_overlap=0.25", "fixed.lr_milestones=[2]",
                   "scheduler.grace_period=1"]
    else:
        points, trials = 8, 8
        reduced = ["data.patches_per_epoch=48"]
    with temporary_storage("search") as root:
        common = [*reduced, f"storage={root}", f"budget.trials={trials}"]
        asha = load_shipped_spec(SPEC, [*common, "name=asha-tpe"])
        low, high = asha.search["lambda"].loguniform
        lambdas = grid_points(low, high, points)
        grid = load_shipped_spec(SPEC, [*common, "name=grid", "searcher.sampler=grid", "searcher.points_to_evaluate=[]",
                                        "scheduler.type=none", f"search.lambda={{grid: {lambdas}}}"])
        from platform.data.datasets import load_cases

        load_cases(grid.data)  # generate the phantom once, before either sweep starts (not timed)
        with local_ray(num_cpus=2):
            grid_experiment, grid_s = run_sweep(grid)
            asha_experiment, asha_s = run_sweep(asha)
            grid_trials, asha_trials = trial_rows(grid_experiment), trial_rows(asha_experiment)
            asha_epochs = epoch_rows(asha_experiment)

    key = f"best/{METRIC}"
    grid_epochs = sum(int(r["epochs"]) for r in grid_trials)
    asha_total = sum(int(r["epochs"]) for r in asha_trials)
    grid_best = max(r[key] for r in grid_trials if r.get(key) is not None)
    asha_best = max(r[key] for r in asha_trials if r.get(key) is not None)
    reached = epochs_to_reach(asha_epochs, grid_best - TOLERANCE)
    fraction = reached / grid_epochs if reached is not None else float("nan")
    rows = [["grid", len(grid_trials), grid_epochs, grid_best, "-", grid_s],
            ["ASHA + TPE", len(asha_trials), asha_total, asha_best, reached, asha_s]]
    notes = [f"grid lambdas: {lambdas}"]
    if reached is None:
        notes.append(f"ASHA + TPE never came within {TOLERANCE} of the grid's best {grid_best:.4f}")
    return BenchResult(
        name="search",
        description=f"epochs ASHA + TPE spend to reach within {TOLERANCE} {METRIC} of the full grid's best",
        headers=["search", "trials", "epochs", f"best {METRIC}", "epochs to reach", "sweep s"],
        rows=rows,
        figures={"fraction_of_grid_epochs": fraction, "grid_epochs": float(grid_epochs),
                 "asha_epochs_total": float(asha_total), "asha_epochs_to_reach": float(reached or math.nan),
                 "grid_best": grid_best, "asha_best": asha_best, "asha_total_fraction": asha_total / grid_epochs},
        targets=[Target("fraction_of_grid_epochs", "<=", TARGET_FRACTION)],
        settings={"spec": SPEC, "overrides": reduced, "grid_points": points, "asha_trials": trials,
                  "tolerance": TOLERANCE},
        notes=notes,
    )
