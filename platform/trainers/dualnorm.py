"""DualNorm-UNet (Xiao et al., "DualNorm-UNet: Incorporating Global and Local Statistics").

A 2D residual U-Net whose DualNorm Residual Blocks (``dnrb_blocks``) hold a BN branch and a SPADE branch.
Training (Algorithm 1): ``pretrain_epochs`` of BN-branch training of {shared, BN}; then each iteration

1. forwards the BN branch, updates {shared, BN} on ``L(y, y_B)`` (alpha = 1);
2. forwards the SPADE branch with the detached softmax of step 1 as the mask, updates {shared, SPADE} on
   ``L(y, y_S)`` (alpha = 0).

``L = lambda * Dice + (1 - lambda) * CE`` (eq. 7-9: Dice with squared denominators, over all classes).
One Adam optimizer holds every parameter: a branch that was not in the forward has no gradient, and Adam
leaves parameters without gradients untouched, which is exactly the alternating update. The learning rate
follows ReduceLROnPlateau on the mean training loss of each window of ``plateau_window`` iterations.
Inference forwards twice (BN branch, then SPADE branch with its mask): ``val/dice`` is the second forward,
``val/dice_first_forward`` the first.

Baselines are switches: ``dnrb_blocks: []`` with ``norm: batch | instance | group | layer | dsbn``;
``share_weights: false`` is "Concatenated" (separate networks for the two stages).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from monai.losses import DiceCELoss
from pydantic import Field, field_validator

from platform.data.config import DataConfig
from platform.data.manifest import Case
from platform.data.slices import SliceSampler, volume_slices
from platform.metrics import asd_per_class, dice_per_class, hd95_per_class, nanmean
from platform.nets.resunet2d import BLOCKS, ResUNet2D
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig, seed_everything

MULTIPLE = 16  # four poolings


class Config(TrainerConfig):
    """Hyperparameters of DualNorm-UNet; defaults are the paper's (iterations expressed as epochs)."""

    epochs: int = Field(27, ge=1, description="total epochs, pretraining included (paper: 18K + 9K iterations)")
    pretrain_epochs: int = Field(18, ge=0, description="first epochs training only the BN branch")
    lambda_: float = Field(0.5, alias="lambda", ge=0, le=1,
                           description="Dice weight in lambda*Dice + (1-lambda)*CE (0.5 multi-organ, 1.0 prostate)")
    dnrb_blocks: list[int] = Field([1], description="blocks (1..10) that are DualNorm Residual Blocks")
    norm: Literal["batch", "instance", "group", "layer", "dsbn"] = Field(
        "batch", description="normalization of the other blocks (baselines BN/IN/GN/LN, DSBN)")
    share_weights: bool = Field(True, description="false: 'Concatenated', separate networks per stage")
    base_channels: int = Field(32, ge=1, description="features of block 1 (doubling per level)")
    spade_hidden_ratio: float = Field(0.5, gt=0, description="SPADE hidden width as a fraction of C (paper C/2)")
    group_norm_groups: int = Field(16, ge=1, description="groups of the GN baseline (authors' code: 16)")
    context: int = Field(0, ge=0, description="2.5D: neighbouring slices on each side as extra channels")
    flip: bool = Field(True, description="random flips of training slices")
    rotate: bool = Field(True, description="random 90-degree rotations of training slices")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (betas .9, .999)")
    plateau_factor: float = Field(0.5, gt=0, lt=1, description="ReduceLROnPlateau factor")
    plateau_patience: int = Field(5, ge=0, description="ReduceLROnPlateau patience, in windows")
    plateau_window: int = Field(50, ge=1, description="iterations whose mean training loss steps the scheduler")

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

    def __init__(self, config: Config, data: DataConfig, **kwargs: Any) -> None:
        super().__init__(config, data, **kwargs)
        seed_everything(self.seed)
        self.train_cases, self.val_cases = self.load_split()
        self.domains = self.domain_order(self.train_cases)
        if config.norm == "dsbn":
            unseen = sorted({c.domain for c in self.val_cases} - {c.domain for c in self.train_cases})
            if unseen:
                raise ValueError(f"norm: dsbn has no BatchNorm for domain(s) {unseen}, which have no training "
                                 "cases; add training subjects of them or use another norm")
        self.num_classes = data.num_classes
        self.class_names = data.names_of_classes()
        self.sampler = SliceSampler(self.train_cases, self.domains, data.batch_size, seed=self.seed * 1000 + self.rank,
                                    context=config.context, flip=config.flip, rotate=config.rotate,
                                    multiple=MULTIPLE)
        channels = self.train_cases[0].image.shape[0] * (2 * config.context + 1)

        def network(blocks: list[int]) -> ResUNet2D:
            return ResUNet2D(channels, self.num_classes, config.base_channels, config.norm, blocks,
                             config.spade_hidden_ratio, domains=len(self.domains), groups=config.group_norm_groups)

        if config.share_weights:
            self.nets["net"] = network(config.dnrb_blocks)
        else:
            self.nets["net"] = network([])
            if config.dnrb_blocks:
                self.nets["spade_net"] = network(config.dnrb_blocks)
        for net in self.nets.values():
            net.to(self.device)
        parameters = [p for net in self.nets.values() for p in net.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=config.lr, betas=(0.9, 0.999))
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
        self.loss_fn = DiceCELoss(include_background=True, to_onehot_y=True, softmax=True, squared_pred=True,
                                  lambda_dice=config.lambda_, lambda_ce=1 - config.lambda_)
        self.window: list[float] = []
        self.epoch = 0
        self._last_eval: list[dict[str, Any]] = []

    # --- the two branches -----------------------------------------------------------------------------------
    @property
    def has_spade(self) -> bool:
        return bool(self.config.dnrb_blocks)

    def first_forward(self, x: torch.Tensor, z: torch.Tensor | None, ddp: bool = True) -> torch.Tensor:
        net = self.nets["net"] if ddp else self.net("net")
        return net(x, None, z)

    def second_forward(self, x: torch.Tensor, mask: torch.Tensor, z: torch.Tensor | None,
                       ddp: bool = True) -> torch.Tensor:
        name = "net" if self.config.share_weights else "spade_net"
        net = self.nets[name] if ddp else self.net(name)
        return net(x, mask, z)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int, what: str) -> torch.Tensor:
        loss = self.loss_fn(logits, y.unsqueeze(1))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{what} loss became {loss.item()} at epoch {epoch + 1}")
        return loss

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)  # None, not zero: Adam must skip the other branch
        loss.backward()
        self.optimizer.step()
        self.window.append(float(loss.detach()))
        if len(self.window) >= self.config.plateau_window:
            self.scheduler.step(float(np.mean(self.window)))
            self.window = []

    def train_epoch(self, epoch: int) -> dict[str, float]:
        for net in self.nets.values():
            net.train()
        data = self.data_config
        iterations = max(1, data.patches_per_epoch // (data.batch_size * self.world_size))
        pretraining = epoch < self.config.pretrain_epochs or not self.has_spade
        sums = {"loss_bn": 0.0, "loss_spade": 0.0}
        for _ in range(iterations):
            x, y, z = self.sampler.sample()
            x, y, z = x.to(self.device), y.to(self.device), z.to(self.device)
            logits_bn = self.first_forward(x, z)
            loss_bn = self._loss(logits_bn, y, epoch, "BN-branch")
            mask = logits_bn.detach().softmax(dim=1)  # the semantic mask, before the BN update (Alg. 1, l. 4)
            self._step(loss_bn)
            sums["loss_bn"] += float(loss_bn.detach())
            if pretraining:
                continue
            loss_spade = self._loss(self.second_forward(x, mask, z), y, epoch, "SPADE-branch")
            self._step(loss_spade)
            sums["loss_spade"] += float(loss_spade.detach())
        self.epoch = epoch + 1
        metrics = {"train/loss_bn": sums["loss_bn"] / iterations, "train/iterations": float(iterations),
                   "train/lr": self.optimizer.param_groups[0]["lr"], "train/pretraining": float(pretraining)}
        if not pretraining:
            metrics["train/loss_spade"] = sums["loss_spade"] / iterations
        return metrics

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _predict_volume(self, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
        """(first-forward labels, second-forward labels), each (X, Y, Z), slices stacked back."""
        slices = volume_slices(case, self.config.context, MULTIPLE).to(self.device)
        z = torch.full((slices.shape[0],), self.domains.index(case.domain), device=self.device)
        first, second = [], []
        for start in range(0, slices.shape[0], 16):
            x, zz = slices[start:start + 16], z[start:start + 16]
            logits = self.first_forward(x, zz, ddp=False)
            first.append(logits.argmax(1))
            second.append(self.second_forward(x, logits.softmax(1), zz, ddp=False).argmax(1)
                          if self.has_spade else first[-1])
        size_x, size_y = case.label.shape[:2]
        # (Z, X', Y') -> (X, Y, Z), cropping the padding
        return tuple(torch.cat(p)[:, :size_x, :size_y].permute(1, 2, 0) for p in (first, second))  # type: ignore

    def evaluate(self, split: str = "val") -> dict[str, float]:
        if split != "val":
            raise ValueError(f"dualnorm evaluates the 'val' split, not {split!r}")
        for net in self.nets.values():
            net.eval()
        rows: dict[str, dict[str, list]] = {d: {"first": [], "second": [], "asd": [], "hd95": []}
                                            for d in self.domains}
        self._last_eval = []
        for case in self.val_cases:
            first, second = self._predict_volume(case)
            label = torch.from_numpy(case.label).to(self.device).unsqueeze(0)
            spacing = np.abs(np.diag(case.affine)[:3]).tolist()
            row = rows[case.domain]
            row["first"].append(dice_per_class(first.unsqueeze(0), label, self.num_classes)[0])
            row["second"].append(dice_per_class(second.unsqueeze(0), label, self.num_classes)[0])
            with warnings.catch_warnings():  # MONAI warns per class an early prediction misses; NaN is right
                warnings.simplefilter("ignore")
                row["asd"].append(asd_per_class(second.unsqueeze(0), label, self.num_classes, spacing)[0])
                row["hd95"].append(hd95_per_class(second.unsqueeze(0), label, self.num_classes, spacing)[0])
            self._last_eval.append({"case": case, "first": first.cpu().numpy(), "pred": second.cpu().numpy()})

        metrics: dict[str, float] = {}
        means: dict[str, list[float]] = {"dice": [], "dice_first_forward": [], "asd": [], "hd95": []}
        for domain, row in rows.items():
            if not row["second"]:
                continue
            per_class = torch.nanmean(torch.stack(row["second"]), dim=0)
            for index, name in enumerate(self.class_names[1:]):
                metrics[f"val/dice/{domain}/{name}"] = float(per_class[index])
            values = {
                "dice": nanmean(per_class.tolist()),
                "dice_first_forward": nanmean(torch.nanmean(torch.stack(row["first"]), dim=0).tolist()),
                "asd": nanmean(torch.stack(row["asd"]).float().flatten().tolist()),
                "hd95": nanmean(torch.stack(row["hd95"]).float().flatten().tolist()),
            }
            for name, value in values.items():
                metrics[f"val/{name}/{domain}"] = value
                means[name].append(value)
        for name, values in means.items():
            metrics[f"val/{name}"] = nanmean(values)
        return metrics

    def save_artifacts(self, out_dir: Path) -> list[dict[str, str]]:
        """Per domain, the middle slice of its first validation case: input | BN-path | SPADE-path | truth."""
        from platform.images import save_grid

        rows = []
        for item in self.first_per_domain(self._last_eval):
            case = item["case"]
            path = out_dir / f"{case.domain}_{case.subject}.png"
            first = item["first"].astype(np.float32) / max(1, self.num_classes - 1)
            save_grid(path, case.image[0], first, item["pred"], case.label, self.num_classes)
            rows.append({"path": str(path), "kind": "input|first-forward|segmentation", "domain": case.domain})
        return rows

    # --- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "nets": {n: self.net(n).state_dict() for n in self.nets},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "window": list(self.window), "sampler": self.sampler.state_dict(), "rng": self.rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        for name, net_state in state["nets"].items():
            self.net(name).load_state_dict(net_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.window = list(state["window"])
        self.sampler.load_state_dict(state["sampler"])
        self.load_rng_state(state["rng"])

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        # The BN forward leaves SPADE parameters unused (and the SPADE forward the BN affines).
        return {"find_unused_parameters": True}

    @classmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        names = {"train/loss_bn", "train/loss_spade", "train/iterations", "train/lr", "train/pretraining",
                 "val/dice", "val/dice_first_forward", "val/asd", "val/hd95"}
        for domain in data.domains:
            names |= {f"val/{m}/{domain}" for m in ("dice", "dice_first_forward", "asd", "hd95")}
            names |= {f"val/dice/{domain}/{c}" for c in data.names_of_classes()[1:]}
        return names

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        return {"epochs": 2, "pretrain_epochs": 1, "base_channels": 4}

