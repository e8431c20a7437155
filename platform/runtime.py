"""How a trial's networks run, whatever the method: numeric precision, memory format, ``torch.compile``, cuDNN
autotuning, batches prefetched ahead of the step, and how often a checkpoint is written. The ``runtime:`` block
of a spec; nothing here changes what a method computes, only how fast (fp16/bf16 round differently, see
``precision``).

The trainer base applies it with :mod:`platform.acceleration` (``Trainer.autocast``, ``Trainer.step``,
``Trainer.finish_networks``); the engine runs ``train_epoch`` and ``evaluate`` under the autocast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the spec reads this block without importing torch; platform.acceleration applies it
    import torch


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
        "step; default: 2 on a GPU, 0 on the CPU")
    checkpoint_every: int | None = Field(
        None, ge=1, le=1000, description="epochs between checkpoints (a resumed or restarted trial repeats at most "
        "this many); default: an epoch ends with one once checkpoint_interval_s have passed since the last")
    checkpoint_interval_s: float = Field(
        30.0, ge=0, description="with checkpoint_every unset: the least time between checkpoints (0: every epoch); "
        "the last epoch always writes one")
    hooks: list[str] = Field(
        [], description="extra per-epoch behaviours: 'package.module:Class' of platform.hooks.Hook subclasses, built "
        "with no arguments and run after the engine's own hooks (importable from the repository root or PYTHONPATH)")

    def describe(self) -> str:
        """One line for ``--dry-run``."""
        prefetch = "auto" if self.prefetch is None else str(self.prefetch)
        every = (f"every {self.checkpoint_every} epoch{'s' if self.checkpoint_every > 1 else ''}"
                 if self.checkpoint_every else f"after the first epoch {self.checkpoint_interval_s:g} s past the last")
        return (f"precision {self.precision}, channels_last {str(self.channels_last).lower()}, cudnn_benchmark "
                f"{str(self.cudnn_benchmark).lower()}, compile {str(self.compile).lower()}, prefetch {prefetch}; "
                f"checkpoint {every}, and at the last epoch"
                + (f"; hooks {', '.join(self.hooks)}" if self.hooks else ""))

    def prefetch_depth(self, device: torch.device) -> int:
        """Batches drawn ahead: ``prefetch`` if given; otherwise 2 on a GPU, where the step leaves the cores idle
        while kernels run, and 0 on the CPU, where the producer thread competes with the step for the cores and
        the interpreter lock (measured by ``python -m platform.bench data``: epochs up to 16% slower)."""
        if self.prefetch is not None:
            return self.prefetch
        return 2 if device.type == "cuda" else 0

    @staticmethod
    def prefetch_workers(cpus_per_worker: float) -> int:
        """Threads building prefetched batches: the worker's CPUs (``resources.cpus_per_worker``) less the one the
        step's own thread runs on, at least 1 (one producer thread then draws and builds)."""
        return max(1, int(cpus_per_worker) - 1)
