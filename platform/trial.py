"""One trial: resolve its config, seed and fold, build the trainer, run the epoch loop.

``workers_per_trial == 1`` runs in the Tune trial process (no Train controller start-up);
more workers run under a Ray Train ``TorchTrainer`` (platform.distributed).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from ray import tune
from ray.tune.search.repeater import TRIAL_INDEX

from platform.engine import restore_checkpoint, run_epochs
from platform.results import copy_to_storage
from platform.space import decode_config
from platform.spec import SweepSpec
from platform.trainers import TRAINERS, Trainer, TrainerConfig


def resolve(spec: SweepSpec, config: dict[str, Any]) -> tuple[TrainerConfig, int, int | None]:
    """The trainer Config, seed and fold of a Tune config (sampled axes plus the repeat index)."""
    params = decode_config(spec.search, {key: config[key] for key in spec.search if key in config})
    trainer_cls = TRAINERS.get(spec.trainer)
    trainer_config = trainer_cls.Config.model_validate({**spec.fixed, **params})
    seed, fold = spec.repeats.combos()[int(config.get(TRIAL_INDEX, 0))]
    return trainer_config, seed, fold


def choose_device(gpus_per_worker: float) -> torch.device:
    """The one place a device is chosen: CUDA when the trial was given a GPU and one is visible."""
    if gpus_per_worker > 0 and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def limit_threads(cpus: float) -> None:
    """Keep torch within the trial's CPU allocation (oversubscription slows every concurrent trial)."""
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)


def _data_bytes() -> int | None:
    """This process's data segment (VmData: heap and private writable mappings), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _allocation_failure(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


@contextlib.contextmanager
def memory_limit(gb: float | None) -> Iterator[None]:
    """Let this process allocate at most ``gb`` GB more than it holds now (``resources.memory_gb``; Linux
    ``RLIMIT_DATA``). An allocation over it becomes a MemoryError that names the limit, so the trial errors
    with a readable reason instead of the node running out of memory. No-op without a limit or off Linux."""
    current = _data_bytes() if gb else None
    if current is None:
        yield
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = current + int(gb * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not _allocation_failure(exc):
            raise
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise MemoryError(f"the trial exceeded its memory limit (resources.memory_gb={gb:g}): {detail}") from exc
    finally:
        # Reused actors run the next trial in this process: lift the cap (a new trial sets its own).
        resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))


def artifact_sink(experiment_uri: str, trial_id: str):
    """A function that saves a trainer's images and copies them to ``<experiment>/artifacts/<trial>/``."""

    def sink(trainer: Trainer) -> list[dict[str, str]]:
        with tempfile.TemporaryDirectory(prefix="artifacts-") as local:
            rows = trainer.save_artifacts(Path(local))
            destination = f"{experiment_uri.rstrip('/')}/artifacts/{trial_id}"
            for row in rows:
                row["path"] = copy_to_storage(Path(row["path"]), destination)
        return rows

    return sink


def quiet_ray_logs() -> None:
    """Ray logs every persisted checkpoint at INFO; the sweep's own progress line is what users read."""
    for name in ("ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_trial(config: dict[str, Any], spec_json: str, experiment_uri: str) -> None:
    """The Tune function trainable."""
    quiet_ray_logs()
    spec = SweepSpec.model_validate_json(spec_json)
    trainer_config, seed, fold = resolve(spec, config)
    trial_id = tune.get_context().get_trial_id() or "local"
    resources = spec.resources
    if resources.workers_per_trial > 1:
        from platform.distributed import fit_distributed

        fit_distributed(spec, trainer_config, seed=seed, fold=fold, experiment_uri=experiment_uri,
                        trial_id=trial_id)
        return
    limit_threads(resources.cpus_per_worker)

    def report(metrics: dict[str, Any], directory: Path | None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory) if directory else None)

    with memory_limit(resources.memory_gb):
        trainer = TRAINERS.get(spec.trainer)(trainer_config, spec.data, seed=seed, fold=fold,
                                             device=choose_device(resources.gpus_per_worker))
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            restore_checkpoint(trainer, checkpoint)
        run_epochs(trainer, report, artifacts=artifact_sink(experiment_uri, trial_id))
