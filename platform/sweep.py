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
import json
import os
import shlex
import sys
import time
from pathlib import Path

from platform.spec import SpecError, SweepSpec, load_spec
from platform.sweepray import REPO_ROOT, RayStartError, _init_ray, _resources_for_plan, _start_ray
from platform.sweeptext import _storage_failure, plan_text, results_text, retried_text

EXIT_USER_ERROR = 2
EXIT_STOPPED = 3  # stopped by its environment (a full disk, a failing store): continue with --resume
__all__ = ["EXIT_STOPPED", "EXIT_USER_ERROR", "REPO_ROOT", "RayStartError", "_init_ray", "_resources_for_plan",
           "_start_ray", "_storage_failure", "main", "parse_args", "plan_text", "preflight", "results_text",
           "retried_text"]


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
          f"(trials, epochs, artifacts, cases, sweep); explore with: {explore_command(storage, spec.name)}")
    return 0


def explore_command(storage: str, name: str) -> str:
    """The explorer's command for one experiment, as it runs when pasted in the repository root outside an
    activated virtual environment: this interpreter (relative to the repository when inside it), never a bare
    ``python`` that may lack the explorer's packages."""
    python = Path(sys.executable)
    shown = python.relative_to(REPO_ROOT).as_posix() if python.is_relative_to(REPO_ROOT) else str(python)
    if Path.cwd().resolve() != REPO_ROOT:  # the package is imported from the repository root
        return (f"cd {shlex.quote(str(REPO_ROOT))} && {shlex.quote(shown)} -m dashboards.app --storage "
                f"{shlex.quote(storage)} --experiment {shlex.quote(name)}")
    return f"{shlex.quote(shown)} -m dashboards.app --storage {shlex.quote(storage)} --experiment {shlex.quote(name)}"


if __name__ == "__main__":
    sys.exit(main(supervised=True))
