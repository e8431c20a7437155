"""GLUA's configuration and plumbing beside its maths (``platform.trainers.glua``): the hyperparameters, Table
III's ablation switches, the source/target roles taken from the data, the spec-time problems, the metric names a
config reports, the networks, optimizers and samplers it builds, the scored volumes, the D1 mask by label (a
diagnostic) and the style-transfer histogram distances."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.slices import ImageSliceSampler, SliceSampler, pad_xy, volume_slices
from platform.metrics import SegmentationSummary, histogram_jsd, summary_names
from platform.nets.deeplab2d import FeatureExtractor, OutputDiscriminator, PixelDiscriminator, Predictor
from platform.nets.styletransfer import ConditionalPatchDiscriminator, StyleDecoder, StyleEncoder
from platform.trainers.base import Trainer, TrainerConfig

MULTIPLE = 8  # slices are padded to a multiple of 8 (up to three stride-2 levels)
SOURCE, TARGET = 0, 1  # domain indices of the style networks
ABLATIONS: dict[str, dict[str, Any]] = {  # Table III columns (+ the bounds) -> switches
    "source_only": {"style_transfer": False, "use_d1": False, "use_d2": False, "mode": "no_adaptation"},
    "st": {"style_transfer": True, "use_d1": False, "use_d2": False, "mode": "adapt"},
    "st+d1": {"style_transfer": True, "use_d1": True, "use_d2": False, "mode": "adapt"},
    "st+d2": {"style_transfer": True, "use_d1": False, "use_d2": True, "mode": "adapt"},
    "d1+d2": {"style_transfer": False, "use_d1": True, "use_d2": True, "mode": "adapt"},
    "st+d1+d2": {"style_transfer": True, "use_d1": True, "use_d2": True, "mode": "adapt"},
    "supervised": {"style_transfer": False, "use_d1": False, "use_d2": False, "mode": "supervised_target"},
}
STAGE1_FIELDS = ("stage1_epochs", "lambda_rec_im", "lambda_cyc", "lambda_rec_c", "lambda_adv", "g_channels",
                 "g_downsample", "g_res_blocks", "mlp_hidden", "d_img_channels", "d_img_layers", "stage1_lr",
                 "stage1_weight_decay", "source", "target")



class Config(TrainerConfig):
    """Hyperparameters of GLUA; loss weights are the paper's, iterations are expressed as epochs."""

    RENAMED: ClassVar[dict[str, str]] = {"seg_lr": "lr_s", "disc_lr": "lr_d", "seg_momentum": "momentum_s",
                                         "seg_weight_decay": "weight_decay_s"}

    epochs: int = Field(60, ge=2, description="total epochs: stage 1 (first stage1_epochs) then stage 2")
    stage1_epochs: int = Field(30, ge=1, description="first epochs training the style transfer (paper: 50k its)")
    source: str | None = Field(None, description="labelled source domain; default: the one training domain that is "
                               "not the target (data.train_domains)")
    target: str | None = Field(None, description="unlabelled target domain; default: the one evaluation domain that "
                               "is not a training domain (data.eval_domains)")
    mode: Literal["adapt", "no_adaptation", "supervised_target"] = Field(
        "adapt", description="adapt; no_adaptation (source only); supervised_target (target labels: upper bound)")
    style_transfer: bool = Field(True, description="stage 1: train S on source images translated to target style")
    use_d1: bool = Field(True, description="D1 on features (and its local feature mask)")
    use_d2: bool = Field(True, description="D2 on softmax predictions")
    ablation: str | None = Field(None, description=f"Table III row overriding mode/style_transfer/use_d1/use_d2: "
                                                   f"{', '.join(ABLATIONS)}")
    mask: Literal["gap", "entropy", "margin"] = Field(
        "gap", description="local mask from D1, the paper's two readings: gap (its confidence the domains differ, "
        "'features with larger domain gap') or entropy (its uncertainty, 'produced by the uncertainty of the domain "
        "discriminator'); margin: 1-|2p-1|, a variant of entropy")
    mask_on: Literal["target", "both", "adversarial"] = Field(
        "target", description="re-weight target features, source and target features, or D1's adversarial loss")
    lambda_rec_im: float = Field(20.0, ge=0, description="image reconstruction weight")
    lambda_cyc: float = Field(20.0, ge=0, description="cycle consistency weight")
    lambda_rec_c: float = Field(1.0, ge=0, description="content reconstruction weight")
    lambda_adv: float = Field(1.0, ge=0, description="image adversarial weight (stage 1)")
    lambda_d1: float = Field(0.01, ge=0, description="feature adversarial weight (D1)")
    lambda_d2: float = Field(0.01, ge=0, description="output-space adversarial weight (D2)")
    g_channels: int = Field(32, ge=1, description="style auto-encoder width (doubling per downsampling)")
    g_downsample: int = Field(2, ge=0, le=3, description="stride-2 levels of G_E (and upsamplings of G_D)")
    g_res_blocks: int = Field(2, ge=0, description="AdaIN residual blocks at the content resolution")
    mlp_hidden: int = Field(64, ge=1, description="hidden width of the domain MLP")
    d_img_channels: int = Field(32, ge=1, description="PatchGAN image discriminator width")
    d_img_layers: int = Field(3, ge=1, le=3, description="PatchGAN stride-2 layers (3: the 70x70 PatchGAN)")
    stage1_lr: float = Field(2e-4, gt=0, description="stage-1 Adam learning rate (paper 2e-4)")
    stage1_weight_decay: float = Field(1e-4, ge=0, description="stage-1 weight decay (paper 1e-4)")
    stage1_checkpoint: str | None = Field(None, description="explicit stage-1 file to load instead of training")
    s_channels: int = Field(32, ge=1, description="width of S_E (paper: DeepLab-ResNet50)")
    s_downsample: int = Field(1, ge=0, le=3, description="stride-2 stages of S_E (output stride 2**n)")
    s_dilated_blocks: int = Field(2, ge=0, description="dilated residual blocks of S_E")
    d1_channels: int = Field(64, ge=1, description="D1 hidden width")
    d2_channels: int = Field(32, ge=1, description="D2 first-layer width")
    lr_s: float = Field(0.01, gt=0, description="SGD learning rate of S (the paper tunes it per task)")
    momentum_s: float = Field(0.9, ge=0, lt=1, description="SGD momentum (paper .9)")
    weight_decay_s: float = Field(5e-4, ge=0, description="SGD weight decay (paper 5e-4)")
    poly_power: float = Field(0.9, ge=0, description="polynomial learning-rate decay power (paper .9)")
    lr_d: float = Field(1e-4, gt=0, description="Adam learning rate of D1, D2 (betas .9, .99); the paper gives "
                        "none, 1e-4 is AdaptSegNet's")
    dice_weight: float = Field(0.5, ge=0, le=1, description="L_seg = w * Dice + (1 - w) * CE")

    @model_validator(mode="after")
    def _check(self) -> Config:
        if self.ablation is not None:
            if self.ablation not in ABLATIONS:
                raise ValueError(f"ablation {self.ablation!r} is not one of {list(ABLATIONS)}")
            for key, value in ABLATIONS[self.ablation].items():
                object.__setattr__(self, key, value)
        if self.source is not None and self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}: adaptation needs two domains")
        if self.stage1_epochs >= self.epochs:
            raise ValueError(f"stage1_epochs ({self.stage1_epochs}) must be below epochs ({self.epochs}): "
                             "stage 2 needs at least one epoch")
        return self

    @property
    def runs_stage1(self) -> bool:
        return self.style_transfer and self.mode == "adapt"

    @property
    def d1(self) -> bool:
        return self.use_d1 and self.mode == "adapt"

    @property
    def d2(self) -> bool:
        return self.use_d2 and self.mode == "adapt"


def domain_roles(config: Config, data: DataConfig, train: list[str], evaluation: list[str]) -> tuple[str, str]:
    """(source, target): the config's, or from the data's domain roles: the target is the one evaluation domain
    that is not a training domain, the source the one training domain that is not the target. ``train`` and
    ``evaluation`` are empty when nothing is known yet (a manifest read later): only the config is checked then."""
    for role, domain in (("source", config.source), ("target", config.target)):
        if domain is not None and data.domains and domain not in data.domains:
            raise ValueError(f"{role} domain {domain!r} is not among data.domains {data.domains}: set {role} to one "
                             "of them or add it to data.domains")
    target = config.target
    if target is None:
        unlabelled = [d for d in evaluation if d not in train] or (evaluation if len(evaluation) == 1 else [])
        if len(unlabelled) != 1:
            if not evaluation:
                raise ValueError("glua needs its target domain: set target, or data.eval_domains to the target")
            raise ValueError(f"glua cannot tell its target domain from data.eval_domains {evaluation} and "
                             f"data.train_domains {train}: set data.eval_domains to the target (e.g. [ct]) and "
                             "data.train_domains to the labelled source (e.g. [mr]), or set source and target")
        target = unlabelled[0]
    source = config.source
    if source is None:
        labelled = [d for d in train if d != target]
        if len(labelled) != 1:
            raise ValueError(f"glua cannot tell its source domain from data.train_domains {train} (target "
                             f"{target!r}): set data.train_domains to the one labelled source, or set source")
        source = labelled[0]
    if source == target:
        raise ValueError(f"source and target are both {source!r}: adaptation needs two domains")
    if evaluation and target not in evaluation:
        raise ValueError(f"target {target!r} is not among data.eval_domains {evaluation}: the target's score is "
                         "the adaptation's; add it to data.eval_domains")
    return source, target


def config_problems(config: Config, data: DataConfig) -> list[str]:
    """What ``GLUATrainer.check`` refuses at spec time, one line each."""
    problems = []
    try:
        domain_roles(config, data, data.training_domains(), data.evaluation_domains())
    except ValueError as exc:
        problems.append(str(exc))
    if config.stage1_checkpoint is not None and not Path(config.stage1_checkpoint).expanduser().is_file():
        problems.append(f"stage1_checkpoint {config.stage1_checkpoint!r} does not exist: give the path of a "
                        "stage-1 file, or remove stage1_checkpoint to train stage 1")
    return problems


STAGE1_LOSSES = {"train/loss_rec_im", "train/loss_cyc", "train/loss_rec_c", "train/loss_adv_img", "train/loss_d_img"}


def declared_names(config: Config, data: DataConfig) -> set[str]:
    """Every train/ and val/ name this config reports on this data (``metric_names``): stage 1's only when it
    runs, D1's and D2's only when they exist."""
    names = {"train/iterations", "train/stage", "train/lr", "train/loss_seg"}
    if config.runs_stage1:
        names |= {"train/stage1_cached", "val/style_jsd", "val/style_jsd_identity"} | STAGE1_LOSSES
    if config.d1:
        names |= {f"train/{n}" for n in ("loss_adv_d1", "loss_d1", "mask_mean", "mask_var", "mask_fg", "mask_bg",
                                           "d1_acc")}
    if config.d2:
        names |= {"train/loss_adv_d2", "train/loss_d2", "train/d2_acc"}
    domains = data.evaluation_domains() or [d for d in (config.target,) if d]
    return names | summary_names("val", domains, data.names_of_classes(), surface=("asd",))


@torch.no_grad()
def mask_by_label(trainer: Trainer, cases: list[Case]) -> dict[int, tuple[float, int]]:
    """The D1 mask S applies at inference to these target volumes, per label value: (sum of the mask over the
    voxels of that label, their count); the mask is brought to the image's resolution (nearest). A diagnostic
    only: the labels it reads reach no loss and no sampler, and no random stream is drawn. Leaves the networks in
    eval mode."""
    trainer.eval_mode()
    totals: dict[int, tuple[float, int]] = {}
    for case in cases:
        slices = volume_slices(case, 0, MULTIPLE).to(trainer.device)
        chunks = trainer.in_chunks(lambda x: trainer.segment(x, target=True, ddp=False)[2], slices)
        if any(chunk is None for chunk in chunks):
            return {}
        mask = F.interpolate(torch.cat(chunks).float(), size=slices.shape[-2:], mode="nearest")[:, 0]
        size_x, size_y = case.label.shape[:2]
        mask = mask[:, :size_x, :size_y].permute(1, 2, 0)  # (X, Y, Z), as the label
        label = torch.from_numpy(case.label.astype(np.int64)).to(trainer.device)
        for value in torch.unique(label).tolist():
            where = label == value
            total, count = totals.get(value, (0.0, 0))
            totals[value] = (total + float(mask[where].sum()), count + int(where.sum()))
    return totals


def mask_region_means(regions: dict[int, tuple[float, int]]) -> dict[str, float]:
    """``train/mask_fg`` and ``train/mask_bg``: the mask's mean over the foreground and the background voxels
    (NaN where there are none), from ``mask_by_label``'s (sum, count) per label."""
    metrics = {}
    for name, keep_label in (("mask_fg", lambda label: label > 0), ("mask_bg", lambda label: label == 0)):
        total_mask = sum(value for label, (value, _) in regions.items() if keep_label(label))
        count = sum(n for label, (_, n) in regions.items() if keep_label(label))
        metrics[f"train/{name}"] = total_mask / count if count else float("nan")
    return metrics


def style_metrics(trainer: Trainer, split: str) -> dict[str, float]:
    """``<split>/style_jsd``: the histogram JSD between translated-source and target foreground intensities
    (``style_jsd_identity``: before translation)."""
    # Images only, of both domains' subjects of the split whatever their roles: a measure of the translation.
    source = [c for c in trainer.splits[split] if c.domain == trainer.source]
    target = [c for c in trainer.splits[split] if c.domain == trainer.target]
    if not source or not target:
        return {}
    translated = np.concatenate([translate_case(trainer, c).image[:, c.label > 0].ravel() for c in source])
    raw = np.concatenate([c.image[:, c.label > 0].ravel() for c in source])
    tgt = np.concatenate([c.image[:, c.label > 0].ravel() for c in target])
    return {f"{split}/style_jsd": histogram_jsd([translated, tgt]),
            f"{split}/style_jsd_identity": histogram_jsd([raw, tgt])}


def build_networks(trainer: Trainer) -> None:
    """GLUA's networks, stage-1 samplers and optimizers: the stage-1 networks first, right after seeding (their
    initialisation never depends on stage-2 fields), then S_E, S_P, D1, D2."""
    config, channels, batch = trainer.config, trainer.channels, trainer.data_config.batch_size
    if config.runs_stage1:
        g = {"width": config.g_channels, "downsample": config.g_downsample, "res_blocks": config.g_res_blocks,
             "mlp_hidden": config.mlp_hidden}
        trainer.nets["g_enc"] = StyleEncoder(channels, 2, **g)
        trainer.nets["g_dec"] = StyleDecoder(channels, 2, **g)
        trainer.nets["d_img"] = ConditionalPatchDiscriminator(channels, 2, config.d_img_channels, config.d_img_layers)
        for name, cases, stream in (("style_source", trainer.source_train, 1),
                                    ("style_target", trainer.target_train, 2)):
            trainer.samplers[name] = ImageSliceSampler(cases, batch, trainer.stream_seed(stream), trainer.shape)
    trainer.nets["s_enc"] = FeatureExtractor(channels, config.s_channels, config.s_downsample, config.s_dilated_blocks)
    trainer.nets["s_pred"] = Predictor(trainer.nets["s_enc"].out_channels, trainer.num_classes)
    if config.d1:
        trainer.nets["d1"] = PixelDiscriminator(trainer.nets["s_enc"].out_channels, config.d1_channels)
    if config.d2:
        trainer.nets["d2"] = OutputDiscriminator(trainer.num_classes, config.d2_channels)
    trainer.finish_networks()
    adam = {"lr": config.stage1_lr, "betas": (0.5, 0.999), "weight_decay": config.stage1_weight_decay}
    if config.runs_stage1:
        trainer.optimizers["g"] = torch.optim.Adam([*trainer.nets["g_enc"].parameters(),
                                                 *trainer.nets["g_dec"].parameters()], **adam)
        trainer.optimizers["d_img"] = torch.optim.Adam(trainer.nets["d_img"].parameters(), **adam)
    s_params = [*trainer.nets["s_enc"].parameters(), *trainer.nets["s_pred"].parameters()]
    trainer.optimizers["s"] = torch.optim.SGD(s_params, lr=config.lr_s, momentum=config.momentum_s,
                                           weight_decay=config.weight_decay_s)
    for name in ("d1", "d2"):
        if name in trainer.nets:
            trainer.optimizers[name] = torch.optim.Adam(trainer.nets[name].parameters(), lr=config.lr_d,
                                                     betas=(0.9, 0.99))


@torch.no_grad()
def translate_case(trainer: Trainer, case: Case) -> Case:
    """The case with its image in target style (labels and geometry unchanged)."""
    for name in ("g_enc", "g_dec"):
        trainer.net(name).eval()
    slices = volume_slices(case, 0, MULTIPLE).to(trainer.device)
    out = torch.cat([trainer.translate(slices[i:i + 16], SOURCE, TARGET) for i in range(0, len(slices), 16)])
    sx, sy = case.label.shape[:2]
    image = out[:, :, :sx, :sy].permute(1, 2, 3, 0).float().cpu().numpy()  # (C, X, Y, Z)
    return dataclasses.replace(case, image=image)

def build_stage2_samplers(trainer: Trainer) -> None:
    """The labelled slices (the source translated by stage 1, as is, or the target's for the upper bound) and,
    with D1 or D2, the unlabelled target slices, all padded to the common shape."""
    config, batch = trainer.config, trainer.data_config.batch_size
    if config.mode == "supervised_target":
        labelled = trainer.target_train
    elif config.runs_stage1:
        labelled = [translate_case(trainer, c) for c in trainer.source_train]
    else:
        labelled = trainer.source_train
    labelled = [dataclasses.replace(c, image=pad_xy(c.image, trainer.shape), label=pad_xy(c.label, trainer.shape))
                for c in labelled]
    trainer.add_sampler("labelled", SliceSampler(labelled, [labelled[0].domain], batch, seed=trainer.stream_seed(3),
                                              multiple=MULTIPLE, every_slice=True))
    if config.d1 or config.d2:
        trainer.add_sampler("unlabelled", ImageSliceSampler(trainer.target_train, batch, trainer.stream_seed(4),
                                                         trainer.shape))


@torch.no_grad()
def predict_volume(trainer: Trainer, case: Case) -> torch.Tensor:
    slices = volume_slices(case, 0, MULTIPLE).to(trainer.device)
    target = case.domain == trainer.target
    preds = trainer.in_chunks(lambda x: trainer.segment(x, target=target, ddp=False)[0].argmax(1), slices)
    sx, sy = case.label.shape[:2]
    return torch.cat(preds)[:, :sx, :sy].permute(1, 2, 0)  # (X, Y, Z)

def evaluate_volumes(trainer: Trainer, split: str) -> dict[str, float]:
    trainer.eval_mode()
    summary = SegmentationSummary(trainer.class_names, surface=("asd",))
    trainer.last_eval = []
    for case in trainer.cases_of(split):
        pred = predict_volume(trainer, case)
        summary.add(case.domain, case.subject, pred, torch.from_numpy(case.label).to(trainer.device),
                    trainer.spacing(case))
        trainer.last_eval.append({"case": case, "pred": pred.cpu().numpy()})
    trainer.last_cases = summary.cases()
    # val/dice and val/asd: the mean over the evaluation domains (the target, unless the source is one too).
    metrics = summary.metrics(split, trainer.eval_domains)
    return metrics | style_metrics(trainer, split) if trainer.config.runs_stage1 else metrics
