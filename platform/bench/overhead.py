"""``overhead``: what the platform adds to every trial, against a bare Ray Tune function trainable.

Sweeps of the same N trials, each ``epochs`` epochs of ``work_s`` seconds of fixed work (a sleep, see
:mod:`platform.bench.fixed_work`), one after the other on the same local Ray (2 CPUs). The bare and in-process
sweeps run in ``rounds`` interleaved pairs (bare, platform; platform, bare; ...), so a drift of the machine's load
during the benchmark falls on both alike; the figures pool every round's trials, and the table shows each round's
ratio as the spread:

* ``bare tune``: a plain function trainable under ``tune.Tuner`` (reuse_actors, 2 concurrent, one
  ``tune.report`` per epoch, no checkpoints, no platform code). It builds the same small network and SGD
  optimizer as the benchmark trainer before its epochs: that is the trial's work, not the platform's, and
  torch's first optimizer in a process imports ``torch._dynamo`` (seconds), which any torch trainable pays;
* ``in-process``: the platform's trial path (``build_tuner`` -> ``run_trial`` -> engine) with the benchmark
  trainer, ``workers_per_trial: 1``: spec decoding, trainer construction, a checkpoint per epoch, the results
  tables written by the driver;
* ``TorchTrainer``: the same with ``workers_per_trial: 2`` (Ray Train controller, worker group, DDP wrapping).

Per-trial overhead = trial wall time (driver side, trial start to trial end) minus time inside the epochs, for
the platform straight from the ``trials`` table (``wall_s``, ``time_in_epochs_s``, ``overhead_s``) and for the
bare trainable by a callback computing the same quantities the same way. The target is on the mean over all
trials. "steady" is the mean over the trials that ran on a reused actor (all but the first ``concurrent``
started): the per-trial cost once a worker process is warm. "amortised" also charges the sweep's fixed cost
and the gaps between trials: ``fit wall x concurrency / trials - work per trial``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from ray import tune

from platform.bench.harness import local_ray, mean, run_sweep, temporary_storage, trial_rows
from platform.bench.report import BenchResult, Target

TARGET_RATIO = 1.1
CONCURRENT = 2


def bare_trainable(config: dict[str, Any]) -> None:
    """The baseline: the same network and optimizer, fixed work and number of reports, nothing else."""
    torch.manual_seed(0)
    net = torch.nn.Linear(16, 16)
    torch.optim.SGD(net.parameters(), lr=0.01)
    for epoch in range(config["epochs"]):
        started = time.perf_counter()
        time.sleep(config["work_s"])
        tune.report({"epoch": epoch + 1, "time/epoch_s": time.perf_counter() - started, "val/dice": 0.5})


class TrialClock(tune.Callback):
    """Per-trial wall time and time in epochs of a bare Tune run, measured as the platform's results callback
    does (driver clock from ``on_trial_start`` to the trial's end); appends one JSON line per trial to ``path``
    (a file, because Tune may copy callbacks)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.started: dict[str, float] = {}
        self.work: dict[str, float] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.work[trial.trial_id] = self.work.get(trial.trial_id, 0.0) + float(result.get("time/epoch_s", 0.0))

    def _finish(self, trial: Any, status: str) -> None:
        ended = time.time()
        wall = ended - self.started.get(trial.trial_id, ended)
        work = self.work.get(trial.trial_id, 0.0)
        with open(self.path, "a") as stream:
            stream.write(json.dumps({"trial_id": trial.trial_id, "status": status, "wall_s": wall,
                                     "started_at": self.started.get(trial.trial_id, ended),
                                     "time_in_epochs_s": work, "overhead_s": wall - work}) + "\n")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "ERROR")


def run_bare(root: Path, name: str, trials: int, epochs: int, work_s: float) -> tuple[list[dict[str, Any]], float]:
    """(per-trial rows, fit seconds) of the bare Tune baseline."""
    clock_file = root / f"{name}.jsonl"
    tuner = tune.Tuner(
        tune.with_resources(bare_trainable, {"CPU": 1}),
        param_space={"epochs": epochs, "work_s": work_s, "tag": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=CONCURRENT, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(root), verbose=0,
                                  callbacks=[TrialClock(str(clock_file))],
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    started = time.monotonic()
    tuner.fit()
    elapsed = time.monotonic() - started
    rows = [json.loads(line) for line in clock_file.read_text().splitlines()]
    failed = [r["trial_id"] for r in rows if r["status"] != "TERMINATED"]
    if failed or len(rows) != trials:
        raise RuntimeError(f"bare Tune baseline: {len(rows)} of {trials} trials finished, failed: {failed}")
    return rows, elapsed


def run_platform(root: Path, name: str, trials: int, epochs: int, work_s: float,
                 workers: int) -> tuple[list[dict[str, Any]], float, int]:
    """(trials table rows, fit seconds, concurrency) of the platform's path with the fixed-work trainer."""
    from platform.bench.fixed_work import sweep_spec
    from platform.tuning import default_concurrency

    # Two workers at half a CPU each: a TorchTrainer trial fits in 2 CPUs (with its 0.01-CPU driver).
    cpus = 1.0 if workers == 1 else 0.5
    spec = sweep_spec(name, root, trials=trials, epochs=epochs, work_s=work_s, workers=workers, cpus=cpus,
                      concurrent=CONCURRENT if workers == 1 else None)
    experiment, elapsed = run_sweep(spec)
    return trial_rows(experiment), elapsed, spec.budget.concurrent or default_concurrency(spec)


def summarise(label: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-trial figures of one path over its sweeps (``rounds``: each its trial ``rows``, ``fit_s`` and
    ``concurrency``): means over every trial, the steady mean without each sweep's cold starts, the amortised
    cost averaged over the sweeps, and each sweep's own mean overhead (``round_overheads_s``)."""
    rows: list[dict[str, Any]] = []
    steady: list[float] = []
    amortised: list[float] = []
    round_overheads: list[float] = []
    for sweep in rounds:
        ordered = sorted(sweep["rows"], key=lambda r: r["started_at"])
        work = mean([r["time_in_epochs_s"] for r in ordered])
        rows += ordered
        # The first `concurrency` trials each started an actor; later ones reuse them (reuse_actors).
        steady += [r["overhead_s"] for r in ordered[sweep["concurrency"]:]]
        amortised.append(sweep["fit_s"] * sweep["concurrency"] / len(ordered) - work)
        round_overheads.append(mean([r["overhead_s"] for r in ordered]))
    return {"label": label, "trials": len(rows), "concurrency": rounds[0]["concurrency"],
            "wall_s": mean([r["wall_s"] for r in rows]), "work_s": mean([r["time_in_epochs_s"] for r in rows]),
            "overhead_s": mean([r["overhead_s"] for r in rows]), "steady_s": mean(steady),
            "amortised_s": mean(amortised), "fit_s": sum(r["fit_s"] for r in rounds),
            "round_overheads_s": round_overheads}


def run(quick: bool = False) -> BenchResult:
    trials, epochs, work_s, torch_trials, rounds = (4, 3, 0.2, 1, 1) if quick else (12, 5, 0.2, 3, 3)
    bare_rounds: list[dict[str, Any]] = []
    platform_rounds: list[dict[str, Any]] = []
    with temporary_storage("overhead") as root, local_ray(num_cpus=2):
        for index in range(rounds):
            for path in ("bare", "platform") if index % 2 == 0 else ("platform", "bare"):
                if path == "bare":
                    rows, fit_s = run_bare(root, f"bare-{index}", trials, epochs, work_s)
                    bare_rounds.append({"rows": rows, "fit_s": fit_s, "concurrency": CONCURRENT})
                else:
                    rows, fit_s, concurrency = run_platform(root, f"in-process-{index}", trials, epochs, work_s,
                                                            workers=1)
                    platform_rounds.append({"rows": rows, "fit_s": fit_s, "concurrency": concurrency})
        rows, fit_s, concurrency = run_platform(root, "torchtrainer", torch_trials, epochs, work_s, workers=2)
        torchtrainer = summarise("TorchTrainer (2 workers)", [{"rows": rows, "fit_s": fit_s,
                                                                "concurrency": concurrency}])

    bare = summarise("bare tune", bare_rounds)
    inprocess = summarise("in-process", platform_rounds)
    round_ratios = [p / b for b, p in zip(bare["round_overheads_s"], inprocess["round_overheads_s"], strict=True)]
    paths = [bare, inprocess, torchtrainer]
    base = bare["overhead_s"]
    headers = ["path", "trials", "concurrent", "wall s", "work s", "overhead s", "x bare", "steady s",
               "steady x bare", "amortised s", "amortised x bare", "sweep s"]
    table = [[p["label"], p["trials"], p["concurrency"], p["wall_s"], p["work_s"], p["overhead_s"],
              p["overhead_s"] / base, p["steady_s"], p["steady_s"] / bare["steady_s"], p["amortised_s"],
              p["amortised_s"] / bare["amortised_s"], p["fit_s"]] for p in paths]
    figures = {
        "bare_overhead_s": base,
        "inprocess_overhead_s": inprocess["overhead_s"],
        "torchtrainer_overhead_s": torchtrainer["overhead_s"],
        "inprocess_ratio": inprocess["overhead_s"] / base,
        "inprocess_ratio_min_round": min(round_ratios),
        "inprocess_ratio_max_round": max(round_ratios),
        "torchtrainer_ratio": torchtrainer["overhead_s"] / base,
        "inprocess_steady_ratio": inprocess["steady_s"] / bare["steady_s"],
        "inprocess_amortised_ratio": inprocess["amortised_s"] / bare["amortised_s"],
    }
    return BenchResult(
        name="overhead",
        description="per-trial overhead (wall minus time in epochs) against a bare Tune function trainable",
        headers=headers, rows=table, figures=figures,
        targets=[Target("inprocess_ratio", "<=", TARGET_RATIO)],
        settings={"trials": trials, "rounds": rounds, "torchtrainer_trials": torch_trials, "epochs": epochs,
                  "work_s_per_epoch": work_s, "concurrent": CONCURRENT, "ray_cpus": 2},
        notes=[f"in-process x bare per round (interleaved): {', '.join(f'{r:.3f}' for r in round_ratios)}",
               "TorchTrainer overhead is the Train controller and worker-group start-up per trial "
               "(no target: pay it only where DDP is wanted)"],
    )
