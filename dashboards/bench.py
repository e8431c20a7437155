"""Explorer benchmark: ``python -m dashboards.bench [--trials 10000] [--epochs 50] [--repeat 5] [--out F.json]``.

Builds an experiment in the results-tables format (a multi-objective lambda / discriminator sweep with seeds,
some errored and running trials, and real PNG artifacts), then times, server side, what a browser request
costs: the first full page (reading the tables and every view's callback, with the JSON a browser would
receive) and applying a filter (a grid filter plus an axis brush, every view recomputed). The baseline in the
same run is reading the trials table with pyarrow alone, the floor any reader pays. Targets: first
page under 2 s, a filter under 0.5 s, under 2 MB of JSON for either, and the server's peak memory under 2 GB
(the experiment is built in a child process, so the figure is the server's). With optuna-dashboard installed,
its first page on a study of the same shape is measured beside (up to 20,000 trials). ``build_experiment`` is
also what the explorer's tests use.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io
import pyarrow as pa

import platform as _stdlib_platform  # the shim forwards to the standard library's module
from dashboards.synthetic import build_experiment
from platform.results import ResultsStore
from platform.storage import experiment_uri

# --- the page as Dash fires it: every declared view and callback, from the layout's initial values -----------------

Key = tuple[str, str]  # (component id, property)


def _key(dependency: Any) -> Key | None:
    """A dependency as (id, property); None for a pattern-matching one (fired by clicks, never on load)."""
    if isinstance(dependency, tuple):
        return dependency
    component = getattr(dependency, "component_id", None)
    return (component, dependency.component_property) if isinstance(component, str) else None


def _initial_state(component: Any, state: dict[Key, Any] | None = None) -> dict[Key, Any]:
    """Every property the layout sets, by (id, property), as the browser holds it before any callback."""
    state = {} if state is None else state
    if isinstance(component, (list, tuple)):
        for child in component:
            _initial_state(child, state)
        return state
    props = getattr(component, "to_plotly_json", None)
    if props is None:
        return state
    values = props().get("props", {})
    if isinstance(values.get("id"), str):
        for prop, value in values.items():
            if prop not in ("id", "children"):
                state[(values["id"], prop)] = value
    _initial_state(values.get("children"), state)
    return state


def _callbacks(explorer: Any, graphs: list[str]) -> list[dict[str, Any]]:
    """Every server callback a page load fires: the filtered views (through ``Explorer.render``) and the declared
    callbacks, each as outputs, inputs, states and a function of their values."""
    from dashboards.app import FILTERS

    fired = []
    for view in explorer.views.values():
        fired.append({"name": view.name, "outputs": list(view.outputs), "inputs": [*FILTERS, *view.inputs],
                      "states": list(view.states), "function": lambda *a, view=view: explorer.render(view, *a)})
    for callback in explorer.callbacks.values():
        if callback.clientside is not None or callback.prevent_initial_call is True:
            continue
        states = callback.states(graphs) if callable(callback.states) else callback.states
        keys = [[_key(d) for d in group] for group in (callback.outputs, callback.inputs, states)]
        if any(k is None for group in keys for k in group):
            continue
        fired.append({"name": callback.name, "outputs": keys[0], "inputs": keys[1], "states": keys[2],
                      "function": lambda *a, callback=callback: callback.function(explorer, *a)})
    return fired


def _fire(callbacks: list[dict[str, Any]], state: dict[Key, Any], changed: set[Key] | None,
          seconds: dict[str, float] | None = None) -> dict[str, int]:
    """Run the callbacks as Dash does: all of them (``changed`` None: a page load) or those whose inputs changed,
    each after the callbacks that set its inputs, their outputs feeding the next. Returns the bytes of JSON each
    sent (plotly's encoder: figures, numpy arrays and components, as Dash serialises them); ``seconds`` gets each
    one's time (its function and its JSON)."""
    import dash

    pending = [c for c in callbacks if changed is None or changed & set(c["inputs"])]
    sizes: dict[str, int] = {}
    changed = set(changed or ())
    while pending:
        setting = {o for c in pending for o in c["outputs"]}
        ready = [c for c in pending if not (set(c["inputs"]) & (setting - set(c["outputs"])))] or pending[:1]
        for callback in ready:
            pending.remove(callback)
            started = time.perf_counter()
            answer = callback["function"](*(state.get(k) for k in (*callback["inputs"], *callback["states"])))
            answers = answer if len(callback["outputs"]) > 1 else [answer]
            sent, updated = 0, set()
            for key, value in zip(callback["outputs"], answers, strict=True):
                if value is dash.no_update:  # not sent, and nothing that follows it fires
                    continue
                sent += len(plotly.io.json.to_json_plotly(value))
                state[key] = value
                updated.add(key)
            changed |= updated
            sizes[callback["name"]] = sizes.get(callback["name"], 0) + sent
            if seconds is not None:
                seconds[callback["name"]] = seconds.get(callback["name"], 0.0) + time.perf_counter() - started
            # Callbacks not yet pending whose inputs this one set fire next (Dash's chained callbacks).
            pending += [c for c in callbacks if c not in pending and c is not callback and c["name"] not in sizes
                        and set(c["inputs"]) & updated]
    return sizes


def _first_page(explorer: Any, name: str, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """A fresh page: the layout's initial values, the grid's request for its first block, every callback fired."""
    from dashboards.app import graph_ids, layout

    page = layout(explorer)
    state = _initial_state(page)
    state[("experiment", "value")] = name
    state[("grid", "getRowsRequest")] = {"startRow": 0, "endRow": 50, "sortModel": [], "filterModel": {}}
    callbacks = _callbacks(explorer, graph_ids(page))
    return {"state": state, "callbacks": callbacks, "sizes": _fire(callbacks, state, None, seconds)}


def _filter(page: dict[str, Any], grid_model: dict[str, Any], brushes: dict[str, Any],
            seconds: dict[str, float] | None = None) -> dict[str, int]:
    """A filter on a shown page: the grid's column filter and a parallel-coordinates brush, the grid asking for
    its first block again; every callback that follows them fires."""
    state = page["state"]
    state[("grid", "filterModel")], state[("brushes", "data")] = grid_model, brushes
    state[("grid", "getRowsRequest")] = {"startRow": 0, "endRow": 50, "sortModel": [], "filterModel": grid_model}
    return _fire(page["callbacks"], state, {("grid", "filterModel"), ("brushes", "data"), ("grid", "getRowsRequest")},
                 seconds)


def _build_in_child(storage: str, trials: int, epochs: int) -> float:
    """Build the experiment in a child process (seconds taken), so the server's memory is the server's alone."""
    import multiprocessing

    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=build_experiment, args=(storage, "bench"), kwargs={"trials": trials, "epochs": epochs, "images": 4})
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"building the benchmark experiment failed (exit code {child.exitcode})")
    return time.perf_counter() - started


def _peak_rss_mb() -> float:
    """This process's peak resident memory (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(trials: int, epochs: int, repeat: int) -> dict[str, Any]:
    from dashboards.app import Explorer

    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as storage:
        built = _build_in_child(storage, trials, epochs)
        location = experiment_uri(storage, "bench")
        baseline, first, filtered, sizes, filter_sizes = [], [], [], [], []
        seconds: dict[str, dict[str, float]] = {}
        for _ in range(repeat):
            started = time.perf_counter()
            ResultsStore(location).read("trials")
            baseline.append(time.perf_counter() - started)
            explorer = Explorer(storage)  # a new server process: nothing cached
            started = time.perf_counter()
            seconds = {"page": {}, "filter": {}}  # the last repeat's, per callback
            page = _first_page(explorer, "bench", seconds["page"])
            first.append(time.perf_counter() - started)
            sizes.append(page["sizes"])
            # A filter: the score above a threshold in the grid and a lambda brush on the parallel coordinates.
            score = page["state"].get(("score", "value"))
            grid_model = {score: {"filterType": "number", "type": "greaterThan", "filter": 0.5}}
            brushes = {"config/lambda": {"ranges": [[0.02, 2.0]]}}
            started = time.perf_counter()
            filter_sizes.append(_filter(page, grid_model, brushes, seconds["filter"]))
            filtered.append(time.perf_counter() - started)
    first_s, filter_s, base_s = (statistics.median(v) for v in (first, filtered, baseline))
    page_bytes = int(statistics.median(sum(s.values()) for s in sizes))
    filter_bytes = int(statistics.median(sum(s.values()) for s in filter_sizes))
    memory_mb = _peak_rss_mb()
    return {"trials": trials, "epochs": epochs, "epoch_rows": trials * epochs, "repeat": repeat,
            "build_s": built, "baseline_read_trials_s": base_s, "first_page_s": first_s, "filter_s": filter_s,
            "first_page_vs_baseline": first_s / base_s, "filter_vs_baseline": filter_s / base_s,
            "page_json_bytes": page_bytes, "filter_json_bytes": filter_bytes, "server_peak_rss_mb": memory_mb,
            "target_first_page_s": TARGETS["first_page_s"], "target_filter_s": TARGETS["filter_s"],
            "target_json_bytes": TARGETS["json_bytes"], "target_rss_mb": TARGETS["rss_mb"],
            "first_page_met": first_s < TARGETS["first_page_s"], "filter_met": filter_s < TARGETS["filter_s"],
            "json_met": max(page_bytes, filter_bytes) < TARGETS["json_bytes"],
            "memory_met": memory_mb < TARGETS["rss_mb"],
            # Per callback (the last repeat): where the bytes go, largest first.
            "page_json_bytes_by_callback": dict(sorted(sizes[-1].items(), key=lambda item: -item[1])),
            "filter_json_bytes_by_callback": dict(sorted(filter_sizes[-1].items(), key=lambda item: -item[1])),
            # Per callback (the last repeat; the first callback to need the filtered trials pays the filtering).
            "page_seconds_by_callback": dict(sorted(seconds["page"].items(), key=lambda item: -item[1])),
            "filter_seconds_by_callback": dict(sorted(seconds["filter"].items(), key=lambda item: -item[1]))}


def optuna_dashboard_first_page(trials: int, epochs: int, seed: int = 0) -> dict[str, Any] | None:
    """optuna-dashboard's server side of a first page (the study list, the study with its trials, and the
    parameter importances it requests) on a study of the same shape, timed in this process through its WSGI
    app. None when optuna-dashboard is not installed. Its filters run in the browser, so there is no filter
    figure to set beside ours."""
    try:
        import optuna
        import optuna_dashboard
    except ImportError:
        return None
    from wsgiref.util import setup_testing_defaults

    rng = np.random.default_rng(seed)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="bench", direction="maximize")
    distributions = {"lambda": optuna.distributions.FloatDistribution(0.01, 10.0, log=True),
                     "disc_arch": optuna.distributions.CategoricalDistribution(["dcgan", "resnet"]),
                     "n_steps": optuna.distributions.IntDistribution(1, 5)}
    built = time.perf_counter()
    frozen = []
    for _ in range(trials):
        curve = np.clip(rng.uniform(0.5, 0.9) * (1 - np.exp(-np.arange(1, epochs + 1) / max(1.0, epochs / 4))), 0, 1)
        frozen.append(optuna.trial.create_trial(
            params={"lambda": float(10 ** rng.uniform(-2, 1)), "disc_arch": str(rng.choice(["dcgan", "resnet"])),
                    "n_steps": int(rng.integers(1, 6))}, distributions=distributions, value=float(curve.max()),
            intermediate_values={step: float(v) for step, v in enumerate(curve)}))
    study.add_trials(frozen)
    built = time.perf_counter() - built
    app = optuna_dashboard.wsgi(storage)

    def get(path: str) -> int:
        environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": "after=0", "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda code, headers, *rest: status.append(code)))
        if not status or not status[0].startswith("200"):
            raise RuntimeError(f"optuna-dashboard answered {status} for {path}")
        return len(body)

    calls: dict[str, dict[str, float]] = {}
    for path in ("/api/studies", "/api/studies/0", "/api/studies/0/param_importances"):
        started = time.perf_counter()
        size = get(path)
        calls[path] = {"seconds": time.perf_counter() - started, "json_bytes": size}
    return {"trials": trials, "epochs": epochs, "build_s": built, "calls": calls,
            "first_page_s": sum(c["seconds"] for c in calls.values()),
            "page_json_bytes": int(sum(c["json_bytes"] for c in calls.values())),
            "version": optuna_dashboard.__version__}


OPTUNA_DASHBOARD_MAX = 20_000  # its in-memory study of 100,000 trials would take minutes to build
TARGETS = {"first_page_s": 2.0, "filter_s": 0.5, "json_bytes": 2_000_000, "rss_mb": 2048.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="measurements per figure (median reported)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.epochs < 1 or args.repeat < 1:
        print("error: --trials, --epochs and --repeat must be at least 1", file=sys.stderr)
        return 2
    figures = run(args.trials, args.epochs, args.repeat)
    print(f"explorer, {figures['trials']} trials x {figures['epochs']} epochs ({figures['epoch_rows']} epoch rows), "
          f"median of {args.repeat}")
    print(f"  {'measure':<32}{'value':>12}{'x baseline':>12}{'target':>12}")
    print(f"  {'read trials table (baseline)':<32}{figures['baseline_read_trials_s']:>10.3f} s{1.0:>12.1f}")
    rows = [("first full page", f"{figures['first_page_s']:.3f} s", f"{figures['first_page_vs_baseline']:.1f}",
             "< 2 s", figures["first_page_met"]),
            ("apply a filter", f"{figures['filter_s']:.3f} s", f"{figures['filter_vs_baseline']:.1f}", "< 0.5 s",
             figures["filter_met"]),
            ("JSON, first page / filter", f"{figures['page_json_bytes'] / 1e6:.2f} / "
             f"{figures['filter_json_bytes'] / 1e6:.2f} MB", "", "< 2 MB", figures["json_met"]),
            ("server peak memory", f"{figures['server_peak_rss_mb']:.0f} MB", "", "< 2 GB", figures["memory_met"])]
    for name, value, ratio, target, met in rows:
        print(f"  {name:<32}{value:>12}{ratio:>12}{target:>12} {'met' if met else 'MISSED'}")
    largest = list(figures["page_json_bytes_by_callback"].items())[:5]
    print("  largest JSON of the first page: " + ", ".join(f"{name} {size / 1e3:.0f} kB" for name, size in largest))
    slowest = list(figures["filter_seconds_by_callback"].items())[:5]
    print("  slowest callbacks of a filter: " + ", ".join(f"{name} {time_s:.3f} s" for name, time_s in slowest))
    other = optuna_dashboard_first_page(args.trials, args.epochs) if args.trials <= OPTUNA_DASHBOARD_MAX else None
    if other is not None:
        detail, importances = other["calls"]["/api/studies/0"], other["calls"]["/api/studies/0/param_importances"]
        print(f"  optuna-dashboard {other['version']} on the same study: first page {other['first_page_s']:.3f} s "
              f"(trials {detail['seconds']:.3f} s, importances {importances['seconds']:.3f} s), "
              f"{other['page_json_bytes'] / 1e6:.2f} MB of JSON (its filters run in the browser)")
    elif args.trials <= OPTUNA_DASHBOARD_MAX:
        print("  optuna-dashboard is not installed (pip install optuna-dashboard to measure it beside)")
    if args.out:
        report = {"command": " ".join(["python -m dashboards.bench", *(argv if argv is not None else sys.argv[1:])]),
                  "machine": {"cpus": os.cpu_count(), "system": _stdlib_platform.platform(),
                              "python": sys.version.split()[0]},
                  "versions": {"pyarrow": pa.__version__, "plotly": plotly.__version__},
                  "benchmarks": {"explorer": figures}}
        if other is not None:
            report["benchmarks"]["optuna_dashboard"] = other
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
