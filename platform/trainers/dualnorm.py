"""DualNorm-UNet (Xiao et al., "DualNorm-UNet: Incorporating Global and Local Statistics").

A 2D residual U-Net whose DualNorm Residual Blocks (``dnrb_blocks``) hold a BN branch and a SPADE branch.
Training (Algorithm 1): ``pretrain_epochs`` of BN-branch training of {shared, BN}; then each iteration

1. forwards the BN branch, updates {shared, BN} on ``L(y, y_B)`` (alpha = 1);
2. forwards the SPADE branch with the detached softmax of step 1 as the mask, updates {shared, SPADE} on
   ``L(y, y_S)`` (alpha = 0).

``L = lambda * Dice + (1 - lambda) * CE`` (eq. 7-9: Dice with squared denominators, over all classes; CE as
equation 8 writes it, the pixel mean divided by |L| as well, so ``lambda`` means what it means in the paper).
One Adam optimizer holds every parameter: a branch that was not in the forward has no gradient, and Adam
leaves parameters without gradients untouched, which is exactly the alternating update. The learning rate
follows ReduceLROnPlateau on the mean training loss of each window of ``plateau_window`` iterations.
Inference forwards twice (BN branch, then SPADE branch with its mask). ``val/dice`` is the forward the method
would use at that point: the first (BN) forward during BN-only pretraining, when SPADE is still untrained, and
the second (SPADE) forward after it; ``val/scored_forward`` says which (1 or 2), and ``val/dice_first_forward``
and ``val/dice_second_forward`` report both. Only epochs that score the full (SPADE) forward are eligible for
selection (``selectable``): the engine keeps the best of those alone, reports ``selection/epoch`` (ASHA's clock)
only in them, and the test split's ``test/best/scored_forward`` and ``test/selected_epoch`` say which forward and
epoch the selected networks are; with DNRB, ``pretrain_epochs`` must be below ``epochs``. SPADE normalizes
with the BN branch's statistics (equation 4; ``spade_statistics: own`` keeps a BatchNorm of its own).

``eval_bn: precise`` re-estimates every BatchNorm's statistics on ``precise_bn_batches`` training batches before
each evaluation (detectron2's PreciseBN): a documented deviation that stands in for the paper's far longer
training, after which the running averages have settled; ``running`` (default) evaluates with the running
averages as trained. ``model/params/<net>`` and ``model/params_ratio`` (to the same network without DNRB, the
paper's Table 6) are reported.

Baselines are switches: ``dnrb_blocks: []`` with ``norm: batch | instance | group | layer | dsbn``;
``share_weights: false`` is "Concatenated" (separate networks for the two stages).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.slices import SliceSampler, volume_slices
from platform.losses import dualnorm_loss
from platform.metrics import SegmentationSummary, summary_names
from platform.nets.batchnorm import cumulative_batchnorm
from platform.nets.resunet2d import BLOCKS, ResUNet2D
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig

MULTIPLE = 16  # four poolings


class Config(TrainerConfig):
    """Hyperparameters of DualNorm-UNet; defaults are the paper's (iterations expressed as epochs)."""

    RENAMED: ClassVar[dict[str, str]] = {"base_channels": "s_channels", "lr": "lr_s"}

    epochs: int = Field(27, ge=1, description="total epochs, pretraining included (paper: 18K + 9K iterations)")
    pretrain_epochs: int = Field(18, ge=0, description="first epochs training only the BN branch")
    lambda_: float = Field(0.5, alias="lambda", ge=0, le=1,
                           description="Dice weight in lambda*Dice + (1-lambda)*CE (0.5 multi-organ, 1.0 prostate)")
    dnrb_blocks: list[int] = Field([1], description="blocks (1..10) that are DualNorm Residual Blocks")
    norm: Literal["batch", "instance", "group", "layer", "dsbn"] = Field(
        "batch", description="normalization of the other blocks (baselines BN/IN/GN/LN, DSBN)")
    share_weights: bool = Field(True, description="false: 'Concatenated', separate networks per stage")
    s_channels: int = Field(32, ge=1, description="features of block 1 (doubling per level)")
    spade_hidden_ratio: float = Field(0.5, gt=0, description="SPADE hidden width as a fraction of C (paper C/2)")
    group_norm_groups: int = Field(16, ge=1, description="groups of the GN baseline (authors' code: 16)")
    context: int = Field(0, ge=0, description="2.5D: neighbouring slices on each side as extra channels")
    flip: bool = Field(True, description="random flips of training slices")
    rotate: bool = Field(True, description="random 90-degree rotations of training slices")
    lr_s: float = Field(1e-3, gt=0, description="Adam learning rate (betas .9, .999)")
    plateau_factor: float = Field(0.5, gt=0, lt=1, description="ReduceLROnPlateau factor")
    plateau_patience: int = Field(5, ge=0, description="ReduceLROnPlateau patience, in windows")
    plateau_window: int = Field(50, ge=1, description="iterations whose mean training loss steps the scheduler")
    spade_statistics: Literal["bn", "own"] = Field(
        "bn", description="SPADE normalizes with the BN branch's statistics (eq. 4) or with a BatchNorm of its own")
    eval_bn: Literal["running", "precise"] = Field(
        "running", description="BatchNorm statistics at evaluation: running averages, or re-estimated (PreciseBN)")
    precise_bn_batches: int = Field(40, ge=1, description="eval_bn precise: training batches to re-estimate on")

    @field_validator("dnrb_blocks")
    @classmethod
    def _blocks(cls, blocks: list[int]) -> list[int]:
        bad = [b for b in blocks if b not in BLOCKS]
        if bad:
            raise ValueError(f"dnrb_blocks {bad} are outside 1..10 (blocks 1-5 encoder, 6-10 decoder)")
        if len(set(blocks)) != len(blocks):
            raise ValueError(f"dnrb_blocks {blocks} repeat a block")
        return sorted(blocks)


@TRAINERS.register("dualnorm")
class DualNormTrainer(Trainer):
    """BN branch and SPADE branch trained alternately (Algorithm 1)."""

    Config = Config
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {
        "loss_bn": ("min", "loss"), "loss_spade": ("min", "loss"), "pretraining": ("none", "flag"),
        "dice_first_forward": ("max", "overlap"), "dice_second_forward": ("max", "overlap"),
        "scored_forward": ("none", "flag"), "params_ratio": ("none", "ratio")}
    ARTIFACT_KIND = "input|first forward|prediction|truth"

    def __init__(self, config: Config, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        if config.norm == "dsbn":
            unseen = sorted(set(self.eval_domains) - {c.domain for c in self.train_cases})
            if unseen:
                raise ValueError(f"norm: dsbn has no BatchNorm for evaluation domain(s) {unseen}, which have no "
                                 "training cases; add them to data.train_domains or use another norm")
        self.samplers["slices"] = SliceSampler(self.train_cases, self.train_domains, data.batch_size,
                                               seed=self.stream_seed(0), context=config.context, flip=config.flip,
                                               rotate=config.rotate, multiple=MULTIPLE)
        channels = self.channels * (2 * config.context + 1)

        def network(blocks: list[int]) -> ResUNet2D:
            return ResUNet2D(channels, self.num_classes, config.s_channels, config.norm, blocks,
                             config.spade_hidden_ratio, domains=len(self.train_domains),
                             groups=config.group_norm_groups, spade_statistics=config.spade_statistics)

        self.plain_params = sum(p.numel() for p in network([]).parameters())  # Table 6's denominator
        if config.share_weights:
            self.nets["net"] = network(config.dnrb_blocks)
        else:
            self.nets["net"] = network([])
            if config.dnrb_blocks:
                self.nets["spade_net"] = network(config.dnrb_blocks)
        self.finish_networks()
        parameters = [p for net in self.nets.values() for p in net.parameters()]
        self.optimizers["adam"] = torch.optim.Adam(parameters, lr=config.lr_s, betas=(0.9, 0.999))
        self.schedulers["plateau"] = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizers["adam"], mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
        self.loss_fn = dualnorm_loss(config.lambda_, self.num_classes)
        self.window: list[float] = []
        self._precise_sampler: SliceSampler | None = None  # eval_bn precise: its fixed stream of training batches
        self._precise_start: dict[str, Any] = {}
        self.pretraining = True  # whether the epoch in progress trains the BN branch alone (start_train_epoch)

    # --- the two branches -----------------------------------------------------------------------------------
    def first_forward(self, x: torch.Tensor, z: torch.Tensor | None, ddp: bool = True) -> torch.Tensor:
        net = self.nets["net"] if ddp else self.net("net")
        return net(x, None, z)

    def second_forward(self, x: torch.Tensor, mask: torch.Tensor, z: torch.Tensor | None,
                       ddp: bool = True) -> torch.Tensor:
        name = "net" if self.config.share_weights else "spade_net"
        net = self.nets[name] if ddp else self.net(name)
        return net(x, mask, z)

    def _step(self, loss: torch.Tensor) -> None:
        self.step(loss, "adam")  # gradients set to None, not zero: Adam skips the branch outside this loss
        self.window.append(float(loss.detach()))
        if len(self.window) >= self.config.plateau_window:
            self.schedulers["plateau"].step(float(np.mean(self.window)))
            self.window = []

    def start_train_epoch(self, epoch: int) -> None:
        self.train_mode()
        self.pretraining = epoch < self.config.pretrain_epochs or not self.config.dnrb_blocks

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        return self.to_device(*self.samplers["slices"].sample())

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        x, y, z = batch
        x = self.standardize_input(x)
        logits_bn = self.first_forward(x, z)
        loss_bn = self.loss_fn(logits_bn, y.unsqueeze(1))
        mask = logits_bn.detach().softmax(dim=1)  # the semantic mask, before the BN update (Alg. 1, l. 4)
        self._step(loss_bn)
        if self.pretraining:
            return {"loss_bn": loss_bn}
        loss_spade = self.loss_fn(self.second_forward(x, mask, z), y.unsqueeze(1))
        self._step(loss_spade)
        return {"loss_bn": loss_bn, "loss_spade": loss_spade}

    def end_train_epoch(self, epoch: int) -> dict[str, float]:
        total = sum(p.numel() for net in self.nets.values() for p in net.parameters())
        return {"train/lr": self.optimizers["adam"].param_groups[0]["lr"], "train/pretraining": float(self.pretraining),
                "model/params_ratio": total / self.plain_params}  # Table 6: against the network without DNRB

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _predict_volume(self, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
        """(first-forward labels, second-forward labels), each (X, Y, Z), slices stacked back."""
        slices = self.standardize_input(volume_slices(case, self.config.context, MULTIPLE).to(self.device))
        # The domain index only selects DSBN's BatchNorm, which exists for training domains alone (checked).
        index = self.train_domains.index(case.domain) if case.domain in self.train_domains else 0
        z = torch.full((slices.shape[0],), index, device=self.device)

        def both(chunk: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            x, zz = chunk
            logits = self.first_forward(x, zz, ddp=False)
            second = self.second_forward(x, logits.softmax(1), zz, ddp=False) if self.config.dnrb_blocks else logits
            return logits.argmax(1), second.argmax(1)

        outputs = [both((slices[i:i + self.CHUNK], z[i:i + self.CHUNK]))
                   for i in range(0, slices.shape[0], self.CHUNK)]
        size_x, size_y = case.label.shape[:2]
        # (Z, X', Y') -> (X, Y, Z), cropping the padding
        return tuple(torch.cat([o[k] for o in outputs])[:, :size_x, :size_y].permute(1, 2, 0)  # type: ignore
                     for k in (0, 1))

    def scored_forward(self) -> int:
        """The forward ``val/dice`` scores: 1 (BN) during pretraining or without DNRB, else 2 (SPADE)."""
        return 2 if self.config.dnrb_blocks and self.epoch > self.config.pretrain_epochs else 1

    def selectable(self) -> bool:
        """Only epochs that score the method's full forward can be selected (and ranked by a scheduler): after
        pretraining with DNRB, every epoch without; a BN-only pretraining epoch is not DualNorm-UNet."""
        return self.scored_forward() == 2 or not self.config.dnrb_blocks

    @torch.no_grad()
    def precise_bn(self) -> None:
        """Re-estimate every BatchNorm's statistics on ``precise_bn_batches`` training batches (a fixed stream, so
        each evaluation sees the same batches and training's own stream is untouched), through the forwards the
        method uses: the BN branch, and once SPADE trains the SPADE branch on its mask."""
        if self._precise_sampler is None:  # built once; rewound below so every evaluation draws the same batches
            self._precise_sampler = SliceSampler(self.train_cases, self.train_domains, self.data_config.batch_size,
                                                 seed=self.stream_seed(7), context=self.config.context,
                                                 multiple=MULTIPLE)
            self._precise_start = self._precise_sampler.state_dict()
        sampler = self._precise_sampler
        sampler.load_state_dict(self._precise_start)
        self.train_mode()
        try:
            with cumulative_batchnorm(self.nets.values()):
                for _ in range(self.config.precise_bn_batches):
                    x, _, z = (t.to(self.device) for t in sampler.sample())
                    x = self.standardize_input(x)
                    logits = self.first_forward(x, z, ddp=False)
                    if self.scored_forward() == 2:
                        self.second_forward(x, logits.softmax(1), z, ddp=False)
        finally:
            self.eval_mode()

    def evaluate(self, split: str = "val") -> dict[str, float]:
        if self.config.eval_bn == "precise":
            self.precise_bn()
        self.eval_mode()
        forward = self.scored_forward()
        first_summary = SegmentationSummary(self.class_names, name="dice_first_forward", per_class=False)
        second_summary = SegmentationSummary(self.class_names, name="dice_second_forward", per_class=False)
        summary = SegmentationSummary(self.class_names, surface=("asd", "hd95"))
        self.last_eval = []
        for case in self.cases_of(split):
            first, second = self._predict_volume(case)
            scored = second if forward == 2 else first
            label = torch.from_numpy(case.label).to(self.device)
            first_summary.add(case.domain, case.subject, first, label)
            if self.config.dnrb_blocks:
                second_summary.add(case.domain, case.subject, second, label)
            summary.add(case.domain, case.subject, scored, label, self.spacing(case))
            self.last_eval.append({"case": case, "first": first.cpu().numpy(), "pred": scored.cpu().numpy()})
        self.last_cases = summary.cases()
        metrics = {**summary.metrics(split, self.eval_domains), **first_summary.metrics(split, self.eval_domains),
                   f"{split}/scored_forward": float(forward)}
        if self.config.dnrb_blocks:
            metrics.update(second_summary.metrics(split, self.eval_domains))
        return metrics

    def artifact_panel(self, item: dict[str, Any]) -> np.ndarray:
        return item["first"].astype(np.float32) / max(1, self.num_classes - 1)

    def extra_state(self) -> dict[str, Any]:
        return {"window": list(self.window)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.window = list(state["window"])

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        # The BN forward leaves SPADE parameters unused (and the SPADE forward the BN affines).
        return {"find_unused_parameters": True}

    @classmethod
    def check(cls, config: TrainerConfig, data: DataConfig) -> list[str]:
        assert isinstance(config, Config)
        if config.dnrb_blocks and config.pretrain_epochs >= config.epochs:
            return [f"pretrain_epochs ({config.pretrain_epochs}) must be below epochs ({config.epochs}) when "
                    f"dnrb_blocks is {config.dnrb_blocks}: only epochs after pretraining score the SPADE forward "
                    "and can be selected; lower pretrain_epochs or raise epochs"]
        return []

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        assert isinstance(config, Config)
        classes, domains = data.names_of_classes(), data.evaluation_domains()
        names = ({"train/loss_bn", "train/iterations", "train/lr", "train/pretraining", "val/scored_forward",
                  "model/params_ratio"}
                 | summary_names("val", domains, classes, surface=("asd", "hd95"))
                 | summary_names("val", domains, classes, name="dice_first_forward", per_class=False))
        if config.dnrb_blocks:  # the SPADE branch trains after pretraining (check: pretrain_epochs < epochs)
            names |= {"train/loss_spade"} | summary_names("val", domains, classes, name="dice_second_forward",
                                                          per_class=False)
        return names

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 2, "pretrain_epochs": 1, "s_channels": 4}
