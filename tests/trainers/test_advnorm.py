"""Adversarial normalization: Algorithm 1's updates, the baselines, state round trips, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from platform.engine import load_checkpoint, run_epochs
from platform.trainers import TRAINERS
from platform.trainers.advnorm import AdvNormTrainer, Config


def make(tiny_data, tiny_advnorm, **overrides) -> AdvNormTrainer:
    torch.set_num_threads(2)
    return TRAINERS.get("advnorm")(Config.model_validate({**tiny_advnorm, **overrides}), tiny_data, seed=0)


def test_paper_defaults() -> None:
    config = Config()
    assert (config.lambda_, config.n_steps, config.lr_g, config.lr_d, config.lr_milestones) == (
        1.5, 3, 1e-3, 1e-4, [50, 75])
    assert Config.model_validate({"lambda": 5.0}).lambda_ == 5.0
    with pytest.raises(ValueError):
        Config.model_validate({"lambda": -1})


def test_discriminator_steps_per_iteration(tiny_data, tiny_advnorm) -> None:
    trainer = make(tiny_data, tiny_advnorm, n_steps=3)
    metrics = trainer.train_epoch(0)
    iterations = int(metrics["train/iterations"])
    steps = {name: int(opt.state_dict()["state"][0]["step"]) for name, opt in trainer.optimizers.items()}
    assert steps == {"G": iterations, "S": iterations, "D": 3 * iterations}
    assert set(metrics) <= AdvNormTrainer.metric_names(trainer.config, tiny_data)


@pytest.mark.parametrize(("overrides", "nets"), [
    ({}, {"G", "S", "D"}),
    ({"discriminator": "none"}, {"G", "S"}),
    ({"generator": "none"}, {"S"}),  # a plain segmenter: nothing for a discriminator to judge
    ({"discriminator": "resnet"}, {"G", "S", "D"}),
])
def test_baseline_switches(tiny_data, tiny_advnorm, overrides, nets) -> None:
    trainer = make(tiny_data, tiny_advnorm, **overrides)
    assert set(trainer.nets) == nets
    metrics = {**trainer.train_epoch(0), **trainer.evaluate()}
    # Surface distances are NaN where a tiny network misses a class; every other metric is finite.
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if "hd95" not in k and "mhd" not in k)
    assert set(metrics) <= AdvNormTrainer.metric_names(trainer.config, tiny_data)
    assert 0.0 <= metrics["val/dice"] <= 1.0
    if "D" not in nets:
        assert "train/loss_dis" not in metrics


def test_lambda_changes_the_generator_update(tiny_data, tiny_advnorm) -> None:
    # Same seed and data: lambda only enters through G's adversarial term, so lambda=0 and 5 diverge in G.
    generators = []
    for lam in (0.0, 5.0):
        trainer = make(tiny_data, tiny_advnorm, **{"lambda": lam})
        trainer.train_epoch(0)
        generators.append(torch.cat([p.flatten() for p in trainer.net("G").parameters()]))
    assert not torch.allclose(generators[0], generators[1])


def test_segmentation_loss_falls_and_dice_rises(tiny_data, tiny_advnorm) -> None:
    trainer = make(tiny_data, tiny_advnorm, discriminator="none", generator="none", lr_s=3e-3)
    before = trainer.evaluate()["val/dice"]
    losses = [trainer.train_epoch(epoch)["train/loss_seg"] for epoch in range(8)]
    after = trainer.evaluate()["val/dice"]
    assert losses[-1] < losses[0]
    assert after > before + 0.1


def test_corrupt_checkpoint_is_a_clear_error(tiny_data, tiny_advnorm, tmp_path: Path) -> None:
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"state\.pt cannot be loaded"):
        load_checkpoint(make(tiny_data, tiny_advnorm), tmp_path)


def test_nan_loss_raises_with_reason(tiny_data, tiny_advnorm) -> None:
    trainer = make(tiny_data, tiny_advnorm, lr_s=1e30, lr_g=1e30, discriminator="none", epochs=5)
    with pytest.raises(FloatingPointError, match="became nan"):  # the engine's one finite-loss check
        run_epochs(trainer, lambda metrics, directory: None)


def test_engine_reports_every_epoch_and_saves_images(tiny_data, tiny_advnorm, tmp_path: Path) -> None:
    trainer = make(tiny_data, tiny_advnorm, epochs=3)
    reports: list[tuple[dict, bool]] = []

    def report(metrics: dict, directory: Path | None) -> None:
        reports.append((metrics, directory is not None and (directory / "state.pt").exists()))

    def sink(t, split: str) -> list[dict]:
        return t.save_artifacts(tmp_path / "art", split)

    run_epochs(trainer, report, checkpoint_every=2, artifacts=sink)
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3]
    assert [has_checkpoint for _, has_checkpoint in reports] == [False, True, True]
    # Pictures of each new best val epoch (the first is one), then of the last.
    first = json.loads(reports[0][0]["artifacts"])
    assert {(r["epoch"], r["checkpoint"]) for r in first} == {(1, "best")} and "artifacts" in reports[-1][0]
    rows = json.loads(reports[-1][0]["artifacts"])
    volumes = [r for r in rows if r["kind"] == "volume"]
    rows = [r for r in rows if r["kind"] != "volume"]
    val = [r for r in rows if r["split"] == "val"]
    assert sorted(r["domain"] for r in val) == ["adult", "infant"]  # one picture per domain of the val split
    # ... and its volumes, for the slice viewer: the input and both segmentations, uint8, the case's shape.
    assert sorted(r["domain"] for r in volumes) == ["adult", "infant"] and {r["split"] for r in volumes} == {"val"}
    with np.load(volumes[0]["path"]) as saved:
        arrays = {name: saved[name] for name in ("image", "pred", "label")}
    case = next(c for c in trainer.val_cases if c.subject == volumes[0]["subject"])
    assert {name: (a.shape, a.dtype) for name, a in arrays.items()} == {
        name: (case.label.shape, np.uint8) for name in ("image", "pred", "label")}
    assert np.array_equal(arrays["label"], case.label) and arrays["image"].max() == 255
    # Every test case of the selected networks has its picture, named by its subject (the per-case drill-down).
    test_subjects = sorted(case.subject for case in trainer.test_cases)
    assert sorted(r["subject"] for r in rows if r["split"] == "test") == test_subjects
    assert all(r["kind"] == "input|normalized|prediction|truth" for r in rows)
    assert [entry["name"] for entry in json.loads(rows[0]["legend"])] == trainer.class_names[1:]
    with Image.open(val[0]["path"]) as image:
        assert image.width > 3 * image.height  # four panels side by side


# --- fidelity to the journal paper -------------------------------------------------------------------------------


def test_the_discriminators_real_class_sees_clean_patches_under_bias_augmentation(tiny_data, tiny_advnorm) -> None:
    """Section 3.5: D's real inputs are the real, non-degraded images; G and S get the degraded ones."""
    import copy

    trainer = make(tiny_data, tiny_advnorm, bias_augment=1.0, bias_alpha_max=1.0)
    replay = copy.deepcopy(trainer.samplers["patches"])
    clean, _, _ = replay.sample()
    seen: list[torch.Tensor] = []
    hook = trainer.net("D").register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    generator_inputs: list[torch.Tensor] = []
    g_hook = trainer.net("G").register_forward_pre_hook(
        lambda module, args: generator_inputs.append(args[0].detach().clone()))
    try:
        trainer._discriminator_step(trainer._batch())
    finally:
        hook.remove()
        g_hook.remove()
    real, generated_input = seen[0], generator_inputs[0]
    assert torch.equal(real, clean)  # the real class: exactly the drawn patches
    assert not torch.allclose(generated_input, clean)  # G normalizes the degraded patches
    # The degradation is the paper's ramp over the intensities above each patch's minimum.
    low = clean.flatten(1).min(1).values.view(-1, 1, 1, 1, 1)
    ratio = ((generated_input - low) / (clean - low).clamp_min(1e-6))[:, 0]
    brain = (clean - low)[:, 0] > 0.5
    first_row, last_row = ratio[:, :, 0][brain[:, :, 0]], ratio[:, :, -1][brain[:, :, -1]]
    assert first_row.mean() < last_row.mean()  # B = y/H * alpha + (1 - alpha) grows along y


@pytest.mark.parametrize(("names", "weights", "expected"), [
    (["bg", "wm", "gm", "csf"], None, [0.22, 0.28, 0.20, 0.30]),
    (["bg", "csf", "gm", "wm"], None, [0.22, 0.30, 0.20, 0.28]),  # iSEG's label order: weights follow the names
    (["bg", "a", "b"], None, [1.0, 1.0, 1.0]),  # not the paper's classes: uniform
    (["bg", "a", "b"], [0.5, 0.2, 0.3], [0.5, 0.2, 0.3]),
    (["bg", "a", "b"], {"a": 0.1, "bg": 0.2, "b": 0.7}, [0.2, 0.1, 0.7]),
])
def test_class_weights_are_given_by_class_name(names, weights, expected) -> None:
    from platform.trainers.advnorm import class_weights_for

    assert class_weights_for(weights, names) == pytest.approx(expected)


def test_class_weights_that_name_other_classes_are_refused(tiny_data) -> None:
    problems = AdvNormTrainer.check(Config.model_validate({"class_weights": {"bg": 1.0, "tumour": 1.0}}), tiny_data)
    assert any("class_weights names" in p and "'csf'" in p for p in problems), problems
    problems = AdvNormTrainer.check(Config.model_validate({"class_share": 0.5}), tiny_data)
    assert any("class_share 0.5" in p and "at most 0.333" in p for p in problems), problems


def test_discriminator_confusion_matrix_and_the_test_time_bias_sweep(tiny_data, tiny_advnorm) -> None:
    trainer = make(tiny_data, tiny_advnorm, eval_bias_alphas=[0.3, 0.9])
    trainer.train_epoch(0)
    metrics = trainer.evaluate("val")
    classes = [*trainer.train_domains, "generated"]
    for true in classes:  # rows of the confusion matrix are distributions over the predicted class
        assert sum(metrics[f"val/disc_confusion/{true}/{p}"] for p in classes) == pytest.approx(1.0)
    assert not any("bias" in k and "/a0" in k for k in metrics)  # Table 6 runs on the test split only
    test = trainer.evaluate("test")
    declared = AdvNormTrainer.test_metric_names(trainer.config, tiny_data)
    assert declared == {k for k in test if "/a0." in k}
    for domain in trainer.eval_domains:  # a stronger field correlates the degraded input more with y
        assert test[f"test/bias_corr_input/a0.9/{domain}"] > test[f"test/bias_corr_input/a0.3/{domain}"] > 0
    assert 0 <= test["test/dice_bias/a0.9"] <= 1


def test_the_warm_up_trains_the_generator_alone(tiny_data, tiny_advnorm) -> None:
    """The short paper's protocol: G learns to reproduce its input before Algorithm 1; S and D are not trained.
    The warm-up runs before epoch 1, on top of ``epochs``."""
    trainer = make(tiny_data, tiny_advnorm, warmup_epochs=2)
    before = {name: [p.detach().clone() for p in trainer.net(name).parameters()] for name in ("G", "S", "D")}
    losses = [float(step["loss_mse"]) for step in trainer.warm_up()]
    moved = {name: any(not torch.equal(a, b) for a, b in zip(before[name], trainer.net(name).parameters(),
                                                              strict=True)) for name in ("G", "S", "D")}
    assert moved == {"G": True, "S": False, "D": False}
    assert len(losses) == 2 * trainer.iterations
    metrics = make(tiny_data, tiny_advnorm, warmup_epochs=2).train_epoch(0)
    assert {"train/loss_mse", "train/loss_mse_last", "train/loss_seg", "train/disc_acc"} <= set(metrics)
    # loss_mse_last is the mean over the warm-up's last pass alone
    assert metrics["train/loss_mse_last"] == pytest.approx(np.mean(losses[-trainer.iterations:]), rel=1e-4)


def _fresh_reconstruction_error(trainer: AdvNormTrainer, batches: int = 8) -> tuple[float, float]:
    """G's MSE to its standardized input on fresh training patches, and that input's variance."""
    errors, variances = [], []
    with torch.no_grad():
        for _ in range(batches):
            x = trainer._batch()[0]
            target = trainer.standardize_input(x)
            errors.append(float(((trainer._normalize(x, ddp=False) - target) ** 2).mean()))
            variances.append(float(target.var()))
    return float(np.mean(errors)), float(np.mean(variances))


def test_a_long_enough_warm_up_makes_the_generator_reproduce_its_input(tiny_data, tiny_advnorm) -> None:
    """The warm-up's job (the short paper: the MSE initialization brings G's output "close to real input" before S
    and D start), at the paper's lr_g: one pass leaves G worse than a constant output; 30 bring its error on
    fresh patches under half the input's variance. ``train/loss_mse_last`` reports that error, where the mean
    over the whole warm-up (``train/loss_mse``) does not."""
    fidelity = {}
    for passes in (1, 30):
        trainer = make(tiny_data, tiny_advnorm, warmup_epochs=passes, bias_augment=0.0)
        steps = trainer.warm_up()
        last = float(np.mean([float(step["loss_mse_last"]) for step in steps if "loss_mse_last" in step]))
        whole = float(np.mean([float(step["loss_mse"]) for step in steps]))
        fresh, variance = _fresh_reconstruction_error(trainer)
        fidelity[passes] = (last, whole, fresh, variance)
    last, _, fresh, variance = fidelity[1]
    assert fresh > 0.8 * variance, fidelity
    last, whole, fresh, variance = fidelity[30]
    assert fresh < 0.5 * variance and last < 0.5 * variance, fidelity
    assert abs(last - fresh) < 0.25 * fresh < abs(whole - fresh), fidelity


def test_dice_ce_adds_the_voxels_cross_entropy_to_eq_1(tiny_data, tiny_advnorm) -> None:
    from platform.losses import weighted_dice_loss

    trainer = make(tiny_data, tiny_advnorm, seg_loss="dice_ce")
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, trainer.num_classes, 4, 4, 4, generator=generator)
    target = torch.randint(0, trainer.num_classes, (2, 4, 4, 4), generator=generator)
    by_hand = weighted_dice_loss(logits, target, trainer.class_weights) + torch.nn.functional.cross_entropy(
        logits, target)
    assert torch.allclose(trainer._segmentation_loss(logits, target), by_hand)
    plain = make(tiny_data, tiny_advnorm)
    assert torch.allclose(plain._segmentation_loss(logits, target),
                          weighted_dice_loss(logits, target, plain.class_weights))


# --- the adversarial mechanism ------------------------------------------------------------------------------------


def _discriminator_inputs(trainer: AdvNormTrainer) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, generated): what D is given in one discriminator step."""
    seen: list[torch.Tensor] = []
    hook = trainer.net("D").register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        trainer._discriminator_step(trainer._batch())
    finally:
        hook.remove()
    return seen[0], seen[1]


def _percentiles(x: torch.Tensor) -> tuple[float, float]:
    low, high = np.percentile(x.float().numpy().ravel(), [5, 95])
    return float(low), float(high)


def test_the_discriminator_sees_real_and_generated_patches_on_one_scale(tiny_data, tiny_advnorm) -> None:
    """D must judge realism, not a value range: once the warm-up has taught G to reproduce its input, real and
    generated inputs of D cover the same 5th-95th percentile span, and D trained against that G cannot tell the
    two apart on one domain better than chance."""
    data = tiny_data.model_copy(update={"domains": ["infant"], "patches_per_epoch": 48, "batch_size": 4})
    trainer = make(data, tiny_advnorm, warmup_epochs=4, lr_g=1e-2, bias_augment=0.0)
    trainer.warm_up()
    real, generated = _discriminator_inputs(trainer)
    (r_low, r_high), (g_low, g_high) = _percentiles(real), _percentiles(generated)
    shared = min(r_high, g_high) - max(r_low, g_low)
    union = max(r_high, g_high) - min(r_low, g_low)
    assert shared / union > 0.7, (r_low, r_high, g_low, g_high)
    # D alone, against that G: its accuracy on real and generated patches stays near chance.
    accuracies = [float(trainer._discriminator_step(trainer._batch())["disc_acc"]) for _ in range(30)]
    assert np.mean(accuracies[20:]) < 0.7  # equal batches: the mean per-step accuracy is the pooled one


def _generated_accuracy(trainer: AdvNormTrainer, batches: int = 8) -> float:
    """Share of G's patches (fresh training batches) that D calls generated."""
    trainer.eval_mode()
    hits = []
    with torch.no_grad():
        for _ in range(batches):
            _, degraded, _, _ = trainer._batch()
            logits = trainer.net("D")(trainer._normalize(degraded, ddp=False))
            hits.append(logits.argmax(1) == len(trainer.train_domains))
    return float(torch.cat(hits).float().mean())


def test_a_larger_lambda_fools_the_discriminator_more_often(tiny_data, tiny_advnorm) -> None:
    """Algorithm 1 at a small budget: with lambda 10 G's patches are called generated less often than with 0.01."""
    data = tiny_data.model_copy(update={"patches_per_epoch": 32, "batch_size": 4})
    fooled, reported = {}, {}
    for lam in (0.01, 10.0):
        # G starts as the identity (the warm-up); D at the paper specs' learning rate and width.
        trainer = make(data, tiny_advnorm, **{"lambda": lam}, warmup_epochs=2, lr_g=1e-2, lr_d=1e-3, d_channels=16)
        for epoch in range(3):
            reported[lam] = trainer.train_epoch(epoch)
        fooled[lam] = _generated_accuracy(trainer)
    assert fooled[10.0] < fooled[0.01] - 0.1, fooled
    for metrics in reported.values():  # D's accuracy on each class apart, beside the overall figure
        assert {"train/disc_acc", "train/disc_acc_real", "train/disc_acc_fake"} <= set(metrics)
        assert metrics["train/disc_acc"] == pytest.approx(
            (metrics["train/disc_acc_real"] + metrics["train/disc_acc_fake"]) / 2)


def test_every_arm_of_a_comparison_trains_the_segmenter_as_long(tiny_data, tiny_advnorm) -> None:
    """Table 3's arms (Standardization, Pre-processor, the full method) as the paper spec writes them: the warm-up
    of G comes on top of ``epochs``, so each arm runs the same number of S updates."""
    import yaml

    spec = yaml.safe_load((Path(__file__).parents[2] / "search_spaces/paper/advnorm_table3.yaml").read_text())
    fixed = {**spec["fixed"], **tiny_advnorm, "epochs": 2, "warmup_epochs": 1}
    updates = {}
    for row in spec["paper"]["rows"]:
        overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in row["run"])}
        overrides.pop("warmup_epochs", None)  # kept at the spec's value: the warm-up must not cost S epochs
        trainer = make(tiny_data, {**fixed, **overrides})
        run_epochs(trainer, lambda metrics, directory: None, evaluate=False)
        updates[row["label"]] = int(trainer.optimizers["S"].state_dict()["state"][0]["step"])
    assert len(set(updates.values())) == 1, updates
    assert set(updates.values()) == {2 * trainer.iterations}


def test_the_nnunet_options_reach_the_loss_and_the_sampler(tiny_data, tiny_advnorm) -> None:
    from platform.losses import mean_dice_ce_loss

    trainer = make(tiny_data, tiny_advnorm, seg_loss="mean_dice_ce", class_share=0.25)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, trainer.num_classes, 4, 4, 4, generator=generator)
    target = torch.randint(0, trainer.num_classes, (2, 4, 4, 4), generator=generator)
    assert torch.allclose(trainer._segmentation_loss(logits, target), mean_dice_ce_loss(logits, target))
    centres = torch.cat([trainer.samplers["patches"].sample()[1][:, 8, 8, 8] for _ in range(8)])
    for cls in range(1, trainer.num_classes):  # each foreground class centres at least a quarter of the patches
        assert float((centres == cls).float().mean()) >= 0.25 - 1 / len(centres)
