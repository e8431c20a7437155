"""What both execution paths of a trial share (in the Tune trial process, or on each Ray Train worker): the
process guards (threads, memory limit, quiet Ray logs), the artifact sink, and ``run_in_process``, the one place
a trainer is built, restored from its checkpoint and run through the epoch loop."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from platform.acceleration import configure_process
from platform.checkpoints import BestStore
from platform.engine import Report, restore_checkpoint, run_epochs
from platform.hooks import load_hook
from platform.monitoring import ResourceUsage, TrialLog
from platform.results import CONFIG_KEY
from platform.spec import SweepSpec
from platform.storage import copy_to_storage, join
from platform.trainers import TRAINERS, Trainer, TrainerConfig


def choose_device(gpus_per_worker: float) -> torch.device:
    """The one place a device is chosen: CUDA when the trial was given a GPU and one is visible."""
    if gpus_per_worker > 0 and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def limit_threads(cpus: float) -> None:
    """Keep torch within the trial's CPU allocation (oversubscription slows every concurrent trial)."""
    torch.set_num_threads(max(1, int(cpus)))


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


def artifact_sink(experiment_uri: str, trial_id: str) -> Callable[[Trainer, str], list[dict[str, str]]]:
    """A function that saves a trainer's images of a split and copies them to ``<experiment>/artifacts/<trial>/``."""

    def sink(trainer: Trainer, split: str) -> list[dict[str, str]]:
        with tempfile.TemporaryDirectory(prefix="artifacts-") as local:
            rows = trainer.save_artifacts(Path(local), split)
            destination = join(experiment_uri, "artifacts", trial_id)
            for row in rows:
                row["path"] = copy_to_storage(Path(row["path"]), destination)
        return rows

    return sink


def quiet_ray_logs() -> None:
    """Ray logs every persisted checkpoint at INFO; the sweep's own progress line is what users read."""
    for name in ("ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_in_process(spec: SweepSpec, trainer_config: TrainerConfig, *, seed: int, fold: int | None,
                   device: torch.device, checkpoint: Any, report: Report, experiment_uri: str, trial_id: str,
                   rank: int = 0, world_size: int = 1,
                   wrap: Callable[[Trainer], Callable[[str, Any], Any]] | None = None) -> None:
    """Build the trainer (from ``checkpoint``, a Ray Checkpoint, when given), wrap it for DDP, run the epochs.

    Rank 0 evaluates and saves the images; every rank reports, as Ray Train requires. Besides the engine's own
    hooks: each worker's resource figures and log (platform.monitoring), then the spec's ``runtime.hooks``; rank 0
    stores the best networks once in ``<experiment>/artifacts/<trial>/`` (platform.checkpoints.BestStore)."""
    quiet_ray_logs()
    limit_threads(spec.resources.cpus_per_worker)
    runtime = spec.runtime
    configure_process(runtime, device)
    with memory_limit(spec.resources.memory_gb):
        trainer = TRAINERS.get(spec.trainer)(trainer_config, spec.data, seed=seed, fold=fold, device=device,
                                             rank=rank, world_size=world_size, runtime=runtime)
        trainer.use_prefetch(runtime.prefetch_depth(device), runtime.prefetch_workers(spec.resources.cpus_per_worker))
        try:
            if checkpoint is not None:
                restore_checkpoint(trainer, checkpoint)
            if wrap is not None and world_size > 1:
                trainer.wrap_networks(wrap(trainer))
            sink = artifact_sink(experiment_uri, trial_id) if rank == 0 else None
            first = spec.objectives[0]
            folder = join(experiment_uri, "artifacts", trial_id)  # the trial's pictures, log and best networks
            hooks = [ResourceUsage(), TrialLog(folder, rank), *(load_hook(path) for path in runtime.hooks)]
            run_epochs(trainer, _with_config(report, trainer_config), artifacts=sink, evaluate=rank == 0,
                       select=(first.metric, first.mode), checkpoint_every=runtime.checkpoint_every,
                       checkpoint_interval_s=runtime.checkpoint_interval_s, hooks=hooks,
                       best_store=BestStore(folder) if rank == 0 else None)
        finally:
            trainer.close_samplers()  # a reused actor runs the next trial in this process


def _with_config(report: Report, trainer_config: TrainerConfig) -> Report:
    """``report`` that adds the trial's validated config to its first result: the driver records it from there
    instead of validating the config again."""
    pending = [trainer_config.model_dump_json(by_alias=True)]

    def first_with_config(metrics: dict[str, Any], directory: Path | None) -> None:
        report({**metrics, CONFIG_KEY: pending.pop()} if pending else metrics, directory)

    return first_with_config
