"""GLUA training: stage-1 cache, target labels never read, ablation switches, bad inputs, state round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from platform.data.config import DataConfig
from platform.trainers import base
from platform.trainers.glua import Config, GLUATrainer

TINY = {"epochs": 3, "stage1_epochs": 1, "g_channels": 4, "g_downsample": 1, "g_res_blocks": 1, "mlp_hidden": 8,
        "d_img_channels": 4, "d_img_layers": 2, "s_channels": 4, "s_dilated_blocks": 1, "d1_channels": 8,
        "d2_channels": 4}


@pytest.fixture(scope="module")
def data(cache_dir: Path) -> DataConfig:
    # mr is the labelled source (its labels train), ct the unlabelled target (scored): glua's roles.
    return DataConfig(domains=["mr", "ct"], train_domains=["mr"], eval_domains=["ct"], subjects_per_domain=3, size=24,
                      batch_size=2, patches_per_epoch=8, cache_dir=str(cache_dir))


MASK_DIAGNOSTIC = {"train/mask_fg", "train/mask_bg"}


def make(data: DataConfig, **overrides) -> GLUATrainer:
    torch.set_num_threads(1)
    return GLUATrainer(Config.model_validate({**TINY, **overrides}), data, seed=0)


def test_short_run_losses_are_finite_and_metrics_are_declared(data) -> None:
    trainer = make(data, lambda_rec_c=1.5)  # a stage-1 config of its own: trains stage 1 here
    history = [trainer.train_epoch(epoch) for epoch in range(3)]
    assert history[0]["train/stage"] == 1 and history[0]["train/stage1_cached"] == 0
    assert {"train/loss_rec_im", "train/loss_cyc", "train/loss_rec_c", "train/loss_adv_img"} <= set(history[0])
    assert {"train/loss_seg", "train/loss_d1", "train/loss_d2"} <= set(history[-1])
    assert all(np.isfinite(v) for h in history for v in h.values())
    metrics = trainer.evaluate()
    assert {"val/dice", "val/dice/ct", "val/dice/ct/wm", "val/asd", "val/style_jsd"} <= set(metrics)
    assert metrics["val/dice"] == metrics["val/dice/ct"]
    assert "val/dice/mr" not in metrics  # the source is not an evaluation domain here
    names = GLUATrainer.metric_names(trainer.config, data)
    assert set(metrics) <= names and all(set(h) <= names for h in history)


def test_stage1_cache_is_hit_with_other_stage2_weights_and_missed_with_other_stage1_weights(data) -> None:
    first = make(data, lambda_adv=0.7)
    assert not first.stage1_cached
    first.train_epoch(0)
    assert first.stage1_path().is_file()
    assert first.stage1_path().parent.name == "glua-stage1"
    second = make(data, lambda_adv=0.7, lambda_d1=0.5, lambda_d2=0.2)
    assert second.stage1_cached and second.stage1_path() == first.stage1_path()
    assert second.train_epoch(0) == {"train/iterations": 4.0, "train/stage": 1.0, "train/stage1_cached": 1.0}
    for name in ("g_enc", "g_dec"):
        for a, b in zip(first.net(name).state_dict().values(), second.net(name).state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert second.train_epoch(1)["train/stage1_cached"] == 1.0  # stage 2 runs on the cached style transfer
    third = make(data, lambda_adv=0.7, lambda_cyc=19.0)
    assert not third.stage1_cached and third.stage1_path() != first.stage1_path()


def test_target_labels_are_never_read_in_training(data, monkeypatch) -> None:
    make(data).train_epoch(0)  # stage 1 cached for both runs below

    def run() -> list[dict[str, float]]:
        trainer = make(data)
        # The mask's foreground/background means read the target labels, as a diagnostic only: everything else,
        # the losses and the discriminators' accuracies included, must not change with them.
        return [{k: v for k, v in trainer.train_epoch(epoch).items() if k not in MASK_DIAGNOSTIC}
                for epoch in range(3)]

    expected = run()
    train, val, test = base.cached_cases(data.model_dump_json(), None)
    rng = np.random.default_rng(1)
    corrupted = tuple(dataclasses.replace(c, label=rng.integers(0, 4, c.label.shape)) if c.domain == "ct" else c
                      for c in train)
    monkeypatch.setattr(base, "cached_cases", lambda data_json, fold: (corrupted, val, test))
    assert run() == expected


@pytest.mark.parametrize(("ablation", "nets", "switches"), [
    ("source_only", {"s_enc", "s_pred"}, (False, False, False, "no_adaptation")),
    ("st", {"g_enc", "g_dec", "d_img", "s_enc", "s_pred"}, (True, False, False, "adapt")),
    ("d1+d2", {"s_enc", "s_pred", "d1", "d2"}, (False, True, True, "adapt")),
    ("st+d2", {"g_enc", "g_dec", "d_img", "s_enc", "s_pred", "d2"}, (True, False, True, "adapt")),
    ("supervised", {"s_enc", "s_pred"}, (False, False, False, "supervised_target")),
])
def test_ablations_expand_into_switches_and_train(data, ablation, nets, switches) -> None:
    trainer = make(data, ablation=ablation, mask="margin")
    cfg = trainer.config
    assert (cfg.style_transfer, cfg.use_d1, cfg.use_d2, cfg.mode) == switches
    assert set(trainer.nets) == nets
    for epoch in range(3):
        trainer.train_epoch(epoch)
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["val/dice"] <= 1.0
    assert set(metrics) <= GLUATrainer.metric_names(cfg, data)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"source": "ct", "target": "ct"}, "source and target are both 'ct'"),
    ({"lambda_d1": -0.1}, "greater than or equal to 0"),
    ({"lambda_cyc": -1}, "greater than or equal to 0"),
    ({"ablation": "st+d3"}, "ablation 'st\\+d3' is not one of"),
    ({"stage1_epochs": 3}, "stage 2 needs at least one epoch"),
])
def test_bad_config_is_rejected(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config.model_validate({**TINY, **overrides})


@pytest.mark.parametrize(("roles", "fields", "expected"), [
    ({"train_domains": ["mr"], "eval_domains": ["ct"]}, {}, ("mr", "ct")),
    ({"train_domains": ["ct"], "eval_domains": ["mr"]}, {}, ("ct", "mr")),  # the other direction
    ({"eval_domains": ["ct"]}, {}, ("mr", "ct")),  # one evaluation domain is the target; the other trains
    ({}, {"source": "mr", "target": "ct"}, ("mr", "ct")),  # named in the config
    ({}, {}, "cannot tell its target domain"),  # both domains train and evaluate: ambiguous
    ({"train_domains": ["mr"], "eval_domains": ["ct"]}, {"target": "mr"}, "source and target are both|cannot tell"),
    ({"train_domains": ["mr"], "eval_domains": ["ct"]}, {"target": "infant"}, "not among data.domains"),
])
def test_source_and_target_come_from_the_domain_roles(roles, fields, expected) -> None:
    from platform.trainers.glua import domain_roles

    data = DataConfig(domains=["mr", "ct"], **roles)
    config = Config.model_validate({**TINY, **fields})
    train, evaluation = data.training_domains([]), data.evaluation_domains([])
    if isinstance(expected, tuple):
        assert domain_roles(config, data, train, evaluation) == expected
    else:
        with pytest.raises(ValueError, match=expected):
            domain_roles(config, data, train, evaluation)


def test_bad_inputs_are_rejected_before_training(data, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"stage1_checkpoint .* does not exist"):
        make(data, stage1_checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match=r"target domain 'adult' is not among data.domains \['mr', 'ct'\]"):
        make(data, target="adult")
    problems = GLUATrainer.check(Config.model_validate({**TINY, "source": "infant"}), data)  # spec time, before Ray
    assert any("source domain 'infant' is not among" in problem for problem in problems), problems
    train, val, test = base.cached_cases(data.model_dump_json(), None)
    source_only = tuple(c for c in train if c.domain == "mr")
    monkeypatch.setattr(base, "cached_cases", lambda data_json, fold: (source_only, val, test))
    with pytest.raises(ValueError, match="target domain 'ct' has no training cases"):
        make(data)


def test_explicit_stage1_checkpoint_is_loaded(data) -> None:
    first = make(data)
    first.train_epoch(0)
    second = make(data, stage1_checkpoint=str(first.stage1_path()), lambda_cyc=5.0)
    assert second.stage1_cached
    assert torch.equal(next(iter(first.net("g_dec").parameters())), next(iter(second.net("g_dec").parameters())))


# --- fidelity to the paper --------------------------------------------------------------------------------------


def test_the_gap_mask_is_high_where_d1_tells_the_domains_apart() -> None:
    from platform.nets.deeplab2d import local_feature_mask

    logits = torch.tensor([-4.0, 0.0, 4.0])  # D1: surely target, unsure, surely source
    gap_target = local_feature_mask(logits, "gap", "target")
    assert gap_target[0] > 0.95 and abs(float(gap_target[1]) - 0.5) < 1e-6 and gap_target[2] < 0.05
    torch.testing.assert_close(local_feature_mask(logits, "gap", "source"), 1 - gap_target)
    for uncertainty in ("entropy", "margin"):  # the other reading: high where D1 is unsure
        mask = local_feature_mask(logits, uncertainty)
        assert mask[1] == pytest.approx(1.0) and mask[0] < 0.3 and mask[2] < 0.3


@pytest.mark.parametrize("mask_on", ["target", "both", "adversarial"])
def test_where_the_mask_applies(data, mask_on) -> None:
    trainer = make(data, mask_on=mask_on)
    history = [trainer.train_epoch(epoch) for epoch in range(3)]
    last = history[-1]
    assert {"train/mask_mean", "train/mask_var", "train/d1_acc", "train/d2_acc", *MASK_DIAGNOSTIC} <= set(last)
    assert 0 <= last["train/d1_acc"] <= 1 and last["train/mask_var"] >= 0
    x = trainer.samplers["unlabelled"].sample()
    trainer.eval_mode()
    with torch.no_grad():
        logits, features, target_mask = trainer.segment(x, target=True, ddp=False)
        plain = trainer.net("s_pred")(features, x.shape[-2:])
        _, _, source_mask = trainer.segment(x, target=False, ddp=False)
    reweighted = not torch.allclose(logits, plain)
    assert reweighted == (mask_on != "adversarial")  # adversarial: the features stay, the loss is weighted
    assert target_mask is not None and (source_mask is not None) == (mask_on == "both")


def test_source_and_target_slices_are_drawn_the_same_way(data) -> None:
    """Both uniform over every slice: no foreground-only source that the discriminators could tell by content."""
    trainer = make(data, ablation="d1+d2")
    trainer.train_epoch(1)  # builds the stage-2 samplers
    labelled = trainer.samplers["labelled"]
    depth = sum(c.label.shape[-1] for c in trainer.source_train)
    assert len(labelled._rows) == depth  # every slice of every source volume is a candidate
    empty = [z for c in trainer.source_train for z in range(c.label.shape[-1]) if not (c.label[..., z] > 0).any()]
    assert empty, "the phantom has brain-free slices, so the check above means something"


def test_the_trained_mask_is_higher_on_the_textured_gm_than_on_background(data) -> None:
    """The ct phantom's GM carries a texture no global style removes: once D1 learns (lr_d 1e-2 here; at 1e-4 it
    stays at chance on this budget), the gap mask on the target's GM exceeds its background mean by at least 3%
    (measured: about 7%); every stage-2 epoch reports the mask's foreground and background means."""
    data = data.model_copy(update={"patches_per_epoch": 16})
    ratios = {}
    for lr_d in (1e-4, 1e-2):
        trainer = make(data, ablation="d1+d2", epochs=6, lr_d=lr_d)
        history = [trainer.train_epoch(epoch) for epoch in range(6)]
        assert all(set(h) >= MASK_DIAGNOSTIC for h in history[1:])  # every stage-2 epoch
        by_label = trainer.mask_by_label(trainer.target_train)
        mean = {label: total / count for label, (total, count) in by_label.items()}
        last = history[-1]
        fg = sum(t for label, (t, _) in by_label.items() if label > 0) / sum(
            n for label, (_, n) in by_label.items() if label > 0)
        assert last["train/mask_fg"] == pytest.approx(fg) and last["train/mask_bg"] == pytest.approx(mean[0])
        ratios[lr_d] = mean[2] / mean[0]  # label 2: GM
    assert ratios[1e-2] > 1.03
    assert ratios[1e-2] - 1 > 2 * abs(ratios[1e-4] - 1)  # a D1 at chance leaves the mask flat
