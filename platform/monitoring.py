"""What a trial's process used and printed, recorded by two engine hooks (platform.hooks) the sweep adds.

:class:`ResourceUsage` adds, to every epoch's report (so to the ``epochs`` table), measured from the start of the
epoch's training to its report (training, evaluation, pictures, the final test):

- ``resources/cpu_percent``: the process's CPU time (user + system, all its threads) over the wall time, in percent
  of one core (200 = two cores busy);
- ``resources/rss_peak_mb``: the process's peak resident memory in MiB (Linux: the peak within the epoch, reset at
  its start through ``/proc/self/clear_refs``; elsewhere, or where the reset is refused, the peak since the process
  started);
- on a CUDA device: ``resources/gpu_mem_peak_mb``, the peak memory allocated by torch on it within the epoch (MiB),
  and ``resources/gpu_percent``, the device's utilisation (NVML, through ``torch.cuda.utilization``) sampled at the
  end of the epoch's training; left out when NVML is not available.

On a trial of several Train workers every worker measures itself; rank 0's figures carry the names above and each
other rank's are added as ``resources/worker<rank>/<name>`` (gathered in the report of every epoch).

:class:`TrialLog` keeps what the trial's process writes to stdout and stderr from its first epoch on (warnings
and the log records Python prints there included) in ``<experiment>/artifacts/<trial id>/log.txt``
(``log-rank<k>.txt`` for the other Train workers): plain UTF-8 text, lines as written, copied to storage at each
checkpointed report and at the end of the trial (also when it failed). A resumed or
restarted trial appends to it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import torch

from platform.hooks import Epoch, Hook, Loop
from platform.storage import copy_to_storage, filesystem, join

PREFIX = "resources/"
MIB = 2**20


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak RSS of this process (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak resident set size (MiB): VmHWM on Linux, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / MIB if sys.platform == "darwin" else peak * 1024 / MIB


def gpu_percent(device: torch.device) -> float | None:
    """The device's utilisation in percent from NVML, None where it cannot be read (no pynvml, no driver)."""
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # ModuleNotFoundError (pynvml), NVML errors: the figure is optional
        return None


class ResourceUsage(Hook):
    """Per-epoch CPU and GPU utilisation and peak memory of this worker (module docstring)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.gpu: float | None = None

    def before_epoch(self, loop: Loop, epoch: Epoch) -> None:
        _reset_peak_rss()
        device = loop.trainer.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.gpu = None
        self.wall, self.cpu = time.perf_counter(), _cpu_seconds()

    def after_train_epoch(self, loop: Loop, epoch: Epoch) -> None:
        if loop.trainer.device.type == "cuda":
            self.gpu = gpu_percent(loop.trainer.device)

    def measure(self, device: torch.device) -> dict[str, float]:
        """This worker's figures since ``before_epoch``, by column name."""
        wall = max(time.perf_counter() - self.wall, 1e-9)
        figures = {f"{PREFIX}cpu_percent": 100.0 * (_cpu_seconds() - self.cpu) / wall,
                   f"{PREFIX}rss_peak_mb": peak_rss_mb()}
        if device.type == "cuda":
            figures[f"{PREFIX}gpu_mem_peak_mb"] = torch.cuda.max_memory_allocated(device) / MIB
            if self.gpu is not None:
                figures[f"{PREFIX}gpu_percent"] = self.gpu
        return figures

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        trainer = loop.trainer
        figures = self.measure(trainer.device)
        if trainer.world_size > 1:
            figures = gather_workers(figures, trainer.rank, trainer.world_size)
        epoch.metrics.update(figures)


def gather_workers(figures: dict[str, float], rank: int, world_size: int) -> dict[str, float]:
    """Every rank's figures, as rank 0 names them (``resources/worker<k>/...`` for rank k > 0). Every rank calls
    this at the same point (each reports every epoch); without an initialised process group, ``figures``."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return figures
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, figures)
    merged = dict(gathered[0] or {})
    for other in range(1, world_size):
        merged.update({f"{PREFIX}worker{other}/{key[len(PREFIX):]}": value
                       for key, value in (gathered[other] or {}).items()})
    return merged if rank == 0 else figures


class _Tee:
    """A text stream that writes to the original stream and to the trial's log file."""

    def __init__(self, original: TextIO, log: TextIO) -> None:
        self.original, self.log = original, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.original.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.original.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...: the original stream's
        return getattr(self.original, name)


class TrialLog(Hook):
    """The trial's stdout and stderr (with the log records Python prints there), kept in ``log.txt`` in the
    trial's artifact folder."""

    def __init__(self, destination: str, rank: int = 0) -> None:
        self.destination = destination  # <experiment>/artifacts/<trial id>
        self.name = "log.txt" if rank == 0 else f"log-rank{rank}.txt"
        self.folder: tempfile.TemporaryDirectory[str] | None = None
        self.file: TextIO | None = None
        self.streams: tuple[TextIO, TextIO] | None = None

    def before_train(self, loop: Loop) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="trial-log-")
        local = Path(self.folder.name) / self.name
        fs, stored = filesystem(join(self.destination, self.name))
        with contextlib.suppress(OSError), fs.open_input_stream(stored) as earlier:  # a resumed trial's log
            local.write_bytes(earlier.read())
        self.file = open(local, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open across the epochs
        self.streams = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self.file), _Tee(sys.stderr, self.file)  # type: ignore[assignment]

    def upload(self) -> None:
        if self.file is not None and self.folder is not None:
            self.file.flush()
            copy_to_storage(Path(self.folder.name) / self.name, self.destination)

    def after_report(self, loop: Loop, epoch: Epoch) -> None:
        if epoch.checkpoint:
            self.upload()

    def after_train(self, loop: Loop) -> None:
        # A reused actor runs the next trial in this process: restore its streams first.
        if self.streams is not None:
            sys.stdout, sys.stderr = self.streams
            self.streams = None
        try:
            self.upload()
        finally:
            if self.file is not None:
                self.file.close()
                self.file = None
            if self.folder is not None:
                self.folder.cleanup()
                self.folder = None
