"""The trainer contract and the ``TRAINERS`` registry.

A trainer owns only the maths of one method: its networks, one training epoch and one evaluation. This base owns
everything else a method would otherwise rewrite: the prologue (seeding, the data split, domain order, class
names, iterations per epoch, per-stream seeds), the ``epoch`` counter the engine advances, the ``nets`` /
``optimizers`` / ``schedulers`` / ``samplers`` dicts and a default checkpoint state over all of them (plus RNG
state and one ``extra_state`` hook), chunked inference, the artifact loop, the spec-time ``check`` and the
declaration of every metric's direction and kind. The engine owns the loop, the one finite-loss check, the
reporting and the checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import random
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from platform.acceleration import CompiledNet, autocast, full_precision, grad_scaler, to_channels_last
from platform.cache import atomic_file, cache_root, code_version
from platform.data.case import Case
from platform.data.config import DataConfig
from platform.registry import Registry
from platform.results import CHECKPOINTS, metric_stem
from platform.runtime import RuntimeConfig
from platform.seeds import seed_everything
from platform.strictnum import refuse_bool_numbers


class TrainerConfig(BaseModel):
    """Fields every trainer Config has; subclasses add the paper's hyperparameters.

    Names follow one scheme across trainers: ``lr_<net>``, ``<net>_channels`` (``g`` generator or style network,
    ``s`` segmenter, ``d`` discriminator). ``RENAMED`` maps a field's old name to its new one: the old name is still
    accepted, with a deprecation message (the spec loader names the file and line).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    RENAMED: ClassVar[dict[str, str]] = {}

    epochs: int = Field(120, ge=1, description="training epochs")

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any) -> Any:
        # ``epochs: true`` would otherwise train 1 epoch (pydantic reads a bool as an int).
        return refuse_bool_numbers(cls, data)

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls.RENAMED:
            return data
        data = dict(data)
        for old, new in cls.RENAMED.items():
            if old in data:
                if new in data:
                    raise ValueError(f"{old!r} is the old name of {new!r}; give only {new!r}")
                warnings.warn(f"{cls.__module__.rsplit('.', 1)[-1]}: {old!r} is now {new!r}", DeprecationWarning,
                              stacklevel=2)
                data[new] = data.pop(old)
        return data


TRAINERS: Registry[type[Trainer]] = Registry("trainer")

# How each metric reads (by its name's second part: ``val/<stem>/...``): whether larger or smaller is better, and
# its kind. A trainer adds its own stems in ``METRICS``; a name whose stem is declared nowhere is a contract
# error (tests/trainers/test_contract.py), so no reader ever guesses a direction from a name.
COMMON_METRICS: dict[str, tuple[str, str]] = {
    "dice": ("max", "overlap"), "hd95": ("min", "distance"), "asd": ("min", "distance"), "mhd": ("min", "distance"),
    "params": ("none", "count"),
    "iterations": ("none", "count"), "lr": ("none", "schedule"), "selected_epoch": ("none", "count"),
    "epoch": ("none", "count"),  # selection/epoch: the epoch count, reported only in epochs eligible for selection
}


@functools.lru_cache(maxsize=8)
def cached_cases(data_json: str, fold: int | None) -> tuple[tuple[Case, ...], tuple[Case, ...], tuple[Case, ...]]:
    """(train, val, test) cases of a data config, loaded (aligned, normalized by ``data.intensity``) once per
    process: reused Tune actors and the trials of one sweep skip the NIfTI reads."""
    from platform.data.datasets import load_cases, split_cases
    from platform.data.intensity import normalize_cases

    data = DataConfig.model_validate_json(data_json)
    parts = normalize_cases(data.intensity, data.intensity_nonzero, *split_cases(load_cases(data), data, fold=fold))
    train, val, test = (tuple(part) for part in parts)
    return train, val, test


def unwrap(net: nn.Module) -> nn.Module:
    """The module inside a DDP or ``CompiledNet`` wrapper, however deep (or the module itself)."""
    while isinstance(getattr(net, "module", None), nn.Module):
        net = net.module
    return net


class GeneratorState:
    """A ``torch.Generator`` seen as a checkpointable (``state_dict`` / ``load_state_dict``)."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["state"])


class Trainer(ABC):
    """Base class: a subclass sets ``Config``, fills ``nets`` (and ``optimizers``, ``schedulers``, ``samplers``)
    in ``__init__`` after ``super().__init__``, and implements ``train_epoch``, ``evaluate`` and
    ``metric_names``."""

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
        self.domains = self.train_domains
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

    @staticmethod
    def first_per_domain(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first evaluated item (``item["case"]``) of each domain, for one picture per domain."""
        firsts: dict[str, dict[str, Any]] = {}
        for item in items:
            firsts.setdefault(item["case"].domain, item)
        return list(firsts.values())

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

    def use_prefetch(self, depth: int, workers: int = 1) -> None:
        """Draw ``depth`` batches ahead of the step for every sampler (those built later too), built by
        ``workers`` threads: see platform.data.prefetch. 0 leaves them drawing in the step."""
        self._prefetch_depth = depth
        self._prefetch_workers = workers
        for name in list(self.samplers):
            self.samplers[name] = self._prefetched(self.samplers[name])

    def _prefetched(self, sampler: Any) -> Any:
        from platform.data.prefetch import Prefetcher

        if self._prefetch_depth < 1 or not hasattr(sampler, "sample") or isinstance(sampler, Prefetcher):
            return sampler
        return Prefetcher(sampler, self._prefetch_depth, pin_memory=self.device.type == "cuda",
                          workers=self._prefetch_workers)

    def close_samplers(self) -> None:
        """Stop the prefetch threads (their samplers keep the position of the last batch taken)."""
        for sampler in self.samplers.values():
            close = getattr(sampler, "close", None)
            if close is not None:
                close()

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
    def networks(self) -> dict[str, nn.Module]:
        """Every network by name (possibly DDP-wrapped)."""
        return self.nets

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
    @abstractmethod
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (0-based) and return ``train/...`` metrics (``train/loss*`` are checked finite)."""

    @abstractmethod
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Evaluate on ``split`` (``val`` or ``test``) and return ``split/...`` metrics, including ``split/dice``
        (the mean over the evaluation domains); fill ``last_eval`` and ``last_cases``."""

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:  # noqa: B027 - optional hook
        """Hook after evaluation (e.g. plateau schedulers on a validation loss)."""

    def selectable(self) -> bool:
        """Whether the networks of the epoch just completed (``self.epoch`` epochs trained) are the method's own,
        so the engine may select them as the best checkpoint and a scheduler may rank the trial on them (False
        e.g. during a pretraining stage whose forward is not the method's)."""
        return True

    def artifact_panel(self, item: dict[str, Any]) -> np.ndarray:
        """The second panel of an evaluated case's picture (what the method made of the input)."""
        return item["case"].image[0]

    def save_artifacts(self, out_dir: Path, split: str = "val") -> list[dict[str, str]]:
        """Pictures of the last evaluation (the middle slice: input | ``artifact_panel`` | prediction | ground
        truth): for ``val``, of each domain's first case; for ``test``, of every case, so a per-case comparison can
        show any subject. Rows of ``path``, ``kind`` (the panels' names), ``domain``, ``subject``, ``split`` and
        ``legend`` (JSON: each class's overlay colour). The val cases also get their volumes (kind ``volume``:
        input, prediction, truth) for the explorer's slice viewer."""
        import json as _json

        from platform.images import VOLUME_SUFFIX, legend, save_grid, save_volume

        colours = _json.dumps(legend(self.class_names))
        items = self.first_per_domain(self.last_eval) if split == "val" else self.last_eval
        rows = []
        for item in items:
            case = item["case"]
            prefix = "" if split == "val" else f"{split}-"
            path = out_dir / f"{prefix}{case.domain}_{case.subject}.png"
            save_grid(path, case.image[0], self.artifact_panel(item), item["pred"], case.label, self.num_classes)
            rows.append({"path": str(path), "kind": self.ARTIFACT_KIND, "domain": case.domain,
                         "subject": case.subject, "split": split, "legend": colours})
            if split == "val":
                volume = save_volume(path.with_suffix(VOLUME_SUFFIX), case.image[0], item["pred"], case.label)
                rows.append({"path": str(volume), "kind": "volume", "domain": case.domain, "subject": case.subject,
                             "split": split, "legend": colours})
        return rows

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

    def add_sampler(self, name: str, sampler: Any) -> Any:
        """Register a sampler built on first use, not in ``__init__`` (e.g. from a trained stage's output); a state
        restored for it before it existed is applied now, so a resumed trial draws the same batches."""
        if name in self._pending_samplers:
            sampler.load_state_dict(self._pending_samplers.pop(name))
        self.samplers[name] = self._prefetched(sampler)
        return self.samplers[name]

    def defer_samplers(self, *names: str) -> None:
        """Drop built samplers, keeping their states for ``add_sampler`` (they are rebuilt on next use)."""
        for name in names:
            if name in self.samplers:
                sampler = self.samplers.pop(name)
                self._pending_samplers[name] = sampler.state_dict()
                if hasattr(sampler, "close"):
                    sampler.close()

    # --- state ----------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Method state beyond the networks, optimizers, schedulers, samplers and RNG."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
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
