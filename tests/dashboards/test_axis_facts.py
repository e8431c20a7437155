"""Axis facts (kind, log scale, level order) are read from the ``sweep`` table, never guessed from the values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from dashboards.tables import Catalog, Experiment
from dashboards.views import curve as curve_view
from dashboards.views import parcoords
from dashboards.views.importance import _distributions
from platform.results import ResultsStore

AXES = {
    "batch": {"kind": "choice", "log": False, "values": [16, 32, 8]},  # an int choice: levels, in this order
    "lr": {"kind": "loguniform", "log": True},  # sampled on a log scale, here over less than a decade
    "weight": {"kind": "uniform", "log": False},  # linear, here over three decades
    "steps": {"kind": "int", "log": False},
}


def _write(root: Path, with_sweep: bool = True) -> Experiment:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(12):
        row = {"trial_id": f"t{index:03d}", "status": "TERMINATED", "seed": index % 3, "repeat": index % 3,
               "config/lr": float(0.2 + 0.025 * index), "config/weight": float(10.0 ** (index % 4 - 2)),
               "config/steps": int(1 + index % 3), "best/val/dice": float(rng.uniform(0.5, 0.9)),
               "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}])}
        if index != 11:  # a trial without the axis (a conditional one): the column reads back as float
            row["config/batch"] = [16, 32, 8][index % 3]
        rows.append(row)
    store = ResultsStore(str(root / "exp"))
    store.append("trials", rows)
    if with_sweep:
        store.append("sweep", [{"experiment": "exp", "trainer": "t", "objectives": rows[0]["objectives"],
                                "metrics": "{}", "axes": json.dumps(AXES), "explore": "{}"}])
    return Catalog(str(root)).load("exp")


@pytest.fixture
def experiment(tmp_path: Path) -> Experiment:
    return _write(tmp_path)


def test_the_experiment_exposes_kind_log_and_level_order(experiment: Experiment) -> None:
    assert experiment.categorical == {"config/batch"}
    assert {p: experiment.axis_kind(p) for p in experiment.params} == {
        "config/batch": "categorical", "config/lr": "float", "config/steps": "int", "config/weight": "float"}
    assert experiment.log_axes == {"config/batch": False, "config/lr": True, "config/steps": False,
                                   "config/weight": False}
    assert experiment.levels("config/batch") == ["16", "32", "8", "(absent)"]  # the spec's order, not sorted
    # The spec's spelling: a value read back as 16.0 (the column has a gap) is still the level "16".
    assert set(experiment.trials["config/batch"]) == {"16", "32", "8", "(absent)"}
    assert experiment.levels("config/lr") is None


def test_an_int_choice_is_categorical_in_the_figures(experiment: Experiment) -> None:
    trials = experiment.trials
    dimensions = parcoords.dimensions_of(trials, experiment.params, experiment.categorical, "best/val/dice",
                                       experiment.log_axes)
    batch = next(d for d in dimensions if d["column"] == "config/batch")
    assert batch["labels"] is not None and set(batch["labels"]) == {"16", "32", "8", "(absent)"}
    curve = curve_view.objective_curve(trials, "config/batch", experiment.categorical, "best/val/dice",
                                    experiment.params, experiment.is_log_axis("config/batch"))
    assert set(curve["data"][-1]["x"]) <= {"16", "32", "8", "(absent)"}  # levels, not a numeric axis
    assert curve["layout"]["xaxis"]["type"] == "-"


@pytest.mark.parametrize(("param", "log"), [("config/lr", True), ("config/weight", False)])
def test_log_scale_is_the_recorded_one(experiment: Experiment, param: str, log: bool) -> None:
    trials = experiment.trials
    dimensions = parcoords.dimensions_of(trials, experiment.params, experiment.categorical, "best/val/dice",
                                       experiment.log_axes)
    assert next(d for d in dimensions if d["column"] == param)["log"] is log
    figure, axes = parcoords.parallel_coordinates(trials, experiment.params, experiment.categorical, "best/val/dice",
                                                log_axes=experiment.log_axes)
    assert next(a for a in axes if a["column"] == param)["log"] is log
    curve = curve_view.objective_curve(trials, param, experiment.categorical, "best/val/dice", experiment.params,
                                    experiment.is_log_axis(param))
    assert curve["layout"]["xaxis"]["type"] == ("log" if log else "-")
    if log:  # less than a decade: ticks inside the range, not only the decades around it
        entry = next(d for d in figure["data"][0]["dimensions"] if d["label"].endswith("lr"))
        low, high = entry["range"]
        assert entry["tickvals"] and all(low - 1e-9 <= t <= high + 1e-9 for t in entry["tickvals"])


def test_without_a_record_nothing_is_guessed_log(tmp_path: Path) -> None:
    experiment = _write(tmp_path, with_sweep=False)
    assert experiment.log_axes == {} and experiment.axis_kind("config/weight") is None
    dimensions = parcoords.dimensions_of(experiment.trials, experiment.params, experiment.categorical,
                                       "best/val/dice", experiment.log_axes)
    assert not any(d["log"] for d in dimensions)  # weight spans three decades: still linear


def test_the_report_draws_the_recorded_log_axes(experiment: Experiment, tmp_path: Path) -> None:
    from dashboards.report import report_figures

    shown = report_figures(Catalog(str(tmp_path)), experiment, ["config/batch"], "best/val/dice", None,
                           ["16", "32", "8"])
    parcoords = next(f for f in shown if f["data"] and f["data"][0].get("type") == "parcoords")
    labels = {d["label"]: d for d in parcoords["data"][0]["dimensions"]}
    lr = next(d for label, d in labels.items() if label.endswith("lr"))
    weight = next(d for label, d in labels.items() if label.endswith("weight"))
    assert np.allclose(lr["values"], np.log10(experiment.trials["config/lr"].to_numpy()))
    assert np.allclose(weight["values"], experiment.trials["config/weight"].to_numpy())


def test_importance_takes_kind_and_log_from_the_record(experiment: Experiment) -> None:
    kinds = {p: experiment.axis_kind(p) for p in experiment.params}
    found = _distributions(experiment.trials, experiment.params, experiment.categorical, kinds, experiment.log_axes)
    assert isinstance(found["config/batch"], optuna.distributions.CategoricalDistribution)
    assert isinstance(found["config/lr"], optuna.distributions.FloatDistribution) and found["config/lr"].log
    assert isinstance(found["config/weight"], optuna.distributions.FloatDistribution)
    assert not found["config/weight"].log  # spans three decades, sampled uniformly
    assert isinstance(found["config/steps"], optuna.distributions.IntDistribution)


def test_levels_keep_the_spec_order_in_the_figures(experiment: Experiment) -> None:
    trials = experiment.trials
    dimensions = parcoords.dimensions_of(trials, experiment.params, experiment.categorical, "best/val/dice",
                                       experiment.log_axes, experiment.level_orders)
    batch = next(d for d in dimensions if d["column"] == "config/batch")
    assert batch["labels"] == ["16", "32", "8", "(absent)"]  # sorted, "8" would come last but one
    codes = dict(zip(trials["config/batch"], batch["values"], strict=True))
    assert codes == {"16": 0.0, "32": 1.0, "8": 2.0, "(absent)": 3.0}
    curve = curve_view.objective_curve(trials, "config/batch", experiment.categorical, "best/val/dice",
                                    experiment.params, False, order=experiment.levels("config/batch"))
    means = next(t for t in curve["data"] if t["name"].startswith("mean"))
    assert list(dict.fromkeys(means["x"])) == ["16", "32", "8", "(absent)"]  # grouped, in the spec's order
    assert curve["layout"]["xaxis"]["categoryarray"] == ["16", "32", "8", "(absent)"]
