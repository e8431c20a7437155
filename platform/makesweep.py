"""``python -m platform.makesweep SPEC.yaml [key=value ...] [sweep options]``: what ``make sweep`` runs, a sweep
that can be run again.

The first run starts the experiment (``python -m platform.sweep``). A later run with the same spec and arguments
finds the experiment: when every planned trial has finished it prints the ranked trials and the explorer's command
and exits 0, running nothing; otherwise it continues the experiment (``--resume``, with the spec-hash check of
:mod:`platform.resume`). ``--resume`` and ``--dry-run`` given explicitly pass straight to the sweep, as does any
spec mistake (the sweep explains it).
"""

from __future__ import annotations

import sys

FINISHED = ("TERMINATED", "ERROR")  # a trial Tune will not run again


def finished_trials(experiment: str) -> int:
    """How many trials of ``experiment`` ended (its trials table); 0 when it has no table yet."""
    from platform.results import read_table

    try:
        rows = read_table(experiment, "trials").to_pylist()
    except (FileNotFoundError, OSError, ValueError):
        return 0
    return sum(row.get("status") in FINISHED for row in rows)


def main(argv: list[str] | None = None) -> int:
    """Start, continue or report the sweep ``argv`` names; the sweep's exit code, 0 when already finished."""
    import json

    from platform import sweep
    from platform.spec import SpecError, load_spec

    argv = sys.argv[1:] if argv is None else list(argv)
    args = sweep.parse_args(argv)
    if args.resume or args.dry_run:
        return sweep.main(argv, supervised=True)
    overrides = list(args.overrides)
    if args.storage is not None:
        overrides.append(f"storage={json.dumps(args.storage)}")
    try:
        spec = load_spec(args.spec, overrides, smoke=args.smoke)
    except SpecError:
        return sweep.main(argv, supervised=True)  # the sweep prints the one-paragraph explanation
    from ray import tune

    from platform.storage import experiment_uri, resolve_storage

    experiment = experiment_uri(spec.storage, spec.name)
    if not tune.Tuner.can_restore(experiment):
        return sweep.main(argv, supervised=True)
    done, planned = finished_trials(experiment), spec.trial_count()
    if done < planned:
        print(f"experiment {spec.name!r} exists at {experiment} with {done} of {planned} trials finished: "
              "continuing it (--resume).", flush=True)
        return sweep.main([*argv, "--resume"], supervised=True)
    print(sweep.results_text(spec, experiment))
    print(f"\nexperiment {spec.name!r} at {experiment} has finished all {planned} trials; nothing to run. To run "
          f"the spec again beside it, give it another name (make sweep ARGS=\"name={spec.name}-2\"). "
          f"Explore with: {sweep.explore_command(resolve_storage(spec.storage), spec.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
