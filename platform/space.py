"""Search-space YAML -> an Optuna define-by-run function (conditional parameters) and the sampler.

Optuna categoricals hold only None/bool/int/float/str, so a choice whose values are lists or mappings
(e.g. DNRB placements ``[1, 2, 3, 4]``) is suggested as its JSON text. The define-by-run function decodes each
value once and returns the trial's parameters under ``PARAMS`` (Ray adds a returned mapping to the trial's
config), so no caller decodes again.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna

from platform.spec import Axis, SweepSpec

_PRIMITIVE = (type(None), bool, int, float, str)
PARAMS = "params"  # the trial config's key of the decoded parameters (the trainer Config values)


def _needs_encoding(values: list[Any]) -> bool:
    return any(not isinstance(value, _PRIMITIVE) for value in values)


def encode_value(axis: Axis, value: Any) -> Any:
    """The representation Optuna sees for ``value`` of a categorical ``axis``."""
    values = axis.values
    return json.dumps(value) if _needs_encoding(values) else value


def categorical_choices(axis: Axis) -> list[Any]:
    return [encode_value(axis, value) for value in axis.values]


def trial_params(search: dict[str, Axis], config: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters: the decoded values the define-by-run function returned (an experiment started before
    it returned them is decoded here)."""
    if isinstance(config.get(PARAMS), dict):
        return dict(config[PARAMS])
    return decode_config(search, {key: config[key] for key in search if key in config})


def decode_config(search: dict[str, Axis], config: dict[str, Any]) -> dict[str, Any]:
    """Turn the Tune config (Optuna's view) back into trainer Config values; other keys pass through."""
    decoded = dict(config)
    for key, axis in search.items():
        value = config.get(key)
        if axis.listed and isinstance(value, str) and _needs_encoding(axis.values):
            decoded[key] = json.loads(value)
    return decoded


def ordered_axes(search: dict[str, Axis]) -> list[str]:
    """Axes with every ``when`` parent before its children (stable otherwise). The conditions form no cycle: the
    spec refuses one (``SweepSpec`` validation), so the walk ends."""
    order: list[str] = []

    def visit(key: str) -> None:
        if key not in order:
            for parent in search[key].when or {}:
                visit(parent)
            order.append(key)

    for key in search:
        visit(key)
    return order


class DefineByRun:
    """Suggests every active axis on an Optuna trial (conditional ones only when active).

    A class rather than a closure: OptunaSearch pickles its space when Tune checkpoints the experiment.
    """

    def __init__(self, search: dict[str, Axis]) -> None:
        self.search = search
        self.order = ordered_axes(search)

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for key in self.order:
            axis = self.search[key]
            active = all(
                parent in chosen and chosen[parent] in axis.condition_values(parent) for parent in axis.when or {}
            )
            if not active:
                continue
            kind = axis.kind
            if kind == "uniform":
                chosen[key] = trial.suggest_float(key, *axis.uniform)
            elif kind == "loguniform":
                chosen[key] = trial.suggest_float(key, *axis.loguniform, log=True)
            elif kind == "int":
                chosen[key] = trial.suggest_int(key, *axis.int)
            else:
                encoded = trial.suggest_categorical(key, categorical_choices(axis))
                chosen[key] = decode_config({key: axis}, {key: encoded})[key]
        return {PARAMS: chosen}


def define_by_run(search: dict[str, Axis]) -> DefineByRun:
    return DefineByRun(search)


def make_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """The Optuna sampler the spec asks for, seeded."""
    searcher = spec.searcher
    if searcher.sampler in ("grid", "random"):
        # A grid is enqueued point by point (see ``encode_points``); Optuna's GridSampler calls
        # ``study.stop()`` when exhausted, which raises under the ask-and-tell API that Ray drives.
        return optuna.samplers.RandomSampler(seed=searcher.seed)
    # TPE's default of 10 random start-up trials would leave nothing to model in a small budget: use a third
    # of the budget (at least the explicit points). multivariate+group model conditional spaces jointly;
    # constant_liar keeps concurrent suggestions apart.
    startup = max(len(searcher.points_to_evaluate), min(10, max(2, spec.budget.trials // 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=searcher.seed,
            n_startup_trials=startup,
            multivariate=True,
            group=True,
            constant_liar=True,
        )


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the (grid or choice) axes, in a stable order."""
    points: list[dict[str, Any]] = [{}]
    for key, axis in spec.search.items():
        points = [{**point, key: value} for point in points for value in axis.values]
    return points


def encode_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The points Optuna evaluates first, in its representation (for a grid: the whole grid)."""
    points = grid_points(spec) if spec.searcher.sampler == "grid" else spec.searcher.points_to_evaluate
    return [
        {key: encode_value(spec.search[key], value) if spec.search[key].kind in ("choice", "grid") else value
         for key, value in point.items()}
        for point in points
    ]


def describe_axis(key: str, axis: Axis) -> str:
    """One line for --dry-run."""
    text = f"{key}: {axis.kind} {getattr(axis, axis.kind)}"
    if axis.when:
        text += f"  when {axis.when}"
    return text
