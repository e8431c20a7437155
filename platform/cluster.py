"""Checks that need the connected Ray cluster: is a local storage path really shared by every node?

Tune writes checkpoints from the node a trial runs on and trials copy their artifacts into storage, so on a
multi-node cluster a local path (or ``file://`` URI) must name the same directory on every node: a shared mount.
The driver writes a probe file there and a zero-CPU task pinned to each alive node reads it back; a node that
cannot see the probe refuses the run before any trial starts. Object store URIs (``s3://``, ``gs://``) are
shared by nature and pass unprobed, as does a single-node cluster (with a note when joined: nodes the
autoscaler adds later are not probed).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlparse

import pyarrow.fs as pafs

from platform.storage import filesystem, is_uri

PROBE_PREFIX = ".segsweep-node-probe-"
FIX = ("Every node writes checkpoints and artifacts there, so storage must be shared: use a mount present at the "
       "same path on every node (e.g. the segsweep-results claim mounted at /mnt/results in k8s/, "
       "--storage /mnt/results/runs), or an object store URI (--storage s3://BUCKET/runs or gs://BUCKET/runs).")


@dataclass(frozen=True)
class NodeView:
    """What one node saw at the probe path: ``visible`` is None when the node could not be checked."""

    node_id: str
    address: str
    hostname: str = ""
    visible: bool | None = None
    detail: str = ""

    def label(self) -> str:
        host = f"host {self.hostname}, " if self.hostname and self.hostname != self.address else ""
        return f"node {self.address} ({host}id {self.node_id[:12]})"


@dataclass(frozen=True)
class Verdict:
    """``ok`` False refuses the run with ``message``; with ``ok`` True, a non-empty ``message`` is a warning."""

    ok: bool
    message: str = ""


def decide(path: str, views: Sequence[NodeView]) -> Verdict:
    """Refuse when any node cannot see the driver's probe at ``path``; warn about nodes that could not be checked."""
    blind = [v for v in views if v.visible is False]
    unknown = [v for v in views if v.visible is None]
    if blind:
        nodes = "; ".join(f"{v.label()}: {v.detail}" for v in blind)
        return Verdict(False, f"storage {path} is a path on the driver's node, but {len(blind)} of {len(views)} Ray "
                              f"nodes cannot see the files written there ({nodes}). {FIX}")
    if unknown:
        nodes = "; ".join(f"{v.label()}: {v.detail}" for v in unknown)
        return Verdict(True, f"could not check that {len(unknown)} of {len(views)} Ray nodes see storage {path} "
                             f"({nodes}); trials there fail if it is not shared.")
    return Verdict(True)


def read_probe(probe: str, token: str) -> tuple[bool, str, str]:
    """(visible, detail, hostname) for the probe file as this process sees it; runs on each node."""
    host = socket.gethostname()
    try:
        with open(probe, encoding="utf-8") as stream:
            content = stream.read()
    except FileNotFoundError:
        directory = os.path.dirname(probe)
        if os.path.isdir(directory):
            return False, f"{directory} exists there but is a different (node-local) directory", host
        return False, f"{directory} does not exist there", host
    except OSError as exc:
        return False, f"cannot read {probe} there ({exc})", host
    if content != token:
        return False, f"{probe} there holds other content (a different directory at the same path)", host
    return True, "", host


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def probe_nodes(directory: str, nodes: Sequence[dict[str, Any]], timeout_s: float = 120.0) -> list[NodeView]:
    """Write a probe into ``directory`` and read it back with a zero-CPU task pinned to each node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe = os.path.join(directory, f"{PROBE_PREFIX}{token}")
    os.makedirs(directory, exist_ok=True)
    with open(probe, "w", encoding="utf-8") as stream:
        stream.write(token)
    remote = ray.remote(num_cpus=0, max_retries=0)(read_probe)
    try:
        refs = {node["NodeID"]: remote.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(probe, token)
            for node in nodes}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
        views = []
        for node in nodes:
            ref = refs[node["NodeID"]]
            view = {"node_id": node["NodeID"], "address": node.get("NodeManagerAddress", "?"),
                    "hostname": node.get("NodeManagerHostname", "")}
            if ref not in ready:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                views.append(NodeView(**view, detail=f"the probe task did not finish within {timeout_s:g} s"))
                continue
            try:
                visible, detail, host = ray.get(ref)
                views.append(NodeView(**{**view, "hostname": host or view["hostname"]}, visible=visible,
                                      detail=detail))
            except Exception as exc:  # the node died, or the task's runtime environment or import failed
                cause = getattr(exc, "cause", None) or exc
                first = (str(cause).strip().splitlines() or [""])[0][:200]
                views.append(NodeView(**view, detail=f"the probe task failed: {type(cause).__name__}: {first}"))
        return views
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(probe)


def check_shared_storage(storage: str, joined: bool, timeout_s: float = 120.0,
                         stream: TextIO | None = None) -> str | None:
    """The refusal message if ``storage`` is local and some alive node of the connected cluster cannot see it,
    else None. A one-node cluster one has joined gets a note that nodes added later must mount it too."""
    if is_uri(storage) and urlparse(storage).scheme not in ("file", "local"):
        return None  # an object store: shared by nature (and not contacted here)
    fs, path = filesystem(storage)
    if not isinstance(fs, pafs.LocalFileSystem):
        return None
    out = stream or sys.stderr
    nodes = alive_nodes()
    if len(nodes) <= 1:
        if joined:
            print(f"note: storage {path} is a local path and the Ray cluster has one node now; nodes the "
                  "autoscaler adds later must mount it at the same path (or use --storage s3://...).", file=out)
        return None
    verdict = decide(path, probe_nodes(path, nodes, timeout_s))
    if verdict.ok and verdict.message:
        print(f"warning: {verdict.message}", file=out)
    return None if verdict.ok else verdict.message
