"""A tiny trainer whose faults are Config fields, for the fault-injection tests (tests/test_faults.py).

Importing this module registers it as ``fault``. Sweeps load it in every process with
``SEGSWEEP_PLUGINS=tests.fault_trainer`` (platform/trainers/__init__.py). It reads no data: one linear layer
fits fixed random points, so a trial costs only the platform's own overhead.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from platform.data.config import DataConfig
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig, unwrap

Fault = Literal["none", "raise", "nan", "memory", "kill", "corrupt"]


class FaultConfig(TrainerConfig):
    epochs: int = Field(4, ge=1, description="training epochs")
    iterations: int = Field(3, ge=1, description="optimizer steps per epoch")
    fault: Fault = Field("none", description="raise, nan (loss), memory (allocate memory_mb), kill (SIGKILL this "
                         "worker), corrupt (overwrite the newest checkpoint under `checkpoints`, then raise)")
    fault_epoch: int = Field(2, ge=1, description="1-based epoch at whose start the fault fires (nan: from it on)")
    fault_rank: int = Field(0, ge=0, description="the Train worker rank that fails")
    once_dir: str | None = Field(None, description="fire only while <once_dir>/<fault> is absent, then create it")
    fault_delay_s: float = Field(0.0, ge=0, description="wait before firing (lets Train record the last report)")
    memory_mb: int = Field(2048, ge=1, description="memory: the allocation, in MB")
    checkpoints: str | None = Field(None, description="corrupt: the Train runs' directory (<experiment>/train)")
    epoch_s: float = Field(0.0, ge=0, description="sleep this long in each epoch (a trial that lasts a while)")
    nodes_dir: str | None = Field(None, description="append '<trial id>' to <nodes_dir>/<Ray node id> when built: "
                                  "which node each trial (and each retry of it) ran on")
    kernels_dir: str | None = Field(None, description="write the instruction set of the CPU kernels this worker runs "
                                    "(torch's, e.g. AVX2) to <kernels_dir>/<trial id> when built")


def newest_state_file(root: Path) -> Path:
    """The ``state.pt`` of the newest ``checkpoint_*`` directory under ``root`` (names sort by report order)."""
    files = sorted(root.rglob("checkpoint_*/state.pt"), key=lambda path: path.parent.name)
    if not files:
        raise FileNotFoundError(f"no checkpoint under {root}")
    return files[-1]


@TRAINERS.register("fault")
class FaultTrainer(Trainer):
    """Fits ``y = x @ w`` with SGD; ``val/dice`` is the fraction of epochs done, so a finished trial ends at 1."""

    Config = FaultConfig
    USES_DATA = False
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {"loss": ("min", "loss"), "steps": ("none", "count"),
                                                      "start_epoch": ("none", "count")}
    config: FaultConfig

    def __init__(self, config: FaultConfig, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        generator = torch.Generator().manual_seed(self.seed)
        self.x = torch.randn(16, 4, generator=generator)
        self.y = self.x @ torch.randn(4, 1, generator=generator)
        torch.manual_seed(self.seed)
        self.nets = {"net": nn.Linear(4, 1)}
        self.optimizer = torch.optim.SGD(self.nets["net"].parameters(), lr=0.05)
        self.epoch = 0
        self.steps = 0
        self.start_epoch = 0  # the epoch this process started from: > 0 after a restore
        if config.nodes_dir:
            import ray
            from ray import tune

            node = ray.get_runtime_context().get_node_id()
            with open(Path(config.nodes_dir) / node, "a") as record:
                record.write(f"{tune.get_context().get_trial_id()}\n")
        if config.kernels_dir:
            from ray import tune

            trial = tune.get_context().get_trial_id()
            (Path(config.kernels_dir) / trial).write_text(torch.backends.cpu.get_cpu_capability())

    def _fire(self, epoch: int) -> None:
        cfg = self.config
        if cfg.fault in ("none", "nan") or epoch + 1 != cfg.fault_epoch or self.rank != cfg.fault_rank:
            return
        if cfg.once_dir:
            marker = Path(cfg.once_dir) / cfg.fault
            if marker.exists():
                return
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{cfg.fault} at epoch {epoch + 1}, rank {self.rank}, pid {os.getpid()}\n")
        time.sleep(cfg.fault_delay_s)
        if cfg.fault == "raise":
            raise RuntimeError(f"injected failure at epoch {epoch + 1}")
        if cfg.fault == "memory":
            hog = torch.ones(cfg.memory_mb * 2**20 // 4)
            del hog
        elif cfg.fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif cfg.fault == "corrupt":
            import ray.train

            # This trial's Train run is <experiment>/train/train-<trial id> (platform.distributed).
            run = Path(cfg.checkpoints or ".") / ray.train.get_context().get_experiment_name()
            state = newest_state_file(run)
            state.write_bytes(b"not a checkpoint")
            raise RuntimeError(f"injected failure at epoch {epoch + 1} after corrupting {state}")

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self._fire(epoch)
        cfg = self.config
        time.sleep(cfg.epoch_s)
        total = 0.0
        for _ in range(cfg.iterations):
            loss = F.mse_loss(self.nets["net"](self.x), self.y)
            if cfg.fault == "nan" and epoch + 1 >= cfg.fault_epoch:
                loss = loss * float("nan")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            total += float(loss.detach())
        self.epoch = epoch + 1
        return {"train/loss": total / cfg.iterations, "train/iterations": float(cfg.iterations),
                "train/steps": float(self.steps), "train/start_epoch": float(self.start_epoch)}

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, float]:
        loss = F.mse_loss(self.net("net")(self.x), self.y)
        return {f"{split}/dice": self.epoch / self.config.epochs, f"{split}/loss": float(loss)}

    def state_dict(self) -> dict[str, Any]:
        return {"net": unwrap(self.nets["net"]).state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "steps": self.steps, "rng": self.rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.nets["net"]).load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = self.start_epoch = state["epoch"]
        self.steps = state["steps"]
        self.load_rng_state(state["rng"])

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        return {"train/loss", "train/iterations", "train/steps", "train/start_epoch", "val/dice", "val/loss"}
