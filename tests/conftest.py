"""Shared fixtures: tiny data on a per-session cache, tiny trainer configs, one local Ray per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# `python -m pytest` puts the repository root first on sys.path; make sure of it for the `platform` shim.
if sys.path[0] != str(REPO_ROOT):
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _cpu_kernel_pin_stays_in_its_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """``platform.reproduce``'s main pins the CPU kernels in the environment (for the Ray it starts); a test that
    calls it in this process must not hand the pin to the processes of the tests after it."""
    from platform.provenance import CPU_KERNEL_ENVIRONMENT

    for name in {name for settings in CPU_KERNEL_ENVIRONMENT.values() for name in settings}:
        monkeypatch.setenv(name, os.environ.get(name, ""))  # recorded, so the test's end restores it
        if not os.environ[name]:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("segsweep-cache")
    os.environ["SEGSWEEP_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_data(cache_dir: Path):
    from platform.data.config import DataConfig

    return DataConfig(domains=["infant", "adult"], subjects_per_domain=3, size=24, patch_size=16, batch_size=2,
                      patches_per_epoch=8, cache_dir=str(cache_dir))


TINY_ADVNORM = {"epochs": 2, "g_channels": 4, "g_depth": 2, "s_channels": 4, "s_depth": 2, "d_channels": 4,
                "eval_patches": 2, "sw_overlap": 0.25}


@pytest.fixture
def tiny_advnorm() -> dict:
    return dict(TINY_ADVNORM)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session (2 logical CPUs, as CI's machine); workers find `platform` via PYTHONPATH."""
    import shutil
    import tempfile

    import ray

    # A Ray of the tests' own: "local" never joins a cluster another user started on this machine, and a private
    # temp dir (short: socket paths have a length limit) keeps its sessions apart; shutdown stops only it.
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", _temp_dir=temp_dir,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}})
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
