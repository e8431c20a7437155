"""DualNorm-UNet training: alternating updates touch only their branch, baselines, errors, state."""

from __future__ import annotations

import pytest
import torch

from platform.data.config import DataConfig
from platform.data.datasets import load_cases, split_cases
from platform.engine import run_epochs
from platform.trainers.dualnorm import Config, DualNormTrainer

TINY = {"epochs": 3, "pretrain_epochs": 1, "s_channels": 4, "dnrb_blocks": [1, 2]}


def make(data: DataConfig, **overrides) -> DualNormTrainer:
    torch.set_num_threads(1)
    return DualNormTrainer(Config.model_validate({**TINY, **overrides}), data, seed=0)


def snapshot(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def changed(before: list[torch.Tensor], params: list[torch.nn.Parameter]) -> bool:
    return any(not torch.equal(b, p.detach()) for b, p in zip(before, params, strict=True))


def test_each_update_touches_only_its_branch(tiny_data) -> None:
    trainer = make(tiny_data)
    groups = trainer.net("net").parameter_groups()
    x, y, z = trainer.samplers["slices"].sample()

    bn_before, spade_before, shared_before = (snapshot(groups[k]) for k in ("bn", "spade", "shared"))
    logits = trainer.first_forward(x, z)
    trainer._step(trainer.loss_fn(logits, y.unsqueeze(1)))
    assert changed(bn_before, groups["bn"]) and changed(shared_before, groups["shared"])
    assert not changed(spade_before, groups["spade"])

    bn_before, spade_before, shared_before = (snapshot(groups[k]) for k in ("bn", "spade", "shared"))
    trainer._step(trainer.loss_fn(trainer.second_forward(x, logits.detach().softmax(1), z), y.unsqueeze(1)))
    assert changed(spade_before, groups["spade"]) and changed(shared_before, groups["shared"])
    assert not changed(bn_before, groups["bn"])


def test_pretraining_then_alternating_and_loss_falls(tiny_data) -> None:
    trainer = make(tiny_data, epochs=6, pretrain_epochs=2)
    history = [trainer.train_epoch(epoch) for epoch in range(6)]
    assert [h["train/pretraining"] for h in history] == [1, 1, 0, 0, 0, 0]
    assert "train/loss_spade" not in history[0] and "train/loss_spade" in history[-1]
    assert history[-1]["train/loss_bn"] < history[0]["train/loss_bn"]
    metrics = trainer.evaluate()
    assert {"val/dice", "val/dice_first_forward", "val/asd", "val/hd95", "val/dice/adult/wm"} <= set(metrics)
    assert set(metrics) <= DualNormTrainer.metric_names(trainer.config, tiny_data)


@pytest.mark.parametrize(("overrides", "nets"), [
    ({"dnrb_blocks": []}, {"net"}),
    ({"dnrb_blocks": [], "norm": "instance"}, {"net"}),
    ({"dnrb_blocks": [], "norm": "dsbn"}, {"net"}),
    ({"share_weights": False}, {"net", "spade_net"}),
    ({"context": 1}, {"net"}),
])
def test_baselines_and_options_train_and_evaluate(tiny_data, overrides, nets) -> None:
    trainer = make(tiny_data, **overrides)
    assert set(trainer.nets) == nets
    trainer.train_epoch(0)
    trainer.train_epoch(1)
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["val/dice"] <= 1.0
    if not trainer.config.dnrb_blocks:  # no DNRB, no SPADE branch
        assert metrics["val/dice"] == metrics["val/dice_first_forward"]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"dnrb_blocks": [0, 11]}, "outside 1..10"),
    ({"dnrb_blocks": [1, 1]}, "repeat"),
    ({"lambda": 1.5}, "less than or equal to 1"),
])
def test_bad_config_is_rejected(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config.model_validate({**TINY, **overrides})


def test_context_larger_than_the_volume_is_an_error(tiny_data) -> None:
    with pytest.raises(ValueError, match="context"):
        make(tiny_data, context=tiny_data.size)


def test_dsbn_with_an_unseen_domain_is_an_error(tiny_data) -> None:
    adult_only = tiny_data.model_copy(update={"train_domains": ["adult"]})  # infant evaluates only
    with pytest.raises(ValueError, match=r"dsbn has no BatchNorm for evaluation domain\(s\) \['infant'\]"):
        make(adult_only, norm="dsbn", dnrb_blocks=[])
    trainer = make(adult_only, norm="batch", dnrb_blocks=[])  # other norms evaluate unseen domains
    assert {c.domain for c in trainer.train_cases} == {"adult"}
    assert set(trainer.evaluate("test")) >= {"test/dice/infant", "test/dice/adult"}


def test_folds_never_share_a_subject(tiny_data) -> None:
    data = tiny_data.model_copy(update={"folds": 2})
    cases = load_cases(data)
    for fold in range(2):
        train, val, test = split_cases(cases, data, fold=fold)
        ids = [{(c.domain, c.subject) for c in part} for part in (train, val, test)]
        assert not ids[0] & ids[1] and not (ids[0] | ids[1]) & ids[2]


# --- fidelity to the paper --------------------------------------------------------------------------------------


def test_val_dice_scores_the_first_forward_during_pretraining_and_the_second_after(tiny_data) -> None:
    trainer = make(tiny_data, epochs=2, pretrain_epochs=1)
    reports = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics))
    pretraining, after = reports
    assert pretraining["val/scored_forward"] == 1 and after["val/scored_forward"] == 2
    assert pretraining["val/dice"] == pytest.approx(pretraining["val/dice_first_forward"])
    assert after["val/dice"] == pytest.approx(after["val/dice_second_forward"])
    plain = make(tiny_data, epochs=2, pretrain_epochs=1, dnrb_blocks=[])
    plain.train_epoch(0)
    plain.epoch = 2
    assert plain.scored_forward() == 1  # without DNRB there is only the first forward


def test_the_loss_is_equation_9_with_equation_8s_cross_entropy() -> None:
    from platform.trainers.dualnorm import dualnorm_loss

    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 1, 5, 5))
    probs, onehot = logits.softmax(1), torch.nn.functional.one_hot(target[:, 0], 3).movedim(-1, 1).float()
    # Equation 7 per sample (MONAI's default: per sample and class, then the mean), with squared denominators.
    dice = 1 - 2 * (onehot * probs).sum((2, 3)) / (onehot.pow(2) + probs.pow(2)).sum((2, 3))
    pixels = 5 * 5 * 2
    ce = -(onehot * probs.log()).sum() / (pixels * 3)  # equation 8: over D pixels and |L| classes
    for lam in (0.0, 0.5, 1.0):
        expected = lam * dice.mean() + (1 - lam) * ce
        assert float(dualnorm_loss(lam, 3)(logits, target)) == pytest.approx(float(expected), rel=1e-5)


def test_parameter_ratio_against_the_network_without_dnrb(tiny_data) -> None:
    plain = make(tiny_data, dnrb_blocks=[])
    assert plain.train_epoch(0)["model/params_ratio"] == pytest.approx(1.0)
    ratios = [make(tiny_data, dnrb_blocks=blocks).train_epoch(0)["model/params_ratio"]
              for blocks in ([1], [1, 2, 3, 4])]
    assert 1.0 < ratios[0] < ratios[1]


def test_spade_normalizes_with_the_bn_branch_statistics() -> None:
    from platform.nets.resunet2d import DualNorm

    torch.manual_seed(0)
    x, mask = torch.randn(4, 6, 8, 8) * 3 + 2, torch.softmax(torch.randn(4, 3, 8, 8), 1)
    for statistics in ("bn", "own"):
        layer = DualNorm(6, 3, spade_statistics=statistics)
        layer.train()
        for _ in range(3):
            layer(x, None)  # BN-branch forwards move the BN running statistics only
        layer.eval()
        spade = layer.spade
        hidden = spade.shared(mask)
        modulate = (1 + spade.gamma(hidden), spade.beta(hidden))
        norm = layer.bn if statistics == "bn" else spade.param_free_norm
        mean, var = norm.running_mean.view(1, -1, 1, 1), norm.running_var.view(1, -1, 1, 1)
        expected = (x - mean) / torch.sqrt(var + norm.eps) * modulate[0] + modulate[1]
        torch.testing.assert_close(layer(x, mask), expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(layer.bn.running_mean, layer.spade.param_free_norm.running_mean)


def test_precise_bn_re_estimates_the_statistics_without_touching_training(tiny_data) -> None:
    trainer = make(tiny_data, eval_bn="precise", precise_bn_batches=4)
    trainer.train_epoch(0)
    state = trainer.samplers["slices"].state_dict()
    bn = next(m for m in trainer.net("net").modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    first = trainer.evaluate("val")
    assert not torch.allclose(bn.running_mean, before)
    again = trainer.evaluate("val")
    assert first == again  # the same fixed batches each time
    assert trainer.samplers["slices"].state_dict() == state  # training's own stream is untouched
    assert bn.momentum == 0.1 and not bn.training


def test_a_dnrb_configuration_never_selects_a_pretraining_epoch(tiny_data, monkeypatch) -> None:
    """The pretraining epochs score best on val here (scripted), yet the selected checkpoint is one that scores
    the SPADE forward, and the trial says so; ASHA's clock is reported after pretraining only."""
    trainer = make(tiny_data, epochs=4, pretrain_epochs=2, dnrb_blocks=[1])
    evaluate = trainer.evaluate
    scripted = iter([0.9, 0.8, 0.3, 0.4])  # val/dice of epochs 1..4: the BN-only pretraining epochs look best

    def scripted_val(split: str = "val") -> dict[str, float]:
        metrics = evaluate(split)
        if split == "val":
            metrics["val/dice"] = next(scripted)
        return metrics

    monkeypatch.setattr(trainer, "evaluate", scripted_val)
    reports: list[dict] = []
    run_epochs(trainer, lambda metrics, directory: reports.append(metrics))
    final = reports[-1]
    assert final["test/selected_epoch"] == 4  # 0.4: the best epoch after pretraining
    assert final["test/best/scored_forward"] == 2 and final["test/last/scored_forward"] == 2
    assert [r["val/scored_forward"] for r in reports] == [1, 1, 2, 2]
    assert [r.get("selection/epoch") for r in reports] == [None, None, 3.0, 4.0]
    # Both forwards' val Dice stay in every epoch's report.
    assert all("val/dice_first_forward" in r for r in reports)
    assert all("val/dice_second_forward" in r for r in reports)


@pytest.mark.parametrize(("overrides", "selectable"), [
    ({"dnrb_blocks": [1], "pretrain_epochs": 2}, [False, False, True, True]),
    ({"dnrb_blocks": [], "pretrain_epochs": 2}, [True, True, True, True]),  # no DNRB: every epoch is the method
    ({"dnrb_blocks": [3], "pretrain_epochs": 0}, [True, True, True, True]),
])
def test_which_epochs_are_eligible_for_selection(tiny_data, overrides, selectable) -> None:
    trainer = make(tiny_data, epochs=4, **overrides)
    eligible = []
    for epoch in range(1, 5):
        trainer.epoch = epoch
        eligible.append(trainer.selectable())
    assert eligible == selectable


def test_pretraining_as_long_as_training_is_refused(tiny_data) -> None:
    config = Config.model_validate({**TINY, "epochs": 3, "pretrain_epochs": 3})
    assert any("pretrain_epochs (3) must be below epochs (3)" in p for p in DualNormTrainer.check(config, tiny_data))
    assert DualNormTrainer.check(Config.model_validate({**TINY, "epochs": 3, "pretrain_epochs": 3,
                                                        "dnrb_blocks": []}), tiny_data) == []
