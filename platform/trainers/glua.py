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

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.losses import bce_to, conditional_discriminator_loss, dice_ce_loss, masked_bce_to, style_transfer_losses
from platform.nets.deeplab2d import local_feature_mask
from platform.trainers import _glua_parts as parts
from platform.trainers._glua_parts import ABLATIONS, MULTIPLE, SOURCE, TARGET, Config, domain_roles
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig

__all__ = ["ABLATIONS", "SOURCE", "TARGET", "Config", "GLUATrainer", "domain_roles"]
STAGE1_FORMAT = 2  # bump when stage 1 or its data changes (2: phantom format 3): part of the cache key
STAGE1_NETS = ("g_enc", "g_dec", "d_img")


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
        sizes = [c.label.shape[:2] for part in self.splits.values() for c in part]
        self.shape = tuple(-(-max(s[i] for s in sizes) // MULTIPLE) * MULTIPLE for i in (0, 1))
        parts.build_networks(self)
        self.loss_fn = dice_ce_loss(config.dice_weight)
        self.stage2_iteration = 0
        self.stage1_done = not config.runs_stage1
        self.stage1_cached = False
        self.styling = False  # whether the epoch in progress trains stage 1 (start_train_epoch)
        if config.runs_stage1 and self.stage1_path().is_file():
            self.load_networks(self.stage1_path(), STAGE1_NETS)
            self.stage1_done = self.stage1_cached = True

    def stage1_path(self) -> Path:
        """The stage-1 file: ``stage1_checkpoint``, else the cache entry of the stage-1 fields (atomic, rank 0)."""
        if self.config.stage1_checkpoint is not None:
            return Path(self.config.stage1_checkpoint).expanduser()
        fields = {name: getattr(self.config, name) for name in parts.STAGE1_FIELDS}
        fields.update(source=self.source, target=self.target)
        return self.stage_cache_path("glua-stage1", fields, STAGE1_FORMAT)

    def translate(self, x: torch.Tensor, source: int, target: int, ddp: bool = False) -> torch.Tensor:
        enc, dec = (self.nets[name] if ddp else self.net(name) for name in ("g_enc", "g_dec"))
        b = x.shape[0]
        return dec(enc(x, torch.full((b,), source, device=x.device)), torch.full((b,), target, device=x.device))

    # --- the step loop: stage 1 (style transfer), then stage 2 (segmentation with D1 and D2) ----------------
    def start_train_epoch(self, epoch: int) -> None:
        self.styling = epoch < self.config.stage1_epochs and not self.stage1_done
        if self.styling:
            self.train_mode("g_enc", "g_dec", "d_img")
        elif epoch >= self.config.stage1_epochs:
            if "labelled" not in self.samplers:  # after stage 1, or again after a checkpoint restore
                parts.build_stage2_samplers(self)
            self.train_mode("s_enc", "s_pred", "d1", "d2")

    def train_batches(self, epoch: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
        if epoch < self.config.stage1_epochs:  # an epoch of a skipped stage 1 (cached, loaded, unused) trains nothing
            for _ in range(self.iterations if self.styling else 0):
                yield "style", self.to_device(self.samplers["style_source"].sample(),
                                              self.samplers["style_target"].sample())
            return
        for _ in range(self.iterations):
            x_s, y_s, _ = self.samplers["labelled"].sample()
            x_t = self.to_device(self.samplers["unlabelled"].sample())[0] if "unlabelled" in self.samplers else None
            yield "segment", (*self.to_device(x_s, y_s), x_t)

    def train_step(self, batch: tuple[str, tuple[Any, ...]]) -> dict[str, torch.Tensor]:
        kind, tensors = batch
        return self._style_step(*tensors) if kind == "style" else self._segment_step(*tensors)

    def _style_step(self, x_s: torch.Tensor, x_t: torch.Tensor) -> dict[str, torch.Tensor]:
        config = self.config
        enc, dec, disc = self.nets["g_enc"], self.nets["g_dec"], self.nets["d_img"]
        d_s = torch.full((x_s.shape[0],), SOURCE, device=self.device)
        d_t = torch.full((x_t.shape[0],), TARGET, device=self.device)
        terms = style_transfer_losses(enc, dec, disc, x_s, x_t, d_s, d_t)
        loss = (config.lambda_rec_im * terms["rec_im"] + config.lambda_cyc * terms["cyc"]
                + config.lambda_rec_c * terms["rec_c"] + config.lambda_adv * terms["adv"])
        self.step(loss, "g")
        loss_d = conditional_discriminator_loss(disc, [(x_s, d_s), (x_t, d_t)],
                                                [(terms["x_st"], d_t), (terms["x_ts"], d_s)])
        self.step(loss_d, "d_img")
        return {"loss_rec_im": terms["rec_im"], "loss_cyc": terms["cyc"], "loss_rec_c": terms["rec_c"],
                "loss_adv_img": terms["adv"], "loss_d_img": loss_d}

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
            return get("s_pred")(features * (1 + mask), x.shape[-2:]), features, mask
        return get("s_pred")(features, x.shape[-2:]), features, mask

    def _segment_step(self, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor | None) -> dict[str, Any]:
        """One S update (poly learning rate) on L_seg(x_s) plus, on target slices, S's adversarial terms against
        D1 (features, masked) and D2 (softmax maps); then one update of each discriminator on detached inputs."""
        config = self.config
        total = (config.epochs - config.stage1_epochs) * self.iterations
        for group in self.optimizers["s"].param_groups:
            group["lr"] = config.lr_s * (1 - min(self.stage2_iteration, total - 1) / total) ** config.poly_power
        self.stage2_iteration += 1
        logits_s, f_s, _ = self.segment(x_s, target=config.mode == "supervised_target")
        loss_seg = self.loss_fn(logits_s, y_s.unsqueeze(1))
        loss, reported = loss_seg, {"loss_seg": loss_seg}
        if x_t is None:
            self.step(loss, "s")
            return reported
        logits_t, f_t, mask = self.segment(x_t, target=True)
        with self.frozen("d1", "d2"):
            if config.d1:
                assert mask is not None
                logits_d1 = self.nets["d1"](f_t)  # per-pixel weights of the alignment itself, or none
                adversarial = config.mask_on == "adversarial"
                adv1 = masked_bce_to(logits_d1, 1.0, mask) if adversarial else bce_to(logits_d1, 1.0)
                loss = loss + config.lambda_d1 * adv1
                reported |= {"loss_adv_d1": adv1, "mask_mean": mask.mean(), "mask_var": mask.var(correction=0)}
            if config.d2:
                reported["loss_adv_d2"] = bce_to(self.nets["d2"](logits_t.softmax(1)), 1.0)
                loss = loss + config.lambda_d2 * reported["loss_adv_d2"]
        self.step(loss, "s")
        pairs = {"d1": (f_s, f_t), "d2": (logits_s.softmax(1), logits_t.softmax(1))}
        for name in (n for n in ("d1", "d2") if n in self.nets):
            src, tgt = (t.detach() for t in pairs[name])
            on_src, on_tgt = self.nets[name](src), self.nets[name](tgt)
            reported[f"loss_{name}"] = (bce_to(on_src, 1.0) + bce_to(on_tgt, 0.0)) / 2
            self.step(reported[f"loss_{name}"], name)
            # Per pixel (D1) or per patch (D2): how often it tells the domains apart (0.5: chance).
            reported[f"{name}_acc"] = ((on_src > 0).float().mean() + (on_tgt < 0).float().mean()) / 2
        return reported

    def end_train_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        stage1 = epoch < config.stage1_epochs
        metrics = {"train/stage": 1.0 if stage1 else 2.0}
        if config.runs_stage1:
            metrics["train/stage1_cached"] = float(self.stage1_cached)
        if stage1:
            if self.styling and epoch + 1 == config.stage1_epochs:
                self.stage1_done = True
                if config.stage1_checkpoint is None:
                    self.save_networks(self.stage1_path(), STAGE1_NETS)
            return metrics
        metrics["train/lr"] = self.optimizers["s"].param_groups[0]["lr"]
        if config.d1:
            metrics.update(parts.mask_region_means(self.mask_by_label(self.target_train)))
        return metrics

    def mask_by_label(self, cases: list[Case]) -> dict[int, tuple[float, int]]:
        """The D1 mask S applies at inference, per label value of these volumes (``_glua_parts``)."""
        return parts.mask_by_label(self, cases)

    def expected_metrics(self) -> set[str]:
        # A stage 1 loaded from the cache or a file trains nothing: its losses are not reported.
        return super().expected_metrics() - (parts.STAGE1_LOSSES if self.stage1_cached else set())

    # --- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self, split: str = "val") -> dict[str, float]:
        return parts.evaluate_volumes(self, split)

    def artifact_panel(self, item: dict[str, Any]) -> np.ndarray:
        case = item["case"]
        if self.config.runs_stage1 and case.domain == self.source:
            return parts.translate_case(self, case).image[0]
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
        return parts.config_problems(config, data)

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        return parts.declared_names(config, data)

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 3, "stage1_epochs": 1, "g_channels": 4, "g_downsample": 1, "g_res_blocks": 1,
                "mlp_hidden": 8, "d_img_channels": 4, "d_img_layers": 2, "s_channels": 4, "s_dilated_blocks": 1,
                "d1_channels": 8, "d2_channels": 4}
