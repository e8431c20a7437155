"""Where a result came from: the code version, the library versions, the machine and the command.

``provenance()`` is recorded in the ``sweep`` table's row and in every ``platform.reproduce`` output, and
``differences`` names the fields in which two records disagree (``reproduce --check`` prints them beside any row
whose values changed). The code version is the git commit with a dirty flag when the package lies in a git
checkout, and always a sha256 over the package's source files, which also stands in when there is no git.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
# Distributions whose version can change a number (the name as pip knows it -> the field name).
LIBRARIES = {"torch": "torch", "monai": "monai", "ray": "ray", "optuna": "optuna", "numpy": "numpy"}
# Fields that say when and how a result was made, not what could change it: never reported as a difference.
INCIDENTAL = ("created", "command")
# The instruction set of torch's CPU kernels decides how their float sums round, so a trained number reproduces bit
# for bit only at the same kernels. Measured: the phantom's Table 2 made on an earlier host differed on an AVX512 host
# in every seed (by up to .02 Dice) and matched to 1e-6 with the kernels pinned to AVX2. ``platform.reproduce`` pins
# them (``SEGSWEEP_CPU_KERNELS``, default ``avx2``) before any kernel runs: torch reads ATEN_CPU_CAPABILITY and oneDNN
# ONEDNN_MAX_CPU_ISA once per process; a local Ray's workers inherit both, a cluster's get them in the job's runtime
# env (``cpu_kernel_pin``).
CPU_KERNELS_VARIABLE = "SEGSWEEP_CPU_KERNELS"
CPU_KERNEL_ENVIRONMENT = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
                          "native": {}}  # native: the best each host has (faster; references then follow the host)
CPU_KERNEL_VARIABLES = sorted({name for settings in CPU_KERNEL_ENVIRONMENT.values() for name in settings})
REPRODUCE_CPU_KERNELS = "avx2"


def source_files(root: Path = PACKAGE_DIR) -> list[Path]:
    """The package's Python source files, sorted (caches and bytecode left out)."""
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def source_hash(root: Path = PACKAGE_DIR) -> str:
    """sha256 over the relative path and the bytes of every source file under ``root``."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    """Output of ``git args`` run in ``root``; None when git is missing or ``root`` is not in a checkout."""
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def code_version(root: Path = PACKAGE_DIR) -> dict[str, Any]:
    """``{"commit", "dirty", "source_sha256"}``: the checkout's HEAD and whether tracked files differ from it
    (both None outside a git checkout), and the hash of the package source (see :func:`source_hash`)."""
    commit = _git(root, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    return {"commit": commit, "dirty": dirty, "source_sha256": source_hash(root)}


def library_versions() -> dict[str, str | None]:
    """The installed version of each library in ``LIBRARIES`` (None when not installed), and Python's."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for distribution, name in LIBRARIES.items():
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.cache
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (from ``cpuinfo`` on Linux, else the machine type from ``os.uname``)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return os.uname().machine if hasattr(os, "uname") else "unknown"


def cpu_kernels() -> str | None:
    """The instruction set of torch's CPU kernels in this process (``DEFAULT``, ``AVX2``, ``AVX512``, ...), None
    without torch. Fixed by the first kernel the process runs (then ATEN_CPU_CAPABILITY is no longer read)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.backends.cpu.get_cpu_capability()


def cpu_kernel_choice() -> str:
    """``SEGSWEEP_CPU_KERNELS`` (``avx2`` or ``native``), default ``avx2``; ValueError naming the variable otherwise."""
    text = os.environ.get(CPU_KERNELS_VARIABLE, "").strip().lower() or REPRODUCE_CPU_KERNELS
    if text not in CPU_KERNEL_ENVIRONMENT:
        raise ValueError(f"{CPU_KERNELS_VARIABLE}={os.environ[CPU_KERNELS_VARIABLE]!r} is not one of "
                         f"{', '.join(CPU_KERNEL_ENVIRONMENT)}: set it to avx2 (results that reproduce on any AVX2 "
                         "host, the default) or native (each host's fastest kernels), or unset it.")
    return text


def pin_cpu_kernels(choice: str) -> None:
    """Set the environment so that this process (before its first kernel) and every process started from it (Ray's
    head and workers) run ``choice``'s CPU kernels (``CPU_KERNEL_ENVIRONMENT``); ``native`` clears the pin. A host
    without the instruction set runs its best one below it, and ``cpu_kernels`` records which."""
    for name in CPU_KERNEL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(CPU_KERNEL_ENVIRONMENT[choice])


def cpu_kernel_pin() -> dict[str, str]:
    """The kernel pin set in this process's environment (the variables of ``CPU_KERNEL_ENVIRONMENT`` that are set),
    for a cluster's workers, which inherit their node's environment, not the driver's: a job passes it on in its
    runtime env (``platform.sweepray``)."""
    return {name: os.environ[name] for name in CPU_KERNEL_VARIABLES if name in os.environ}


def gpu_model() -> str | None:
    """The first CUDA device's name, None without one (or without torch)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def provenance(argv: list[str] | None = None, root: Path = PACKAGE_DIR) -> dict[str, Any]:
    """One record of the code, libraries, machine and command (``argv``, default ``sys.argv``) of a result."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py") and Path(argv[0]).resolve().is_relative_to(root):
        # ``python -m platform.x`` puts the module's absolute path in argv[0]: record the command as typed.
        module = Path(argv[0]).resolve().relative_to(root.parent).with_suffix("").as_posix().replace("/", ".")
        argv = ["python", "-m", module.removesuffix(".__main__"), *argv[1:]]
    return {"code": code_version(root), "versions": library_versions(), "cpu": cpu_model(),
            "cpu_kernels": cpu_kernels(), "gpu": gpu_model(), "command": shlex.join(argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(reference: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, reference value, current value)`` of every field (dotted, e.g. ``versions.torch``) in which two
    records differ, the incidental ones (``INCIDENTAL``) left out; a field one record lacks reads as None."""
    ours, theirs = _flatten(reference), _flatten(current)
    fields = sorted(set(ours) | set(theirs))
    return [(name, ours.get(name), theirs.get(name)) for name in fields
            if name.split(".")[0] not in INCIDENTAL and ours.get(name) != theirs.get(name)]


def code_label(record: dict[str, Any]) -> str:
    """A record's code version in a few words: ``commit <12 hex digits>``, `` (dirty)`` added, or ``no git``."""
    code = record.get("code") or {}
    commit = code.get("commit")
    return f"commit {commit[:12]}{' (dirty)' if code.get('dirty') else ''}" if commit else "no git"


def summary(record: dict[str, Any]) -> str:
    """One line for a report's header: commit (dirty), source hash, libraries, CPU, GPU and command."""
    code = record.get("code") or {}
    where = code_label(record)
    source = str(code.get("source_sha256") or "?")[:12]
    versions = ", ".join(f"{name} {version}" for name, version in (record.get("versions") or {}).items())
    kernels = f"{record['cpu_kernels']} kernels" if record.get("cpu_kernels") else "kernels not recorded"
    return (f"code: {where}, source sha256 {source}; {versions}; CPU: {record.get('cpu')} ({kernels}); "
            f"GPU: {record.get('gpu') or 'none'}; command: {record.get('command')}")
