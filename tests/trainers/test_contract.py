"""The trainer contract, for every registered trainer (timm-style: one test, parametrized over the registry).

Each trainer is built from its own ``smoke_overrides`` on tiny data; a trainer added as a file is covered here with
no edit. Method-specific behaviour stays in the per-trainer test modules.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from platform.data.config import DataConfig
from platform.engine import load_checkpoint, run_epochs, save_checkpoint
from platform.results import CASES_KEY
from platform.trainers import TRAINERS, Trainer
from tests.conftest import REPO_ROOT

# The data each trainer's method needs (glua adapts the labelled mr to the unlabelled ct; the others take the
# default pair, trained and evaluated on both).
DOMAINS: dict[str, dict[str, Any]] = {"glua": {"domains": ["mr", "ct"], "train_domains": ["mr"],
                                               "eval_domains": ["ct"]}}
# Trainers that are not methods (test and benchmark helpers registered through plugins).
SYNTHETIC = {"fault", "bench_fixed_work"}
METHODS = [name for name in TRAINERS.names() if name not in SYNTHETIC]


def data_for(name: str, tiny_data: DataConfig) -> DataConfig:
    return DataConfig.model_validate({**tiny_data.model_dump(), **DOMAINS.get(name, {})})


def build(name: str, data: DataConfig, **overrides: Any) -> Trainer:
    torch.set_num_threads(2)
    trainer_cls = TRAINERS.get(name)
    config = trainer_cls.Config.model_validate({**trainer_cls.smoke_overrides(), **overrides})
    return trainer_cls(config, data, seed=0)


def finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def check_reports(name: str, trainer: Trainer, data: DataConfig, reports: list[dict[str, Any]]) -> None:
    """The contract on one run's reports (AssertionError naming what breaks it): every name declared, and every
    declared train/ and val/ name reported (in both directions); finite losses; a finite ``val/dice`` in every
    epoch; the engine's parameter counts."""
    # The engine adds each network's parameter count (model/params/<net>) to every report.
    declared = TRAINERS.get(name).all_metric_names(trainer.config, data) | {f"model/params/{n}" for n in trainer.nets}
    for metrics in reports:
        reported = {k for k in metrics if "/" in k and not k.startswith("time/")}
        assert reported <= declared, f"reported but not declared: {sorted(reported - declared)}"
        assert all(finite(v) for k, v in metrics.items() if k.startswith("train/loss")), metrics
        assert all(metrics[f"model/params/{n}"] == sum(p.numel() for p in trainer.net(n).parameters())
                   for n in trainer.nets)
        assert finite(metrics["val/dice"]), f"val/dice is {metrics['val/dice']!r}, not a finite number"
    seen = {k for metrics in reports for k in metrics}
    never = {k for k in trainer.expected_metrics() if k.startswith(("train/", "val/", "model/"))} - seen
    assert not never, f"declared but never reported: {sorted(never)}"


@pytest.mark.parametrize("name", METHODS)
def test_one_epoch_reports_declared_finite_metrics_and_cases(name: str, tiny_data: DataConfig) -> None:
    data = data_for(name, tiny_data)
    trainer = build(name, data)
    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics))
    assert trainer.epoch == trainer.config.epochs and len(reports) == trainer.config.epochs
    check_reports(name, trainer, data, reports)
    # The same run with a NaN val/dice in one epoch (a method scoring nothing) breaks the contract.
    with pytest.raises(AssertionError, match="val/dice"):
        check_reports(name, trainer, data, [*reports[:-1], {**reports[-1], "val/dice": math.nan}])
    # And a name declared but never reported (over-declaring) breaks it too.
    with pytest.raises(AssertionError, match="declared but never reported: \\['train/iterations'\\]"):
        check_reports(name, trainer, data, [{k: v for k, v in m.items() if k != "train/iterations"} for m in reports])
    declared = TRAINERS.get(name).all_metric_names(trainer.config, data)
    for metric in declared:  # every metric has a declared direction and kind: readers never guess from names
        info = TRAINERS.get(name).metric_info(metric)
        assert info["direction"] in ("max", "min", "none") and info["kind"]
    # The test split, scored once at the end with the best-on-val and the last networks.
    assert all(not any(k.startswith("test/") for k in metrics) for metrics in reports[:-1])
    final = reports[-1]
    assert {"test/best/dice", "test/last/dice", "test/selected_epoch"} <= set(final)
    assert 1 <= final["test/selected_epoch"] <= trainer.config.epochs
    # The cases table: one row per evaluated volume with its domain, subject and scores; val every epoch, test
    # at the end with both checkpoints, every subject of the evaluation domains of its split.
    rows = json.loads(final[CASES_KEY])
    val_rows = [r for r in rows if r["split"] == "val"]
    assert {r["subject"] for r in val_rows} == {c.subject for c in trainer.val_cases}
    for checkpoint in ("best", "last"):
        test_rows = [r for r in rows if r["split"] == "test" and r["checkpoint"] == checkpoint]
        assert {r["subject"] for r in test_rows} == {c.subject for c in trainer.test_cases}
    assert all("dice" in r and r["domain"] in trainer.eval_domains for r in rows)
    assert not {c.subject for c in trainer.test_cases} & {c.subject for c in trainer.val_cases + trainer.train_cases}


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_round_trip_continues_identically(name: str, tiny_data: DataConfig, tmp_path: Path) -> None:
    data = data_for(name, tiny_data)
    epochs = TRAINERS.get(name).smoke_overrides()["epochs"] + 1
    first = build(name, data, epochs=epochs)
    first_reports: list[dict[str, Any]] = []

    def keep(metrics: dict[str, Any], directory: Path | None) -> None:
        first_reports.append(metrics)
        if directory is not None and len(first_reports) == epochs - 1:
            shutil.copytree(directory, tmp_path / "checkpoint")

    run_epochs(first, keep)
    second = build(name, data, epochs=epochs)
    load_checkpoint(second, tmp_path / "checkpoint")
    assert second.epoch == epochs - 1
    resumed: list[dict[str, Any]] = []
    run_epochs(second, lambda metrics, directory: resumed.append(metrics))
    assert len(resumed) == 1
    expected = first_reports[-1]
    for key, value in resumed[0].items():
        if key.startswith(("train/", "val/")) and finite(value):
            assert value == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("name", METHODS)
def test_state_dict_holds_every_network_optimizer_and_sampler(name: str, tiny_data: DataConfig,
                                                              tmp_path: Path) -> None:
    trainer = build(name, data_for(name, tiny_data))
    state = trainer.state_dict()
    assert set(state["nets"]) == set(trainer.nets) and set(state["optimizers"]) == set(trainer.optimizers)
    assert set(state["samplers"]) == set(trainer.samplers) and "rng" in state
    save_checkpoint(trainer, tmp_path)
    load_checkpoint(build(name, data_for(name, tiny_data)), tmp_path)


BAD_CONFIGS = {  # a combination each method refuses at spec time: (config overrides, data overrides, message)
    "advnorm": ({"g_depth": 3}, {"patch_size": 10}, "divisible by 2**(g_depth-1)"),
    "dualnorm": ({}, {}, None),  # its bad block lists are refused by the Config itself (tests/trainers)
    "glua": ({"target": "adult"}, {}, "target domain 'adult' is not among data.domains"),
}


@pytest.mark.parametrize("name", METHODS)
def test_check_refuses_a_bad_combination(name: str, tiny_data: DataConfig) -> None:
    assert name in BAD_CONFIGS, f"add a combination {name} must refuse to BAD_CONFIGS"
    config_changes, data_changes, message = BAD_CONFIGS[name]
    trainer_cls = TRAINERS.get(name)
    data = data_for(name, tiny_data).model_copy(update=data_changes)
    config = trainer_cls.Config.model_validate({**trainer_cls.smoke_overrides(), **config_changes})
    problems = trainer_cls.check(config, data)
    if message is None:
        assert problems == []
        return
    assert any(message in problem for problem in problems), problems
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        trainer_cls(config, data, seed=0)  # a direct construction is refused too


@pytest.mark.slow
def test_a_copied_trainer_file_is_a_new_method_with_no_other_edit(tmp_path: Path) -> None:
    """Copy a trainer module under a new name, register it under a new name, and nothing else: it is discovered,
    passes --dry-run, runs --smoke, and the contract tests above cover it."""
    source = REPO_ROOT / "platform" / "trainers" / "dualnorm.py"
    copy = REPO_ROOT / "platform" / "trainers" / "dualnorm_copy.py"
    assert not copy.exists()
    copy.write_text(source.read_text().replace('@TRAINERS.register("dualnorm")', '@TRAINERS.register("dualnorm_copy")'))
    try:
        spec = tmp_path / "copy.yaml"
        spec.write_text((REPO_ROOT / "search_spaces" / "dualnorm_lambda.yaml").read_text().replace(
            "trainer: dualnorm", "trainer: dualnorm_copy"))
        base = [sys.executable, "-m", "platform.sweep", str(spec), "--storage", str(tmp_path / "runs"), "--smoke"]
        dry = subprocess.run([*base, "--dry-run"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
        assert dry.returncode == 0 and "trainer      dualnorm_copy" in dry.stdout, dry.stderr[-3000:]
        run = subprocess.run([*base, "budget.trials=1"], capture_output=True, text=True, cwd=REPO_ROOT,
                             timeout=600)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        selection = "dualnorm_copy and not copied and not check_refuses"
        contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   f"{Path(__file__).relative_to(REPO_ROOT)}", "-k", selection],
                                  capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
        assert contract.returncode == 0 and " passed" in contract.stdout, contract.stdout[-3000:]
    finally:
        copy.unlink()
