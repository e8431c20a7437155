"""A trial on several workers: Ray Train ``TorchTrainer`` (Train V2), DDP per network.

The Tune trial runs ``fit_distributed`` as a driver: it builds and fits a TorchTrainer whose workers each
build the trainer, wrap every network with ``prepare_model`` (gloo on CPU, nccl on GPU), and report every
epoch. ``TuneReportCallback`` forwards rank 0's metrics and checkpoints to the Tune trial.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist
from ray.train.torch import TorchConfig, TorchTrainer, prepare_model
from ray.tune.integration.ray_train import TuneReportCallback
from torch import nn

from platform.spec import SweepSpec
from platform.storage import join
from platform.trainers import TRAINERS
from platform.worker import run_in_process


def _wrapper(trainer: Any):
    """DDP per network, with the options the trainer asks for (e.g. no buffer broadcast for a discriminator)."""

    def wrap(name: str, net: nn.Module) -> nn.Module:
        if not any(p.requires_grad for p in net.parameters()):
            return net
        return prepare_model(net, move_to_device=True, parallel_strategy_kwargs=trainer.ddp_kwargs(name))

    return wrap


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Train worker."""
    spec = SweepSpec.model_validate_json(loop_config["spec_json"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    trainer_config = TRAINERS.get(spec.trainer).Config.model_validate(loop_config["trainer_config"])

    def report(metrics: dict[str, Any], directory: Path | None) -> None:
        # Proof that every worker trained: the all-reduced count of iterations and the world size.
        done = torch.tensor([metrics.get("train/iterations", 0.0)], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(done)
        metrics = {**metrics, "train/iterations_all_workers": float(done.item()), "train/workers": float(world)}
        checkpoint = ray.train.Checkpoint.from_directory(str(directory)) if directory and rank == 0 else None
        ray.train.report(metrics, checkpoint=checkpoint)

    run_in_process(spec, trainer_config, seed=loop_config["seed"], fold=loop_config["fold"],
                   device=ray.train.torch.get_device(), checkpoint=ray.train.get_checkpoint(), report=report,
                   experiment_uri=loop_config["experiment_uri"], trial_id=loop_config["trial_id"], rank=rank,
                   world_size=world, wrap=_wrapper)


def fit_distributed(spec: SweepSpec, trainer_config: Any, *, seed: int, fold: int | None, experiment_uri: str,
                    trial_id: str) -> None:
    """Fit one trial's TorchTrainer; metrics reach Tune through ``TuneReportCallback``."""
    resources = spec.resources
    use_gpu = resources.gpus_per_worker > 0
    per_worker = {"CPU": resources.cpus_per_worker}
    if use_gpu:
        per_worker["GPU"] = resources.gpus_per_worker
    if resources.memory_gb:
        per_worker["memory"] = resources.memory_gb * 2**30
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "spec_json": spec.model_dump_json(),
            "trainer_config": json.loads(trainer_config.model_dump_json(by_alias=True)),
            "seed": seed,
            "fold": fold,
            "experiment_uri": experiment_uri,
            "trial_id": trial_id,
        },
        torch_config=TorchConfig(backend="nccl" if use_gpu and torch.cuda.is_available() else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=resources.workers_per_trial, use_gpu=use_gpu,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            # A stable name per trial: a resumed trial's TorchTrainer finds its own checkpoints again.
            name=f"train-{trial_id}",
            storage_path=join(experiment_uri, "train"),  # before a URI's query (endpoint_override=...)
            callbacks=[TuneReportCallback()],
            failure_config=ray.train.FailureConfig(max_failures=2),
        ),
    )
    trainer.fit()
