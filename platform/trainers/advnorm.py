"""Adversarial normalization (Delisle et al., "Realistic Image Normalization for Multi-Domain Segmentation").

Three networks: G (3D U-Net, sigmoid output) normalizes a patch, S (3D U-Net) segments G(x), D classifies
K real domains plus one "generated" class. Algorithm 1, per iteration:

* ``n_steps`` times: update D on real patches (label z) and generated patches (label K+1);
* once: update S and G on ``L_seg(S(G(x)), y) - lambda * L_dis(D(G(x)), K+1)``.

``adversarial_loss: paper`` uses that term as written (G maximizes D's loss on the generated class);
``nonsaturating`` replaces it by ``+ lambda * -log(1 - D_{K+1}(G(x)))``, the usual stabler GAN form.
Baselines are switches: ``discriminator: none`` is the Pre-processor of Drozdzal et al. (lambda has no
effect), ``generator: none`` segments standardized input (no learned normalization).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from pydantic import Field, model_validator
from torch import nn

from platform.data.config import DataConfig
from platform.data.patches import PatchSampler, standardize
from platform.losses import discriminator_loss, generated_class_loss, real_class_loss, weighted_dice_loss
from platform.metrics import (
    classification_accuracy,
    dice_per_class,
    hd95_per_class,
    histogram_jsd,
    intensity_position_correlation,
    nanmean,
)
from platform.nets.discriminators import DCGANDiscriminator3D, resnet_discriminator
from platform.nets.unet3d import UNet3D
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig, seed_everything


class Config(TrainerConfig):
    """Hyperparameters of adversarial normalization; defaults are the journal paper's."""

    epochs: int = Field(120, ge=1, description="training epochs (paper: 120 for two datasets, 70 for three)")
    lambda_: float = Field(1.5, alias="lambda", ge=0, description="weight of the adversarial term (paper: 1.5)")
    n_steps: int = Field(3, ge=1, description="discriminator updates per generator/segmenter update")
    generator: Literal["unet", "none"] = Field("unet", description="none: segment standardized input")
    discriminator: Literal["dcgan", "resnet", "none"] = Field("dcgan", description="none: Pre-processor baseline")
    resnet_depth: Literal[10, 18] = Field(10, description="depth of the ResNet discriminator option")
    adversarial_loss: Literal["paper", "nonsaturating"] = Field("paper", description="form of G's adversarial term")
    g_channels: int = Field(32, ge=1, description="generator features at the first level (3D U-Net: 32)")
    g_depth: int = Field(4, ge=1, description="generator resolution levels")
    s_channels: int = Field(32, ge=1, description="segmenter features at the first level")
    s_depth: int = Field(4, ge=1, description="segmenter resolution levels")
    d_channels: int = Field(64, ge=1, description="DCGAN discriminator features of the first layer")
    d_dropout: float = Field(0.2, ge=0, lt=1, description="dropout after each DCGAN layer")
    class_weights: list[float] | None = Field(
        None, description="Dice class weights; default the paper's BG .22, WM .28, GM .20, CSF .30 for 4 classes"
    )
    lr_g: float = Field(1e-3, gt=0, description="generator learning rate")
    lr_s: float = Field(1e-3, gt=0, description="segmenter learning rate")
    lr_d: float = Field(1e-4, gt=0, description="discriminator learning rate")
    weight_decay: float = Field(1e-3, ge=0, description="Adam weight decay of every network")
    lr_milestones: list[int] = Field([50, 75], description="epochs where G and S learning rates drop")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="factor of each G/S learning-rate drop")
    d_plateau_factor: float = Field(0.1, gt=0, lt=1, description="D learning-rate decay on a validation plateau")
    d_plateau_patience: int = Field(7, ge=0, description="epochs without D validation-loss improvement before decay")
    warmup_epochs: int = Field(0, ge=0, description="epochs training G to reproduce its input (MSE) before Alg. 1")
    bias_augment: float = Field(0.0, ge=0, le=1, description="probability of a random linear bias field (paper: .5)")
    bias_alpha_max: float = Field(1.0, ge=0, le=1, description="largest bias-field slope alpha drawn U(0, max)")
    sw_overlap: float = Field(0.75, ge=0, lt=1, description="sliding-window overlap (paper: stride 8 of 32 = .75)")
    eval_patches: int = Field(32, ge=0, description="validation patches per domain for discriminator accuracy")

    @model_validator(mode="after")
    def _weights(self) -> Config:
        if self.class_weights is not None and any(w < 0 for w in self.class_weights):
            raise ValueError("class_weights must be non-negative")
        return self


PAPER_CLASS_WEIGHTS = {4: [0.22, 0.28, 0.20, 0.30]}




def _bias_field(shape: tuple[int, ...], alpha: torch.Tensor) -> torch.Tensor:
    """The journal's linear field ``B = y/H * alpha + (1 - alpha)`` along axis y, per sample.

    shape: (B, C, X, Y, Z); alpha: (B,). Returns a tensor broadcastable to ``shape``.
    """
    height = shape[3]
    ramp = torch.arange(height, dtype=torch.float32) / max(height - 1, 1)
    return (ramp.view(1, 1, 1, height, 1) * alpha.view(-1, 1, 1, 1, 1) + (1 - alpha).view(-1, 1, 1, 1, 1))



@TRAINERS.register("advnorm")
class AdvNormTrainer(Trainer):
    """Generator + segmenter + (K+1)-class discriminator, trained by Algorithm 1."""

    Config = Config

    def __init__(self, config: Config, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        seed_everything(self.seed)
        self.train_cases, self.val_cases = self.load_split()
        self.domains = self.domain_order(self.train_cases)
        self.class_names = data.names_of_classes()
        self.num_classes = data.num_classes
        channels = self.train_cases[0].image.shape[0]
        patch = data.patch_size
        for name, depth in (("g_depth", config.g_depth), ("s_depth", config.s_depth)):
            if patch % 2 ** (depth - 1):
                raise ValueError(f"data.patch_size {patch} must be divisible by 2**({name}-1) = {2 ** (depth - 1)}")
        weights = config.class_weights or PAPER_CLASS_WEIGHTS.get(self.num_classes) or [1.0] * self.num_classes
        if len(weights) != self.num_classes:
            raise ValueError(f"class_weights has {len(weights)} values for {self.num_classes} classes")
        self.class_weights = torch.tensor(weights, dtype=torch.float32, device=self.device)
        # Each rank draws different patches; the seed stays a function of (trial seed, rank).
        self.sampler = PatchSampler(self.train_cases, self.domains, patch, data.batch_size,
                                    seed=self.seed * 1000 + self.rank)
        self.generator = torch.Generator().manual_seed(self.seed * 1000 + self.rank + 1)

        k = len(self.domains)
        if config.generator == "unet":
            self.nets["G"] = UNet3D(channels, channels, config.g_channels, config.g_depth, sigmoid_output=True)
        self.nets["S"] = UNet3D(channels, self.num_classes, config.s_channels, config.s_depth)
        if config.discriminator == "dcgan":
            self.nets["D"] = DCGANDiscriminator3D(channels, k + 1, patch, config.d_channels, config.d_dropout)
        elif config.discriminator == "resnet":
            self.nets["D"] = resnet_discriminator(channels, k + 1, config.resnet_depth)
        for net in self.nets.values():
            net.to(self.device)

        lrs = {"G": config.lr_g, "S": config.lr_s, "D": config.lr_d}
        self.optimizers = {
            name: torch.optim.Adam(net.parameters(), lr=lrs[name], weight_decay=config.weight_decay)
            for name, net in self.nets.items()
        }
        self.schedulers: dict[str, Any] = {
            name: torch.optim.lr_scheduler.MultiStepLR(opt, config.lr_milestones, gamma=config.lr_gamma)
            for name, opt in self.optimizers.items() if name in ("G", "S")
        }
        if "D" in self.optimizers:
            self.schedulers["D"] = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizers["D"], mode="min", factor=config.d_plateau_factor,
                patience=config.d_plateau_patience)
        self.epoch = 0
        self._last_eval: list[dict[str, Any]] = []

    # --- helpers --------------------------------------------------------------------------------------------
    @property
    def k(self) -> int:
        return len(self.domains)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, z = self.sampler.sample()
        x, y, z = x.to(self.device), y.to(self.device), z.to(self.device)
        if self.config.bias_augment > 0:
            apply = torch.rand(x.shape[0], generator=self.generator) < self.config.bias_augment
            alpha = torch.rand(x.shape[0], generator=self.generator) * self.config.bias_alpha_max * apply
            x = x * _bias_field(tuple(x.shape), alpha).to(self.device)
        return x, y, z

    def _normalize(self, x: torch.Tensor, use_ddp: bool = True) -> torch.Tensor:
        if "G" not in self.nets:
            return standardize(x)
        return (self.nets["G"] if use_ddp else self.net("G"))(x)

    @staticmethod
    def _check_finite(value: torch.Tensor, what: str, epoch: int, iteration: int) -> None:
        if not torch.isfinite(value):
            raise FloatingPointError(f"{what} became {value.item()} at epoch {epoch + 1}, iteration {iteration + 1}")

    # --- Algorithm 1 ----------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        for net in self.nets.values():
            net.train()
        iterations = max(1, self.data_config.patches_per_epoch // (self.data_config.batch_size * self.world_size))
        warmup = epoch < config.warmup_epochs and "G" in self.nets
        sums: dict[str, torch.Tensor] = {}

        def add(name: str, value: torch.Tensor) -> None:
            sums[name] = sums.get(name, 0.0) + value.detach()

        fake_class = None
        for iteration in range(iterations):
            if "D" in self.nets and not warmup:
                for _ in range(config.n_steps):
                    x, _, z = self._batch()
                    with torch.no_grad():
                        generated = self._normalize(x, use_ddp=False)
                    fake_class = torch.full_like(z, self.k)
                    logits_real = self.nets["D"](x)
                    logits_fake = self.nets["D"](generated)
                    loss_d = discriminator_loss(logits_real, z) + discriminator_loss(logits_fake, fake_class)
                    self._check_finite(loss_d, "discriminator loss", epoch, iteration)
                    self.optimizers["D"].zero_grad(set_to_none=True)
                    loss_d.backward()
                    self.optimizers["D"].step()
                    add("loss_dis", loss_d)
                    correct = (logits_real.argmax(1) == z).float().sum() + (
                        logits_fake.argmax(1) == fake_class).float().sum()
                    add("disc_correct", correct)
                    add("disc_seen", torch.tensor(2.0 * z.numel()))

            x, y, _ = self._batch()
            normalized = self._normalize(x)
            if warmup:
                # Warm-up: G learns to reproduce its (clamped) input; S learns on G's detached output.
                loss_g = nn.functional.mse_loss(normalized, x.clamp(0, 1))
                loss_seg = weighted_dice_loss(self.nets["S"](normalized.detach()), y, self.class_weights)
                loss = loss_g + loss_seg
                add("loss_mse", loss_g)
            else:
                loss_seg = weighted_dice_loss(self.nets["S"](normalized), y, self.class_weights)
                loss = loss_seg
                if "D" in self.nets and "G" in self.nets and config.lambda_ > 0:
                    discriminator = self.net("D")  # no DDP sync: D is not updated in this step
                    discriminator.requires_grad_(False)
                    logits = discriminator(normalized)
                    discriminator.requires_grad_(True)
                    if config.adversarial_loss == "paper":
                        adversarial = generated_class_loss(logits)
                        loss = loss_seg - config.lambda_ * adversarial
                    else:
                        adversarial = real_class_loss(logits)
                        loss = loss_seg + config.lambda_ * adversarial
                    add("loss_adv", adversarial)
            self._check_finite(loss, "generator/segmenter loss", epoch, iteration)
            for name in ("G", "S"):
                if name in self.optimizers:
                    self.optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            for name in ("G", "S"):
                if name in self.optimizers:
                    self.optimizers[name].step()
            add("loss_seg", loss_seg)
            add("loss", loss)

        for name in ("G", "S"):
            if name in self.schedulers:
                self.schedulers[name].step()
        self.epoch = epoch + 1
        metrics = {f"train/{name}": float(value) / iterations for name, value in sums.items()
                   if name in ("loss", "loss_seg", "loss_adv", "loss_mse")}
        if "loss_dis" in sums:
            metrics["train/loss_dis"] = float(sums["loss_dis"]) / (iterations * config.n_steps)
            metrics["train/disc_acc"] = float(sums["disc_correct"] / sums["disc_seen"])
        metrics["train/iterations"] = float(iterations)
        for name, optimizer in self.optimizers.items():
            metrics[f"train/lr_{name.lower()}"] = optimizer.param_groups[0]["lr"]
        return metrics

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if "D" in self.schedulers and np.isfinite(metrics.get("val/loss_dis", np.nan)):
            self.schedulers["D"].step(metrics["val/loss_dis"])

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, float]:
        if split != "val":
            raise ValueError(f"advnorm evaluates the 'val' split, not {split!r}")
        for net in self.nets.values():
            net.eval()
        patch = self.data_config.patch_size
        channels = self.val_cases[0].image.shape[0]

        def predict(window: torch.Tensor) -> torch.Tensor:
            normalized = self._normalize(window, use_ddp=False)
            probs = self.net("S")(normalized).softmax(dim=1)
            return torch.cat([normalized, probs], dim=1)

        per_domain: dict[str, list[torch.Tensor]] = {d: [] for d in self.domains}
        hd_domain: dict[str, list[torch.Tensor]] = {d: [] for d in self.domains}
        inputs: dict[str, list[np.ndarray]] = {d: [] for d in self.domains}
        outputs: dict[str, list[np.ndarray]] = {d: [] for d in self.domains}
        corr_in, corr_out = [], []
        self._last_eval = []
        for case in self.val_cases:
            image = torch.from_numpy(case.image).unsqueeze(0).to(self.device)
            label = torch.from_numpy(case.label).unsqueeze(0).to(self.device)
            out = sliding_window_inference(image, patch, 4, predict, overlap=self.config.sw_overlap)
            normalized, probs = out[:, :channels], out[:, channels:]
            pred = probs.argmax(dim=1)
            spacing = np.abs(np.diag(case.affine)[:3]).tolist()
            per_domain[case.domain].append(dice_per_class(pred, label, self.num_classes)[0])
            with warnings.catch_warnings():
                # MONAI warns for every class a poor early prediction misses; HD95 is then NaN, as wanted.
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", FutureWarning)
                hd_domain[case.domain].append(hd95_per_class(pred, label, self.num_classes, spacing)[0])
            brain = case.label > 0
            inputs[case.domain].append(case.image[0][brain])
            norm_np = normalized[0, 0].cpu().numpy()
            outputs[case.domain].append(norm_np[brain])
            corr_in.append(intensity_position_correlation(case.image[0], brain))
            corr_out.append(intensity_position_correlation(norm_np, brain))
            self._last_eval.append({"case": case, "normalized": norm_np, "pred": pred[0].cpu().numpy()})

        metrics: dict[str, float] = {}
        domain_means = []
        for domain in self.domains:
            if not per_domain[domain]:
                continue
            dice = torch.stack(per_domain[domain])  # (cases, classes-1)
            class_dice = torch.nanmean(dice, dim=0)
            for index, name in enumerate(self.class_names[1:]):
                metrics[f"val/dice/{domain}/{name}"] = float(class_dice[index])
            metrics[f"val/dice/{domain}"] = float(torch.nanmean(class_dice))
            domain_means.append(metrics[f"val/dice/{domain}"])
            hd = torch.stack(hd_domain[domain]).float()
            hd = torch.where(torch.isfinite(hd), hd, torch.nan)
            metrics[f"val/hd95/{domain}"] = nanmean(hd.flatten().tolist())
        metrics["val/dice"] = nanmean(domain_means)
        # NaN when a class is missing from every prediction (an untrained segmenter), not a warning.
        metrics["val/hd95"] = nanmean([metrics[f"val/hd95/{d}"] for d in self.domains])
        metrics["val/jsd_input"] = histogram_jsd([np.concatenate(inputs[d]) for d in self.domains if inputs[d]])
        metrics["val/jsd_norm"] = histogram_jsd([np.concatenate(outputs[d]) for d in self.domains if outputs[d]])
        metrics["val/bias_corr_input"] = float(np.mean(np.abs(corr_in)))
        metrics["val/bias_corr_norm"] = float(np.mean(np.abs(corr_out)))
        if "D" in self.nets and self.config.eval_patches > 0:
            metrics.update(self._discriminator_validation())
        return metrics

    def _discriminator_validation(self) -> dict[str, float]:
        """D's loss and accuracy on a fixed set of validation patches, real and generated (Table 7)."""
        batch = self.data_config.batch_size
        sampler = PatchSampler(self.val_cases, self.domains, self.data_config.patch_size, batch, seed=12345)
        batches = max(1, self.config.eval_patches * self.k // batch)
        logits, labels, losses = [], [], []
        discriminator = self.net("D")
        for _ in range(batches):
            x, _, z = sampler.sample()
            x, z = x.to(self.device), z.to(self.device)
            generated = self._normalize(x, use_ddp=False)
            real_logits, fake_logits = discriminator(x), discriminator(generated)
            fake = torch.full_like(z, self.k)
            losses.append(discriminator_loss(real_logits, z) + discriminator_loss(fake_logits, fake))
            logits += [real_logits, fake_logits]
            labels += [z, fake]
        all_logits, all_labels = torch.cat(logits), torch.cat(labels)
        fake_rows = all_labels == self.k
        return {
            "val/loss_dis": float(torch.stack(losses).mean()),
            "val/disc_acc": classification_accuracy(all_logits, all_labels),
            "val/disc_acc_generated": classification_accuracy(all_logits[fake_rows], all_labels[fake_rows]),
        }

    # --- images ---------------------------------------------------------------------------------------------
    def save_artifacts(self, out_dir: Path) -> list[dict[str, str]]:
        """Per domain, the middle axial slice of its first validation case: input | normalized | overlay."""
        from platform.images import save_grid

        rows = []
        for item in self.first_per_domain(self._last_eval):
            case = item["case"]
            path = out_dir / f"{case.domain}_{case.subject}.png"
            save_grid(path, case.image[0], item["normalized"], item["pred"], case.label, self.num_classes)
            rows.append({"path": str(path), "kind": "input|normalized|segmentation", "domain": case.domain})
        return rows

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        # D sees a real and a generated batch before one backward: broadcasting buffers in between would
        # overwrite the state the first forward used.
        return {"broadcast_buffers": False} if name == "D" else {}

    # --- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "nets": {name: self.net(name).state_dict() for name in self.nets},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
            "sampler": self.sampler.state_dict(),
            "augment_rng": self.generator.get_state(),
            "rng": self.rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        for name, net_state in state["nets"].items():
            self.net(name).load_state_dict(net_state)
        for name, opt_state in state["optimizers"].items():
            self.optimizers[name].load_state_dict(opt_state)
        for name, sched_state in state["schedulers"].items():
            self.schedulers[name].load_state_dict(sched_state)
        self.sampler.load_state_dict(state["sampler"])
        self.generator.set_state(state["augment_rng"])
        self.load_rng_state(state["rng"])

    # --- description ----------------------------------------------------------------------------------------
    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        domains = list(data.domains)
        names = {"train/loss", "train/loss_seg", "train/iterations", "train/lr_s", "val/dice", "val/hd95",
                 "val/jsd_input", "val/jsd_norm", "val/bias_corr_input", "val/bias_corr_norm"}
        if config.generator != "none":
            names |= {"train/lr_g", "train/loss_mse"}
        if config.discriminator != "none":
            names |= {"train/loss_dis", "train/disc_acc", "train/lr_d", "train/loss_adv", "val/loss_dis",
                      "val/disc_acc", "val/disc_acc_generated"}
        for domain in domains:
            names |= {f"val/dice/{domain}", f"val/hd95/{domain}"}
            names |= {f"val/dice/{domain}/{name}" for name in data.names_of_classes()[1:]}
        return names

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 2, "g_channels": 4, "g_depth": 2, "s_channels": 4, "s_depth": 2, "d_channels": 4,
                "eval_patches": 4, "sw_overlap": 0.25}

