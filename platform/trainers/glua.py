"""GLUA, Global-Local Union Alignment (Su et al., "Mind The Gap"): unsupervised source -> target adaptation.

Stage 1, global alignment (epochs ``0 .. stage1_epochs-1``): a 2D style-transfer auto-encoder (shared encoder
G_E and decoder G_D with AdaIN layers fed by an MLP on the one-hot domain label, source = 0, target = 1) is
trained on unlabelled slices of both domains with ``lambda_rec_im * L1(x_ii, x_i) + lambda_cyc * L1(x_iji, x_i)
+ lambda_rec_c * L1(G_E(x_ij, d_j), c_i) + lambda_adv * GAN(D(x_ij | d_j))`` (non-saturating BCE GAN) against a
domain-conditioned PatchGAN D (one-hot planes concatenated to the image). Adam lr 2e-4, weight decay 1e-4.

Stage 2, local alignment (the remaining epochs): every source training volume is translated once to the target
style (``x_s->t``, the paper's "pre-processed training set"); S = S_P(S_E(.)) trains with Dice+CE on
(x_s->t, y_s) and, unsupervised, on target slices x_t: D1 (pixel-wise 1x1 convs) tells S_E's features of
the two domains apart, D2 tells S's softmax maps apart; S plays against both with non-saturating BCE
(weights ``lambda_d1``, ``lambda_d2``), AdaptSegNet-style (source label 1, target label 0; discriminators
updated on detached inputs after S). SGD (momentum .9, weight decay 5e-4) with poly decay (power .9) for S,
Adam (.9, .99) for D1 and D2.

Choices where the paper is silent (all documented config fields):

- Local feature mask, from p = sigmoid(D1(f)) (D1's probability of "source"), detached (no gradient to D1). The
  paper's formula was lost in conversion and its words admit two readings, both first-class (``mask``):

  * ``gap`` (default): D1's confidence that a pixel is of its own domain (1 - p on target features), high where
    the domains still differ: "a local feature mask is integrated to reduce the 'inter-gap' for local features by
    prioritizing those discriminative features with larger domain gap" (abstract); "the discriminator D1 could
    provide accurate feedback on the region with larger domain gap, and by adaptively re-weighting the feature
    map, prediction performance is improved accordingly" (section IV, Fig. 6).
  * ``entropy``: the binary entropy of p / ln 2, high where D1 is uncertain: "the local feature masks are adopted
    in segmentation subnet produced by the uncertainty of the domain discriminator" (introduction); "in the
    absence of global alignment, the discriminator tends to output high uncertainty in the background and
    considers it as part of discriminative region" (section IV, Fig. 6), the transferable-attention reading of
    the local alignment methods it cites. ``margin`` (1 - |2p - 1|) is a variant of it.

  ``mask_on: target`` (default) re-weights target features residually, ``f_t * (1 + mask)`` (so no feature is
  zeroed), before S_P, in training and at inference on target images ("the target domain feature is reweighted
  and calibrated", section III-A); ``both`` re-weights source features too (their own gap, p); ``adversarial``
  leaves the features alone and weights D1's adversarial loss per pixel by the target mask instead. D1's
  adversarial loss sees the raw features. Every stage-2 epoch reports ``train/mask_mean`` and ``train/mask_var``
  (over the target pixels of the training batches), ``train/mask_fg`` and ``train/mask_bg`` (the mask S applies
  at inference, after the epoch, averaged over the foreground and the background voxels of the target's training
  volumes: their labels are read for this diagnostic alone and never reach a loss or a sampler), and
  ``train/d1_acc`` and ``train/d2_acc`` (the discriminators' accuracy at telling source from target, 0.5 is
  chance).
- D1 and D2 learning rate ``lr_d``: the paper gives none ("We tune the batch size and learning rate empirically in
  each task"); the default 1e-4 is AdaptSegNet's, whose discriminator optimizer (Adam, betas .9/.99) the paper
  uses. The paper specs set the rate their budget needs (see their comments).
- Source and target slices are sampled the same way: uniformly among every slice of the volumes, never by label
  (a foreground-only source against all target slices would let the discriminators tell the domains apart by
  content). Target labels are read only by ``evaluate``, by the mask diagnostic above (never by a loss or a
  sampler) and by ``mode: supervised_target`` (the upper bound).
- Without D1 and D2 nothing of the target domain is forwarded in stage 2 (so BatchNorm statistics stay those of
  the source): ``style_transfer: false`` with no discriminator is exactly ``mode: no_adaptation``.
- Epochs: stage 1 always owns the first ``stage1_epochs`` epochs; when it is skipped (cached, loaded from
  ``stage1_checkpoint``, or unused) those epochs train nothing, so stage 2 always has the same length.
- Stage-1 cache: ``$SEGSWEEP_CACHE/glua-stage1/<hash>.pt`` (root as the phantom cache), the hash over the
  stage-1 fields, the data config (without ``cache_dir``), seed, fold and world size; written atomically
  (temporary file + rename) by rank 0 when stage 1 ends.

Domains: the labelled ``source`` and the unlabelled ``target`` are the config's, or come from the data's roles
(:func:`domain_roles`): the target is the evaluation domain that is not a training domain (``data.eval_domains:
[ct]``, ``data.train_domains: [mr]``). The target's training subjects are read as images only (their labels only by
``mode: supervised_target``, the upper bound).

Metrics: ``val/dice`` is the mean foreground Dice over the evaluation domains' validation volumes (the target's,
with the roles above); ``val/dice/<domain>[/<class>]`` and ``val/asd[/<domain>]`` per evaluation domain;
``val/style_jsd`` the histogram JSD between translated-source and target foreground intensities of the validation
volumes (``val/style_jsd_identity`` before translation).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from pydantic import Field, model_validator

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.slices import ImageSliceSampler, SliceSampler, pad_xy, volume_slices
from platform.losses import Float32Loss, bce_to, conditional_discriminator_loss, style_transfer_losses
from platform.metrics import SegmentationSummary, histogram_jsd, summary_names
from platform.nets.deeplab2d import (
    FeatureExtractor,
    OutputDiscriminator,
    PixelDiscriminator,
    Predictor,
    local_feature_mask,
)
from platform.nets.styletransfer import ConditionalPatchDiscriminator, StyleDecoder, StyleEncoder
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig

MULTIPLE = 8  # slices are padded to a multiple of 8 (up to three stride-2 levels)
STAGE1_FORMAT = 2  # bump when stage 1 or its data changes (2: phantom format 3): part of the cache key
STAGE1_NETS = ("g_enc", "g_dec", "d_img")
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


@TRAINERS.register("glua")
class GLUATrainer(Trainer):
    """Stage 1 style transfer, then segmentation with D1 (masked local alignment) and D2."""

    Config = Config
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {
        **{m: ("min", "loss") for m in ("loss_rec_im", "loss_cyc", "loss_rec_c", "loss_seg")},
        **{m: ("none", "adversarial loss") for m in ("loss_adv_img", "loss_d_img", "loss_adv_d1", "loss_adv_d2",
                                                     "loss_d1", "loss_d2")},
        "stage": ("none", "flag"), "stage1_cached": ("none", "flag"), "mask_mean": ("none", "mask"),
        "mask_var": ("none", "mask"), "mask_fg": ("none", "mask"), "mask_bg": ("none", "mask"),
        "d1_acc": ("none", "accuracy"), "d2_acc": ("none", "accuracy"),
        "style_jsd": ("min", "divergence"), "style_jsd_identity": ("none", "divergence")}
    ARTIFACT_KIND = "input|translated|prediction|truth"

    def __init__(self, config: Config, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        self.source, self.target = domain_roles(config, data, self.train_domains, self.eval_domains)
        # The target's training subjects are read as images only (labels: mode supervised_target, the bound).
        self.source_train = [c for c in self.splits["train"] if c.domain == self.source]
        self.target_train = [c for c in self.splits["train"] if c.domain == self.target]
        for role, domain, cases in (("source", self.source, self.source_train),
                                    ("target", self.target, self.target_train)):
            if not cases:
                raise ValueError(f"{role} domain {domain!r} has no training cases")
        channels = self.channels
        sizes = [c.label.shape[:2] for part in self.splits.values() for c in part]
        self.shape = tuple(-(-max(s[i] for s in sizes) // MULTIPLE) * MULTIPLE for i in (0, 1))
        batch = data.batch_size

        # Stage-1 networks first, right after seeding: their initialisation never depends on stage-2 fields.
        if config.runs_stage1:
            g = {"width": config.g_channels, "downsample": config.g_downsample, "res_blocks": config.g_res_blocks,
                 "mlp_hidden": config.mlp_hidden}
            self.nets["g_enc"] = StyleEncoder(channels, 2, **g)
            self.nets["g_dec"] = StyleDecoder(channels, 2, **g)
            self.nets["d_img"] = ConditionalPatchDiscriminator(channels, 2, config.d_img_channels,
                                                               config.d_img_layers)
            self.samplers["style_source"] = ImageSliceSampler(self.source_train, batch, self.stream_seed(1),
                                                              self.shape)
            self.samplers["style_target"] = ImageSliceSampler(self.target_train, batch, self.stream_seed(2),
                                                              self.shape)
        self.nets["s_enc"] = FeatureExtractor(channels, config.s_channels, config.s_downsample,
                                              config.s_dilated_blocks)
        self.nets["s_pred"] = Predictor(self.nets["s_enc"].out_channels, self.num_classes)
        if config.d1:
            self.nets["d1"] = PixelDiscriminator(self.nets["s_enc"].out_channels, config.d1_channels)
        if config.d2:
            self.nets["d2"] = OutputDiscriminator(self.num_classes, config.d2_channels)
        self.finish_networks()
        if config.runs_stage1:
            g_params = [*self.nets["g_enc"].parameters(), *self.nets["g_dec"].parameters()]
            self.optimizers["g"] = torch.optim.Adam(g_params, lr=config.stage1_lr, betas=(0.5, 0.999),
                                                    weight_decay=config.stage1_weight_decay)
            self.optimizers["d_img"] = torch.optim.Adam(self.nets["d_img"].parameters(), lr=config.stage1_lr,
                                                        betas=(0.5, 0.999), weight_decay=config.stage1_weight_decay)
        s_params = [*self.nets["s_enc"].parameters(), *self.nets["s_pred"].parameters()]
        self.optimizers["s"] = torch.optim.SGD(s_params, lr=config.lr_s, momentum=config.momentum_s,
                                               weight_decay=config.weight_decay_s)
        for name in ("d1", "d2"):
            if name in self.nets:
                self.optimizers[name] = torch.optim.Adam(self.nets[name].parameters(), lr=config.lr_d,
                                                         betas=(0.9, 0.99))
        self.loss_fn = Float32Loss(DiceCELoss(include_background=True, to_onehot_y=True, softmax=True,
                                              lambda_dice=config.dice_weight, lambda_ce=1 - config.dice_weight))
        self.stage2_iteration = 0
        self.stage1_done = not config.runs_stage1
        self.stage1_cached = False
        if config.runs_stage1:
            path = self.stage1_path()
            if path.is_file():
                self._load_stage1(path)

    # --- stage-1 cache ------------------------------------------------------------------------------------
    def stage1_path(self) -> Path:
        if self.config.stage1_checkpoint is not None:
            return Path(self.config.stage1_checkpoint).expanduser()
        fields = {name: getattr(self.config, name) for name in STAGE1_FIELDS}
        fields.update(source=self.source, target=self.target)
        return self.stage_cache_path("glua-stage1", fields, STAGE1_FORMAT)

    def _load_stage1(self, path: Path) -> None:
        self.load_networks(path, STAGE1_NETS)
        self.stage1_done = self.stage1_cached = True

    def _save_stage1(self) -> None:
        if self.config.stage1_checkpoint is None:
            self.save_networks(self.stage1_path(), STAGE1_NETS)

    # --- stage 1 ------------------------------------------------------------------------------------------
    def translate(self, x: torch.Tensor, source: int, target: int, ddp: bool = False) -> torch.Tensor:
        enc, dec = (self.nets[name] if ddp else self.net(name) for name in ("g_enc", "g_dec"))
        b = x.shape[0]
        return dec(enc(x, torch.full((b,), source, device=x.device)), torch.full((b,), target, device=x.device))

    def _stage1_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        enc, dec, disc = self.nets["g_enc"], self.nets["g_dec"], self.nets["d_img"]
        self.train_mode("g_enc", "g_dec", "d_img")
        sums = dict.fromkeys(("loss_rec_im", "loss_cyc", "loss_rec_c", "loss_adv_img", "loss_d_img"), 0.0)
        for _ in range(self.iterations):
            x_s, x_t = self.to_device(self.samplers["style_source"].sample(), self.samplers["style_target"].sample())
            d_s = torch.full((x_s.shape[0],), SOURCE, device=self.device)
            d_t = torch.full((x_t.shape[0],), TARGET, device=self.device)
            terms = style_transfer_losses(enc, dec, disc, x_s, x_t, d_s, d_t)
            loss = (config.lambda_rec_im * terms["rec_im"] + config.lambda_cyc * terms["cyc"]
                    + config.lambda_rec_c * terms["rec_c"] + config.lambda_adv * terms["adv"])
            self.step(loss, "g")
            loss_d = conditional_discriminator_loss(disc, [(x_s, d_s), (x_t, d_t)],
                                                    [(terms["x_st"], d_t), (terms["x_ts"], d_s)])
            self.step(loss_d, "d_img")
            for key, value in (("loss_rec_im", terms["rec_im"]), ("loss_cyc", terms["cyc"]),
                               ("loss_rec_c", terms["rec_c"]), ("loss_adv_img", terms["adv"]), ("loss_d_img", loss_d)):
                sums[key] += float(value.detach())
        return {f"train/{k}": v / self.iterations for k, v in sums.items()}

    # --- stage 2 ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _translate_case(self, case: Case) -> Case:
        """The case with its image in target style (labels and geometry unchanged)."""
        for name in ("g_enc", "g_dec"):
            self.net(name).eval()
        slices = volume_slices(case, 0, MULTIPLE).to(self.device)
        out = torch.cat([self.translate(slices[i:i + 16], SOURCE, TARGET) for i in range(0, len(slices), 16)])
        sx, sy = case.label.shape[:2]
        image = out[:, :, :sx, :sy].permute(1, 2, 3, 0).float().cpu().numpy()  # (C, X, Y, Z)
        return dataclasses.replace(case, image=image)

    def _build_stage2_samplers(self) -> None:
        """Samplers of stage 2, built on first use (after stage 1, or again after a checkpoint restore)."""
        config, batch = self.config, self.data_config.batch_size
        if config.mode == "supervised_target":
            labelled = self.target_train
        elif config.runs_stage1:
            labelled = [self._translate_case(c) for c in self.source_train]
        else:
            labelled = self.source_train
        # Pad to the common shape so source and target batches match (SliceSampler pads to its largest).
        labelled = [dataclasses.replace(c, image=pad_xy(c.image, self.shape), label=pad_xy(c.label, self.shape))
                    for c in labelled]
        self.add_sampler("labelled", SliceSampler(labelled, [labelled[0].domain], batch, seed=self.stream_seed(3),
                                                  multiple=MULTIPLE, every_slice=True))
        if config.d1 or config.d2:
            self.add_sampler("unlabelled", ImageSliceSampler(self.target_train, batch, self.stream_seed(4),
                                                             self.shape))

    def segment(self, x: torch.Tensor, target: bool, ddp: bool = True) -> tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor | None]:
        """(logits, features, mask or None): with D1, the mask of these features (target ones, or source ones with
        ``mask_on: both``); features are re-weighted by (1 + mask) unless ``mask_on: adversarial``."""
        get = (lambda n: self.nets[n]) if ddp else self.net
        features = get("s_enc")(x)
        mask = None
        config = self.config
        if config.d1 and (target or config.mask_on == "both"):
            with torch.no_grad():
                mask = local_feature_mask(self.net("d1")(features.detach()), config.mask,
                                          "target" if target else "source")
        if mask is not None and config.mask_on != "adversarial":
            logits = get("s_pred")(features * (1 + mask), x.shape[-2:])
        else:
            logits = get("s_pred")(features, x.shape[-2:])
        return logits, features, mask

    def _stage2_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        if "labelled" not in self.samplers:
            self._build_stage2_samplers()
        samplers = self.samplers
        self.train_mode("s_enc", "s_pred", "d1", "d2")
        total = (config.epochs - config.stage1_epochs) * self.iterations
        sums: dict[str, float] = dict.fromkeys(("loss_seg", "loss_adv_d1", "loss_adv_d2", "loss_d1", "loss_d2",
                                                "mask_mean", "mask_var", "d1_acc", "d2_acc"), 0.0)
        for _ in range(self.iterations):
            lr = config.lr_s * (1 - min(self.stage2_iteration, total - 1) / total) ** config.poly_power
            for group in self.optimizers["s"].param_groups:
                group["lr"] = lr
            self.stage2_iteration += 1
            x_s, y_s, _ = samplers["labelled"].sample()
            x_s, y_s = self.to_device(x_s, y_s)
            logits_s, f_s, _ = self.segment(x_s, target=config.mode == "supervised_target")
            loss_seg = self.loss_fn(logits_s, y_s.unsqueeze(1))
            loss = loss_seg
            adaptive = "unlabelled" in samplers
            if adaptive:
                x_t = self.to_device(samplers["unlabelled"].sample())[0]
                logits_t, f_t, mask = self.segment(x_t, target=True)
                with self.frozen("d1", "d2"):
                    if config.d1:
                        assert mask is not None
                        logits_d1 = self.nets["d1"](f_t)
                        if config.mask_on == "adversarial":  # per-pixel weights of the alignment itself
                            per_pixel = F.binary_cross_entropy_with_logits(  # in float32 under autocast
                                logits_d1.float(), torch.ones_like(logits_d1, dtype=torch.float32), reduction="none")
                            adv1 = (mask * per_pixel).sum() / mask.sum().clamp_min(1e-6)
                        else:
                            adv1 = bce_to(logits_d1, 1.0)
                        loss = loss + config.lambda_d1 * adv1
                        sums["loss_adv_d1"] += float(adv1.detach())
                        sums["mask_mean"] += float(mask.mean())
                        sums["mask_var"] += float(mask.var(correction=0))
                    if config.d2:
                        adv2 = bce_to(self.nets["d2"](logits_t.softmax(1)), 1.0)
                        loss = loss + config.lambda_d2 * adv2
                        sums["loss_adv_d2"] += float(adv2.detach())
            self.step(loss, "s")
            sums["loss_seg"] += float(loss_seg.detach())
            if adaptive:
                pairs = {"d1": (f_s, f_t), "d2": (logits_s.softmax(1), logits_t.softmax(1))}
                for name in ("d1", "d2"):
                    if name not in self.nets:
                        continue
                    src, tgt = (t.detach() for t in pairs[name])
                    on_src, on_tgt = self.nets[name](src), self.nets[name](tgt)
                    loss_d = (bce_to(on_src, 1.0) + bce_to(on_tgt, 0.0)) / 2
                    self.step(loss_d, name)
                    sums[f"loss_{name}"] += float(loss_d.detach())
                    # Per pixel (D1) or per patch (D2): how often it tells the domains apart (0.5: chance).
                    sums[f"{name}_acc"] += float(((on_src > 0).float().mean() + (on_tgt < 0).float().mean()) / 2)
        keep = ["loss_seg"]
        if config.d1:
            keep += ["loss_adv_d1", "loss_d1", "mask_mean", "mask_var", "d1_acc"]
        if config.d2:
            keep += ["loss_adv_d2", "loss_d2", "d2_acc"]
        metrics = {f"train/{k}": sums[k] / self.iterations for k in keep}
        metrics["train/lr"] = self.optimizers["s"].param_groups[0]["lr"]
        if config.d1:
            regions = self.mask_by_label(self.target_train)
            for name, keep_label in (("mask_fg", lambda label: label > 0), ("mask_bg", lambda label: label == 0)):
                total_mask = sum(value for label, (value, _) in regions.items() if keep_label(label))
                count = sum(n for label, (_, n) in regions.items() if keep_label(label))
                metrics[f"train/{name}"] = total_mask / count if count else float("nan")
        return metrics

    @torch.no_grad()
    def mask_by_label(self, cases: list[Case]) -> dict[int, tuple[float, int]]:
        """The D1 mask S applies at inference to these target volumes, per label value: (sum of the mask over the
        voxels of that label, their count); the mask is brought to the image's resolution (nearest). A diagnostic
        only: the labels it reads reach no loss and no sampler, and no random stream is drawn. Leaves the networks in
        eval mode."""
        self.eval_mode()
        totals: dict[int, tuple[float, int]] = {}
        for case in cases:
            slices = volume_slices(case, 0, MULTIPLE).to(self.device)
            chunks = self.in_chunks(lambda x: self.segment(x, target=True, ddp=False)[2], slices)
            if any(chunk is None for chunk in chunks):
                return {}
            mask = F.interpolate(torch.cat(chunks).float(), size=slices.shape[-2:], mode="nearest")[:, 0]
            size_x, size_y = case.label.shape[:2]
            mask = mask[:, :size_x, :size_y].permute(1, 2, 0)  # (X, Y, Z), as the label
            label = torch.from_numpy(case.label.astype(np.int64)).to(self.device)
            for value in torch.unique(label).tolist():
                where = label == value
                total, count = totals.get(value, (0.0, 0))
                totals[value] = (total + float(mask[where].sum()), count + int(where.sum()))
        return totals

    def train_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        metrics: dict[str, float] = {"train/iterations": float(self.iterations)}
        if epoch < config.stage1_epochs:
            metrics["train/stage"] = 1.0
            if config.runs_stage1:
                metrics["train/stage1_cached"] = float(self.stage1_cached)
                if not self.stage1_done:
                    metrics.update(self._stage1_epoch(epoch))
                    if epoch + 1 == config.stage1_epochs:
                        self.stage1_done = True
                        self._save_stage1()
        else:
            metrics["train/stage"] = 2.0
            if config.runs_stage1:
                metrics["train/stage1_cached"] = float(self.stage1_cached)
            metrics.update(self._stage2_epoch(epoch))
        return metrics

    # --- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def _predict_volume(self, case: Case) -> torch.Tensor:
        slices = volume_slices(case, 0, MULTIPLE).to(self.device)
        target = case.domain == self.target
        preds = self.in_chunks(lambda x: self.segment(x, target=target, ddp=False)[0].argmax(1), slices)
        sx, sy = case.label.shape[:2]
        return torch.cat(preds)[:, :sx, :sy].permute(1, 2, 0)  # (X, Y, Z)

    def evaluate(self, split: str = "val") -> dict[str, float]:
        self.eval_mode()
        summary = SegmentationSummary(self.class_names, surface=("asd",))
        self.last_eval = []
        for case in self.cases_of(split):
            pred = self._predict_volume(case)
            summary.add(case.domain, case.subject, pred, torch.from_numpy(case.label).to(self.device),
                        self.spacing(case))
            self.last_eval.append({"case": case, "pred": pred.cpu().numpy()})
        self.last_cases = summary.cases()
        # val/dice and val/asd: the mean over the evaluation domains (the target, unless the source is one too).
        metrics = summary.metrics(split, self.eval_domains)
        if self.config.runs_stage1:
            metrics.update(self._style_metrics(split))
        return metrics

    def _style_metrics(self, split: str) -> dict[str, float]:
        # Images only, of both domains' subjects of the split whatever their roles: a measure of the translation.
        source = [c for c in self.splits[split] if c.domain == self.source]
        target = [c for c in self.splits[split] if c.domain == self.target]
        if not source or not target:
            return {}
        translated = np.concatenate([self._translate_case(c).image[:, c.label > 0].ravel() for c in source])
        raw = np.concatenate([c.image[:, c.label > 0].ravel() for c in source])
        tgt = np.concatenate([c.image[:, c.label > 0].ravel() for c in target])
        return {f"{split}/style_jsd": histogram_jsd([translated, tgt]),
                f"{split}/style_jsd_identity": histogram_jsd([raw, tgt])}

    def artifact_panel(self, item: dict[str, Any]) -> np.ndarray:
        case = item["case"]
        if self.config.runs_stage1 and case.domain == self.source:
            return self._translate_case(case).image[0]
        return case.image[0]

    # --- state --------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"stage1_done": self.stage1_done, "stage1_cached": self.stage1_cached,
                "stage2_iteration": self.stage2_iteration}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.stage1_done, self.stage1_cached = state["stage1_done"], state["stage1_cached"]
        self.stage2_iteration = state["stage2_iteration"]
        self.defer_samplers("labelled", "unlabelled")  # rebuilt (re-translated) from the restored G on first use

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        # Discriminators see two forwards before one backward; G_E runs twice per loss (content reconstruction).
        kwargs: dict[str, Any] = {"find_unused_parameters": True}
        if name in ("d_img", "d1", "d2", "g_enc", "g_dec", "s_enc", "s_pred"):
            kwargs["broadcast_buffers"] = False
        return kwargs

    @classmethod
    def check(cls, config: TrainerConfig, data: DataConfig) -> list[str]:
        assert isinstance(config, Config)
        problems = []
        try:
            domain_roles(config, data, data.training_domains([]), data.evaluation_domains([]))
        except ValueError as exc:
            problems.append(str(exc))
        if config.stage1_checkpoint is not None and not Path(config.stage1_checkpoint).expanduser().is_file():
            problems.append(f"stage1_checkpoint {config.stage1_checkpoint!r} does not exist: give the path of a "
                            "stage-1 file, or remove stage1_checkpoint to train stage 1")
        return problems

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        names = {"train/iterations", "train/stage", "train/stage1_cached", "train/lr", "train/loss_rec_im",
                 "train/loss_cyc", "train/loss_rec_c", "train/loss_adv_img", "train/loss_d_img", "train/loss_seg",
                 "train/loss_adv_d1", "train/loss_adv_d2", "train/loss_d1", "train/loss_d2", "train/mask_mean",
                 "train/mask_var", "train/mask_fg", "train/mask_bg", "train/d1_acc", "train/d2_acc",
                 "val/style_jsd", "val/style_jsd_identity"}
        domains = data.eval_domains or data.domains or [d for d in (config.target,) if d]
        return names | summary_names("val", domains, data.names_of_classes(), surface=("asd",))

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 3, "stage1_epochs": 1, "g_channels": 4, "g_downsample": 1, "g_res_blocks": 1,
                "mlp_hidden": 8, "d_img_channels": 4, "d_img_layers": 2, "s_channels": 4, "s_dilated_blocks": 1,
                "d1_channels": 8, "d2_channels": 4}
