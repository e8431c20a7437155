"""One trial: resolve its config, seed and fold, build the trainer, run the epoch loop.

``workers_per_trial == 1`` runs in the Tune trial process (no Train controller start-up);
more workers run under a Ray Train ``TorchTrainer`` (platform.distributed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search.repeater import TRIAL_INDEX

from platform.space import trial_params
from platform.spec import SweepSpec
from platform.trainers import TrainerConfig
from platform.worker import choose_device, quiet_ray_logs, run_in_process


def resolve(spec: SweepSpec, config: dict[str, Any]) -> tuple[TrainerConfig, int, int | None]:
    """The trainer Config, seed and fold of a Tune config (sampled axes plus the repeat index)."""
    trainer_config = spec.trainer_class().Config.model_validate({**spec.fixed, **trial_params(spec.search, config)})
    seed, fold = spec.repeats.combos()[int(config.get(TRIAL_INDEX, 0))]
    return trainer_config, seed, fold


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

    def report(metrics: dict[str, Any], directory: Path | None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory) if directory else None)

    run_in_process(spec, trainer_config, seed=seed, fold=fold, device=choose_device(resources.gpus_per_worker),
                   checkpoint=tune.get_checkpoint(), report=report, experiment_uri=experiment_uri, trial_id=trial_id)
