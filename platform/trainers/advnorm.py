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
``epochs`` epochs. Their mean MSE is reported with epoch 1 (``train/loss_mse``).

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

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from pydantic import Field, NonNegativeFloat
from torch import nn

from platform.data.config import DataConfig
from platform.data.patches import PatchSampler, apply_bias_field
from platform.losses import (
    discriminator_loss,
    generated_class_loss,
    mean_dice_ce_loss,
    real_class_loss,
    weighted_dice_loss,
)
from platform.metrics import (
    SegmentationSummary,
    classification_accuracy,
    confusion_matrix,
    generalized_jsd,
    histogram_jsd,
    intensity_position_correlation,
    summary_names,
)
from platform.nets.discriminators import DCGANDiscriminator3D, resnet_discriminator
from platform.nets.unet3d import UNet3D
from platform.trainers.base import TRAINERS, GeneratorState, Trainer, TrainerConfig


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


# The paper's Dice class weights, keyed by class name (a manifest in iSEG order BG, CSF, GM, WM gets them right).
PAPER_CLASS_WEIGHTS = {"bg": 0.22, "wm": 0.28, "gm": 0.20, "csf": 0.30}
SURFACE_METRICS = ("hd95", "mhd")  # the paper's equation 5 (MHD) beside HD95


def class_weights_for(weights: list[float] | dict[str, float] | None, class_names: list[str]) -> list[float]:
    """Dice weight of each class, in the data's class order: a list as given (background first), a mapping by
    class name, or (None) the paper's weights when the classes are its four, else uniform."""
    if isinstance(weights, dict):
        return [float(weights[name]) for name in class_names]
    if weights is not None:
        return [float(w) for w in weights]
    if sorted(class_names) == sorted(PAPER_CLASS_WEIGHTS):
        return [PAPER_CLASS_WEIGHTS[name] for name in class_names]
    return [1.0] * len(class_names)


@TRAINERS.register("advnorm")
class AdvNormTrainer(Trainer):
    """Generator + segmenter + (K+1)-class discriminator, trained by Algorithm 1."""

    Config = Config
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {
        **{m: ("min", "loss") for m in ("loss", "loss_seg", "loss_adv", "loss_mse", "loss_dis")},
               "disc_acc": ("none", "accuracy"), "disc_acc_real": ("none", "accuracy"),
               "disc_acc_fake": ("none", "accuracy"),
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
        self.samplers["patches"] = PatchSampler(self.train_cases, self.domains, patch, data.batch_size,
                                                seed=self.stream_seed(0), class_share=config.class_share)
        self.samplers["augment"] = GeneratorState(self.stream_seed(1))

        k = len(self.domains)
        if config.generator == "unet":
            # A linear last layer: G's output stays in its input's space, the space of D's real patches.
            self.nets["G"] = UNet3D(channels, channels, config.g_channels, config.g_depth)
        self.nets["S"] = UNet3D(channels, self.num_classes, config.s_channels, config.s_depth)
        adversarial = config.generator == "unet"  # D judges G's output: without G there is nothing to judge
        if adversarial and config.discriminator == "dcgan":
            self.nets["D"] = DCGANDiscriminator3D(channels, k + 1, patch, config.d_channels, config.d_dropout)
        elif adversarial and config.discriminator == "resnet":
            self.nets["D"] = resnet_discriminator(channels, k + 1, config.resnet_depth)
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

    # --- helpers --------------------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
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

    # --- Algorithm 1 ----------------------------------------------------------------------------------------
    def _discriminator_step(self, add: Any) -> None:
        """One D update on real patches (their domain) and generated ones (class K+1)."""
        clean, degraded, _, z = self._batch()
        with torch.no_grad():
            generated = self._normalize(degraded, ddp=False)
        fake_class = torch.full_like(z, len(self.domains))
        # The real class sees the real, non-degraded images (section 3.5): that is what pushes G to remove a field.
        logits_real = self.nets["D"](self.standardize_input(clean))
        logits_fake = self.nets["D"](generated)
        loss_d = discriminator_loss(logits_real, z) + discriminator_loss(logits_fake, fake_class)
        self.step(loss_d, "D")
        add("loss_dis", loss_d)
        add("disc_correct_real", (logits_real.argmax(1) == z).float().sum())
        add("disc_correct_fake", (logits_fake.argmax(1) == fake_class).float().sum())
        add("disc_seen", torch.tensor(float(z.numel())))

    def warm_up(self, add: Any) -> None:
        """``warmup_epochs`` passes of one epoch's iterations: G alone learns to reproduce its input (MSE, in the
        input's space, the short paper's initialization); S and D are not trained."""
        if "G" not in self.nets:
            return
        for _ in range(self.config.warmup_epochs * self.iterations):
            _, x, _, _ = self._batch()
            loss_g = nn.functional.mse_loss(self._normalize(x).float(), self.standardize_input(x).float())
            self.step(loss_g, "G")
            add("loss_mse", loss_g)

    def _generator_step(self, add: Any) -> None:
        """One G and S update on ``L_seg(S(G(x)), y) - lambda * L_dis(D(G(x)), K+1)``."""
        config = self.config
        _, x, y, _ = self._batch()
        normalized = self._normalize(x)
        loss_seg = self._segmentation_loss(self.nets["S"](normalized), y)
        loss = loss_seg
        if "D" in self.nets and "G" in self.nets and config.lambda_ > 0:
            with self.frozen("D"):  # and no DDP sync: D is not updated in this step
                logits = self.net("D")(normalized)
            if config.adversarial_loss == "paper":
                adversarial = generated_class_loss(logits)
                loss = loss_seg - config.lambda_ * adversarial
            else:
                adversarial = real_class_loss(logits)
                loss = loss_seg + config.lambda_ * adversarial
            add("loss_adv", adversarial)
        self.step(loss, *(name for name in ("G", "S") if name in self.optimizers))
        add("loss_seg", loss_seg)
        add("loss", loss)

    def _segmentation_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Eq. 1's weighted Dice, plus the voxels' cross-entropy under ``seg_loss: dice_ce``; nnU-Net's
        per-class mean Dice + CE under ``mean_dice_ce``."""
        if self.config.seg_loss == "mean_dice_ce":
            return mean_dice_ce_loss(logits, target)
        loss = weighted_dice_loss(logits, target, self.class_weights)
        if self.config.seg_loss == "dice_ce":
            loss = loss + nn.functional.cross_entropy(logits, target.long())
        return loss

    def train_epoch(self, epoch: int) -> dict[str, float]:
        config, iterations = self.config, self.iterations
        self.train_mode()
        sums: dict[str, torch.Tensor] = {}

        def add(name: str, value: torch.Tensor) -> None:
            sums[name] = sums.get(name, 0.0) + value.detach()

        if epoch == 0 and config.warmup_epochs > 0:
            self.warm_up(add)
        for _ in range(iterations):
            if "D" in self.nets:
                for _ in range(config.n_steps):
                    self._discriminator_step(add)
            self._generator_step(add)
        for name in ("G", "S"):
            if name in self.schedulers:
                self.schedulers[name].step()
        metrics = {f"train/{name}": float(value) / iterations for name, value in sums.items()
                   if name in ("loss", "loss_seg", "loss_adv")}
        if "loss_mse" in sums:
            metrics["train/loss_mse"] = float(sums["loss_mse"]) / (config.warmup_epochs * iterations)
        if "loss_dis" in sums:
            metrics["train/loss_dis"] = float(sums["loss_dis"]) / (iterations * config.n_steps)
            real = float(sums["disc_correct_real"] / sums["disc_seen"])
            fake = float(sums["disc_correct_fake"] / sums["disc_seen"])
            metrics |= {"train/disc_acc": (real + fake) / 2, "train/disc_acc_real": real, "train/disc_acc_fake": fake}
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
        self.eval_mode()
        summary = SegmentationSummary(self.class_names, surface=SURFACE_METRICS)
        inputs: dict[str, list[np.ndarray]] = {d: [] for d in self.eval_domains}
        outputs: dict[str, list[np.ndarray]] = {d: [] for d in self.eval_domains}
        corr_in, corr_out = [], []
        self.last_eval = []
        for case in self.cases_of(split):
            image = torch.from_numpy(case.image).unsqueeze(0).to(self.device)
            normalized, pred = self._infer(image)
            summary.add(case.domain, case.subject, pred, torch.from_numpy(case.label).unsqueeze(0).to(self.device),
                        self.spacing(case))
            brain = case.label > 0
            norm_np = normalized[0, 0].float().cpu().numpy()
            inputs[case.domain].append(case.image[0][brain])
            outputs[case.domain].append(norm_np[brain])
            corr_in.append(intensity_position_correlation(case.image[0], brain))
            corr_out.append(intensity_position_correlation(norm_np, brain))
            self.last_eval.append({"case": case, "normalized": norm_np, "pred": pred[0].cpu().numpy()})
        metrics = summary.metrics(split, self.eval_domains)
        self.last_cases = summary.cases()
        metrics[f"{split}/jsd_input"] = histogram_jsd([np.concatenate(v) for v in inputs.values() if v])
        metrics[f"{split}/jsd_norm"] = histogram_jsd([np.concatenate(v) for v in outputs.values() if v])
        metrics[f"{split}/jsd_k_input"] = generalized_jsd([np.concatenate(v) for v in inputs.values() if v])
        metrics[f"{split}/jsd_k_norm"] = generalized_jsd([np.concatenate(v) for v in outputs.values() if v])
        metrics[f"{split}/bias_corr_input"] = float(np.mean(np.abs(corr_in)))
        metrics[f"{split}/bias_corr_norm"] = float(np.mean(np.abs(corr_out)))
        if split == "test" and self.config.eval_bias_alphas:
            metrics.update(self._bias_sweep(split))
        judged = [c for c in self.splits[split] if c.domain in self.domains]  # D's real classes only
        if "D" in self.nets and self.config.eval_patches > 0 and judged:
            metrics.update(self._discriminator_validation(split, judged))
        return metrics

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

    def _bias_sweep(self, split: str) -> dict[str, float]:
        """Table 6: each test volume degraded by the linear field at each ``eval_bias_alphas``; per domain the mean
        (signed) correlation of intensity with y inside the brain, of the degraded input and of G's output, and the
        Dice on the degraded volumes."""
        metrics: dict[str, float] = {}
        for alpha in self.config.eval_bias_alphas:
            tag = f"a{alpha:g}"
            summary = SegmentationSummary(self.class_names)
            corr: dict[tuple[str, str], list[float]] = {}
            for case in self.cases_of(split):
                image = torch.from_numpy(case.image).unsqueeze(0).to(self.device)
                degraded = apply_bias_field(image, torch.tensor([alpha], device=self.device))
                normalized, pred = self._infer(degraded)
                summary.add(case.domain, case.subject, pred, torch.from_numpy(case.label).to(self.device))
                brain = case.label > 0
                for kind, volume in (("input", degraded), ("norm", normalized)):
                    value = intensity_position_correlation(volume[0, 0].float().cpu().numpy(), brain)
                    corr.setdefault((kind, case.domain), []).append(value)
            metrics[f"{split}/dice_bias/{tag}"] = summary.metrics(split, self.eval_domains)[f"{split}/dice"]
            for (kind, domain), values in corr.items():
                metrics[f"{split}/bias_corr_{kind}/{tag}/{domain}"] = float(np.mean(values))
        return metrics

    def _discriminator_validation(self, split: str, cases: list[Any]) -> dict[str, float]:
        """D's loss and accuracy on a fixed set of patches of ``split``, real and generated (Table 7)."""
        batch = self.data_config.batch_size
        sampler = PatchSampler(cases, self.domains, self.data_config.patch_size, batch, seed=12345)
        logits, labels, losses = [], [], []
        discriminator = self.net("D")
        for _ in range(max(1, self.config.eval_patches * len(self.domains) // batch)):
            x, _, z = sampler.sample()
            x, z = x.to(self.device), z.to(self.device)
            # The real class as training shows it: the patches in the networks' input space.
            real_logits = discriminator(self.standardize_input(x))
            fake_logits = discriminator(self._normalize(x, ddp=False))
            fake = torch.full_like(z, len(self.domains))
            losses.append(discriminator_loss(real_logits, z) + discriminator_loss(fake_logits, fake))
            logits += [real_logits, fake_logits]
            labels += [z, fake]
        all_logits, all_labels = torch.cat(logits), torch.cat(labels)
        fake_rows = all_labels == len(self.domains)
        real, fake = (classification_accuracy(all_logits[rows], all_labels[rows]) for rows in (~fake_rows, fake_rows))
        names = [*self.domains, "generated"]
        confusion = confusion_matrix(all_logits, all_labels, len(names))  # rows: the true class, normalized
        metrics = {f"{split}/disc_confusion/{names[i]}/{names[j]}": float(confusion[i, j])
                   for i in range(len(names)) for j in range(len(names))}
        return metrics | {
            f"{split}/loss_dis": float(torch.stack(losses).mean()),
            f"{split}/disc_acc": classification_accuracy(all_logits, all_labels),
            f"{split}/disc_acc_real": real,
            f"{split}/disc_acc_fake": fake,
        }

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
        names = {"train/loss", "train/loss_seg", "train/iterations", "train/lr_s", "val/jsd_input", "val/jsd_norm",
                 "val/jsd_k_input", "val/jsd_k_norm",
                 "val/bias_corr_input", "val/bias_corr_norm"}
        names |= summary_names("val", data.eval_domains or data.domains, data.names_of_classes(),
                               surface=SURFACE_METRICS)
        if config.generator != "none":
            names |= {"train/lr_g", "train/loss_mse"}
        if config.discriminator != "none" and config.generator != "none":
            names |= {"train/loss_dis", "train/lr_d", "train/loss_adv", "val/loss_dis"}
            names |= {f"{split}/disc_acc{part}" for split in ("train", "val") for part in ("", "_real", "_fake")}
            classes = [*(data.train_domains or data.domains), "generated"]
            names |= {f"val/disc_confusion/{a}/{b}" for a in classes for b in classes}
        return names

    @classmethod
    def test_metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        names = set()
        for alpha in config.eval_bias_alphas:
            names.add(f"test/dice_bias/a{alpha:g}")
            for domain in data.eval_domains or data.domains:
                names |= {f"test/bias_corr_{kind}/a{alpha:g}/{domain}" for kind in ("input", "norm")}
        return names

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 2, "g_channels": 4, "g_depth": 2, "s_channels": 4, "s_depth": 2, "d_channels": 4,
                "eval_patches": 4, "sw_overlap": 0.25}
