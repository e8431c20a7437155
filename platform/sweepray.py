"""Starting or joining the sweep's Ray: a local Ray of its own (started again when Ray's own start-up limit is
overrun on a loaded machine) or a cluster at ``--address``, and the resources a run would get."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _resources_for_plan(address: str | None) -> dict[str, float]:
    """Resources a run would get: the cluster's when --address names one (joining starts nothing), else this
    machine's CPUs and visible GPUs, which is what a local Ray would offer."""
    import ray

    if ray.is_initialized():  # a driver that started its own Ray (a script, a test) runs on that one
        return dict(ray.cluster_resources())
    if address:
        _init_ray(address=address, logging_level="ERROR")
        try:
            return dict(ray.cluster_resources())
        finally:
            ray.shutdown()
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


class RayStartError(Exception):
    """Ray did not start, or the cluster could not be joined; the message says what to try."""


def _init_ray(**kwargs: Any) -> Any:
    """``ray.init`` (its ``RayContext``); a cluster that cannot be reached, or a local Ray that does not start within
    ``ray_start_timeout_s`` (``SEGSWEEP_RAY_START_TIMEOUT_S``), is a ``RayStartError`` with what to try."""
    import ray

    from platform.localray import START_TIMEOUT_ENV, cluster_unreachable, ray_start_timeout_s

    address = kwargs.get("address")
    joining = address not in (None, "local")
    try:
        timeout = ray_start_timeout_s()
    except ValueError as err:
        raise RayStartError(str(err)) from None
    if joining:
        unreachable = cluster_unreachable(str(address), timeout)
        if unreachable:
            raise RayStartError(f"could not join the Ray cluster at {address!r} ({unreachable}). Check the "
                                "address (ray://HOST:10001 or HOST:6379) and that the cluster is up, or run "
                                "without --address for a local Ray.")
    else:
        # Ray waits for its GCS as long as this says (its own default is shorter than a loaded machine needs).
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(int(timeout)))
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ray.init(**kwargs)
        except Exception as exc:  # ray.init raises many types (ConnectionError, TimeoutError, RuntimeError, ...)
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
            if joining:
                raise RayStartError(f"could not join the Ray cluster at {address!r} ({reason}). Check the "
                                    "address (ray://HOST:10001 or HOST:6379) and that the cluster is up, or run "
                                    "without --address for a local Ray.") from None
            # Ray gives its node 30 s to register, a limit of its own that a loaded machine overruns: start it
            # again while the sweep's own limit allows.
            ray.shutdown()
            if time.monotonic() >= deadline or "timed out during startup" not in str(exc):
                raise RayStartError(
                    f"the local Ray did not start within {timeout:.0f} s ({reason}). The machine may be loaded "
                    f"or short of memory: try again when the load drops, free memory, allow it longer (e.g. "
                    f"{START_TIMEOUT_ENV}={int(max(2 * timeout, 300))}), or join a running cluster with "
                    "--address. Nothing was written.") from None
            print(f"warning: the local Ray did not start in Ray's own time ({reason}); starting it again "
                  f"(up to {timeout:.0f} s in all, {START_TIMEOUT_ENV}).", file=sys.stderr, flush=True)


def _start_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    # Inside `ray job submit`, RAY_ADDRESS names the cluster and the job's runtime env (working dir) applies.
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        from platform.provenance import cpu_kernel_pin

        # A cluster's workers inherit their nodes' environment: the CPU kernel pin (set by platform.reproduce, or
        # by hand) travels in the job's runtime env, which Ray merges with that of `ray job submit`.
        pin = cpu_kernel_pin()
        _init_ray(address=address, log_to_driver=True, **({"runtime_env": {"env_vars": pin}} if pin else {}))
        return
    from platform.localray import mark_current_session, ray_temp_dir, reap_abandoned

    # What an earlier local run killed with SIGKILL left running (its own session's processes only).
    reap_abandoned(ray_temp_dir())
    # A local Ray of its own ("local": never join another user's `ray start` cluster found on this machine);
    # workers import `platform` from the repository root.
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    context = _init_ray(address="local", include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
                        log_to_driver=True, configure_logging=True, logging_level="WARNING")
    mark_current_session(context.address_info.get("session_dir"))
    import atexit

    from platform.localray import mark_session_stopping

    # Registered after ray.init's own ray.shutdown, so it runs first: the supervisor, which sees the Ray's
    # processes go, then knows this driver stops them itself (however long that takes on a loaded machine).
    atexit.register(mark_session_stopping)
