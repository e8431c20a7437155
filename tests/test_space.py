"""Search spaces: conditional parameters only when active, grids cover every value, list choices round-trip."""

from __future__ import annotations

import math

import optuna
import pytest

from platform.space import decode_config, define_by_run, encode_points, make_sampler, ordered_axes
from platform.spec import Axis, SweepSpec


def spec_of(search: dict, sampler: str = "tpe", trials: int = 12) -> SweepSpec:
    return SweepSpec.model_validate({"name": "t", "trainer": "advnorm", "search": search,
                                     "searcher": {"sampler": sampler, "seed": 0}, "budget": {"trials": trials}})


def sample(spec: SweepSpec, count: int) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make_sampler(spec), direction="maximize")
    for point in encode_points(spec):  # as OptunaSearch does with points_to_evaluate
        study.enqueue_trial(point)
    fn = define_by_run(spec.search)
    params = []
    for _ in range(count):
        trial = study.ask()
        fn(trial)
        params.append(decode_config(spec.search, trial.params))
        study.tell(trial, 0.5)
    return params


def test_conditional_parameter_only_under_its_branch() -> None:
    spec = spec_of({"discriminator": {"choice": ["dcgan", "resnet"]},
                    "resnet_depth": {"choice": [10, 18], "when": {"discriminator": "resnet"}},
                    "lambda": {"loguniform": [0.01, 10]}})
    params = sample(spec, 30)
    assert {p["discriminator"] for p in params} == {"dcgan", "resnet"}
    for p in params:
        assert ("resnet_depth" in p) == (p["discriminator"] == "resnet")
        assert 0.01 <= p["lambda"] <= 10


def test_grid_sampler_covers_every_combination_once() -> None:
    spec = spec_of({"n_steps": {"grid": [1, 3]}, "lambda": {"grid": [0.1, 1.5, 5.0]}}, sampler="grid")
    assert spec.configs_to_sample() == 6
    params = sample(spec, 6)
    assert sorted((p["n_steps"], p["lambda"]) for p in params) == sorted(
        (n, lam) for n in (1, 3) for lam in (0.1, 1.5, 5.0))


def test_list_valued_choices_round_trip() -> None:
    spec = spec_of({"lr_milestones": {"choice": [[50, 75], [30], []]}}, sampler="random")
    params = sample(spec, 15)
    assert all(isinstance(p["lr_milestones"], list) for p in params)
    assert {tuple(p["lr_milestones"]) for p in params} == {(50, 75), (30,), ()}


def test_log_uniform_is_log_spread() -> None:
    spec = spec_of({"lambda": {"loguniform": [0.001, 1000]}}, sampler="random")
    logs = [math.log10(p["lambda"]) for p in sample(spec, 200)]
    below = sum(1 for v in logs if v < 0) / len(logs)
    assert 0.35 < below < 0.65  # a uniform draw would put ~0.1% below 1


def test_when_cycle_is_refused_by_the_spec_and_parents_come_first() -> None:
    with pytest.raises(ValueError, match="cycle"):
        spec_of({"a": {"choice": [1, 2], "when": {"b": 1}}, "b": {"choice": [1, 2], "when": {"a": 1}}})
    search = {"c": Axis(choice=[1], when={"b": 1}), "b": Axis(choice=[1, 2], when={"a": 1}), "a": Axis(choice=[1]),
              "d": Axis(uniform=[0.0, 1.0])}
    assert ordered_axes(search) == ["a", "b", "c", "d"]


def test_an_axis_lists_values_or_gives_range_ends() -> None:
    assert Axis(choice=[3, 1]).values == [3, 1] and Axis(grid=["x"]).values == ["x"]
    assert Axis(int=[2, 5]).ends == (2, 5) and Axis(loguniform=[0.1, 1.0]).ends == (0.1, 1.0)
    with pytest.raises(TypeError):
        Axis(uniform=[0.0, 1.0]).values  # noqa: B018
    with pytest.raises(TypeError):
        Axis(choice=[1]).ends  # noqa: B018
