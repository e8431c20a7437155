"""The trainer contract and the ``TRAINERS`` registry.

A trainer owns only the maths of one method: its networks, one training step (``train_step``) and one evaluation.
This base owns everything else a method would otherwise rewrite: the step loop (nnU-Net style: the epoch's
batches, one ``train_step`` each, every step's scalars collected and averaged over the steps that reported them,
checked against ``metric_names``), the prologue (seeding, the data split, domain order, class names, iterations
per epoch, per-stream seeds), the ``epoch`` counter the engine advances, the ``nets`` / ``optimizers`` /
``schedulers`` / ``samplers`` dicts and a default checkpoint state over all of them (plus RNG state and one
``extra_state`` hook), chunked inference, the artifact loop (``_artifacts``), sampler handling (``_samplers``), the
spec-time ``check`` and every metric's direction and kind. The engine owns the epoch loop, the one finite-loss
check, the reporting and the checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from platform.acceleration import CompiledNet, autocast, full_precision, grad_scaler, to_channels_last
from platform.cache import atomic_file, cache_root, code_version
from platform.data.case import Case
from platform.data.config import DataConfig
from platform.registry import Registry
from platform.results import CHECKPOINTS, metric_stem
from platform.runtime import RuntimeConfig
from platform.seeds import seed_everything
from platform.trainers._artifacts import ArtifactWriting
from platform.trainers._common import (  # re-exported: trainers import them from here
    COMMON_METRICS,
    GeneratorState,
    TrainerConfig,
    cached_cases,
    unwrap,
)
from platform.trainers._samplers import SamplerHandling

__all__ = ["COMMON_METRICS", "TRAINERS", "GeneratorState", "Trainer", "TrainerConfig", "cached_cases",
           "seed_everything", "unwrap"]

TRAINERS: Registry[type[Trainer]] = Registry("trainer")


def step_mean(values: list[torch.Tensor]) -> float:
    """The mean of one scalar over the steps that reported it, summed in float64 after one device sync."""
    return float(torch.stack(values).double().sum()) / len(values)


class Trainer(SamplerHandling, ArtifactWriting, ABC):
    """Base class: a subclass sets ``Config``, fills ``nets`` (and ``optimizers``, ``schedulers``, ``samplers``)
    in ``__init__`` after ``super().__init__``, and implements ``train_step`` (and ``next_batch`` or
    ``train_batches``), ``evaluate`` and ``metric_names``."""

    Config: ClassVar[type[TrainerConfig]] = TrainerConfig
    METRICS: ClassVar[dict[str, tuple[str, str]]] = {}  # this method's own metric stems: (direction, kind)
    ARTIFACT_KIND: ClassVar[str] = "input|input|prediction|truth"  # the four panels of ``save_artifacts``
    CHUNK = 16  # slices per forward in slice-wise inference
    USES_DATA: ClassVar[bool] = True  # False: no cases are loaded (synthetic trainers of the tests and benchmarks)

    def __init__(self, config: TrainerConfig, data: DataConfig, *, seed: int = 0, fold: int | None = None,
                 device: torch.device | None = None, rank: int = 0, world_size: int = 1,
                 runtime: RuntimeConfig | None = None) -> None:
        self.config = config
        self.data_config = data
        self.runtime = runtime or RuntimeConfig()
        self.scalers: dict[str, torch.amp.GradScaler] = {}  # fp16: one per update (the optimizers it steps)
        self.seed = seed
        self.fold = fold
        self.device = device or torch.device("cpu")
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0  # epochs completed; the engine runs from here and the checkpoint keeps it
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.samplers: dict[str, Any] = {}  # anything with state_dict / load_state_dict (data, augmentation RNG)
        self._pending_samplers: dict[str, Any] = {}  # restored states of samplers not built yet (``add_sampler``)
        self._pending_scalers: dict[str, Any] = {}  # restored GradScaler states, applied at their first update
        self._prefetch_depth = 0
        self._prefetch_workers = 1
        self.last_eval: list[dict[str, Any]] = []  # per evaluated case: "case", "pred" and the artifact panels
        self.last_cases: list[dict[str, Any]] = []  # per-case scores of the last evaluation (the cases table)
        # The networks of the epoch best on the first objective on val (the engine keeps it; checkpointed).
        self.best: dict[str, Any] | None = None
        self._reported: set[str] | None = None  # train/ and model/ names of this process's run from epoch 0
        problems = self.check(config, data)  # also refused at spec time; a direct construction is refused here
        if problems:
            raise ValueError("; ".join(problems))
        # The prologue every method shares.
        seed_everything(seed)
        self.splits = dict(zip(("train", "val", "test"), self.load_split() if self.USES_DATA else ([], [], []),
                               strict=True))
        present = sorted({c.domain for part in self.splits.values() for c in part})
        self.train_domains = data.training_domains(present)  # labels of these train; index order of samplers
        self.eval_domains = data.evaluation_domains(present)  # val and test scores are theirs
        self.train_cases = [c for c in self.splits["train"] if c.domain in self.train_domains]
        self.val_cases = [c for c in self.splits["val"] if c.domain in self.eval_domains]
        self.test_cases = [c for c in self.splits["test"] if c.domain in self.eval_domains]
        self.class_names = data.names_of_classes()
        self.num_classes = data.num_classes
        self.channels = self.train_cases[0].image.shape[0] if self.train_cases else 1
        self.iterations = max(1, data.patches_per_epoch // (data.batch_size * world_size))

    def stream_seed(self, stream: int = 0) -> int:
        """The seed of one random stream of this worker: a function of (trial seed, rank, stream), so each
        rank draws different batches and a trial's streams never share a generator."""
        return self.seed * 1000 + self.rank + stream

    def load_split(self) -> tuple[list[Case], list[Case], list[Case]]:
        """This trial's (train, val, test) cases of every domain (its fold), from the per-process cache."""
        return tuple(list(part) for part in cached_cases(self.data_config.model_dump_json(), self.fold))  # type: ignore

    def standardize_input(self, x: torch.Tensor) -> torch.Tensor:
        """A network's input as ``data.intensity`` wants it: with ``patch``, each patch, slice or window (B, C, ...)
        z-scored on its own; otherwise as is (the volumes were normalized once, when loaded)."""
        if self.data_config.intensity == "patch":
            from platform.data.patches import standardize

            return standardize(x)
        return x

    def finish_networks(self) -> None:
        """Move every network to the trial's device, in the runtime's memory format, compiled if asked (call
        once ``nets`` and ``optimizers`` are filled: the optimizers keep the same parameter objects)."""
        for name, net in self.nets.items():
            net.to(self.device)
            if self.runtime.channels_last:
                to_channels_last(net)
            if self.runtime.compile:
                self.nets[name] = CompiledNet(name, net)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Forwards and losses in the runtime's precision (the engine runs ``train_epoch`` and ``evaluate`` in
        it; losses compute in float32 from the logits, see platform.losses)."""
        return autocast(self.runtime, self.device)

    def to_device(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Tensors on the trial's device; the copy is asynchronous from pinned (prefetched) memory."""
        return tuple(t.to(self.device, non_blocking=True) for t in tensors)

    def train_mode(self, *names: str) -> None:
        """``train()`` the named networks (all when none is named)."""
        for name in names or tuple(self.nets):
            if name in self.nets:
                self.nets[name].train()

    def eval_mode(self) -> None:
        for net in self.nets.values():
            net.eval()

    def cases_of(self, split: str) -> list[Case]:
        """The cases an evaluation of ``split`` scores: the ``val`` or ``test`` subjects of the evaluation domains
        (``val``: of this trial's fold)."""
        if split not in ("val", "test"):
            raise ValueError(f"{type(self).__name__} evaluates the 'val' or 'test' split, not {split!r}")
        return self.val_cases if split == "val" else self.test_cases

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[None]:
        """The named networks take no gradient inside the block (an adversary while its opponent updates)."""
        nets = [self.net(name) for name in names if name in self.nets]
        for net in nets:
            net.requires_grad_(False)
        try:
            yield
        finally:
            for net in nets:
                net.requires_grad_(True)

    def step(self, loss: torch.Tensor, *names: str) -> None:
        """One update of the named optimizers on ``loss``: gradients set to None (so a parameter outside this
        loss keeps no stale gradient, and Adam skips it), backward (outside autocast), step.

        In fp16 the loss is scaled by a GradScaler of this update (keyed by the optimizers it steps): an
        adversary's loss and its opponent's differ by orders of magnitude, so each keeps its own scale; a step
        whose gradients overflowed is skipped by the scaler, as in any fp16 loop."""
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
        scaler = self._scaler("+".join(names)) if self.runtime.precision == "fp16" else None
        with full_precision(self.device):
            (loss if scaler is None else scaler.scale(loss)).backward()
        for name in names:
            if scaler is None:
                self.optimizers[name].step()
            else:
                scaler.step(self.optimizers[name])
        if scaler is not None:
            scaler.update()

    def _scaler(self, key: str) -> torch.amp.GradScaler:
        if key not in self.scalers:
            self.scalers[key] = grad_scaler(self.device)
            if key in self._pending_scalers:
                self.scalers[key].load_state_dict(self._pending_scalers.pop(key))
        return self.scalers[key]

    @staticmethod
    def in_chunks(forward: Callable[[torch.Tensor], Any], slices: torch.Tensor, size: int = CHUNK) -> list[Any]:
        """``forward`` over ``slices`` ``size`` at a time (inference memory stays bounded); the outputs in order."""
        return [forward(slices[start:start + size]) for start in range(0, slices.shape[0], size)]

    @staticmethod
    def spacing(case: Case) -> list[float]:
        """Voxel spacing (mm) of a case, for surface distances."""
        return np.abs(np.diag(case.affine)[:3]).tolist()

    # --- networks -------------------------------------------------------------------------------------------
    def wrap_networks(self, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each network by ``wrap(name, net)`` (DDP); optimizers keep the same parameters."""
        self.nets = {name: wrap(name, net) for name, net in self.nets.items()}

    def ddp_kwargs(self, name: str) -> dict[str, Any]:
        """DistributedDataParallel options for network ``name`` (see platform.distributed)."""
        return {}

    def net(self, name: str) -> nn.Module:
        """The unwrapped network ``name`` (for calls that must not trigger DDP synchronisation)."""
        return unwrap(self.nets[name])

    # --- the maths ------------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (0-based): ``start_train_epoch``, one ``train_step`` per batch of ``train_batches``
        (each step's scalars averaged over the steps that reported them, as ``train/<name>``), ``train/iterations``
        and ``end_train_epoch``'s scalars, checked against ``metric_names`` (``_check_reported``)."""
        self.start_train_epoch(epoch)
        steps: dict[str, list[torch.Tensor]] = {}
        for batch in self.train_batches(epoch):
            for name, value in self.train_step(batch).items():
                steps.setdefault(name, []).append(torch.as_tensor(value).detach().reshape(()))
        metrics = {f"train/{name}": step_mean(values) for name, values in steps.items()}
        metrics["train/iterations"] = float(self.iterations)
        metrics.update(self.end_train_epoch(epoch))
        self._check_reported(epoch, metrics)
        return metrics

    def start_train_epoch(self, epoch: int) -> None:
        """Before the epoch's first step (default: every network in train mode)."""
        self.train_mode()

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The epoch's batches, one per ``train_step``, drawn lazily (each just before its step, so the random
        streams advance as in a hand-written loop). Default: ``iterations`` draws of ``next_batch``."""
        for _ in range(self.iterations):
            yield self.next_batch()

    def next_batch(self) -> Any:
        """One training batch (a trainer that keeps the default ``train_batches`` defines it)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither next_batch nor train_batches")

    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """One step on ``batch``: the updates, and the scalars (0-d tensors, or floats) it reports by bare name
        (``loss_seg`` is reported as ``train/loss_seg``, averaged over the steps that reported it)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither train_step nor train_epoch")

    def end_train_epoch(self, epoch: int) -> dict[str, float]:
        """After the epoch's last step: epoch-level scalars by full name (learning rates, schedulers stepped per
        epoch, diagnostics computed once)."""
        return {}

    def expected_metrics(self) -> set[str]:
        """The names this trainer reports, from ``metric_names`` on the domains it resolved (a trainer whose run
        may skip some, e.g. a stage loaded from a cache, removes them)."""
        data = self.data_config.model_copy(update={"train_domains": self.train_domains,
                                                   "eval_domains": self.eval_domains})
        return type(self).metric_names(self.config, data)

    def _check_reported(self, epoch: int, metrics: dict[str, float]) -> None:
        """Both directions of the contract on the training side: nothing reported undeclared, and (in a run
        trained from epoch 0 in this process) nothing declared left unreported at the last epoch."""
        expected = self.expected_metrics()
        undeclared = sorted(set(metrics) - expected)
        if undeclared:
            raise RuntimeError(f"{type(self).__name__} reports {undeclared}, which metric_names does not declare")
        if epoch == 0:
            self._reported = set()
        if self._reported is None:  # resumed mid-run: the names of earlier epochs were reported by another process
            return
        self._reported |= set(metrics)
        if epoch + 1 == self.config.epochs:
            missing = sorted(name for name in expected - self._reported if name.startswith(("train/", "model/")))
            if missing:
                raise RuntimeError(f"{type(self).__name__} declares {missing} in metric_names but never reported "
                                   "them: declare only what this config reports")

    @abstractmethod
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Evaluate on ``split`` (``val`` or ``test``) and return ``split/...`` metrics, including ``split/dice``
        (the mean over the evaluation domains); fill ``last_eval`` and ``last_cases``."""

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Hook after evaluation (e.g. plateau schedulers on a validation loss)."""

    def selectable(self) -> bool:
        """Whether the networks of the epoch just completed (``self.epoch`` epochs trained) are the method's own,
        so the engine may select them as the best checkpoint and a scheduler may rank the trial on them (False
        e.g. during a pretraining stage whose forward is not the method's)."""
        return True

    # --- a stage reused across trials (e.g. glua's style transfer) ------------------------------------------------
    def stage_cache_path(self, namespace: str, fields: dict[str, Any], version: int) -> Path:
        """The cache file of a stage whose result depends only on ``fields``, the data (not where it is cached),
        the seed, the fold, the world size and the code (the source of the trainer's module and of every package
        module it imports): ``<cache>/<namespace>/<hash>.pt``."""
        data = self.data_config.model_dump(exclude={"cache_dir"})
        code = code_version((type(self).__module__, __name__))
        blob = json.dumps({"fields": fields, "data": data, "seed": self.seed, "fold": self.fold,
                           "world_size": self.world_size, "format": version, "code": code},
                          sort_keys=True, default=str)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:24]
        return cache_root(self.data_config.cache_dir) / namespace / f"{digest}.pt"

    def network_state(self) -> dict[str, Any]:
        """A copy of every network's weights (on the CPU), e.g. the best epoch's for the final test."""
        return {name: {key: value.detach().to("cpu", copy=True) for key, value in self.net(name).state_dict().items()}
                for name in self.nets}

    def load_network_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``network_state``."""
        for name, weights in state.items():
            self.net(name).load_state_dict(weights)

    def save_networks(self, path: Path, names: tuple[str, ...]) -> None:
        """Write the named networks' weights to ``path`` atomically (rank 0 only: one writer per trial)."""
        if self.rank == 0:
            state = {name: self.net(name).state_dict() for name in names}
            atomic_file(path, lambda temporary: torch.save(state, temporary))

    def load_networks(self, path: Path, names: tuple[str, ...]) -> None:
        """Load the named networks' weights from a file written by ``save_networks``."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        for name in names:
            if name in state:
                self.net(name).load_state_dict(state[name])

    # --- state ----------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Method state beyond the networks, optimizers, schedulers, samplers and RNG."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``extra_state``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: networks, optimizers, schedulers, samplers, RNG, epoch."""
        return {"epoch": self.epoch, "nets": {name: self.net(name).state_dict() for name in self.nets},
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
                "samplers": {**self._pending_samplers,
                             **{name: sampler.state_dict() for name, sampler in self.samplers.items()}},
                "scalers": {**self._pending_scalers,
                            **{key: scaler.state_dict() for key, scaler in self.scalers.items()}},
                "rng": self.rng_state(), "extra": self.extra_state(), "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        for group, owner in (("nets", None), ("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            for name, item_state in state[group].items():
                (self.net(name) if owner is None else owner[name]).load_state_dict(item_state)
        for name, sampler_state in state["samplers"].items():
            if name in self.samplers:
                self.samplers[name].load_state_dict(sampler_state)
            else:
                self._pending_samplers[name] = sampler_state
        for key, scaler_state in state.get("scalers", {}).items():
            if key in self.scalers:
                self.scalers[key].load_state_dict(scaler_state)
            else:
                self._pending_scalers[key] = scaler_state
        self.load_rng_state(state["rng"])
        self.load_extra_state(state["extra"])
        self.best = state.get("best")

    @staticmethod
    def rng_state() -> dict[str, Any]:
        return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}

    @staticmethod
    def load_rng_state(state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])

    # --- description for the spec loader and the results ----------------------------------------------------
    @classmethod
    def config_keys(cls) -> set[str]:
        """Names a spec may use for Config fields (field names and their aliases)."""
        keys = set(cls.Config.RENAMED)
        for name, field in cls.Config.model_fields.items():
            keys.add(field.alias or name)
            keys.add(name)
        return keys

    @classmethod
    def check(cls, config: TrainerConfig, data: DataConfig) -> list[str]:
        """Problems of this config on this data, found at spec time (before Ray starts); one line each, naming
        the fields to change. A trial of a config that passes never fails for these reasons."""
        return []

    @classmethod
    @abstractmethod
    def metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        """Every metric name this trainer reports for ``config`` on ``data``."""

    @classmethod
    def all_metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        """``metric_names`` plus the test scores the engine reports at the end of a trial when there is a test set:
        every ``val/x`` as ``test/best/x`` and ``test/last/x``, and the epoch the best checkpoint comes from; and the
        engine's ``selection/epoch`` (in epochs eligible for selection)."""
        names = cls.metric_names(config, data)
        scored = {name[4:] for name in names if name.startswith("val/")}
        scored |= {name[5:] for name in cls.test_metric_names(config, data)}
        tests = {f"test/{checkpoint}/{name}" for name in scored for checkpoint in CHECKPOINTS}
        return names | tests | {"test/selected_epoch", "selection/epoch"}

    @classmethod
    def test_metric_names(cls, config: TrainerConfig, data: DataConfig) -> set[str]:
        """``test/...`` names an evaluation of the test split reports beyond the val ones (e.g. a protocol run only
        at the end); the engine reports each as ``test/best/...`` and ``test/last/...``."""
        return set()

    @classmethod
    def declared_metrics(cls) -> dict[str, tuple[str, str]]:
        """Every metric stem this trainer declares: (direction, kind)."""
        return {**COMMON_METRICS, **cls.METRICS}

    @classmethod
    def metric_info(cls, name: str) -> dict[str, str]:
        """{"direction": "max" | "min" | "none", "kind": ...} of a metric name, from its declared stem."""
        stem = metric_stem(name)
        declared = cls.declared_metrics()
        if stem not in declared:
            raise KeyError(f"metric {name!r}: its stem {stem!r} is declared neither in the trainer's METRICS nor "
                           "in COMMON_METRICS")
        direction, kind = declared[stem]
        return {"direction": direction, "kind": kind}

    @classmethod
    def smoke_overrides(cls) -> dict[str, Any]:
        """Config overrides that make a trial tiny (``--smoke``)."""
        return {"epochs": 2}
