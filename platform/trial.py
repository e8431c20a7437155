"""One trial: resolve its config, seed and fold, build the trainer, run the epoch loop.

``workers_per_trial == 1`` runs in the Tune trial process (no Train controller start-up);
more workers run under a Ray Train ``TorchTrainer`` (platform.distributed).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune
from ray.tune.search.repeater import TRIAL_INDEX

from platform.engine import load_checkpoint, run_epochs
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
    trainer = TRAINERS.get(spec.trainer)(trainer_config, spec.data, seed=seed, fold=fold,
                                         device=choose_device(resources.gpus_per_worker))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            load_checkpoint(trainer, Path(directory))

    def report(metrics: dict[str, Any], directory: Path | None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory) if directory else None)

    run_epochs(trainer, report, artifacts=artifact_sink(experiment_uri, trial_id))
