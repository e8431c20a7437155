"""``bench_fixed_work``: a benchmark-only trainer whose epochs are a known, fixed amount of work.

It is a real :class:`~platform.trainers.base.Trainer` (networks, optimizer, state dict, metric names) and runs
through the platform's own trial path and engine, checkpoints included, so wall time minus time in epochs is
exactly the platform's machinery. The work is ``time.sleep(work_s)`` per epoch rather than computation on
purpose: a sleep takes the same time however loaded the two cores are, so the driver's and Ray's own CPU use
show up as overhead instead of slowing the "work" (and being hidden inside it); it also costs the same in the
bare Tune baseline, and it needs no synchronisation across DDP ranks. Its network is a small linear layer so
checkpoints and DDP wrapping have something real to handle (a real trainer's checkpoint is larger).

Registered when this module is imported: never by the platform itself; in Ray workers as a trainer plugin
(``SEGSWEEP_PLUGINS``, which :func:`platform.bench.harness.local_ray` sets for its workers).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from platform.data.config import DataConfig
from platform.spec import SweepSpec, check_against_trainer
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig, seed_everything  # the package loads plugins

NAME = "bench_fixed_work"


class Config(TrainerConfig):
    """Fixed work per epoch; ``tag`` is a search axis that changes nothing (a sweep needs one to sample)."""

    epochs: int = Field(3, ge=1, description="epochs, each one report")
    work_s: float = Field(0.2, ge=0, description="seconds of work (a sleep) per epoch")
    tag: float = Field(0.0, description="sampled by the benchmark sweeps; no effect on the work")


class FixedWorkTrainer(Trainer):
    """Sleeps ``work_s`` per epoch; reports a constant ``val/dice``."""

    Config = Config
    USES_DATA = False
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {"work_s": ("none", "time")}

    def __init__(self, config: Config, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        seed_everything(self.seed)
        self.nets["net"] = nn.Linear(16, 16).to(self.device)
        self.optimizer = torch.optim.SGD(self.nets["net"].parameters(), lr=0.01)
        self.epoch = 0

    def train_epoch(self, epoch: int) -> dict[str, float]:
        assert isinstance(self.config, Config)
        started = time.perf_counter()
        time.sleep(self.config.work_s)
        self.epoch = epoch + 1
        return {"train/work_s": time.perf_counter() - started, "train/iterations": 1.0}

    def evaluate(self, split: str = "val") -> dict[str, float]:
        return {f"{split}/dice": 0.5}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "net": self.net("net").state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.net("net").load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_rng_state(state["rng"])

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        return {"val/dice", "train/work_s", "train/iterations"}


TRAINERS.register(NAME)(FixedWorkTrainer)


def sweep_spec(name: str, storage: Path, *, trials: int, epochs: int, work_s: float, workers: int = 1,
               cpus: float = 1.0, gpus: float = 0.0, concurrent: int | None = None,
               runtime: dict[str, Any] | None = None) -> SweepSpec:
    """A sweep of ``trials`` fixed-work trials (random ``tag``, no early stopping), checked as a spec file is."""
    spec = SweepSpec.model_validate({
        "name": name, "trainer": NAME, "fixed": {"epochs": epochs, "work_s": work_s},
        "search": {"tag": {"uniform": [0.0, 1.0]}}, "searcher": {"sampler": "random", "seed": 0},
        "scheduler": {"type": "none"}, "budget": {"trials": trials, "concurrent": concurrent},
        "resources": {"workers_per_trial": workers, "cpus_per_worker": cpus, "gpus_per_worker": gpus},
        "storage": str(storage), "runtime": runtime or {},
    })
    check_against_trainer(spec, f"<benchmark sweep {name}>", {})
    return spec
