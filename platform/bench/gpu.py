"""``gpu``: each trainer's training step on a CUDA device in fp32, bf16 and fp16, with and without channels-last
and ``torch.compile``: step time, achieved TFLOP/s as a fraction of the device's peak, and the GPU's idle share
of an epoch.

Cases are those of :mod:`platform.bench.step` (advnorm, dualnorm, glua stages 1 and 2), at two sizes: the
shipped specs' and the papers' (the trainers' Config defaults, which are the papers' widths and depths, on
32^3 patches, slices of 64^2 phantoms). Each variant builds its trainer on the GPU with the runtime settings (batches
prefetched 2 ahead from pinned memory, ``cudnn_benchmark`` on), runs a warm-up epoch, then times epochs under
the trainer's autocast with the device synchronised (median). FLOPs of one epoch are counted by
``torch.utils.flop_counter.FlopCounterMode`` (the forwards and backwards of every network; elementwise work is
not counted, so the fraction of peak is a lower bound). The idle share is 1 - (time any kernel runs / the
epoch's span), from a ``torch.profiler`` trace of one epoch.

Targets, checked on a GPU: bf16 at least 1.8x faster than fp32 on the paper-size 3D U-Net (advnorm), at least
40% of the dtype's peak there, and the GPU idle under 5% of an epoch. Without CUDA the benchmark is skipped
(one line, exit code 0).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from platform.acceleration import configure_process
from platform.bench.report import BenchResult, BenchSkipped, Target
from platform.runtime import RuntimeConfig

TARGET_BF16_SPEEDUP = 1.8
TARGET_PEAK_FRACTION = 0.40
TARGET_IDLE = 0.05

# Dense tensor-core peaks (TFLOP/s) by device name fragment: (bf16/fp16, tf32, fp32), from the vendors' sheets.
PEAKS = {
    "H200": (989.0, 494.0, 67.0), "H100": (989.0, 494.0, 67.0), "A100": (312.0, 156.0, 19.5),
    "L40S": (362.0, 183.0, 91.6), "A10G": (125.0, 62.5, 31.2), "RTX 2080 Ti": (107.6, 13.4, 13.4),
}

# The papers' sizes: each trainer's Config defaults for the network widths and depths (the fields the shipped
# specs shrink), on the papers' patch and slice sizes.
PAPER_DATA = ["data.patch_size=32", "data.size=64"]

# (precision, channels_last, compile) variants timed per case; compile only on the fastest layout (each compile
# costs tens of seconds).
VARIANTS = [("fp32", False, False), ("fp32", True, False), ("bf16", False, False), ("bf16", True, False),
            ("fp16", False, False), ("fp16", True, False), ("bf16", True, True)]
QUICK_VARIANTS = [("fp32", False, False), ("bf16", True, False)]


@dataclass
class GpuCase:
    name: str
    size: str  # "spec" or "paper"
    trainer: Any
    epoch: int

    @property
    def iterations(self) -> int:
        return max(1, self.trainer.data_config.patches_per_epoch // self.trainer.data_config.batch_size)


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The device's dense peak for ``precision`` (fp32 convolutions run on TF32 tensor cores when cuDNN allows
    it, PyTorch's default), or None for a device not in the table."""
    for fragment, (half, tf32, fp32) in PEAKS.items():
        if fragment in device_name:
            if precision in ("bf16", "fp16"):
                return half
            return tf32 if torch.backends.cudnn.allow_tf32 else fp32
    return None


def busy_share(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """The share of [start, end] covered by the union of ``intervals`` (kernels overlapping count once)."""
    if end <= start:
        return 0.0
    covered, reach = 0.0, start
    for low, high in sorted(intervals):
        low, high = max(low, reach), min(high, end)
        if high > low:
            covered += high - low
            reach = high
    return covered / (end - start)


def _network_overrides(trainer_name: str) -> list[str]:
    """``fixed.<field>=<default>`` for every network width and depth field of the trainer's Config."""
    from platform.trainers import TRAINERS

    fields = TRAINERS.get(trainer_name).Config.model_fields
    return [f"fixed.{name}={field.default}" for name, field in fields.items()
            if name.endswith(("_channels", "_depth", "_res_blocks", "_dilated_blocks", "_downsample"))]


def build_case(name: str, size: str, runtime: RuntimeConfig, device: torch.device, quick: bool) -> GpuCase:
    from platform.bench.harness import load_shipped_spec
    from platform.bench.step import GLUA_STAGE1_EPOCHS
    from platform.trainers import TRAINERS

    specs = {"advnorm": "search_spaces/lambda.yaml", "dualnorm": "search_spaces/dnrb_placement.yaml",
             "glua stage 1": "search_spaces/glua_ablation.yaml", "glua stage 2": "search_spaces/glua_ablation.yaml"}
    trainer_name = name.split()[0]
    overrides = ["data.patches_per_epoch=32"] if quick else []
    if trainer_name == "dualnorm":
        overrides.append("fixed.pretrain_epochs=0")
    if trainer_name == "glua":
        overrides += [f"fixed.stage1_epochs={GLUA_STAGE1_EPOCHS}", f"fixed.epochs={GLUA_STAGE1_EPOCHS + 1}"]
    if size == "paper":
        overrides += PAPER_DATA + _network_overrides(trainer_name)
    spec = load_shipped_spec(specs[name], overrides)
    cls = TRAINERS.get(spec.trainer)
    trainer = cls(cls.Config.model_validate(spec.fixed), spec.data, seed=0, device=device, runtime=runtime)
    trainer.use_prefetch(runtime.prefetch_depth(device), runtime.prefetch_workers(spec.resources.cpus_per_worker))
    epoch = GLUA_STAGE1_EPOCHS if name == "glua stage 2" else 0
    return GpuCase(name, size, trainer, epoch)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _epoch(case: GpuCase) -> float:
    """Seconds of one training epoch under the trainer's autocast, the device's queue drained at both ends."""
    device = case.trainer.device
    _synchronize(device)
    started = time.perf_counter()
    with case.trainer.autocast():
        case.trainer.train_epoch(case.epoch)
    _synchronize(device)
    return time.perf_counter() - started


def epoch_flops(case: GpuCase) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        _epoch(case)
    return float(counter.get_total_flops())


def idle_share(case: GpuCase) -> float:
    """1 - (kernel time / span) over one epoch, from a profiler trace (NaN off a GPU: no kernels to see)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if case.trainer.device.type == "cuda" else [])
    with profile(activities=activities) as trace:
        _epoch(case)
    events = list(trace.events())
    cuda = torch.autograd.DeviceType.CUDA
    kernels = [(e.time_range.start, e.time_range.end) for e in events if e.device_type == cuda]
    if not kernels:
        return float("nan")
    start = min(e.time_range.start for e in events)
    end = max(e.time_range.end for e in events)
    return 1.0 - busy_share(kernels, start, end)


def measure(name: str, size: str, variant: tuple[str, bool, bool], device: torch.device, repeats: int,
            quick: bool) -> dict[str, Any]:
    """One row: a case's step time, FLOPs, achieved TFLOP/s and share of peak, and GPU idle share (any device:
    off a GPU, peak and idle are NaN)."""
    precision, channels_last, compiled = variant
    runtime = RuntimeConfig(precision=precision, channels_last=channels_last, compile=compiled, cudnn_benchmark=True,
                            prefetch=2)
    case = build_case(name, size, runtime, device, quick)
    configure_process(runtime, device)
    try:
        _epoch(case)  # warm-up: cuDNN autotuning, compilation, the prefetch threads start
        times = [_epoch(case) for _ in range(repeats)]
        step_s = statistics.median(times) / case.iterations
        flops = epoch_flops(case) / case.iterations
        idle = idle_share(case)
        fallbacks = [getattr(net, "failure", None) for net in case.trainer.nets.values()]
    finally:
        case.trainer.close_samplers()
    peak = peak_tflops(torch.cuda.get_device_name(device), precision) if device.type == "cuda" else None
    achieved = flops / step_s / 1e12
    return {"case": name, "size": size, "precision": precision, "channels_last": channels_last, "compile": compiled,
            "step_ms": step_s * 1e3, "gflop_per_step": flops / 1e9, "tflops": achieved,
            "of_peak": achieved / peak if peak else float("nan"), "idle": idle,
            "compile_failed": "; ".join(f for f in fallbacks if f) or ""}


def progress_line(row: dict[str, Any]) -> str:
    """One measured variant as a line, printed as it finishes: the full benchmark runs for many minutes, and a
    run cut short still shows what it measured."""
    layout = "channels-last" if row["channels_last"] else "contiguous"
    compiled = " compiled" if row["compile"] else ""
    fell_back = f" (compile fell back: {row['compile_failed']})" if row["compile_failed"] else ""
    return (f"  {row['case']} [{row['size']}] {row['precision']} {layout}{compiled}: {row['step_ms']:.2f} ms/step, "
            f"{row['tflops']:.2f} TFLOP/s ({row['of_peak']:.1%} of peak), GPU idle {row['idle']:.1%}{fell_back}")


def unavailable() -> str | None:
    """Why the benchmark cannot run here (no CUDA device), or None."""
    if torch.cuda.is_available():
        return None
    return "gpu: skipped, no CUDA device here (torch.cuda.is_available() is False); run it on a GPU node"


def run(quick: bool = False) -> BenchResult:
    reason = unavailable()
    if reason:
        raise BenchSkipped(reason)
    device = torch.device("cuda", torch.cuda.current_device())
    cases = ["advnorm", "dualnorm", "glua stage 1", "glua stage 2"]
    sizes = ["spec"] if quick else ["spec", "paper"]
    variants = QUICK_VARIANTS if quick else VARIANTS
    repeats = 2 if quick else 5
    results = []
    for size in sizes:
        for name in cases:
            for variant in variants:
                with contextlib.suppress(torch.cuda.OutOfMemoryError):
                    results.append(measure(name, size, variant, device, repeats, quick))
                    print(progress_line(results[-1]), flush=True)
                torch.cuda.empty_cache()
    reference = "paper" if not quick else "spec"

    def pick(precision: str, channels_last: bool, compiled: bool = False) -> dict[str, Any] | None:
        return next((r for r in results if r["case"] == "advnorm" and r["size"] == reference
                     and r["precision"] == precision and r["channels_last"] == channels_last
                     and r["compile"] == compiled), None)

    fp32 = pick("fp32", False)
    bf16 = min((r for r in (pick("bf16", False), pick("bf16", True)) if r), key=lambda r: r["step_ms"], default=None)
    figures = {
        "bf16_speedup_3d_unet": fp32["step_ms"] / bf16["step_ms"] if fp32 and bf16 else float("nan"),
        "bf16_of_peak_3d_unet": bf16["of_peak"] if bf16 else float("nan"),
        "max_idle": max((r["idle"] for r in results), default=float("nan")),
    }
    headers = ["trainer", "size", "precision", "channels_last", "compile", "ms/step", "GFLOP/step", "TFLOP/s",
               "of peak", "GPU idle", "compile fell back"]
    rows = [[r["case"], r["size"], r["precision"], r["channels_last"], r["compile"], r["step_ms"],
             r["gflop_per_step"], r["tflops"], r["of_peak"], r["idle"], r["compile_failed"]] for r in results]
    return BenchResult(
        name="gpu", description="training steps on the GPU by precision, memory format and compile",
        headers=headers, rows=rows, figures=figures,
        targets=[Target("bf16_speedup_3d_unet", ">=", TARGET_BF16_SPEEDUP),
                 Target("bf16_of_peak_3d_unet", ">=", TARGET_PEAK_FRACTION), Target("max_idle", "<=", TARGET_IDLE)],
        settings={"device": torch.cuda.get_device_name(device), "repeats": repeats, "sizes": sizes,
                  "variants": [list(v) for v in variants], "reference": f"advnorm at {reference} size"},
        notes=["FLOPs are matmul/convolution FLOPs (torch.utils.flop_counter); the fraction of peak is a lower "
               "bound", "variants that ran out of GPU memory are left out"],
    )
