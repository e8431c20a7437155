"""The engine's selection protocol: the networks of the epoch best on val are kept, and the test split is scored
once at the end with them (``test/best/...``) and with the last ones (``test/last/...``)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import torch
from pydantic import Field
from torch import nn

from platform.data.config import DataConfig
from platform.engine import evaluate_test, load_checkpoint, run_epochs, save_checkpoint
from platform.results import CASES_KEY, summary_row
from platform.trainers.base import Trainer, TrainerConfig


class ScriptConfig(TrainerConfig):
    epochs: int = Field(5, ge=1, description="epochs")
    weights: list[float] = Field([0.2, 0.9, 0.4, 0.7, 0.3], description="the weight set in each epoch")


class ScriptedTrainer(Trainer):
    """One scalar weight, set to ``weights[epoch]`` by each epoch: val scores it, test scores 10 x it."""

    Config = ScriptConfig
    USES_DATA: ClassVar[bool] = False

    def __init__(self, config: ScriptConfig, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        self.nets["w"] = nn.Linear(1, 1, bias=False)
        self.test_cases = ["one test case"]  # type: ignore[list-item]  # any non-empty test split

    def train_epoch(self, epoch: int) -> dict[str, float]:
        with torch.no_grad():
            self.net("w").weight.fill_(self.config.weights[epoch])
        return {"train/loss": 1.0}

    def evaluate(self, split: str = "val") -> dict[str, float]:
        value = float(self.net("w").weight)
        score = value if split == "val" else 10 * value
        self.last_cases = [{"domain": "d", "subject": "s", "dice": score}]
        return {f"{split}/dice": score}

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        return {"train/loss", "val/dice"}


def run(select: tuple[str, str] = ("val/dice", "max"), **fields: Any) -> tuple[ScriptedTrainer, list[dict]]:
    trainer = ScriptedTrainer(ScriptConfig(**fields), DataConfig())
    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics), select=select)
    return trainer, reports


@pytest.mark.parametrize(("select", "best_epoch", "best_weight"), [
    (("val/dice", "max"), 2, 0.9),
    (("val/dice", "min"), 1, 0.2),
])
def test_test_is_scored_with_the_best_on_val_and_the_last_networks(select: tuple[str, str], best_epoch: int,
                                                                   best_weight: float) -> None:
    trainer, reports = run(select)
    final = reports[-1]
    assert final["test/selected_epoch"] == best_epoch
    assert final["test/best/dice"] == pytest.approx(10 * best_weight)
    assert final["test/last/dice"] == pytest.approx(10 * 0.3)
    assert float(trainer.net("w").weight) == pytest.approx(0.3)  # the last networks stay loaded
    assert not any(key.startswith("test/") for report in reports[:-1] for key in report)
    cases = [row for row in json.loads(final[CASES_KEY]) if row["split"] == "test"]
    assert {(row["checkpoint"], row["epoch"], round(row["dice"], 6)) for row in cases} == {
        ("last", 5, 3.0), ("best", best_epoch, round(10 * best_weight, 6))}
    # The trials row carries the test scores beside best/ and last/ of val.
    row = summary_row([{"epoch": i + 1, **r} for i, r in enumerate(reports)], [select])
    assert row["test/best/dice"] == final["test/best/dice"] and row[f"best/{select[0]}"] == pytest.approx(
        best_weight)


def test_the_best_networks_survive_a_checkpoint(tmp_path) -> None:
    """A trial resumed after its best epoch still scores test with that epoch's networks."""
    first = ScriptedTrainer(ScriptConfig(), DataConfig())
    for epoch in range(3):
        first.train_epoch(epoch)
        first.epoch = epoch + 1
        first.best = first.best if epoch != 1 else {"epoch": 2, "value": 0.9, "nets": first.network_state()}
    save_checkpoint(first, tmp_path)
    second = ScriptedTrainer(ScriptConfig(), DataConfig())
    load_checkpoint(second, tmp_path)
    assert second.best is not None and second.best["epoch"] == 2
    metrics, _ = evaluate_test(second)
    assert metrics["test/best/dice"] == pytest.approx(9.0) and metrics["test/last/dice"] == pytest.approx(4.0)


def test_no_test_split_means_no_test_scores() -> None:
    trainer = ScriptedTrainer(ScriptConfig(), DataConfig())
    trainer.test_cases = []
    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics))
    assert not any(key.startswith("test/") for key in reports[-1])


def test_pictures_are_saved_at_each_best_epoch_and_the_last() -> None:
    """A trial the scheduler stops early keeps the pictures of its best epoch; one that runs to the end ends with
    those of its last epoch (val) and of the selected networks (test)."""
    from platform.results import ARTIFACTS_KEY

    trainer = ScriptedTrainer(ScriptConfig(), DataConfig())  # val scores 0.2, 0.9, 0.4, 0.7, 0.3
    saved: list[tuple[int, str]] = []

    def sink(t: Trainer, split: str) -> list[dict[str, str]]:
        saved.append((t.epoch, split))
        return [{"path": f"{split}.png", "split": split}]

    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics), artifacts=sink)
    assert saved == [(1, "val"), (2, "val"), (5, "val"), (5, "test")]
    rows = {report["epoch"]: json.loads(report[ARTIFACTS_KEY]) for report in reports if ARTIFACTS_KEY in report}
    assert rows[2] == [{"path": "val.png", "split": "val", "epoch": 2, "checkpoint": "best"}]
    assert rows[5] == [{"path": "val.png", "split": "val", "epoch": 5, "checkpoint": "last"},
                       {"path": "test.png", "split": "test", "epoch": 2, "checkpoint": "best"}]


class StagedConfig(ScriptConfig):
    ineligible: int = Field(2, ge=0, description="first epochs that cannot be selected (a pretraining stage)")


class StagedTrainer(ScriptedTrainer):
    """``ScriptedTrainer`` whose first ``ineligible`` epochs are a stage whose networks are not the method's."""

    Config = StagedConfig

    def selectable(self) -> bool:
        return self.epoch > self.config.ineligible


@pytest.mark.parametrize(("weights", "ineligible", "selected"), [
    ([0.9, 0.8, 0.2, 0.4, 0.3], 2, 4),  # the best val scores are the ineligible ones: never selected
    ([0.9, 0.8, 0.2, 0.4, 0.3], 0, 1),  # every epoch eligible: the plain protocol
    ([0.2, 0.9, 0.4, 0.7, 0.3], 4, 5),  # only the last is eligible
])
def test_only_eligible_epochs_are_selected_and_carry_the_selection_clock(weights: list[float], ineligible: int,
                                                                        selected: int) -> None:
    from platform.engine import SELECTION_CLOCK

    trainer = StagedTrainer(StagedConfig(weights=weights, ineligible=ineligible), DataConfig())
    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics))
    final = reports[-1]
    assert final["test/selected_epoch"] == selected
    assert final["test/best/dice"] == pytest.approx(10 * weights[selected - 1])
    assert trainer.best is not None and trainer.best["epoch"] == selected
    # Every epoch reports its val score; only the eligible ones carry ASHA's clock.
    assert [report["val/dice"] for report in reports] == pytest.approx(weights)
    assert [report.get(SELECTION_CLOCK) for report in reports] == [
        float(epoch) if epoch > ineligible else None for epoch in range(1, 6)]


def test_asha_never_ranks_or_stops_a_trial_on_an_ineligible_epoch() -> None:
    """Two trials under the platform's ASHA: one whose first epochs are ineligible and score badly there is not
    stopped at the first rung (its scores there are never seen), and joins the rungs once eligible."""
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from platform.spec import SweepSpec
    from platform.tuning import build_scheduler

    spec = SweepSpec.model_validate({"name": "asha", "trainer": "dualnorm", "search": {"lambda": {"choice": [0.5]}},
                                     "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
                                     "objective": {"metric": "val/dice", "mode": "max"}})
    scheduler = build_scheduler(spec, epochs=5)
    trials = {name: SimpleNamespace(trial_id=name, config={}, status="RUNNING") for name in ("plain", "staged")}
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)
    plain = run(weights=[0.5, 0.6, 0.7, 0.8, 0.9])[1]
    staged = StagedTrainer(StagedConfig(weights=[0.01, 0.02, 0.95, 0.96, 0.97], ineligible=2), DataConfig())
    staged_reports: list[dict[str, Any]] = []
    run_epochs(staged, lambda metrics, directory: staged_reports.append(metrics))
    decisions = []
    for first, second in zip(plain, staged_reports, strict=True):
        scheduler.on_trial_result(None, trials["plain"], first)
        decisions.append(scheduler.on_trial_result(None, trials["staged"], second))
    assert decisions[:4] == [TrialScheduler.CONTINUE] * 4  # at epoch 5 = max_t ASHA stops every trial
    # The staged trial was recorded at a rung, and only ever with an eligible epoch's score.
    seen = [scores["staged"] for _, scores in scheduler._trial_info["staged"]._rungs if "staged" in scores]
    assert seen and min(seen) > 0.9


def test_the_trials_best_is_taken_over_eligible_epochs_only() -> None:
    """best/<objective> of the trials row comes from the epochs that could be selected (those with the selection
    clock); a trial none of whose rows has the clock (written before it existed) counts every epoch."""
    trainer = StagedTrainer(StagedConfig(weights=[0.9, 0.8, 0.2, 0.4, 0.3], ineligible=2), DataConfig())
    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics))
    row = summary_row(reports, [("val/dice", "max")])
    assert row["best/val/dice"] == pytest.approx(0.4) and row["test/selected_epoch"] == 4
    legacy = [{k: v for k, v in report.items() if k != "selection/epoch"} for report in reports]
    assert summary_row(legacy, [("val/dice", "max")])["best/val/dice"] == pytest.approx(0.9)
