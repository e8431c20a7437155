"""The engine's hooks (platform.hooks): the documented order of the points and of the built-in hooks, a hook from
outside the package added through a spec's ``runtime.hooks``, the per-epoch resource columns and the trial's log,
and the self-describing checkpoints whose best networks are stored once (platform.checkpoints)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import tests.hooks_outside as outside
from platform.checkpoints import ABOUT, BEST_PREFIX, STATE_FILE, BestStore, trainer_name
from platform.data.config import DataConfig
from platform.engine import evaluate_test, load_checkpoint, run_epochs
from platform.hooks import Epoch, Hook, Loop, builtin_hooks
from platform.results import SELECTION_CLOCK
from platform.spec import SpecError, load_spec
from platform.trial import resolve
from platform.worker import run_in_process
from tests.fault_trainer import FaultConfig, FaultTrainer
from tests.test_engine import ScriptConfig, ScriptedTrainer

DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8, "batch_size": 1,
        "patches_per_epoch": 1}
EPOCH_POINTS = ["before_epoch", "after_train_epoch", "after_eval", "on_improvement", "before_report", "after_report"]


def fault_spec(tmp_path: Path, hooks: list[str], epochs: int = 2) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({
        "name": "hooks", "trainer": "fault", "data": DATA, "storage": str(tmp_path / "runs"),
        "objective": {"metric": "val/dice", "mode": "max"}, "budget": {"trials": 1, "concurrent": 1},
        "fixed": {"epochs": epochs}, "runtime": {"hooks": hooks, "checkpoint_every": 1}}))
    return path


def test_a_hook_from_outside_the_package_runs_through_the_spec_in_the_documented_order(tmp_path: Path) -> None:
    spec = load_spec(fault_spec(tmp_path, ["tests.hooks_outside:RecordingHook"]))
    outside.CALLS.clear()
    reports: list[dict[str, Any]] = []
    experiment = str(tmp_path / "runs" / "hooks")
    run_in_process(spec, resolve(spec, {})[0], seed=0, fold=None, device=torch.device("cpu"), checkpoint=None,
                   report=lambda metrics, directory: reports.append(metrics), experiment_uri=experiment,
                   trial_id="t1")
    points = [(point, number) for point, number, _ in outside.CALLS]
    assert points == [("before_train", None), *((p, 1) for p in EPOCH_POINTS), *((p, 2) for p in EPOCH_POINTS),
                      ("after_train", None)]
    seen = {(point, number): metrics for point, number, metrics in outside.CALLS}
    # The metrics each point sees: training's, then val's, the best's epoch, and the engine's own columns.
    assert seen[("before_epoch", 1)] == {} and set(seen[("after_train_epoch", 2)]) == {
        "train/loss", "train/iterations", "train/steps", "train/start_epoch"}
    assert seen[("after_eval", 1)]["val/dice"] == 0.5 and seen[("after_eval", 2)]["val/dice"] == 1.0
    assert seen[("after_eval", 2)][SELECTION_CLOCK] == 2.0  # Selection runs before the caller's hooks
    assert seen[("on_improvement", 2)] == {"best_epoch": 2}
    assert seen[("before_report", 1)]["epoch"] == 1 and "time/epoch_s" in seen[("before_report", 1)]
    assert seen[("after_report", 2)] == {"checkpoint": True} and seen[("after_train", None)] == {"trainer_epoch": 2}
    assert [r["outside/epoch"] for r in reports] == [1.0, 2.0]  # what the hook added was reported
    # The sweep's own extra hooks: resource columns in every epoch, the trial's log and best networks stored once.
    for row in reports:
        assert row["resources/cpu_percent"] >= 0 and row["resources/rss_peak_mb"] > 0
        assert not any(key.startswith("resources/gpu") for key in row)  # on the CPU
    folder = Path(experiment) / "artifacts" / "t1"
    assert (folder / "log.txt").is_file()
    # Both epochs improved; the epoch-1 checkpoint is among the last three, so its best networks stay too.
    assert sorted(p.name for p in folder.glob(f"{BEST_PREFIX}*")) == [f"{BEST_PREFIX}0001.pt", f"{BEST_PREFIX}0002.pt"]


@pytest.mark.parametrize(("hooks", "why"), [
    (["tests.hooks_outside:Missing"], "cannot be imported (AttributeError"),
    (["tests.no_such_module:RecordingHook"], "cannot be imported (ModuleNotFoundError"),
    (["tests.hooks_outside.RecordingHook"], "is not 'package.module:Class'"),
    (["tests.hooks_outside:NotAHook"], "is not a subclass of platform.hooks.Hook"),
])
def test_a_hook_that_cannot_be_loaded_is_refused_naming_the_field(tmp_path: Path, hooks: list[str],
                                                                  why: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(fault_spec(tmp_path, hooks))
    assert "runtime.hooks" in str(info.value) and why in str(info.value), str(info.value)


def test_the_builtin_hooks_run_in_their_stated_order() -> None:
    assert [type(hook).__name__ for hook in builtin_hooks()] == [
        "LossCheck", "ValCases", "EndEpoch", "Selection", "BestWeights", "Pictures", "FinalTest", "ArtifactRows",
        "Timer", "CheckpointCadence"]


class Witness(Hook):
    """Records, at each point, its own name and what the built-in hooks had done by then."""

    def __init__(self, name: str, log: list[tuple[str, str, int, set[str]]]) -> None:
        self.name, self.log = name, log

    def after_eval(self, loop: Loop, epoch: Epoch) -> None:
        self.log.append((self.name, "after_eval", epoch.number, set(epoch.metrics)))

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        self.log.append((self.name, "before_report", epoch.number, set(epoch.metrics) | (
            {"<checkpoint>"} if epoch.checkpoint else set())))


class WitnessedTrainer(ScriptedTrainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, str, int, set[str]]] = []

    def hooks(self) -> list[Hook]:
        return [Witness("trainer", self.log)]


def test_built_in_then_trainer_then_caller_hooks_each_see_what_came_before() -> None:
    trainer = WitnessedTrainer(ScriptConfig(epochs=2, weights=[0.2, 0.9]), DataConfig())
    run_epochs(trainer, lambda metrics, directory: None, hooks=[Witness("caller", trainer.log)],
               checkpoint_every=2)
    assert [(name, point, number) for name, point, number, _ in trainer.log] == [
        (name, point, number) for number in (1, 2) for point in ("after_eval", "before_report")
        for name in ("trainer", "caller")]
    seen = {(name, point, number): keys for name, point, number, keys in trainer.log}
    # after_eval: the val cases and the selection clock are there; before_report: the test, pictures, timing and
    # the checkpoint decision (every 2 epochs, and the last) too.
    assert {"val/dice", "cases", SELECTION_CLOCK} <= seen[("trainer", "after_eval", 1)]
    assert "time/epoch_s" in seen[("caller", "before_report", 1)] and "<checkpoint>" not in seen[
        ("caller", "before_report", 1)]
    assert {"test/best/dice", "time/epoch_s", "<checkpoint>"} <= seen[("trainer", "before_report", 2)]


def test_after_train_runs_when_an_epoch_raises() -> None:
    log: list[str] = []

    class Ending(Hook):
        def after_train(self, loop: Loop) -> None:
            log.append("after_train")

    trainer = ScriptedTrainer(ScriptConfig(epochs=2, weights=[0.2, 0.9]), DataConfig())
    trainer.train_epoch = lambda epoch: {"train/loss": float("nan")}  # type: ignore[method-assign]
    with pytest.raises(FloatingPointError, match="train/loss became nan at epoch 1"):
        run_epochs(trainer, lambda metrics, directory: None, hooks=[Ending()])
    assert log == ["after_train"]


# --- self-describing checkpoints, the best networks stored once ---------------------------------------------------

def run_with_store(tmp_path: Path, weights: list[float]) -> tuple[ScriptedTrainer, list[dict[str, Any]]]:
    """Run the scripted trainer with a checkpoint every epoch; each checkpoint's ``state.pt`` loaded, in order."""
    trainer = ScriptedTrainer(ScriptConfig(epochs=len(weights), weights=weights), DataConfig())
    states: list[dict[str, Any]] = []

    def keep(metrics: dict[str, Any], directory: Path | None) -> None:
        assert directory is not None
        shutil.copytree(directory, tmp_path / f"checkpoint_{len(states):06d}")
        states.append(torch.load(directory / STATE_FILE, weights_only=False))

    run_epochs(trainer, keep, checkpoint_every=1, best_store=BestStore(str(tmp_path / "best")))
    return trainer, states


def test_a_checkpoint_describes_itself_and_names_the_best_networks_stored_once(tmp_path: Path) -> None:
    weights = [0.2, 0.9, 0.4, 0.95, 0.3, 0.1]
    _, states = run_with_store(tmp_path, weights)
    for state in states:
        assert state[ABOUT]["trainer"] == "tests.test_engine.ScriptedTrainer" and state[ABOUT]["format"] == 2
        assert state[ABOUT]["config"] == {**ScriptConfig(epochs=6, weights=weights).model_dump(mode="json")}
        assert len(state[ABOUT]["code"]) == 64
        assert "nets" not in state["best"]  # no copy of the best networks in any checkpoint
    assert [state["best"]["epoch"] for state in states] == [1, 2, 2, 4, 4, 4]
    assert [Path(state["best"]["file"]).name for state in states] == [
        f"{BEST_PREFIX}{epoch:04d}.pt" for epoch in (1, 2, 2, 4, 4, 4)]
    # One file per improvement, and only those recent checkpoints name are kept.
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [f"{BEST_PREFIX}0004.pt"]
    # Resuming from the epoch-5 checkpoint scores test with epoch 4's networks, as the uninterrupted run did.
    resumed = ScriptedTrainer(ScriptConfig(epochs=6, weights=weights), DataConfig())
    load_checkpoint(resumed, tmp_path / "checkpoint_000004")
    assert resumed.epoch == 5 and resumed.best is not None and resumed.best["epoch"] == 4
    metrics, _ = evaluate_test(resumed)
    assert metrics["test/best/dice"] == pytest.approx(9.5) and metrics["test/selected_epoch"] == 4


def test_a_checkpoint_whose_best_networks_are_gone_is_unusable(tmp_path: Path) -> None:
    """restore_checkpoint then falls back to an earlier checkpoint (tests/test_faults.py)."""
    run_with_store(tmp_path, [0.2, 0.9, 0.4])
    (tmp_path / "best" / f"{BEST_PREFIX}0002.pt").unlink()
    fresh = ScriptedTrainer(ScriptConfig(epochs=3, weights=[0.2, 0.9, 0.4]), DataConfig())
    with pytest.raises(RuntimeError, match=r"names its best networks .*best-epoch0002.pt, which cannot be read"):
        load_checkpoint(fresh, tmp_path / "checkpoint_000002")
    load_checkpoint(fresh, tmp_path / "checkpoint_000000")
    assert fresh.best is not None and fresh.best["epoch"] == 1


def test_a_checkpoint_of_another_trainer_is_refused_naming_both(tmp_path: Path) -> None:
    run_with_store(tmp_path, [0.2, 0.9])
    other = FaultTrainer(FaultConfig(), DataConfig())
    with pytest.raises(RuntimeError) as info:
        load_checkpoint(other, tmp_path / "checkpoint_000001")
    assert ("was written by trainer tests.test_engine.ScriptedTrainer, not by tests.fault_trainer.FaultTrainer"
            in str(info.value)) and trainer_name(other) == "tests.fault_trainer.FaultTrainer"


def test_a_checkpoint_of_the_previous_format_still_loads(tmp_path: Path) -> None:
    """Format 1: the trainer's state alone, the best networks inside it."""
    first = ScriptedTrainer(ScriptConfig(), DataConfig())
    first.train_epoch(1)
    first.epoch, first.best = 2, {"epoch": 2, "value": 0.9, "nets": first.network_state()}
    torch.save(first.state_dict(), tmp_path / STATE_FILE)
    second = ScriptedTrainer(ScriptConfig(), DataConfig())
    load_checkpoint(second, tmp_path)
    assert second.epoch == 2 and second.best is not None
    assert float(second.best["nets"]["w"]["weight"]) == pytest.approx(0.9)
