"""Sweeps on a multi-node Ray cluster on one machine (Ray's own harness, ``ray.cluster_utils.Cluster``): a head
without CPUs and two one-CPU worker nodes, so every trial runs on a worker node. A sweep joins it with
``--address``. Trials come from the test-only ``fault`` trainer (tests/fault_trainer.py), which records the Ray
node each trial (and each retry of it) was built on.

The cluster is shut down by its fixture (``Cluster.shutdown``), which stops exactly its own processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform.provenance import CPU_KERNEL_ENVIRONMENT, REPRODUCE_CPU_KERNELS
from platform.results import read_table
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8, "batch_size": 1,
        "patches_per_epoch": 1}
# The processes of the cluster's nodes (and so its workers) inherit these: they import `platform` and the fault
# trainer from the repository root, and keep their sessions in a private, short temp dir (socket path limits).
NODE_ENV = {"PYTHONPATH": str(REPO_ROOT), "SEGSWEEP_PLUGINS": "tests.fault_trainer", "RAY_DISABLE_USAGE_STATS": "1"}
# platform.reproduce's pin of torch's CPU kernels (platform.provenance), set in a sweep's environment.
KERNEL_PIN = CPU_KERNEL_ENVIRONMENT[REPRODUCE_CPU_KERNELS]
# A lost node is noticed within seconds, not Ray's default half minute.
HEAD_CONFIG = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="rm", dir="/tmp")
    saved = {key: os.environ.get(key) for key in [*NODE_ENV, "RAY_TMPDIR", *KERNEL_PIN]}
    os.environ.update(NODE_ENV, RAY_TMPDIR=temp_dir)
    for key in KERNEL_PIN:  # the nodes run each host's own kernels, as a shared cluster does
        os.environ.pop(key, None)
    harness = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 0, "_system_config": HEAD_CONFIG})
    try:
        for _ in range(2):
            harness.add_node(num_cpus=1)
        harness.wait_for_nodes()
        yield harness
    finally:
        harness.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


def start_sweep(tmp_path: Path, address: str, name: str, fixed: dict[str, Any], grid: list[int],
                cache_dir: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path, Path]:
    """Start ``python -m platform.sweep --address`` on a fault-trainer grid; (process, experiment, nodes dir)."""
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    spec = {"name": name, "trainer": "fault", "data": DATA, "storage": str(tmp_path / "runs"),
            "objective": {"metric": "val/dice", "mode": "max"}, "fixed": {**fixed, "nodes_dir": str(nodes)},
            "search": {"iterations": {"grid": grid}}, "searcher": {"sampler": "grid"},
            "budget": {"concurrent": 2}, "resources": {"cpus_per_worker": 1}, "runtime": {"checkpoint_every": 1}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "SEGSWEEP_CACHE": str(cache_dir), **(extra_env or {})}
    process = subprocess.Popen([sys.executable, "-m", "platform.sweep", str(path), "--address", address],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, tmp_path / "runs" / name, nodes


def placements(nodes: Path) -> dict[str, list[str]]:
    """Ray node id -> the trials built on it, in order."""
    return {path.name: path.read_text().split() for path in nodes.iterdir()} if nodes.exists() else {}


def finish(process: subprocess.Popen, timeout: float = 420) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()


def assert_every_trial_once(experiment: Path, trials: int, epochs: int) -> list[dict[str, Any]]:
    rows = read_table(str(experiment), "trials").to_pylist()
    assert len(rows) == trials and len({r["trial_id"] for r in rows}) == trials, rows
    assert {r["status"] for r in rows} == {"TERMINATED"}, [(r["trial_id"], r["status"], r["error"]) for r in rows]
    assert all(r["epochs"] == epochs for r in rows)
    epoch_rows = read_table(str(experiment), "epochs").to_pylist()
    for row in rows:
        seen = sorted(e["epoch"] for e in epoch_rows if e["trial_id"] == row["trial_id"])
        assert seen == list(range(1, epochs + 1)), (row["trial_id"], seen)
    return rows


def test_trials_of_a_sweep_run_on_more_than_one_node(cluster: Any, tmp_path: Path, cache_dir: Path) -> None:
    process, experiment, nodes = start_sweep(tmp_path, cluster.address, "spread", {"epochs": 3, "epoch_s": 1.0},
                                             [3, 4, 5, 6], cache_dir)
    out, err = finish(process)
    assert process.returncode == 0, out[-2000:] + err[-4000:]
    assert_every_trial_once(experiment, trials=4, epochs=3)
    used = placements(nodes)
    assert len(used) >= 2, used  # two one-CPU worker nodes, two trials at once: both nodes ran trials
    worker_ids = {node.node_id for node in cluster.worker_nodes}
    assert set(used) <= worker_ids, (used, worker_ids)  # the head offers no CPU


def native_cpu_kernels() -> str:
    """The instruction set of the kernels torch picks on this host when nothing pins them."""
    env = {key: value for key, value in os.environ.items() if key not in KERNEL_PIN}
    return subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                          env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_a_sweeps_cpu_kernel_pin_reaches_the_workers_of_a_cluster(cluster: Any, tmp_path: Path,
                                                                   cache_dir: Path) -> None:
    # A cluster's workers inherit the environment of its nodes, not the sweep's: the pin that makes a reference
    # reproduce must travel with the job (its runtime env), or the trials there train with the host's own kernels.
    native = native_cpu_kernels()
    if native in ("DEFAULT", "AVX2", "ZVECTOR", "NO AVX"):
        pytest.skip(f"this host's own kernels are {native}: a pin to AVX2 changes nothing to observe")
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    process, experiment, _ = start_sweep(tmp_path, cluster.address, "pinned",
                                         {"epochs": 1, "kernels_dir": str(kernels)}, [3, 4], cache_dir,
                                         extra_env=KERNEL_PIN)
    out, err = finish(process)
    assert process.returncode == 0, out[-2000:] + err[-4000:]
    assert_every_trial_once(experiment, trials=2, epochs=1)
    seen = {path.name: path.read_text() for path in kernels.iterdir()}
    assert len(seen) == 2 and set(seen.values()) == {"AVX2"}, (seen, native)


def test_a_node_lost_mid_trial_costs_only_the_epochs_since_its_checkpoint(cluster: Any, tmp_path: Path,
                                                                          cache_dir: Path) -> None:
    epochs = 6
    process, experiment, nodes = start_sweep(tmp_path, cluster.address, "lost",
                                             {"epochs": epochs, "epoch_s": 1.0}, [3, 4, 5], cache_dir)
    by_id = {node.node_id: node for node in cluster.worker_nodes}
    lost, victim = None, None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None and lost is None:
            time.sleep(0.5)
            try:
                reported = read_table(str(experiment), "epochs").to_pylist()
            except Exception:  # not written yet, or a part mid-rename
                continue
            done = {e["trial_id"] for e in reported if e["epoch"] >= epochs}
            for node_id, trials in placements(nodes).items():
                running = trials[-1]  # the trial the node runs now (one CPU: one at a time)
                if running not in done and sum(e["trial_id"] == running for e in reported) >= 2:
                    lost, victim = node_id, running
                    break
        assert lost is not None, "no trial reached epoch 2 on a node before the sweep ended"
        cluster.remove_node(by_id[lost], allow_graceful=False)  # SIGKILL of that node's raylet and workers
        out, err = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out[-2000:] + err[-4000:]
    rows = {r["trial_id"]: r for r in assert_every_trial_once(experiment, trials=3, epochs=epochs)}
    assert rows[victim]["retries"] >= 1, rows[victim]
    assert all(r["retries"] == 0 for trial_id, r in rows.items() if trial_id != victim)
    # It went on on the node left, from its checkpoint: the epochs before the loss were not trained again.
    assert any(victim in trials for node_id, trials in placements(nodes).items() if node_id != lost)
    epoch_rows = [e for e in read_table(str(experiment), "epochs").to_pylist() if e["trial_id"] == victim]
    assert max(e["train/start_epoch"] for e in epoch_rows) >= 1, epoch_rows
    assert "retried from their last checkpoint after a lost worker or node" in out and victim in out
    assert "the Ray under this sweep stopped" not in err
    cluster.add_node(num_cpus=1)  # the cluster as it was, for any test after this one
    cluster.wait_for_nodes()
