"""Applying the ``runtime:`` block (:mod:`platform.runtime`) to torch: autocast, the GradScaler of fp16 updates,
channels-last weights, ``torch.compile`` with its eager fall-back, and the process-wide cuDNN switch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from platform.runtime import RuntimeConfig

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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
