"""How a trial's networks run, whatever the method: numeric precision, memory format, ``torch.compile``, cuDNN
autotuning, batches prefetched ahead of the step, and how often a checkpoint is written. The ``runtime:`` block
of a spec; nothing here changes what a method computes, only how fast (fp16/bf16 round differently, see
``precision``).

The trainer base applies it (``Trainer.autocast``, ``Trainer.step``, ``Trainer.finish_networks``); the engine
runs ``train_epoch`` and ``evaluate`` under the autocast.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class RuntimeConfig(BaseModel):
    """The ``runtime:`` block: engine settings shared by every trainer."""

    model_config = ConfigDict(extra="forbid")

    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype of forwards and losses (fp16 adds a GradScaler per update)")
    channels_last: bool = Field(False, description="channels-last weights (channels_last_3d for 3D networks)")
    cudnn_benchmark: bool = Field(False, description="let cuDNN time its convolution algorithms (CUDA only)")
    compile: bool = Field(False, description="torch.compile each network; falls back to eager, logged, if it fails")
    prefetch: int | None = Field(
        None, ge=0, le=64, description="batches each sampler draws ahead in a background thread; 0 draws in the "
        "step; default: 2 on a GPU or with 2+ CPUs per worker, else 0")
    checkpoint_every: int | None = Field(
        None, ge=1, le=1000, description="epochs between checkpoints (a resumed or restarted trial repeats at most "
        "this many); default: an epoch ends with one once checkpoint_interval_s have passed since the last")
    checkpoint_interval_s: float = Field(
        30.0, ge=0, description="with checkpoint_every unset: the least time between checkpoints (0: every epoch); "
        "the last epoch always writes one")

    def describe(self) -> str:
        """One line for ``--dry-run``."""
        prefetch = "auto" if self.prefetch is None else str(self.prefetch)
        every = (f"every {self.checkpoint_every} epoch{'s' if self.checkpoint_every > 1 else ''}"
                 if self.checkpoint_every else f"after the first epoch {self.checkpoint_interval_s:g} s past the last")
        return (f"precision {self.precision}, channels_last {str(self.channels_last).lower()}, cudnn_benchmark "
                f"{str(self.cudnn_benchmark).lower()}, compile {str(self.compile).lower()}, prefetch {prefetch}; "
                f"checkpoint {every}, and at the last epoch")

    def prefetch_depth(self, device: torch.device, cpus_per_worker: float) -> int:
        """Batches drawn ahead: ``prefetch`` if given; otherwise 2 where a producer thread has something to overlap
        with (a GPU step, or a second core), 0 on a one-core CPU worker, where it would only compete."""
        if self.prefetch is not None:
            return self.prefetch
        return 2 if device.type == "cuda" or cpus_per_worker >= 2 else 0


def autocast(runtime: RuntimeConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` of ``runtime.precision`` on ``device``'s type; a no-op context for fp32."""
    if runtime.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[runtime.precision])


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Autocast off inside (a backward pass, which PyTorch recommends running outside autocast)."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler for fp16 updates on ``device``."""
    return torch.amp.GradScaler(device.type)


def memory_format(net: nn.Module) -> torch.memory_format:
    """``channels_last_3d`` for a network with 5D weights (3D convolutions), else ``channels_last``."""
    return torch.channels_last_3d if any(p.ndim == 5 for p in net.parameters()) else torch.channels_last


def to_channels_last(net: nn.Module) -> nn.Module:
    """The network with its convolution weights in channels-last order (in place); conv outputs follow it."""
    return net.to(memory_format=memory_format(net))


class CompiledNet(nn.Module):
    """A network run through ``torch.compile``, falling back to eager, once and for good, when compiling or the
    compiled call fails; the reason is logged. ``module`` is the eager network (its parameters and state dict,
    so checkpoints do not depend on compile; ``trainers.base.unwrap`` reaches it as it does through DDP)."""

    def __init__(self, name: str, module: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.module = module
        self.failure: str | None = None
        try:
            compiled: Any = torch.compile(module)
        except Exception as exc:  # e.g. a platform torch.compile does not support
            compiled = None
            self._fall_back(exc)
        object.__setattr__(self, "_compiled", compiled)  # not a submodule: no second copy in the state dict

    def _fall_back(self, exc: BaseException) -> None:
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        self.failure = f"{type(exc).__name__}: {first_line}"
        log.warning("torch.compile of network %r failed; it runs eager (%s)", self.name, self.failure)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._compiled
        if compiled is not None and self.failure is None:
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:  # compile errors surface at the first call: fall back and log why
                self._fall_back(exc)
        return self.module(*args, **kwargs)


def configure_process(runtime: RuntimeConfig, device: torch.device) -> None:
    """Process-wide switches: cuDNN autotuning on CUDA when asked (it picks kernels by timing, so two runs may
    differ in the last bits)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = runtime.cudnn_benchmark
