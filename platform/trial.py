"""One trial: resolve its config, seed and fold, build the trainer, run the epoch loop.

``workers_per_trial == 1`` runs in the Tune trial process (no Train controller start-up);
more workers run under a Ray Train ``TorchTrainer`` (platform.distributed).
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path
from typing import Any

import ray.exceptions
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


# A trial's last result carries these when its own code failed (an exception in the trainer, a NaN loss): the
# trial ends there, failed, and is never retried (see ``run_trial``).
TRIAL_ERROR_KEY = "trial_error"
TRIAL_TRACEBACK_KEY = "trial_traceback"
TRACEBACK_CHARS = 20_000  # the end of a failed trial's traceback kept (its last frames)
# What the infrastructure raises when a process or node under the trial is gone: an actor or a worker process
# died (SIGKILL, out of memory), a node was lost, an object with it. Tune retries these (``resources.max_failures``).
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ray.exceptions.RayActorError,  # ActorDiedError, ActorUnavailableError
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.ObjectLostError,  # OwnerDiedError, ObjectFetchTimedOutError, ...
    ray.exceptions.RaySystemError,
    ray.exceptions.OutOfMemoryError,  # Ray's memory monitor killed a worker
)


def infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it wraps (``__cause__``, ``__context__``, a RayTaskError's ``cause``),
    says a process or node under the trial was lost, rather than the trial's own code failing."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, INFRASTRUCTURE_ERRORS):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return False


def error_result(spec: SweepSpec, exc: BaseException) -> dict[str, Any]:
    """The last result of a trial whose own code raised ``exc``: the error, its traceback, and NaN for each
    objective (Tune requires every result to name the searched metrics)."""
    return {**{o.metric: math.nan for o in spec.objectives},
            TRIAL_ERROR_KEY: f"{type(exc).__name__}: {exc}"[:2000],
            TRIAL_TRACEBACK_KEY: traceback.format_exc()[-TRACEBACK_CHARS:]}


def stop_on_trial_error(trial_id: str, result: dict[str, Any]) -> bool:
    """Tune's stopping condition: a trial that reported its own error is finished (scheduler and searcher never
    rank the error result; the searcher is told the trial failed)."""
    return TRIAL_ERROR_KEY in result


def run_trial(config: dict[str, Any], spec_json: str, experiment_uri: str) -> None:
    """The Tune function trainable.

    Tune retries a trial that raises, up to ``resources.max_failures`` times, from its last checkpoint: right for a
    lost node or a killed worker, wrong for an error of the trial's own code, which would fail again the same way.
    So an exception of the trial's own is reported as its last result (``error_result``), which ends it as failed;
    only what the infrastructure raises (``infrastructure_failure``) propagates to Tune, to be retried."""
    spec = SweepSpec.model_validate_json(spec_json)
    try:
        _run_trial(config, spec, experiment_uri)
    except Exception as exc:
        if infrastructure_failure(exc):
            raise
        tune.report(error_result(spec, exc))


def _run_trial(config: dict[str, Any], spec: SweepSpec, experiment_uri: str) -> None:
    quiet_ray_logs()
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
