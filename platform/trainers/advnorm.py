"""Adversarial normalization (Delisle et al., "Realistic Image Normalization for Multi-Domain Segmentation").

Three networks: G (3D U-Net) normalizes a patch, S (3D U-Net) segments G(x), D classifies K real domains plus
one "generated" class. Algorithm 1, per iteration:

* ``n_steps`` times: update D on real patches (label z) and generated patches (label K+1);
* once: update S and G on ``L_seg(S(G(x)), y) - lambda * L_dis(D(G(x)), K+1)``.

One scale for D: G's output lives in its input's space (a linear last layer, no sigmoid), and D's real class
sees the real patches exactly as G and S receive them (``data.intensity``'s normalization). This follows the
authors' public code, where G is trained with an MSE to reproduce its input and D compares the non-augmented
inputs with G's output as they are; the journal paper gives no output range for G. With a sigmoid G and
z-scored real patches D told the two apart by their value range alone and G could never fool it. D's accuracy
is reported on real patches (``disc_acc_real``: the right domain) and generated ones (``disc_acc_fake``) apart,
beside their mean (``disc_acc``), in training and on fixed validation patches.

``warmup_epochs`` (the short paper's MSE initialization of G) run before epoch 1, on top of ``epochs``: each
is one epoch's iterations of G-only updates, so every arm of a comparison (with or without G or D) trains S for
``epochs`` epochs. Their mean MSE is reported with epoch 1 (``train/loss_mse``), and the mean over the last of
them (``train/loss_mse_last``): how far G is from reproducing its input when S and D start. The paper starts them
once G's output is "close to real input" (near 0 on a standardized input, whose variance is 1); a warm-up too short
for that hands S a G that blurs the contrasts it has to learn.

``seg_loss``: ``dice`` is eq. 1 (one pooled weighted ratio); ``dice_ce`` adds the voxels' cross-entropy;
``mean_dice_ce`` is nnU-Net's soft Dice averaged per class plus CE, under which a small class cannot vanish
cheaply. ``class_share`` > 0 centres at least that share of patches on each foreground class (nnU-Net's
class-aware oversampling, see ``PatchSampler``).

``adversarial_loss: paper`` uses that term as written (G maximizes D's loss on the generated class);
``nonsaturating`` replaces it by ``+ lambda * -log(1 - D_{K+1}(G(x)))``, the usual stabler GAN form.
Baselines are switches: ``discriminator: none`` is the Pre-processor of Drozdzal et al. (lambda has no
effect); ``generator: none`` is a plain segmenter on the input ``data.intensity`` gives (no discriminator is
built), so the paper's Standardization baseline is ``generator: none, data.intensity: volume`` and Table 2's
"no adaptation" input is ``data.intensity: raw``. D's real classes are the training domains
(``data.train_domains``); scores are per evaluation domain (``data.eval_domains``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from pydantic import Field, NonNegativeFloat
from torch import nn

from platform.data.config import DataConfig
from platform.data.patches import PatchSampler, apply_bias_field
from platform.losses import (
    class_weights_for,
    discriminator_loss,
    generated_class_loss,
    real_class_loss,
    segmentation_loss,
)
from platform.nets.discriminators import patch_discriminator
from platform.nets.unet3d import UNet3D
from platform.trainers._advnorm_parts import (
    config_problems,
    declared_names,
    declared_test_names,
    evaluate_volumes,
)
from platform.trainers.base import TRAINERS, GeneratorState, Trainer, TrainerConfig

__all__ = ["AdvNormTrainer", "Config", "class_weights_for"]

class Config(TrainerConfig):
    """Hyperparameters of adversarial normalization; defaults are the journal paper's."""

    epochs: int = Field(120, ge=1, description="training epochs (paper: 120 for two datasets, 70 for three)")
    lambda_: float = Field(1.5, alias="lambda", ge=0, description="weight of the adversarial term (paper: 1.5)")
    n_steps: int = Field(3, ge=1, description="discriminator updates per generator/segmenter update")
    generator: Literal["unet", "none"] = Field("unet", description="none: a plain segmenter on data.intensity's input")
    discriminator: Literal["dcgan", "resnet", "none"] = Field(
        "dcgan", description="none: Pre-processor baseline (no discriminator either when generator is none)")
    resnet_depth: Literal[10, 18] = Field(10, description="depth of the ResNet discriminator option")
    adversarial_loss: Literal["paper", "nonsaturating"] = Field("paper", description="form of G's adversarial term")
    seg_loss: Literal["dice", "dice_ce", "mean_dice_ce"] = Field(
        "dice", description="S's loss: the paper's weighted Dice (eq. 1); dice_ce: it plus voxel cross-entropy; "
        "mean_dice_ce: nnU-Net's soft Dice averaged per foreground class plus cross-entropy, which does not let "
        "a small class vanish")
    class_share: float = Field(0.0, ge=0, le=1, description="share of training patches centred on each "
                               "foreground class in turn (nnU-Net's class-aware oversampling); 0: uniform over "
                               "foreground voxels, the paper's sampling")
    g_channels: int = Field(32, ge=1, description="generator features at the first level (3D U-Net: 32)")
    g_depth: int = Field(4, ge=1, description="generator resolution levels")
    s_channels: int = Field(32, ge=1, description="segmenter features at the first level")
    s_depth: int = Field(4, ge=1, description="segmenter resolution levels")
    d_channels: int = Field(64, ge=1, description="DCGAN discriminator features of the first layer")
    d_dropout: float = Field(0.2, ge=0, lt=1, description="dropout after each DCGAN layer")
    class_weights: list[NonNegativeFloat] | dict[str, NonNegativeFloat] | None = Field(
        None, description="Dice class weights, a list (background first) or by class name; default the paper's "
        "bg .22, wm .28, gm .20, csf .30 when the classes are those four, else uniform")
    lr_g: float = Field(1e-3, gt=0, description="generator learning rate")
    lr_s: float = Field(1e-3, gt=0, description="segmenter learning rate")
    lr_d: float = Field(1e-4, gt=0, description="discriminator learning rate")
    weight_decay: float = Field(1e-3, ge=0, description="Adam weight decay of every network")
    lr_milestones: list[int] = Field([50, 75], description="epochs where G and S learning rates drop")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="factor of each G/S learning-rate drop")
    d_plateau_factor: float = Field(0.1, gt=0, lt=1, description="D learning-rate decay on a validation plateau")
    d_plateau_patience: int = Field(7, ge=0, description="epochs without D validation-loss improvement before decay")
    warmup_epochs: int = Field(0, ge=0, description="passes of one epoch's iterations training G alone to reproduce "
                               "its input (MSE) before epoch 1, on top of epochs (S still trains epochs epochs)")
    bias_augment: float = Field(0.0, ge=0, le=1, description="probability of a random linear bias field (paper: .5)")
    bias_alpha_max: float = Field(1.0, ge=0, le=1, description="largest bias-field slope alpha drawn U(0, max)")
    sw_overlap: float = Field(0.75, ge=0, lt=1, description="sliding-window overlap (paper: stride 8 of 32 = .75)")
    eval_patches: int = Field(32, ge=0, description="validation patches per domain for discriminator accuracy")
    eval_bias_alphas: list[float] = Field([], description="Table 6: at the final test, also score each test volume "
                                          "degraded by the linear bias field of each alpha (paper: .3 .5 .7 .9)")


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # (clean, degraded, y, z), see ``_batch``


@TRAINERS.register("advnorm")
class AdvNormTrainer(Trainer):
    """Generator + segmenter + (K+1)-class discriminator, trained by Algorithm 1."""

    Config = Config
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {
        **{m: ("min", "loss") for m in ("loss", "loss_seg", "loss_adv", "loss_mse", "loss_mse_last", "loss_dis")},
        "disc_acc": ("none", "accuracy"), "disc_acc_real": ("none", "accuracy"), "disc_acc_fake": ("none", "accuracy"),
        "disc_confusion": ("none", "accuracy"), "dice_bias": ("max", "overlap"),
        "jsd_input": ("none", "divergence"), "jsd_norm": ("min", "divergence"),
        "jsd_k_input": ("none", "divergence"), "jsd_k_norm": ("min", "divergence"),
        "bias_corr_input": ("none", "correlation"), "bias_corr_norm": ("min", "correlation"),
        **{f"lr_{n}": ("none", "schedule") for n in ("g", "s", "d")}}
    ARTIFACT_KIND = "input|normalized|prediction|truth"

    def __init__(self, config: Config, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        channels, patch = self.channels, data.patch_size
        weights = class_weights_for(config.class_weights, self.class_names)
        self.class_weights = torch.tensor(weights, dtype=torch.float32, device=self.device)
        self.samplers["patches"] = PatchSampler(self.train_cases, self.train_domains, patch, data.batch_size,
                                                seed=self.stream_seed(0), class_share=config.class_share)
        self.samplers["augment"] = GeneratorState(self.stream_seed(1))
        if config.generator == "unet":
            # A linear last layer: G's output stays in its input's space, the space of D's real patches.
            self.nets["G"] = UNet3D(channels, channels, config.g_channels, config.g_depth)
        self.nets["S"] = UNet3D(channels, self.num_classes, config.s_channels, config.s_depth)
        if config.generator == "unet" and config.discriminator != "none":  # without G there is nothing to judge
            self.nets["D"] = patch_discriminator(config.discriminator, channels, len(self.train_domains) + 1, patch,
                                                 config.d_channels, config.d_dropout, config.resnet_depth)
        self.finish_networks()
        lrs = {"G": config.lr_g, "S": config.lr_s, "D": config.lr_d}
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=lrs[name], weight_decay=config.weight_decay)
                           for name, net in self.nets.items()}
        self.schedulers = {name: torch.optim.lr_scheduler.MultiStepLR(opt, config.lr_milestones, gamma=config.lr_gamma)
                           for name, opt in self.optimizers.items() if name in ("G", "S")}
        if "D" in self.optimizers:
            self.schedulers["D"] = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizers["D"], mode="min", factor=config.d_plateau_factor,
                patience=config.d_plateau_patience)

    @classmethod
    def check(cls, config: TrainerConfig, data: DataConfig) -> list[str]:
        assert isinstance(config, Config)
        return config_problems(config, data)

    # --- helpers --------------------------------------------------------------------------------------------
    def _batch(self) -> Batch:
        """(clean, degraded, y, z): patches as drawn, and the same with the random bias field of section 3.5
        (the clean ones when ``bias_augment`` is 0)."""
        x, y, z = self.to_device(*self.samplers["patches"].sample())
        degraded = x
        if self.config.bias_augment > 0:
            generator = self.samplers["augment"].generator
            apply = torch.rand(x.shape[0], generator=generator) < self.config.bias_augment
            alpha = torch.rand(x.shape[0], generator=generator) * self.config.bias_alpha_max * apply
            degraded = apply_bias_field(x, alpha)
        return x, degraded, y, z

    def _normalize(self, x: torch.Tensor, ddp: bool = True) -> torch.Tensor:
        x = self.standardize_input(x)
        if "G" not in self.nets:
            return x
        return (self.nets["G"] if ddp else self.net("G"))(x)

    def _segmentation_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(self.config.seg_loss, logits, target, self.class_weights)

    # --- Algorithm 1 ----------------------------------------------------------------------------------------
    def train_batches(self, epoch: int) -> Iterator[tuple[str, Batch]]:
        """Epoch 0 starts with the warm-up's G-only steps; then each iteration is ``n_steps`` D updates and one
        G and S update, each on a batch drawn just before it."""
        if epoch == 0:
            yield from self._warmup_batches()
        for _ in range(self.iterations):
            for _ in range(self.config.n_steps if "D" in self.nets else 0):
                yield "D", self._batch()
            yield "GS", self._batch()

    def _warmup_batches(self) -> Iterator[tuple[str, Batch]]:
        """The warm-up's G-only steps; those of its last pass are marked, to report G's fidelity as S and D
        start."""
        steps = self.config.warmup_epochs * self.iterations if "G" in self.nets else 0
        for index in range(steps):
            yield "warmup_last" if index >= steps - self.iterations else "warmup", self._batch()

    def train_step(self, batch: tuple[str, Batch]) -> dict[str, torch.Tensor]:
        kind, patches = batch
        steps = {"warmup": self._warmup_step, "warmup_last": self._last_warmup_step,
                 "D": self._discriminator_step, "GS": self._generator_step}
        return steps[kind](patches)

    def warm_up(self) -> list[dict[str, torch.Tensor]]:
        """``warmup_epochs`` passes of one epoch's iterations (epoch 0 runs them first): G alone learns to reproduce
        its input (MSE, in the input's space, the short paper's initialization); S and D are not trained."""
        return [self.train_step(batch) for batch in self._warmup_batches()]

    def _warmup_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x = batch[1]
        loss_g = nn.functional.mse_loss(self._normalize(x).float(), self.standardize_input(x).float())
        self.step(loss_g, "G")
        return {"loss_mse": loss_g}

    def _last_warmup_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """A warm-up step of the last pass: its MSE is also reported apart, as G's fidelity when S and D start."""
        reported = self._warmup_step(batch)
        return reported | {"loss_mse_last": reported["loss_mse"]}

    def _discriminator_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One D update on real patches (their domain) and generated ones (class K+1)."""
        clean, degraded, _, z = batch
        with torch.no_grad():
            generated = self._normalize(degraded, ddp=False)
        fake_class = torch.full_like(z, len(self.train_domains))
        # The real class sees the real, non-degraded images (section 3.5): that is what pushes G to remove a field.
        logits_real = self.nets["D"](self.standardize_input(clean))
        logits_fake = self.nets["D"](generated)
        loss_d = discriminator_loss(logits_real, z) + discriminator_loss(logits_fake, fake_class)
        self.step(loss_d, "D")
        real = (logits_real.argmax(1) == z).float().mean()
        fake = (logits_fake.argmax(1) == fake_class).float().mean()
        return {"loss_dis": loss_d, "disc_acc_real": real, "disc_acc_fake": fake, "disc_acc": (real + fake) / 2}

    def _generator_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One G and S update on ``L_seg(S(G(x)), y) - lambda * L_dis(D(G(x)), K+1)``."""
        config, (_, x, y, _) = self.config, batch
        normalized = self._normalize(x)
        loss_seg = self._segmentation_loss(self.nets["S"](normalized), y)
        loss, reported = loss_seg, {"loss_seg": loss_seg}
        if "D" in self.nets and config.lambda_ > 0:
            with self.frozen("D"):  # and no DDP sync: D is not updated in this step
                logits = self.net("D")(normalized)
            if config.adversarial_loss == "paper":
                reported["loss_adv"] = generated_class_loss(logits)
                loss = loss_seg - config.lambda_ * reported["loss_adv"]
            else:
                reported["loss_adv"] = real_class_loss(logits)
                loss = loss_seg + config.lambda_ * reported["loss_adv"]
        self.step(loss, *(name for name in ("G", "S") if name in self.optimizers))
        return reported | {"loss": loss}

    def end_train_epoch(self, epoch: int) -> dict[str, float]:
        for name in ("G", "S"):
            if name in self.schedulers:
                self.schedulers[name].step()
        return {f"train/lr_{name.lower()}": optimizer.param_groups[0]["lr"]
                for name, optimizer in self.optimizers.items()}

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if "D" in self.schedulers and np.isfinite(metrics.get("val/loss_dis", np.nan)):
            self.schedulers["D"].step(metrics["val/loss_dis"])

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, float]:
        self.eval_mode()
        return evaluate_volumes(self, split)

    def _infer(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G's output (1, C, ...), predicted labels (1, ...)) of a whole volume by sliding window (averaged
        overlapping windows, the paper's stride-8 protocol)."""
        channels = self.channels

        def predict(window: torch.Tensor) -> torch.Tensor:
            normalized = self._normalize(window, ddp=False)
            # float32 out: the overlapping windows are averaged, which half precision would round
            return torch.cat([normalized.float(), self.net("S")(normalized).float().softmax(dim=1)], dim=1)

        out = sliding_window_inference(image, self.data_config.patch_size, 4, predict, overlap=self.config.sw_overlap)
        return out[:, :channels], out[:, channels:].argmax(dim=1)

    def artifact_panel(self, item: dict[str, Any]) -> np.ndarray:
        return item["normalized"]

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        # D sees a real and a generated batch before one backward: broadcasting buffers in between would
        # overwrite the state the first forward used.
        return {"broadcast_buffers": False} if name == "D" else {}

    # --- description ----------------------------------------------------------------------------------------
    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        return declared_names(config, data)

    @classmethod
    def test_metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        return declared_test_names(config, data)

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 2, "g_channels": 4, "g_depth": 2, "s_channels": 4, "s_depth": 2, "d_channels": 4,
                "eval_patches": 4, "sw_overlap": 0.25}
