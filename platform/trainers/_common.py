"""What the base trainer is built from and every trainer imports: the Config fields every trainer has, the metric
stems common to all, the per-process case cache, and two small state helpers. Re-exported by
``platform.trainers.base``; modules of this package whose name starts with ``_`` are helpers, not trainers."""

from __future__ import annotations

import functools
import warnings
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.strictnum import refuse_bool_numbers


class TrainerConfig(BaseModel):
    """Fields every trainer Config has; subclasses add the paper's hyperparameters.

    Names follow one scheme across trainers: ``lr_<net>``, ``<net>_channels`` (``g`` generator or style network,
    ``s`` segmenter, ``d`` discriminator). ``RENAMED`` maps a field's old name to its new one: the old name is still
    accepted, with a deprecation message (the spec loader names the file and line).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    RENAMED: ClassVar[dict[str, str]] = {}

    epochs: int = Field(120, ge=1, description="training epochs")

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any) -> Any:
        # ``epochs: true`` would otherwise train 1 epoch (pydantic reads a bool as an int).
        return refuse_bool_numbers(cls, data)

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls.RENAMED:
            return data
        data = dict(data)
        for old, new in cls.RENAMED.items():
            if old in data:
                if new in data:
                    raise ValueError(f"{old!r} is the old name of {new!r}; give only {new!r}")
                warnings.warn(f"{cls.__module__.rsplit('.', 1)[-1]}: {old!r} is now {new!r}", DeprecationWarning,
                              stacklevel=2)
                data[new] = data.pop(old)
        return data


# How each metric reads (by its name's second part: ``val/<stem>/...``): whether larger or smaller is better, and
# its kind. A trainer adds its own stems in ``METRICS``; a name whose stem is declared nowhere is a contract
# error (tests/trainers/test_contract.py), so no reader ever guesses a direction from a name.
COMMON_METRICS: dict[str, tuple[str, str]] = {
    "dice": ("max", "overlap"), "hd95": ("min", "distance"), "asd": ("min", "distance"), "mhd": ("min", "distance"),
    "params": ("none", "count"),
    "iterations": ("none", "count"), "lr": ("none", "schedule"), "selected_epoch": ("none", "count"),
    "epoch": ("none", "count"),  # selection/epoch: the epoch count, reported only in epochs eligible for selection
}


@functools.lru_cache(maxsize=8)
def cached_cases(data_json: str, fold: int | None) -> tuple[tuple[Case, ...], tuple[Case, ...], tuple[Case, ...]]:
    """(train, val, test) cases of a data config, loaded (aligned, normalized by ``data.intensity``) once per
    process: reused Tune actors and the trials of one sweep skip the NIfTI reads."""
    from platform.data.datasets import load_cases, split_cases
    from platform.data.intensity import normalize_cases

    data = DataConfig.model_validate_json(data_json)
    parts = normalize_cases(data.intensity, data.intensity_nonzero, *split_cases(load_cases(data), data, fold=fold))
    train, val, test = (tuple(part) for part in parts)
    return train, val, test


def unwrap(net: nn.Module) -> nn.Module:
    """The module inside a DDP or ``CompiledNet`` wrapper, however deep (or the module itself)."""
    while isinstance(getattr(net, "module", None), nn.Module):
        net = net.module
    return net


class GeneratorState:
    """A ``torch.Generator`` seen as a checkpointable (``state_dict`` / ``load_state_dict``)."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["state"])
