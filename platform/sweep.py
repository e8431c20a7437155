"""``python -m platform.sweep SPEC.yaml [--dry-run] [--smoke] [--resume] [--storage URI] [--address ADDR]
[key=value ...]``: validate a sweep, print its plan, run it on Ray Tune, print the ranked trials.

User mistakes (spec, manifest, storage, resume) print one paragraph and exit with code 2 before Ray starts; so
does a second sweep on an experiment another sweep writes (``platform.lock``), and a ``--resume`` whose spec
changes what defines the trials (``platform.resume``). A Ray that dies under a running sweep, and a results
storage that cannot be written (a full disk), print one paragraph with the ``--resume`` command and exit with
code 3 (``platform.supervisor``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from platform.spec import SpecError, SweepSpec, load_spec

EXIT_USER_ERROR = 2
EXIT_STOPPED = 3  # stopped by its environment (a full disk, a failing store): continue with --resume
REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m platform.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="sweep spec YAML, e.g. search_spaces/lambda.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override spec fields by dotted path, e.g. budget.trials=4 fixed.epochs=3")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and start nothing")
    parser.add_argument("--smoke", action="store_true", help="tiny data, networks and budget (about a minute)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted experiment")
    parser.add_argument("--storage", help="results location (path or s3://, gs:// URI); overrides the spec")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Ray Tune's and Optuna's own output (its boxes, study and logger messages)")
    # Intermixed: overrides may come after options (`SPEC --storage X budget.trials=4`).
    return parser.parse_intermixed_args(argv)


def plan_text(spec: SweepSpec, experiment: str, available: dict[str, float] | None = None) -> str:
    """The resolved plan that --dry-run prints; ``available`` resources name the derived concurrency."""
    from platform.space import describe_axis

    config = spec.base_config()
    lines = [f"experiment   {spec.name}  ->  {experiment}", f"trainer      {spec.trainer}",
             "config       " + ", ".join(f"{k}={v}" for k, v in config.model_dump(by_alias=True).items()),
             "data         " + ", ".join(f"{k}={v}" for k, v in spec.data.model_dump().items() if v is not None)]
    data = spec.data
    everything = data.domains or ["every domain of the manifest"]
    split = "the manifest's split column if any, else " if data.dataset == "manifest" else ""
    lines.append(f"domains      train on {data.train_domains or everything}, evaluate on "
                 f"{data.eval_domains or everything}; splits: {split}val {data.val_fraction:g}"
                 + (f" ({data.folds} folds)" if data.folds else "")
                 + f", test {data.test_fraction:g} of each domain's subjects; intensity {data.intensity}"
                 + (" (non-zero voxels)" if data.intensity_nonzero else ""))
    lines.append("search axes  " + ("none" if not spec.search else ""))
    lines += [f"  - {describe_axis(key, axis)}" for key, axis in spec.search.items()]
    searcher = spec.searcher
    lines.append(f"searcher     optuna/{searcher.sampler} seed={searcher.seed}"
                 + (f", first points {searcher.points_to_evaluate}" if searcher.points_to_evaluate else ""))
    lines.append(f"scheduler    {spec.scheduler.type}" + (
        f" (grace {spec.scheduler.grace_period}, reduction {spec.scheduler.reduction_factor}, max {config.epochs})"
        if spec.scheduler.type == "asha" else ""))
    lines.append("objective    " + ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives))
    combos = spec.repeats.combos()
    lines.append(f"repeats      {len(combos)} per config: " + ", ".join(
        f"seed {s}" + (f"/fold {f}" if f is not None else "") for s, f in combos))
    lines.append(f"trials       {spec.configs_to_sample()} configs x {len(combos)} repeats = {spec.trial_count()}"
                 f", {config.epochs} epochs each at most")
    res = spec.resources
    path = ("in-process" if res.workers_per_trial == 1
            else f"Ray Train TorchTrainer, {res.workers_per_trial} workers (DDP)")
    if spec.budget.concurrent:
        concurrent = str(spec.budget.concurrent)
    elif available is not None:
        from platform.tuning import default_concurrency

        concurrent = (f"{default_concurrency(spec, available)} (as resources allow: {available.get('CPU', 0):g} CPU, "
                      f"{available.get('GPU', 0):g} GPU)")
    else:
        concurrent = "as resources allow"
    lines.append(f"resources    {path}; per worker {res.cpus_per_worker} CPU, {res.gpus_per_worker} GPU; "
                 f"concurrent {concurrent}"
                 + (f"; time budget {spec.budget.time_budget_s}s" if spec.budget.time_budget_s else ""))
    lines.append(f"runtime      {spec.runtime.describe()}")
    return "\n".join(lines)


def results_text(spec: SweepSpec, experiment: str, limit: int = 40) -> str:
    """Trials ranked by the first objective, from the results table."""
    from platform.results import read_table

    rows = read_table(experiment, "trials").to_pylist()
    objective = spec.objectives[0]
    key = f"best/{objective.metric}"

    def rank(row: dict[str, Any]) -> float:
        value = row.get(key)
        if value is None or not math.isfinite(value):
            return math.inf
        return -value if objective.mode == "max" else value

    rows.sort(key=rank)
    extra = [f"best/{o.metric}" for o in spec.objectives[1:]]
    # The test score beside the validation score it was selected on: the best-on-val checkpoint's.
    tests = [column for o in spec.objectives if o.metric.startswith("val/")
             if (column := f"test/best/{o.metric[4:]}") in {k for row in rows for k in row}]
    headers = ["trial_id", "status", *[f"config/{k}" for k in spec.search], "seed",
               *(["fold"] if spec.repeats.folds else []), key, *tests[:1], *extra, *tests[1:], "epochs", "wall_s"]
    table = [[_cell(row.get(h)) for h in headers] for row in rows[:limit]]
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    errors = [f"  {row['trial_id']}: {row.get('error')}" for row in rows if row.get("status") == "ERROR"]
    if errors:
        out += ["errored trials:", *errors]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _storage_failure(exc: BaseException) -> str | None:
    """What a storage failure under ``tuner.fit`` says (``StorageFailed``, or a full disk anywhere in the
    exception's causes), or None for any other exception."""
    from platform.tuning import StorageFailed, storage_reason

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFailed):
            return str(current)
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"the results storage cannot be written ({storage_reason(current)})"
        current = current.__cause__ or current.__context__
    return None


def retried_text(experiment: str) -> str | None:
    """The trials Tune restarted from a checkpoint after the infrastructure failed under them, or None."""
    from platform.results import read_table

    try:
        rows = read_table(experiment, "trials").to_pylist()
    except Exception:  # the summary is a courtesy; the table's own problems are reported where it is read
        return None
    retried = sorted((row["trial_id"], int(row.get("retries") or 0)) for row in rows if row.get("retries"))
    if not retried:
        return None
    return ("retried from their last checkpoint after a lost worker or node: "
            + ", ".join(f"{trial} ({n} time{'s' if n > 1 else ''})" for trial, n in retried))


def stopped(spec: SweepSpec, args: argparse.Namespace, experiment: str, at_once: bool) -> int:
    """The end of a sweep stopped by SIGINT or SIGTERM: the queued rows written (``at_once``: the second signal
    skipped Tune's last state save), one paragraph with the ``--resume`` command; exit 130 or 143."""
    from ray import tune

    from platform import interrupts
    from platform.results import read_table
    from platform.supervisor import resume_command

    if at_once:
        interrupts.flush_all()
        interrupts.stopping()
    try:
        rows = read_table(experiment, "trials", columns=["trial_id", "status"]).to_pylist()
        finished = sum(row["status"] in ("TERMINATED", "ERROR") for row in rows)
        count = f" {finished} of {spec.trial_count()} trials finished."
    except Exception:  # the count is a courtesy
        count = ""
    signum = interrupts.received() or 2
    name = interrupts.NAMES.get(signum, f"signal {signum}")
    if tune.Tuner.can_restore(experiment):
        how = ("Every reported epoch is written, and each unfinished trial continues from its last checkpoint. "
               f"Continue the sweep with:\n  {resume_command(getattr(args, 'argv', sys.argv[1:]))}")
    else:
        how = "No trial had started: run the same command again to start the sweep."
    print(f"stopped by {name}{' (at once)' if at_once else ''}.{count} {how}", file=sys.stderr, flush=True)
    return interrupts.exit_code()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def _validate_data(spec: SweepSpec) -> None:
    """Load (and for the phantom, build) the data once before any trial starts; manifest errors surface here."""
    from platform.data.datasets import load_cases, split_cases

    cases = load_cases(spec.data)
    for _, fold in spec.repeats.combos():
        split_cases(cases, spec.data, fold=fold)  # every role keeps its subjects in every fold


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


def _init_ray(**kwargs: Any) -> None:
    """``ray.init``; a cluster that cannot be reached, or a local Ray that does not start within
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
            ray.init(**kwargs)
            return
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
        _init_ray(address=address, log_to_driver=True)
        return
    from platform.localray import mark_current_session, ray_temp_dir, reap_abandoned

    # What an earlier local run killed with SIGKILL left running (its own session's processes only).
    reap_abandoned(ray_temp_dir())
    # A local Ray of its own ("local": never join another user's `ray start` cluster found on this machine);
    # workers import `platform` from the repository root.
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    _init_ray(address="local", include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
              log_to_driver=True, configure_logging=True, logging_level="WARNING")
    mark_current_session()
    import atexit

    from platform.localray import mark_session_stopping

    # Registered after ray.init's own ray.shutdown, so it runs first: the supervisor, which sees the Ray's
    # processes go, then knows this driver stops them itself (however long that takes on a loaded machine).
    atexit.register(mark_session_stopping)


def preflight(spec: SweepSpec, args: argparse.Namespace, storage: str, experiment: str) -> str | None:
    """Every check a run makes before Ray starts, the same under --dry-run: storage, the experiment's
    existence, the data and the resources. The problem's message, or None."""
    from platform.storage import StorageError, check_storage

    try:
        check_storage(storage)
    except StorageError as err:
        return str(err)
    # Fast epochs checkpoint often; Tune then warns on every forced experiment snapshot, which says nothing
    # actionable to a researcher.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

    problem = experiment_problem(spec, args, experiment)
    if problem:
        return problem
    try:
        if spec.trainer_class().USES_DATA:  # a synthetic trainer (tests, benchmarks) loads no cases
            _validate_data(spec)
    except (ValueError, OSError) as exc:
        return f"data: {exc}"
    if not (args.address or os.environ.get("RAY_ADDRESS")):  # a cluster may still scale up to fit a trial
        from platform.tuning import unschedulable_reason

        problem = unschedulable_reason(spec, _resources_for_plan(None))
        if problem:
            return f"resources: {problem}"
    return None


def experiment_problem(spec: SweepSpec, args: argparse.Namespace, experiment: str,
                       check_lock: bool = True) -> str | None:
    """Whether the experiment can be started (it must not exist) or resumed (it must exist, with the same
    defining spec: ``platform.resume``), and (``check_lock``) that no live sweep writes it (``platform.lock``)."""
    from ray import tune

    from platform.lock import lock_owner

    owner = lock_owner(experiment) if check_lock else None
    if owner is not None:
        return (f"experiment {spec.name!r} at {experiment} is being written by another sweep ({owner.describe()}). "
                "Wait for it to end, or use a different name (e.g. name=my-sweep-2).")
    exists = tune.Tuner.can_restore(experiment)
    if args.resume and not exists:
        return (f"--resume: no experiment {spec.name!r} at {experiment} to continue. Check the name and "
                "--storage, or run without --resume to start it.")
    if not args.resume and exists:
        return (f"experiment {spec.name!r} already exists at {experiment}. Continue it with --resume, or "
                "start a new one with a different name (e.g. name=my-sweep-2).")
    if args.resume:
        from platform.resume import resume_problem

        return resume_problem(experiment, spec)
    return None


def _locked_run(spec: SweepSpec, args: argparse.Namespace, storage: str, experiment: str) -> int:
    """``_run`` under the experiment's lock: a second sweep on it is refused (exit 2) naming the owner; the
    existence and spec checks run again once the lock is held (another sweep may have created it meanwhile)."""
    from platform.lock import ExperimentLock, LockHeld

    lock = ExperimentLock(experiment)
    created = not _exists(experiment)
    try:
        lock.acquire()
    except LockHeld as err:
        return _fail(str(err))
    except OSError as exc:
        return _fail(f"storage {storage!r}: the experiment's lock cannot be written ({exc}).")
    try:
        problem = experiment_problem(spec, args, experiment, check_lock=False)
        if problem:
            return _fail(problem)
        lock.start_heartbeat()
        return _run(spec, args, storage, experiment)
    finally:
        lock.release()
        if created:
            _remove_if_empty(experiment)  # a sweep refused before it wrote anything leaves no folder behind


def _exists(experiment: str) -> bool:
    import pyarrow.fs as pafs

    from platform.storage import filesystem

    try:
        fs, path = filesystem(experiment)
        return fs.get_file_info(path).type != pafs.FileType.NotFound
    except OSError:
        return True  # unknown: never remove what might be someone's


def _remove_if_empty(experiment: str) -> None:
    """Delete the experiment's folder when nothing but the lock was ever written to it."""
    import pyarrow.fs as pafs

    from platform.storage import filesystem

    with contextlib.suppress(OSError):
        fs, path = filesystem(experiment)
        if not fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
            fs.delete_dir(path)


def quiet_libraries(verbose: bool) -> None:
    """The sweep's own progress lines are what a researcher reads: without ``--verbose``, Tune's legacy output
    engine at verbosity 0 (no experiment box naming "SearchGenerator", no TensorBoard hint for a temporary folder),
    Optuna at warnings, and no notice that a local Ray uses token authentication (it does, by default)."""
    if verbose:
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import logging

    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: list[str] | None = None, supervised: bool = False) -> int:
    """The command. ``supervised`` (the command line): after the checks, the sweep runs in a child process
    that ``platform.supervisor`` watches, so a Ray that dies under it ends in one paragraph and exit code 3."""
    from platform.supervisor import CHILD_ENV

    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from platform.trainers import plugin_problem

    if plugin_problem():
        return _fail(plugin_problem() or "")
    from platform.localray import ray_start_timeout_s

    try:
        ray_start_timeout_s()  # read again where Ray starts; a mistyped value is refused before anything runs
    except ValueError as err:
        return _fail(str(err))
    args.argv = list(argv)  # for the --resume command a stopped sweep prints
    quiet_libraries(args.verbose)
    overrides = list(args.overrides)
    if args.storage is not None:
        # Quoted: the option is text, never YAML (``--storage ''`` is an empty location, not null).
        overrides.append(f"storage={json.dumps(args.storage)}")
    try:
        spec = load_spec(args.spec, overrides, smoke=args.smoke)
    except SpecError as err:
        return _fail(str(err))

    from platform.storage import experiment_uri, resolve_storage

    storage = resolve_storage(spec.storage)
    experiment = experiment_uri(spec.storage, spec.name)
    child = bool(os.environ.get(CHILD_ENV))
    from platform import interrupts

    problem = None if child else preflight(spec, args, storage, experiment)  # the parent checked already
    if problem:
        return _fail(problem)
    try:
        if args.dry_run:
            print(plan_text(spec, experiment, _resources_for_plan(args.address)))
            return 0
        if supervised and not child:
            from platform.supervisor import supervise

            return supervise(argv, local=not (args.address or os.environ.get("RAY_ADDRESS")))
        return _locked_run(spec, args, storage, experiment)
    except RayStartError as err:
        return _fail(str(err))
    except interrupts.StopNow:  # a signal after Ray started, before Tune ran
        return stopped(spec, args, experiment, at_once=True)
    except KeyboardInterrupt:  # before the sweep's own handlers (preflight, the plan): nothing started
        print("\nstopped by SIGINT (Ctrl-C) before the sweep started; nothing was written.", file=sys.stderr)
        return 130


def _run(spec: SweepSpec, args: argparse.Namespace, storage: str, experiment: str) -> int:
    from platform.tuning import build_tuner, default_concurrency, restore_tuner, unschedulable_reason

    _start_ray(args.address)
    from platform import interrupts

    # After ray.init: Ray's own SIGTERM handling in a driver prints a native stack dump and aborts.
    interrupts.install()
    import ray

    print(plan_text(spec, experiment, ray.cluster_resources()), flush=True)

    problem = unschedulable_reason(spec, ray.cluster_resources())
    on_cluster = bool(args.address or os.environ.get("RAY_ADDRESS"))
    if problem and not on_cluster:
        ray.shutdown()
        return _fail(f"resources: {problem}")
    if problem:  # an autoscaling cluster may still grow to fit it
        print(f"warning: {problem} Trials wait until the cluster scales up.", file=sys.stderr)
    from platform.cluster import check_shared_storage

    not_shared = check_shared_storage(storage, joined=on_cluster)  # a local path must be shared by every node
    if not_shared:
        ray.shutdown()
        return _fail(not_shared)
    epochs = spec.base_config().epochs
    concurrent = spec.budget.concurrent or default_concurrency(spec)
    from platform.tuning import mark_sweep_start

    started = mark_sweep_start()  # the progress lines count from here too: one clock
    tuner = restore_tuner(spec, experiment) if args.resume else build_tuner(spec, storage, experiment, epochs,
                                                                             concurrent)
    try:
        tuner.fit()
    except interrupts.StopNow:
        return stopped(spec, args, experiment, at_once=True)
    except Exception as exc:  # Tune wraps a callback's exception (TuneError); the storage's is named
        failed = _storage_failure(exc)
        if failed is None:
            raise
        from platform.supervisor import resume_command

        print(f"error: the sweep stopped because {failed}. Every row not yet written is in Tune's state "
              "again: once the storage can be written (free space, check the store), continue the sweep with:\n"
              f"  {resume_command(getattr(args, 'argv', sys.argv[1:]))}", file=sys.stderr, flush=True)
        return EXIT_STOPPED
    if interrupts.received() is not None:
        return stopped(spec, args, experiment, at_once=False)
    elapsed = time.monotonic() - started
    print()
    print(results_text(spec, experiment))
    retried = retried_text(experiment)
    if retried:
        print(retried)
    from platform.storage import join

    # Quoted: a URI's query has "&", which a shell would take for "run in the background".
    print(f"\n{spec.trial_count()} trials in {elapsed:.0f} s. Results: {join(experiment, 'tables')} "
          f"(trials, epochs, artifacts, cases, sweep); explore with: python -m dashboards.app --storage "
          f"{shlex.quote(storage)} --experiment {shlex.quote(spec.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(supervised=True))
