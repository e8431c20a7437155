"""The ``runtime:`` block, for every registered method: bf16 and channels-last on the CPU train (the loss falls),
fp16 keeps a GradScaler per update through a checkpoint, compile falls back to eager with its reason, prefetched
batches are the same batches, and ``checkpoint_every`` bounds what a killed trial repeats. fp16 and compile on a
GPU run where CUDA is available."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from platform.acceleration import CompiledNet
from platform.data.config import DataConfig
from platform.engine import load_checkpoint, run_epochs
from platform.runtime import RuntimeConfig
from platform.spec import SweepSpec
from platform.trainers import TRAINERS, Trainer
from tests.conftest import REPO_ROOT
from tests.trainers.test_contract import METHODS, data_for

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (fp16 and torch.compile "
                                "are checked on a GPU; this machine has none)")

# Per method: the loss that must fall, and a config that trains it for a few epochs (its other networks on).
FALLING = {
    "advnorm": ("train/loss_seg", {"epochs": 8, "lr_s": 3e-3}),
    "dualnorm": ("train/loss_bn", {"epochs": 8, "pretrain_epochs": 1}),
    "glua": ("train/loss_seg", {"epochs": 9, "stage1_epochs": 1, "lr_s": 3e-3}),
}


def build(name: str, data: DataConfig, runtime: RuntimeConfig, **overrides: Any) -> Trainer:
    torch.set_num_threads(2)
    trainer_cls = TRAINERS.get(name)
    config = trainer_cls.Config.model_validate({**trainer_cls.smoke_overrides(), **overrides})
    return trainer_cls(config, data, seed=0, runtime=runtime)


def test_every_method_has_a_falling_loss_to_check() -> None:
    assert set(FALLING) == set(METHODS), "add the new method's falling loss to FALLING"


@pytest.mark.parametrize("name", METHODS)
def test_bf16_channels_last_training_lowers_the_loss(name: str, tiny_data: DataConfig) -> None:
    key, overrides = FALLING[name]
    trainer = build(name, data_for(name, tiny_data), RuntimeConfig(precision="bf16", channels_last=True),
                    **overrides)
    convolutions = [p for net in trainer.nets.values() for p in net.parameters() if p.ndim in (4, 5)]
    assert convolutions and all(p.is_contiguous(memory_format=torch.channels_last if p.ndim == 4
                                                else torch.channels_last_3d) for p in convolutions)
    losses = []
    for epoch in range(trainer.config.epochs):
        with trainer.autocast():
            metrics = trainer.train_epoch(epoch)
        if key in metrics:
            losses.append(metrics[key])
    assert len(losses) >= 4 and all(math.isfinite(v) for v in losses), losses
    # The mean of the last two epochs against the first: one noisy epoch does not decide it.
    assert (losses[-1] + losses[-2]) / 2 < losses[0], losses
    with trainer.autocast():
        metrics = trainer.evaluate("val")  # sliding-window / slice inference under the same autocast
    assert 0.0 <= metrics["val/dice"] <= 1.0


def test_autocast_runs_convolutions_in_bf16_and_losses_in_float32(tiny_data: DataConfig) -> None:
    from platform.losses import weighted_dice_loss

    trainer = build("advnorm", tiny_data, RuntimeConfig(precision="bf16"))
    x, y, _ = trainer.samplers["patches"].sample()
    with trainer.autocast():
        logits = trainer.net("S")(x)
        loss = weighted_dice_loss(logits, y, trainer.class_weights)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32


@pytest.mark.parametrize("name", METHODS)
def test_fp16_checkpoint_round_trip_keeps_the_grad_scalers(name: str, tiny_data: DataConfig, tmp_path: Path) -> None:
    """fp16 autocast works on the CPU too: one GradScaler per update, saved and restored with the trainer."""
    data = data_for(name, tiny_data)
    runtime = RuntimeConfig(precision="fp16")
    epochs = TRAINERS.get(name).smoke_overrides()["epochs"] + 1
    first = build(name, data, runtime, epochs=epochs)
    reports: list[dict[str, Any]] = []

    def keep(metrics: dict[str, Any], directory: Path | None) -> None:
        reports.append(metrics)
        if directory is not None and len(reports) == epochs - 1:
            shutil.copytree(directory, tmp_path / "checkpoint")

    run_epochs(first, keep)
    assert first.scalers, "fp16 updates ran without a GradScaler"
    second = build(name, data, runtime, epochs=epochs)
    load_checkpoint(second, tmp_path / "checkpoint")
    saved = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=False)["scalers"]
    assert saved and set(saved) <= set(first.scalers)
    resumed: list[dict[str, Any]] = []
    run_epochs(second, lambda metrics, directory: resumed.append(metrics))
    assert set(second.scalers) == set(first.scalers)
    for key in first.scalers:
        assert second.scalers[key].get_scale() == first.scalers[key].get_scale(), key
    for key, value in resumed[0].items():
        if key.startswith(("train/", "val/")) and isinstance(value, float) and math.isfinite(value):
            assert value == pytest.approx(reports[-1][key], rel=1e-4, abs=1e-6), key


def test_compile_falls_back_to_eager_and_logs_why(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    def broken_compile(module: torch.nn.Module, **kwargs: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("backend inductor needs a C++ compiler\nmore detail")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    net = torch.nn.Linear(3, 2)
    wrapped = CompiledNet("S", net)
    x = torch.randn(4, 3)
    with caplog.at_level(logging.WARNING, logger="platform.acceleration"):
        out = wrapped(x)
        wrapped(x)
    assert torch.equal(out, net(x))
    assert wrapped.failure == "RuntimeError: backend inductor needs a C++ compiler"
    assert [r.getMessage() for r in caplog.records].count(
        "torch.compile of network 'S' failed; it runs eager (RuntimeError: backend inductor needs a C++ compiler)") == 1
    assert list(wrapped.state_dict()) == [f"module.{k}" for k in net.state_dict()]  # one copy of the weights


def test_a_compiled_trainer_checkpoints_the_eager_weights(tiny_data: DataConfig,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: module)  # the wrapping, without compiling
    trainer = build("advnorm", tiny_data, RuntimeConfig(compile=True))
    assert all(isinstance(net, CompiledNet) for net in trainer.nets.values())
    plain = build("advnorm", tiny_data, RuntimeConfig())
    assert set(trainer.state_dict()["nets"]["S"]) == set(plain.state_dict()["nets"]["S"])


def test_prefetched_trials_draw_the_same_batches_and_resume_them(tiny_data: DataConfig, tmp_path: Path) -> None:
    """A trial drawing 2 batches ahead reports what one drawing in the step does, and so does one resumed from
    its checkpoint (the sampler position saved is the one after the last batch the step took) whose batches
    three threads build."""
    data = data_for("dualnorm", tiny_data)

    def run(prefetch: int, resume_from: Path | None = None, keep_at: int | None = None,
            workers: int = 1) -> list[dict[str, Any]]:
        trainer = build("dualnorm", data, RuntimeConfig(), epochs=3)
        trainer.use_prefetch(prefetch, workers)
        if resume_from is not None:
            load_checkpoint(trainer, resume_from)
        reports: list[dict[str, Any]] = []

        def report(metrics: dict[str, Any], directory: Path | None) -> None:
            reports.append(metrics)
            if keep_at is not None and len(reports) == keep_at and directory is not None:
                shutil.copytree(directory, tmp_path / "checkpoint")

        try:
            run_epochs(trainer, report)
        finally:
            trainer.close_samplers()
        return reports

    plain = run(0)
    ahead = run(2, keep_at=1)
    resumed = run(2, resume_from=tmp_path / "checkpoint", workers=3)  # three threads build the batches
    for reference, other in ((plain, ahead), (plain[1:], resumed)):
        assert len(reference) == len(other)
        for expected, got in zip(reference, other, strict=True):
            for key in ("train/loss_bn", "train/loss_spade", "val/dice"):
                if key in expected:
                    assert got[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-8), key


def test_the_runtime_block_is_validated_and_shown_by_dry_run(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate({"name": "r", "trainer": "advnorm",
                                     "runtime": {"precision": "bf16", "channels_last": True, "checkpoint_every": 3}})
    assert spec.runtime.precision == "bf16"
    assert "precision bf16, channels_last true" in spec.runtime.describe()
    assert "checkpoint every 3 epochs" in spec.runtime.describe()
    with pytest.raises(ValueError, match="precision"):
        SweepSpec.model_validate({"name": "r", "trainer": "advnorm", "runtime": {"precision": "fp8"}})
    with pytest.raises(ValueError, match="extra"):
        SweepSpec.model_validate({"name": "r", "trainer": "advnorm", "runtime": {"amp": True}})


KILLED_RUN = """
import sys, shutil
from pathlib import Path
import tests.fault_trainer  # registers 'fault'
from platform.data.config import DataConfig
from platform.engine import run_epochs
from platform.trainers import TRAINERS
out = Path(sys.argv[1])
cls = TRAINERS.get("fault")
trainer = cls(cls.Config(epochs=6, fault="kill", fault_epoch=int(sys.argv[2])), DataConfig())
def report(metrics, directory):
    if directory is not None:
        shutil.copytree(directory, out / f"checkpoint_{metrics['epoch']:06d}")
    (out / "reported").open("a").write(f"{metrics['epoch']}\\n")
run_epochs(trainer, report, checkpoint_every=int(sys.argv[3]))
"""


@pytest.mark.parametrize(("every", "killed_at", "restart"), [(2, 4, 2), (3, 6, 3)])
def test_a_killed_trial_repeats_at_most_checkpoint_every_epochs(tmp_path: Path, every: int, killed_at: int,
                                                                restart: int) -> None:
    """SIGKILL of the process running a trial at the start of epoch ``killed_at``: the newest checkpoint is of
    epoch ``restart`` (a multiple of ``every``), so a restart repeats fewer than ``every`` epochs."""
    import tests.fault_trainer  # noqa: F401 - registers 'fault'

    result = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path), str(killed_at), str(every)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr[-2000:]
    reported = [int(line) for line in (tmp_path / "reported").read_text().split()]
    assert reported == list(range(1, killed_at))
    newest = sorted(tmp_path.glob("checkpoint_*"))[-1]
    cls = TRAINERS.get("fault")
    trainer = cls(cls.Config(epochs=6), DataConfig())
    load_checkpoint(trainer, newest)
    assert trainer.epoch == restart and killed_at - 1 - restart < every
    reports: list[dict[str, Any]] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics), checkpoint_every=every)
    assert [r["epoch"] for r in reports] == list(range(restart + 1, 7))
    assert reports[-1]["train/steps"] == 6 * cls.Config().iterations  # every epoch's steps counted once


@needs_cuda
@pytest.mark.parametrize("name", METHODS)
def test_cuda_fp16_compile_channels_last_trains(name: str, tiny_data: DataConfig) -> None:
    key, overrides = FALLING[name]
    trainer_cls = TRAINERS.get(name)
    config = trainer_cls.Config.model_validate({**trainer_cls.smoke_overrides(), **overrides})
    runtime = RuntimeConfig(precision="fp16", channels_last=True, compile=True, cudnn_benchmark=True)
    trainer = trainer_cls(config, data_for(name, tiny_data), seed=0, device=torch.device("cuda"), runtime=runtime)
    trainer.use_prefetch(2)
    losses = []
    try:
        for epoch in range(config.epochs):
            with trainer.autocast():
                metrics = trainer.train_epoch(epoch)
            if key in metrics:
                losses.append(metrics[key])
    finally:
        trainer.close_samplers()
    assert all(math.isfinite(v) for v in losses) and (losses[-1] + losses[-2]) / 2 < losses[0], losses
    assert trainer.scalers
    failures = {n: net.failure for n, net in trainer.nets.items() if isinstance(net, CompiledNet) and net.failure}
    assert not failures, json.dumps(failures)


@pytest.mark.parametrize(("cpus_per_worker", "workers"), [(0.25, 1), (1, 1), (2, 1), (3, 2), (8, 7), (8.5, 7)])
def test_prefetch_builders_follow_the_workers_cpus_less_the_steps_own(cpus_per_worker: float, workers: int) -> None:
    assert RuntimeConfig.prefetch_workers(cpus_per_worker) == workers
