"""Adversarial normalization's evaluation and description (Delisle et al.), functions of the trainer in
``platform.trainers.advnorm``: the scored volumes, the intensity distributions of the input and of G's output
(JSD, bias correlation), Table 6's test-time bias-field sweep, Table 7's discriminator validation on fixed
patches, the spec-time problems of a config, and the metric names a config reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from platform.data.patches import PatchSampler, apply_bias_field
from platform.losses import discriminator_loss
from platform.metrics import (
    SegmentationSummary,
    classification_accuracy,
    confusion_matrix,
    generalized_jsd,
    histogram_jsd,
    intensity_position_correlation,
    summary_names,
)

if TYPE_CHECKING:
    from platform.data.config import DataConfig
    from platform.trainers.base import Trainer, TrainerConfig

SURFACE_METRICS = ("hd95", "mhd")  # the paper's equation 5 (MHD) beside HD95


def intensity_metrics(split: str, inputs: dict[str, list[np.ndarray]], outputs: dict[str, list[np.ndarray]],
                      corr_in: list[float], corr_out: list[float]) -> dict[str, float]:
    """Between the domains' foreground intensities (per domain, the cases' voxels): the histogram JSD (pairwise
    and generalized) of the input and of G's output; the mean absolute correlation of intensity with position."""
    pooled_in = [np.concatenate(v) for v in inputs.values() if v]
    pooled_out = [np.concatenate(v) for v in outputs.values() if v]
    return {f"{split}/jsd_input": histogram_jsd(pooled_in), f"{split}/jsd_norm": histogram_jsd(pooled_out),
            f"{split}/jsd_k_input": generalized_jsd(pooled_in), f"{split}/jsd_k_norm": generalized_jsd(pooled_out),
            f"{split}/bias_corr_input": float(np.mean(np.abs(corr_in))),
            f"{split}/bias_corr_norm": float(np.mean(np.abs(corr_out)))}


def bias_sweep(trainer: Trainer, split: str) -> dict[str, float]:
    """Table 6: each volume of ``split`` degraded by the linear field at each ``eval_bias_alphas``; per domain the
    mean (signed) correlation of intensity with y inside the brain, of the degraded input and of G's output, and
    the Dice on the degraded volumes."""
    metrics: dict[str, float] = {}
    for alpha in trainer.config.eval_bias_alphas:
        tag = f"a{alpha:g}"
        summary = SegmentationSummary(trainer.class_names)
        corr: dict[tuple[str, str], list[float]] = {}
        for case in trainer.cases_of(split):
            image = torch.from_numpy(case.image).unsqueeze(0).to(trainer.device)
            degraded = apply_bias_field(image, torch.tensor([alpha], device=trainer.device))
            normalized, pred = trainer._infer(degraded)
            summary.add(case.domain, case.subject, pred, torch.from_numpy(case.label).to(trainer.device))
            brain = case.label > 0
            for kind, volume in (("input", degraded), ("norm", normalized)):
                value = intensity_position_correlation(volume[0, 0].float().cpu().numpy(), brain)
                corr.setdefault((kind, case.domain), []).append(value)
        metrics[f"{split}/dice_bias/{tag}"] = summary.metrics(split, trainer.eval_domains)[f"{split}/dice"]
        for (kind, domain), values in corr.items():
            metrics[f"{split}/bias_corr_{kind}/{tag}/{domain}"] = float(np.mean(values))
    return metrics


def discriminator_validation(trainer: Trainer, split: str, cases: list[Any]) -> dict[str, float]:
    """D's loss, accuracy and confusion matrix on a fixed set of patches of ``split``, real (their training
    domain) and generated (class K+1), Table 7."""
    batch, domains = trainer.data_config.batch_size, trainer.train_domains
    sampler = PatchSampler(cases, domains, trainer.data_config.patch_size, batch, seed=12345)
    logits, labels, losses = [], [], []
    discriminator = trainer.net("D")
    for _ in range(max(1, trainer.config.eval_patches * len(domains) // batch)):
        x, _, z = sampler.sample()
        x, z = x.to(trainer.device), z.to(trainer.device)
        # The real class as training shows it: the patches in the networks' input space.
        real_logits = discriminator(trainer.standardize_input(x))
        fake_logits = discriminator(trainer._normalize(x, ddp=False))
        fake = torch.full_like(z, len(domains))
        losses.append(discriminator_loss(real_logits, z) + discriminator_loss(fake_logits, fake))
        logits += [real_logits, fake_logits]
        labels += [z, fake]
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    fake_rows = all_labels == len(domains)
    real, fake = (classification_accuracy(all_logits[rows], all_labels[rows]) for rows in (~fake_rows, fake_rows))
    names = [*domains, "generated"]
    confusion = confusion_matrix(all_logits, all_labels, len(names))  # rows: the true class, normalized
    metrics = {f"{split}/disc_confusion/{names[i]}/{names[j]}": float(confusion[i, j])
               for i in range(len(names)) for j in range(len(names))}
    return metrics | {
        f"{split}/loss_dis": float(torch.stack(losses).mean()),
        f"{split}/disc_acc": classification_accuracy(all_logits, all_labels),
        f"{split}/disc_acc_real": real,
        f"{split}/disc_acc_fake": fake,
    }


def evaluate_volumes(trainer: Trainer, split: str) -> dict[str, float]:
    """Every volume of ``split`` through G and S by sliding window: the segmentation summary, the intensity
    metrics, Table 6's sweep (test only) and D's validation; fills ``last_eval`` and ``last_cases``."""
    summary = SegmentationSummary(trainer.class_names, surface=SURFACE_METRICS)
    inputs: dict[str, list[np.ndarray]] = {d: [] for d in trainer.eval_domains}
    outputs: dict[str, list[np.ndarray]] = {d: [] for d in trainer.eval_domains}
    corr_in, corr_out = [], []
    trainer.last_eval = []
    for case in trainer.cases_of(split):
        image = torch.from_numpy(case.image).unsqueeze(0).to(trainer.device)
        normalized, pred = trainer._infer(image)
        summary.add(case.domain, case.subject, pred, torch.from_numpy(case.label).unsqueeze(0).to(trainer.device),
                    trainer.spacing(case))
        brain = case.label > 0
        norm_np = normalized[0, 0].float().cpu().numpy()
        inputs[case.domain].append(case.image[0][brain])
        outputs[case.domain].append(norm_np[brain])
        corr_in.append(intensity_position_correlation(case.image[0], brain))
        corr_out.append(intensity_position_correlation(norm_np, brain))
        trainer.last_eval.append({"case": case, "normalized": norm_np, "pred": pred[0].cpu().numpy()})
    metrics = summary.metrics(split, trainer.eval_domains) | intensity_metrics(split, inputs, outputs, corr_in,
                                                                            corr_out)
    trainer.last_cases = summary.cases()
    if split == "test" and trainer.config.eval_bias_alphas:
        metrics.update(bias_sweep(trainer, split))
    judged = [c for c in trainer.splits[split] if c.domain in trainer.train_domains]  # D's real classes only
    if "D" in trainer.nets and trainer.config.eval_patches > 0 and judged:
        metrics.update(discriminator_validation(trainer, split, judged))
    return metrics


def config_problems(config: TrainerConfig, data: DataConfig) -> list[str]:
    """What ``AdvNormTrainer.check`` refuses at spec time, one line each."""
    problems = [f"data.patch_size {data.patch_size} must be divisible by 2**({name}-1) = {2 ** (depth - 1)}; "
                f"change data.patch_size or {name}"
                for name, depth in (("g_depth", config.g_depth), ("s_depth", config.s_depth))
                if data.patch_size % 2 ** (depth - 1)]
    weights, names = config.class_weights, data.names_of_classes()
    if isinstance(weights, dict) and set(weights) != set(names):
        problems.append(f"class_weights names {sorted(weights)} but the classes are {names}: give one weight "
                        "per class name")
    elif isinstance(weights, list) and len(weights) != data.num_classes:
        problems.append(f"class_weights has {len(weights)} values for {data.num_classes} classes; "
                        "give one weight per class, background first")
    if config.class_share * (data.num_classes - 1) > 1:
        problems.append(f"class_share {config.class_share} for each of {data.num_classes - 1} foreground classes "
                        f"is more than every patch: give at most {1 / (data.num_classes - 1):.3g}")
    return problems


def declared_names(config: TrainerConfig, data: DataConfig) -> set[str]:
    """Every train/ and val/ name this config reports on this data (``metric_names``)."""
    names = {"train/loss", "train/loss_seg", "train/iterations", "train/lr_s", "val/jsd_input", "val/jsd_norm",
             "val/jsd_k_input", "val/jsd_k_norm", "val/bias_corr_input", "val/bias_corr_norm"}
    names |= summary_names("val", data.evaluation_domains(), data.names_of_classes(), surface=SURFACE_METRICS)
    if config.generator != "none":
        names.add("train/lr_g")
        if config.warmup_epochs > 0:
            names |= {"train/loss_mse", "train/loss_mse_last"}
    if config.discriminator != "none" and config.generator != "none":
        names |= {"train/loss_dis", "train/lr_d"} | {f"train/disc_acc{p}" for p in ("", "_real", "_fake")}
        if config.lambda_ > 0:
            names.add("train/loss_adv")
        if config.eval_patches > 0:  # on the val patches of the training domains
            classes = [*data.training_domains(), "generated"]
            names |= {"val/loss_dis"} | {f"val/disc_acc{p}" for p in ("", "_real", "_fake")}
            names |= {f"val/disc_confusion/{a}/{b}" for a in classes for b in classes}
    return names


def declared_test_names(config: TrainerConfig, data: DataConfig) -> set[str]:
    """The test-only names (Table 6's sweep) this config reports (``test_metric_names``)."""
    names = set()
    for alpha in config.eval_bias_alphas:
        names.add(f"test/dice_bias/a{alpha:g}")
        for domain in data.evaluation_domains():
            names |= {f"test/bias_corr_{kind}/a{alpha:g}/{domain}" for kind in ("input", "norm")}
    return names
