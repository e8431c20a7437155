"""The base trainer's step loop: each step's scalars averaged over the steps that reported them, epoch-level
scalars beside them, and the reported names checked against ``metric_names`` in both directions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import torch
from pydantic import Field

from platform.data.config import DataConfig
from platform.trainers.base import Trainer, TrainerConfig, step_mean


class StepConfig(TrainerConfig):
    epochs: int = Field(2, ge=1, description="epochs")
    declare: list[str] = Field([], description="extra names metric_names declares")
    skip: list[str] = Field([], description="names metric_names leaves out")


class CountingTrainer(Trainer):
    """Step i reports ``loss = i`` and, on even steps only, ``even = 10 * i``; the epoch adds ``train/lr``."""

    Config = StepConfig
    USES_DATA: ClassVar[bool] = False

    def __init__(self, config: StepConfig, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        self.count = 0

    def train_batches(self, epoch: int) -> Iterator[int]:
        yield from range(self.iterations)

    def train_step(self, batch: int) -> dict[str, torch.Tensor]:
        self.count += 1
        reported = {"loss": torch.tensor(float(batch))}
        if batch % 2 == 0:
            reported["even"] = torch.tensor(10.0 * batch)
        return reported

    def end_train_epoch(self, epoch: int) -> dict[str, float]:
        return {"train/lr": 0.5}

    def evaluate(self, split: str = "val") -> dict[str, float]:
        return {f"{split}/dice": 1.0}

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, StepConfig)
        names = {"train/loss", "train/even", "train/lr", "train/iterations", "val/dice", *config.declare}
        return names - set(config.skip)


def make(**fields: Any) -> CountingTrainer:
    # 8 patches of batch 2: 4 steps per epoch (steps 0..3)
    return CountingTrainer(StepConfig(**fields), DataConfig(patches_per_epoch=8, batch_size=2))


def test_each_scalar_is_the_mean_over_the_steps_that_reported_it() -> None:
    trainer = make()
    metrics = trainer.train_epoch(0)
    assert trainer.count == 4
    # loss: steps 0, 1, 2, 3 -> 1.5; even: steps 0 and 2 only -> (0 + 20) / 2
    assert metrics == {"train/loss": 1.5, "train/even": 10.0, "train/iterations": 4.0, "train/lr": 0.5}


@pytest.mark.parametrize(("fields", "epochs", "message"), [
    ({"skip": ["train/even"]}, 1, r"reports \['train/even'\], which metric_names does not declare"),
    ({"declare": ["train/loss_adv"]}, 2, r"declares \['train/loss_adv'\] in metric_names but never reported"),
])
def test_reported_and_declared_names_must_match_both_ways(fields: dict[str, Any], epochs: int, message: str) -> None:
    trainer = make(**fields)
    with pytest.raises(RuntimeError, match=message):
        for epoch in range(epochs):
            trainer.train_epoch(epoch)


def test_a_resumed_run_is_not_asked_for_the_names_of_epochs_it_did_not_train() -> None:
    trainer = make(declare=["train/only_in_epoch_0"])
    assert trainer.train_epoch(1)["train/loss"] == 1.5  # the last epoch, resumed: no never-reported check


@pytest.mark.parametrize(("values", "expected"), [
    ([1.0, 2.0, 4.0], 7 / 3),
    ([0.1] * 10, 0.1),  # summed in float64: no float32 drift
    ([math.inf, 1.0], math.inf),  # a non-finite step reaches the mean (the engine's loss check sees it)
])
def test_step_mean(values: list[float], expected: float) -> None:
    assert step_mean([torch.tensor(v) for v in values]) == pytest.approx(expected, rel=1e-7)
