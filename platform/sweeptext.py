"""What a sweep prints: the plan (``--dry-run``), the ranked trials at the end, the trials retried after an
infrastructure failure, and a storage failure in words."""

from __future__ import annotations

import errno
import math
from typing import Any

from platform.spec import SweepSpec


def plan_text(spec: SweepSpec, experiment: str, available: dict[str, float] | None = None) -> str:
    """The resolved plan that --dry-run prints; ``available`` resources name the derived concurrency."""
    from platform.space import describe_axis

    config = spec.base_config()
    lines = [f"experiment   {spec.name}  ->  {experiment}", f"trainer      {spec.trainer}",
             "config       " + ", ".join(f"{k}={v}" for k, v in config.model_dump(by_alias=True).items()),
             "data         " + ", ".join(f"{k}={v}" for k, v in spec.data.model_dump().items() if v is not None)]
    data = spec.data
    everything = data.domains or ["every domain of the manifest"]
    split = "the manifest's split column if any, else " if data.dataset == "manifest" else ""
    lines.append(f"domains      train on {data.train_domains or everything}, evaluate on "
                 f"{data.eval_domains or everything}; splits: {split}val {data.val_fraction:g}"
                 + (f" ({data.folds} folds)" if data.folds else "")
                 + f", test {data.test_fraction:g} of each domain's subjects; intensity {data.intensity}"
                 + (" (non-zero voxels)" if data.intensity_nonzero else ""))
    lines.append("search axes  " + ("none" if not spec.search else ""))
    lines += [f"  - {describe_axis(key, axis)}" for key, axis in spec.search.items()]
    searcher = spec.searcher
    lines.append(f"searcher     optuna/{searcher.sampler} seed={searcher.seed}"
                 + (f", first points {searcher.points_to_evaluate}" if searcher.points_to_evaluate else ""))
    lines.append(f"scheduler    {spec.scheduler.type}" + (
        f" (grace {spec.scheduler.grace_period}, reduction {spec.scheduler.reduction_factor}, max {config.epochs})"
        if spec.scheduler.type == "asha" else ""))
    lines.append("objective    " + ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives))
    combos = spec.repeats.combos()
    lines.append(f"repeats      {len(combos)} per config: " + ", ".join(
        f"seed {s}" + (f"/fold {f}" if f is not None else "") for s, f in combos))
    lines.append(f"trials       {spec.configs_to_sample()} configs x {len(combos)} repeats = {spec.trial_count()}"
                 f", {config.epochs} epochs each at most")
    res = spec.resources
    path = ("in-process" if res.workers_per_trial == 1
            else f"Ray Train TorchTrainer, {res.workers_per_trial} workers (DDP)")
    if spec.budget.concurrent:
        concurrent = str(spec.budget.concurrent)
    elif available is not None:
        from platform.tuning import default_concurrency

        concurrent = (f"{default_concurrency(spec, available)} (as resources allow: {available.get('CPU', 0):g} CPU, "
                      f"{available.get('GPU', 0):g} GPU)")
    else:
        concurrent = "as resources allow"
    lines.append(f"resources    {path}; per worker {res.cpus_per_worker} CPU, {res.gpus_per_worker} GPU; "
                 f"concurrent {concurrent}"
                 + (f"; time budget {spec.budget.time_budget_s}s" if spec.budget.time_budget_s else ""))
    lines.append(f"runtime      {spec.runtime.describe()}")
    return "\n".join(lines)


def results_text(spec: SweepSpec, experiment: str, limit: int = 40) -> str:
    """Trials ranked by the first objective, from the results table."""
    from platform.results import read_table

    rows = read_table(experiment, "trials").to_pylist()
    objective = spec.objectives[0]
    key = f"best/{objective.metric}"

    def rank(row: dict[str, Any]) -> float:
        value = row.get(key)
        if value is None or not math.isfinite(value):
            return math.inf
        return -value if objective.mode == "max" else value

    rows.sort(key=rank)
    extra = [f"best/{o.metric}" for o in spec.objectives[1:]]
    # The test score beside the validation score it was selected on: the best-on-val checkpoint's.
    tests = [column for o in spec.objectives if o.metric.startswith("val/")
             if (column := f"test/best/{o.metric[4:]}") in {k for row in rows for k in row}]
    headers = ["trial_id", "status", *[f"config/{k}" for k in spec.search], "seed",
               *(["fold"] if spec.repeats.folds else []), key, *tests[:1], *extra, *tests[1:], "epochs", "wall_s"]
    table = [[_cell(row.get(h)) for h in headers] for row in rows[:limit]]
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    errors = [f"  {row['trial_id']}: {row.get('error')}" for row in rows if row.get("status") == "ERROR"]
    if errors:
        out += ["errored trials:", *errors]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _storage_failure(exc: BaseException) -> str | None:
    """What a storage failure under ``tuner.fit`` says (``StorageFailed``, or a full disk anywhere in the
    exception's causes), or None for any other exception."""
    from platform.tuning import StorageFailed, storage_reason

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFailed):
            return str(current)
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"the results storage cannot be written ({storage_reason(current)})"
        current = current.__cause__ or current.__context__
    return None


def retried_text(experiment: str) -> str | None:
    """The trials Tune restarted from a checkpoint after the infrastructure failed under them, or None."""
    from platform.results import read_table

    try:
        rows = read_table(experiment, "trials").to_pylist()
    except Exception:  # the summary is a courtesy; the table's own problems are reported where it is read
        return None
    retried = sorted((row["trial_id"], int(row.get("retries") or 0)) for row in rows if row.get("retries"))
    if not retried:
        return None
    return ("retried from their last checkpoint after a lost worker or node: "
            + ", ".join(f"{trial} ({n} time{'s' if n > 1 else ''})" for trial, n in retried))
