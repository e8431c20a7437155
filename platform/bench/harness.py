"""Shared machinery of the benchmarks: a local Ray started and stopped per benchmark, sweeps run through the
platform's own ``build_tuner`` into temporary storage, their results tables, and interleaved timing."""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PLUGIN = "platform.bench.fixed_work"


def quiet_environment() -> None:
    """No usage reporting, and no Tune warning per forced experiment snapshot (fast epochs trigger it)."""
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # The legacy reporter honours verbose=0 (the new one still prints a configuration box per sweep).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextmanager
def local_ray(num_cpus: float = 2, num_gpus: float = 0) -> Iterator[None]:
    """A local Ray for one benchmark (logical GPUs allowed), shut down afterwards.

    Workers import ``platform`` from the repository root (PYTHONPATH) and load the benchmark trainer as a
    trainer plugin (``SEGSWEEP_PLUGINS``), as the trial path looks trainers up by name in the worker.
    """
    import ray

    quiet_environment()
    if ray.is_initialized():
        raise RuntimeError("a Ray session is already running; benchmarks start their own local Ray")
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    plugins = ",".join(p for p in (os.environ.get("SEGSWEEP_PLUGINS", ""), PLUGIN) if p)
    # address="local": always a new cluster, never one another process left running on this machine.
    ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False, configure_logging=True,
             runtime_env={"env_vars": {"PYTHONPATH": path, "SEGSWEEP_PLUGINS": plugins}})
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def temporary_storage(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"segsweep-bench-{prefix}-") as directory:
        yield Path(directory)


def load_shipped_spec(relative: str, overrides: list[str]) -> Any:
    """A shipped search space (``search_spaces/...``) with overrides, through the platform's spec loader."""
    from platform.spec import load_spec

    return load_spec(REPO_ROOT / relative, overrides)


def run_sweep(spec: Any, callbacks: list[Any] | None = None) -> tuple[str, float]:
    """Run ``spec`` on the running Ray as ``python -m platform.sweep`` does (``build_tuner``, the results
    callback, the progress callback silenced); returns (experiment location, seconds in ``fit``).

    Raises if any trial errored, with its error text from the trials table.
    """
    from platform.results import read_table
    from platform.storage import experiment_uri, resolve_storage
    from platform.trainers import TRAINERS
    from platform.tuning import build_tuner, default_concurrency

    storage = resolve_storage(spec.storage)
    experiment = experiment_uri(spec.storage, spec.name)
    epochs = TRAINERS.get(spec.trainer).Config.model_validate(spec.fixed).epochs
    concurrent = spec.budget.concurrent or default_concurrency(spec)
    tuner = build_tuner(spec, storage, experiment, epochs, concurrent, stream=io.StringIO(), extra_callbacks=callbacks)
    started = time.monotonic()
    tuner.fit()
    elapsed = time.monotonic() - started
    rows = read_table(experiment, "trials").to_pylist()
    failed = [f"{r['trial_id']}: {r.get('error')}" for r in rows if r.get("status") == "ERROR"]
    if failed:
        raise RuntimeError(f"sweep {spec.name}: {len(failed)} trial(s) failed: " + "; ".join(failed[:3]))
    if len(rows) < spec.trial_count():
        raise RuntimeError(f"sweep {spec.name}: {len(rows)} of {spec.trial_count()} trials recorded")
    return experiment, elapsed


def trial_rows(experiment: str) -> list[dict[str, Any]]:
    from platform.results import read_table

    return read_table(experiment, "trials").to_pylist()


def epoch_rows(experiment: str) -> list[dict[str, Any]]:
    """Every reported epoch of an experiment in the order the driver received them (``_seq``)."""
    from platform.results import read_table

    rows = read_table(experiment, "epochs").to_pylist()
    rows.sort(key=lambda r: r["_seq"])
    return rows


def interleaved(runs: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Call each of ``runs`` (returning a measured time) ``warmup`` times, then ``repeats`` times interleaved
    A B, B A, A B ... (the order alternates, so slow drift of the machine hits every run alike).

    Returns each run's measurements (the warm-ups dropped).
    """
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(repeats):
        for name in names if index % 2 == 0 else reversed(names):
            times[name].append(runs[name]())
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
