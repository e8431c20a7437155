"""Tuning pieces that need no running sweep: resources, concurrency, repeats of multi-objective results."""

from __future__ import annotations

import pytest
import ray

from platform.spec import SweepSpec
from platform.tuning import (
    RepeatSearcher,
    build_scheduler,
    build_searcher,
    default_concurrency,
    trial_resources,
    unschedulable_reason,
)


def spec_of(**fields) -> SweepSpec:
    return SweepSpec.model_validate({"name": "t", "trainer": "advnorm", **fields})


@pytest.mark.parametrize(("resources", "cluster", "expected_trial", "expected_concurrency"), [
    ({"cpus_per_worker": 1}, {"CPU": 2}, {"CPU": 1}, 2),
    ({"cpus_per_worker": 1, "gpus_per_worker": 0.25}, {"CPU": 16, "GPU": 2}, {"CPU": 1, "GPU": 0.25}, 8),
    ({"cpus_per_worker": 2, "gpus_per_worker": 1}, {"CPU": 16, "GPU": 8}, {"CPU": 2, "GPU": 1}, 8),
    ({"workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 1}, {"CPU": 32, "GPU": 8}, {"CPU": 0.01}, 4),
    ({"workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 1}, {"CPU": 8, "GPU": 2}, {"CPU": 0.01}, 1),
    ({"cpus_per_worker": 0.25, "gpus_per_worker": 0.5}, {"CPU": 2, "GPU": 4}, {"CPU": 0.25, "GPU": 0.5}, 8),
    ({"cpus_per_worker": 4}, {"CPU": 2}, {"CPU": 4}, 1),
])
def test_resources_and_default_concurrency(monkeypatch, resources, cluster, expected_trial,
                                           expected_concurrency) -> None:
    spec = spec_of(resources=resources)
    monkeypatch.setattr(ray, "cluster_resources", lambda: cluster)
    assert trial_resources(spec) == expected_trial
    assert default_concurrency(spec) == expected_concurrency


def test_repeats_average_every_objective_before_the_searcher_sees_them() -> None:
    spec = spec_of(objective=[{"metric": "val/dice", "mode": "max"}, {"metric": "val/disc_acc", "mode": "min"}],
                   search={"lambda": {"loguniform": [0.1, 10]}}, repeats={"seeds": [0, 1]})
    searcher = build_searcher(spec)
    assert isinstance(searcher, RepeatSearcher)
    seen: list[dict] = []
    searcher.searcher.on_trial_complete = lambda trial_id, result=None, **kw: seen.append(result)
    first, second = searcher.suggest("t1"), searcher.suggest("t2")
    assert first["lambda"] == second["lambda"] and (first["__trial_index__"], second["__trial_index__"]) == (0, 1)
    searcher.on_trial_complete("t1", {"val/dice": 0.6, "val/disc_acc": 0.2})
    assert seen == []
    searcher.on_trial_complete("t2", {"val/dice": 0.8, "val/disc_acc": 0.4})
    assert seen == [{"val/dice": pytest.approx(0.7), "val/disc_acc": pytest.approx(0.3)}]


def test_asha_uses_the_first_objective() -> None:
    spec = spec_of(scheduler={"type": "asha", "grace_period": 2},
                   objective=[{"metric": "val/dice", "mode": "max"}, {"metric": "val/jsd_norm", "mode": "min"}])
    scheduler = build_scheduler(spec, epochs=10)
    assert (scheduler.metric, scheduler._mode) == ("val/dice", "max")


@pytest.mark.parametrize(("resources", "cluster", "fragment"), [
    ({"workers_per_trial": 2, "cpus_per_worker": 1}, {"CPU": 2}, "needs 2.01 CPUs"),
    ({"workers_per_trial": 2, "cpus_per_worker": 0.5}, {"CPU": 2}, None),
    ({"gpus_per_worker": 1}, {"CPU": 2}, "needs 1 GPUs"),
    ({"gpus_per_worker": 0.5}, {"CPU": 2, "GPU": 1}, None),
])
def test_unschedulable_trials_are_named_before_they_hang(resources, cluster, fragment) -> None:
    reason = unschedulable_reason(spec_of(resources=resources), cluster)
    assert reason is None if fragment is None else fragment in reason
