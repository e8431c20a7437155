"""Shared-storage check on multi-node Ray clusters (platform/cluster.py), and `file://` storage end to end.

The decision and the probe are unit-tested; the slow tests start a real two-node `ray.cluster_utils.Cluster`
whose probe tasks run on both nodes. A node-local path is simulated honestly: a third node joins from a private
mount namespace (`unshare --mount`) in which the storage directory is its own tmpfs, so that node really cannot
see the driver's files (skipped where mount namespaces are unavailable).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from platform import cluster
from platform.cluster import NodeView, check_shared_storage, decide, read_probe
from platform.results import read_table
from tests.conftest import REPO_ROOT

HEAD = NodeView("a" * 56, "10.0.0.1", "head-pod", visible=True)
WORKER = NodeView("b" * 56, "10.0.0.2", "gpu-worker-1", visible=False, detail="/data/runs does not exist there")


def test_every_node_seeing_the_probe_passes() -> None:
    assert decide("/mnt/results/runs", [HEAD, NodeView("c" * 56, "10.0.0.3", visible=True)]) == cluster.Verdict(True)


def test_a_blind_node_is_refused_with_path_node_and_fix() -> None:
    verdict = decide("/data/runs", [HEAD, WORKER])
    assert not verdict.ok
    message = verdict.message
    assert "storage /data/runs" in message and "1 of 2 Ray nodes" in message
    assert "node 10.0.0.2 (host gpu-worker-1, id bbbbbbbbbbbb): /data/runs does not exist there" in message
    assert "10.0.0.1" not in message  # only the nodes that cannot see it
    assert "/mnt/results" in message and "s3://" in message and "gs://" in message


def test_a_node_that_could_not_be_checked_only_warns() -> None:
    unknown = NodeView("d" * 56, "10.0.0.4", detail="the probe task failed: NodeDiedError")
    verdict = decide("/mnt/results/runs", [HEAD, unknown])
    assert verdict.ok and "10.0.0.4" in verdict.message and "NodeDiedError" in verdict.message
    assert not decide("/x", [HEAD, unknown, WORKER]).ok  # a definite blind node still refuses


def test_read_probe_tells_missing_directory_from_a_different_one(tmp_path: Path) -> None:
    probe = tmp_path / ".probe"
    probe.write_text("token")
    assert read_probe(str(probe), "token")[:2] == (True, "")
    visible, detail, _ = read_probe(str(probe), "other")
    assert not visible and "other content" in detail
    visible, detail, _ = read_probe(str(tmp_path / ".missing"), "token")
    assert not visible and "different (node-local) directory" in detail
    visible, detail, _ = read_probe(str(tmp_path / "absent" / ".probe"), "token")
    assert not visible and "does not exist there" in detail


def _no_cluster() -> list[dict[str, Any]]:
    raise AssertionError("an object store URI must not probe the cluster")


@pytest.mark.parametrize("storage", ["s3://bucket/runs", "gs://bucket/runs"])
def test_object_store_uris_are_not_probed(storage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "alive_nodes", _no_cluster)
    assert check_shared_storage(storage, joined=True) is None


@pytest.mark.parametrize("joined", [True, False])
def test_one_node_passes_with_a_note_when_joined(joined: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "alive_nodes", lambda: [{"NodeID": "a" * 56, "Alive": True}])
    monkeypatch.setattr(cluster, "probe_nodes", lambda *args: pytest.fail("one node needs no probe"))
    out = io.StringIO()
    assert check_shared_storage(f"file://{tmp_path}", joined=joined, stream=out) is None
    note = out.getvalue()
    assert (note.count("\n") == 1 and str(tmp_path) in note and "autoscaler" in note) if joined else note == ""


def test_several_nodes_are_probed_and_a_blind_one_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [{"NodeID": "a" * 56, "Alive": True}, {"NodeID": "b" * 56, "Alive": True}]
    monkeypatch.setattr(cluster, "alive_nodes", lambda: nodes)
    probed: list[str] = []

    def fake_probe(path: str, alive: list[dict[str, Any]], timeout_s: float) -> list[NodeView]:
        probed.append(path)
        return [HEAD, WORKER]

    monkeypatch.setattr(cluster, "probe_nodes", fake_probe)
    message = check_shared_storage(str(tmp_path), joined=True)
    assert probed == [str(tmp_path)] and message and str(tmp_path) in message and "gpu-worker-1" in message


# --- a real two-node cluster -------------------------------------------------------------------------------

DRIVER = """
import json, os, sys
import ray
from platform.cluster import alive_nodes, check_shared_storage, probe_nodes
ray.init(address=sys.argv[1], logging_level="ERROR")
views = probe_nodes(sys.argv[2], alive_nodes(), 120.0)
left = [name for name in os.listdir(sys.argv[2]) if name.startswith(".segsweep-node-probe-")]
print(json.dumps({"views": [[v.node_id, v.visible, v.detail] for v in views], "left": left,
                  "check": check_shared_storage(sys.argv[2], joined=True)}))
"""


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A head and one worker node (1 CPU each); their workers import `platform` through PYTHONPATH, as pods do."""
    from ray.cluster_utils import Cluster

    cache = tmp_path_factory.mktemp("cluster-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO_ROOT))
        patch.setenv("SEGSWEEP_CACHE", str(cache))
        patch.setenv("RAY_DISABLE_USAGE_STATS", "1")
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            nodes.add_node(num_cpus=1)
            nodes.wait_for_nodes()
            yield nodes
        finally:
            nodes.shutdown()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def _live_ids(nodes: Any) -> set[str]:
    return {n["NodeID"] for n in nodes.global_state.node_table() if n["Alive"]}


@pytest.mark.slow
def test_probe_runs_on_both_nodes_and_a_shared_directory_passes(two_nodes: Any, tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    storage.mkdir()
    result = subprocess.run([sys.executable, "-c", DRIVER, two_nodes.address, str(storage)], capture_output=True,
                            text=True, cwd=REPO_ROOT, env=_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {node_id for node_id, _, _ in report["views"]} == _live_ids(two_nodes) and len(report["views"]) == 2
    assert all(visible for _, visible, _ in report["views"]), report
    assert report["left"] == [] and report["check"] is None


@pytest.mark.slow
def test_file_uri_sweep_runs_on_two_nodes(two_nodes: Any, tmp_path: Path) -> None:
    """`--storage file:///...` end to end: probed on both nodes, trials on the cluster, tables read by URI."""
    storage = f"file://{tmp_path / 'runs'}"
    result = subprocess.run([sys.executable, "-m", "platform.sweep", "search_spaces/lambda.yaml", "--smoke",
                             "--address", two_nodes.address, "--storage", storage],
                            capture_output=True, text=True, cwd=REPO_ROOT, env=_env(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "note:" not in result.stderr and "could not check" not in result.stderr
    trials = read_table(f"{storage}/advnorm-lambda-smoke", "trials").to_pylist()
    assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}
    assert not list((tmp_path / "runs").glob(".segsweep-node-probe-*"))


def _unshare_prefix() -> list[str] | None:
    """A command prefix giving a private mount namespace in which tmpfs can be mounted, or None."""
    if not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


@pytest.mark.slow
def test_a_node_local_storage_path_is_refused(two_nodes: Any, tmp_path: Path) -> None:
    prefix = _unshare_prefix()
    if prefix is None:
        pytest.skip("no mount namespaces here (unshare --mount): cannot give a node its own view of a path")
    storage = tmp_path / "runs"
    storage.mkdir()
    before = _live_ids(two_nodes)
    ray_bin = str(Path(sys.executable).parent / "ray")
    # The third node sees its own empty tmpfs at the storage path: a node-local directory of the same name.
    command = (f"mount -t tmpfs tmpfs {storage} && exec {ray_bin} start --address={two_nodes.address} "
               "--num-cpus=1 --block --disable-usage-stats")
    node = subprocess.Popen([*prefix, "sh", "-c", command], start_new_session=True, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_live_ids(two_nodes)) < 3:
            assert node.poll() is None and time.monotonic() < deadline, "the namespaced node did not join"
            time.sleep(0.5)
        (blind,) = _live_ids(two_nodes) - before
        result = subprocess.run([sys.executable, "-m", "platform.sweep", "search_spaces/lambda.yaml", "--smoke",
                                 "--address", two_nodes.address, "--storage", str(storage)],
                                capture_output=True, text=True, cwd=REPO_ROOT, env=_env(), timeout=600)
        assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
        error = result.stderr
        assert f"storage {storage} is a path on the driver's node" in error and "1 of 3 Ray nodes" in error, error
        assert f"id {blind[:12]}" in error and "different (node-local) directory" in error
        assert not any(f"id {other[:12]}" in error for other in before)
        assert "/mnt/results" in error and "s3://" in error
        assert not list(storage.glob(".segsweep-node-probe-*")) and not (storage / "advnorm-lambda-smoke").exists()
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(timeout=90)
