"""The trainer contract (DESIGN.md section 4) and the ``TRAINERS`` registry.

A trainer owns only the maths of one method: its networks, one training epoch, an evaluation and its state.
The engine owns the loop, reporting and checkpoints; the distributed layer wraps ``networks()`` for DDP.
"""

from __future__ import annotations

import functools
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from platform.data.config import DataConfig
from platform.data.manifest import Case, load_cases, split_cases
from platform.registry import Registry


class TrainerConfig(BaseModel):
    """Fields every trainer Config has; subclasses add the paper's hyperparameters."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    epochs: int = Field(120, ge=1, description="training epochs")


TRAINERS: Registry[type[Trainer]] = Registry("trainer")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (the data sampler has its own generator)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@functools.lru_cache(maxsize=8)
def cached_cases(data_json: str, fold: int | None) -> tuple[tuple[Case, ...], tuple[Case, ...]]:
    """(train, val) cases of a data config, loaded (and aligned) once per process: reused Tune actors and
    the trials of one sweep skip the NIfTI reads."""
    data = DataConfig.model_validate_json(data_json)
    train, val = split_cases(load_cases(data), data, fold=fold)
    return tuple(train), tuple(val)


def unwrap(net: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return getattr(net, "module", net)


class Trainer(ABC):
    """Base class: subclasses set ``Config`` and fill ``self.nets`` in ``__init__``."""

    Config: ClassVar[type[TrainerConfig]] = TrainerConfig

    def __init__(self, config: TrainerConfig, data: DataConfig, *, seed: int = 0, fold: int | None = None,
                 device: torch.device | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.config = config
        self.data_config = data
        self.seed = seed
        self.fold = fold
        self.device = device or torch.device("cpu")
        self.rank = rank
        self.world_size = world_size
        self.nets: dict[str, nn.Module] = {}

    def load_split(self) -> tuple[list[Case], list[Case]]:
        """This trial's (train, val) cases (its fold), from the per-process cache."""
        train, val = cached_cases(self.data_config.model_dump_json(), self.fold)
        return list(train), list(val)

    def domain_order(self, cases: list[Case]) -> list[str]:
        """Domains in index order: the spec's ``data.domains``, else those of ``cases`` sorted."""
        return list(self.data_config.domains) or sorted({c.domain for c in cases})

    @staticmethod
    def first_per_domain(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first evaluated item (``item["case"]``) of each domain, for one picture per domain."""
        firsts: dict[str, dict[str, Any]] = {}
        for item in items:
            firsts.setdefault(item["case"].domain, item)
        return list(firsts.values())

    # --- networks -------------------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """Every network by name (possibly DDP-wrapped)."""
        return self.nets

    def wrap_networks(self, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each network by ``wrap(name, net)`` (DDP); optimizers keep the same parameters."""
        self.nets = {name: wrap(name, net) for name, net in self.nets.items()}

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        """DistributedDataParallel options for network ``name`` (see platform.distributed)."""
        return {}

    def net(self, name: str) -> nn.Module:
        """The unwrapped network ``name`` (for calls that must not trigger DDP synchronisation)."""
        return unwrap(self.nets[name])

    # --- the maths ------------------------------------------------------------------------------------------
    @abstractmethod
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (0-based) and return ``train/...`` metrics."""

    @abstractmethod
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Evaluate on ``split`` and return ``split/...`` metrics, including ``split/dice``."""

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:  # noqa: B027 - optional hook
        """Hook after evaluation (e.g. plateau schedulers on a validation loss)."""

    def save_artifacts(self, out_dir: Path) -> list[dict[str, str]]:
        """Write images of the last evaluation under ``out_dir``; rows of ``path``, ``kind``, ``domain``."""
        return []

    # --- state ----------------------------------------------------------------------------------------------
    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: networks, optimizers, schedulers, RNG, epoch."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of ``state_dict``."""

    @staticmethod
    def rng_state() -> dict[str, Any]:
        return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}

    @staticmethod
    def load_rng_state(state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])

    # --- description for the spec loader --------------------------------------------------------------------
    @classmethod
    def config_keys(cls) -> set[str]:
        """Names a spec may use for Config fields (field names and their aliases)."""
        keys = set()
        for name, field in cls.Config.model_fields.items():
            keys.add(field.alias or name)
            keys.add(name)
        return keys

    @classmethod
    @abstractmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        """Every metric name this trainer reports for ``config`` on ``data``."""

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        """Config overrides that make a trial tiny (``--smoke``)."""
        return {"epochs": 2}
