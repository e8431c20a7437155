"""The checks of a sweep spec that need its trainer, in the order a user fixes them: the data, the keys, the
fixed config, every search value (coerced to the trainer field's type, in place), the ``when`` conditions, the
sampler rules, the points to evaluate, the objectives, the ``explore`` block and the trainer's own ``check``.

Every problem is a ``SpecError`` naming the file and line, or the command-line override, of the value at fault.
The spec models are duck-typed here (this module sits below ``platform.spec``, which calls it).
"""

from __future__ import annotations

import sys
from typing import Any

import pydantic
from pydantic import BaseModel

from platform.specfile import Source, SpecError, closest, dotted, excerpt

MAX_EPOCHS = 100_000


class SpecChecks:
    """The spec checks that need the trainer's Config, in the order a user fixes them."""

    def __init__(self, spec: Any, trainer: Any, source: Source) -> None:
        self.spec, self.trainer, self.source, self.where = spec, trainer, source, source.where
        self.config_cls = trainer.Config

    def data(self) -> None:
        """The dataset's own checks (``platform.data.datasets``), each located at the field it names."""
        from platform.data.datasets import DATASETS, check_data

        if self.spec.data.dataset not in DATASETS:
            raise SpecError(f"{self.where('data', 'dataset')}: 'data.dataset': "
                            f"{DATASETS.unknown_message(self.spec.data.dataset)}")
        problems = []
        for problem in check_data(self.spec.data):
            field = problem.split(":", 1)[0].removeprefix("data.")
            problems.append(f"{self.where('data', field)}: {problem}.")
        if problems:
            raise SpecError("\n".join(problems))

    def names(self) -> None:
        """Each Config field under its public name (:func:`public_names`) wherever the spec names one: ``fixed``,
        ``search`` and its ``when`` conditions, the points, ``explore.baseline`` and the paper rows' ``where``, so
        a field has one results column however the spec spells it. An old name (``Config.RENAMED``) still works,
        with a message; two spellings of one field in one place are refused."""
        spec, renamed = self.spec, self.trainer.Config.RENAMED
        used = [("fixed", k) for k in spec.fixed if k in renamed] + [("search", k) for k in spec.search if k in renamed]
        for section, old in used:
            print(f"warning: {self.where(section, old)}: {old!r} is now {renamed[old]!r} for {spec.trainer}; the old "
                  "name still works, rename it", file=sys.stderr)
        spec.fixed = self._public(spec.fixed, "fixed")
        spec.search = self._public(spec.search, "search")
        for key, axis in spec.search.items():
            if axis.when:
                axis.when = self._public(axis.when, "search", key, "when")
        points = spec.searcher.points_to_evaluate
        spec.searcher.points_to_evaluate = [self._public(point, "searcher", "points_to_evaluate", index)
                                            for index, point in enumerate(points)]
        if spec.explore.baseline:
            spec.explore.baseline = self._public(spec.explore.baseline, "explore", "baseline")
        for index, row in enumerate(spec.paper.rows if spec.paper else []):
            loc = ("paper", "rows", index, "where")
            row.where = ([self._public(w, *loc, i) for i, w in enumerate(row.where)] if isinstance(row.where, list)
                         else self._public(row.where, *loc))

    def _public(self, values: dict[str, Any], *loc: Any) -> dict[str, Any]:
        """``values`` keyed by public names (keys that name no field stay, for :meth:`keys` to report)."""
        names, out, spelled = public_names(self.config_cls), {}, {}
        for key, value in values.items():
            public = names.get(key, key)
            if public in out:
                raise SpecError(f"{self.where(*loc, key)}: {key!r} and {spelled[public]!r} name the same field of "
                                f"{self.spec.trainer}'s Config; give it once, as {public!r}.")
            if public != key:
                self.source.rename(loc, key, public)
            out[public], spelled[public] = value, key
        return out

    def keys(self) -> None:
        spec, fields = self.spec, self.trainer.config_keys()
        problems: list[str] = []
        for key in spec.fixed:
            if key not in fields:
                problems.append(f"{self.where('fixed', key)}: {excerpt('fixed.' + str(key))} is not a field of "
                                f"{spec.trainer}'s Config.{closest(key, sorted(fields))}")
        for key in spec.search:
            if key not in fields:
                problems.append(f"{self.where('search', key)}: search key {excerpt('search.' + str(key))} is not a "
                                f"field of {spec.trainer}'s Config.{closest(key, sorted(fields))}")
            if key in spec.fixed:
                problems.append(f"{self.where('search', key)}: {excerpt(key)} is both fixed and searched; keep one.")
        if problems:
            raise SpecError("\n".join(problems))

    def _validated(self, values: dict[str, Any]) -> Any:
        config = self.config_cls.model_validate({**self.spec.fixed, **values})
        if config.epochs > MAX_EPOCHS:
            raise _TooLarge(f"epochs {config.epochs:,} is more than {MAX_EPOCHS:,}")
        return config

    def fixed(self) -> None:
        try:
            self._validated({})
        except pydantic.ValidationError as err:
            raise SpecError("\n".join(
                f"{self.where('fixed', *item['loc'])}: {excerpt('fixed.' + dotted(item['loc']))}: "
                f"{item['msg'].removeprefix('Value error, ')} (got {excerpt(item.get('input'))})."
                for item in err.errors()
            )) from None
        except _TooLarge as err:
            raise SpecError(f"{self.where('fixed', 'epochs')}: 'fixed.epochs': {err}. Train fewer epochs.") from None

    def coerce(self, key: str, value: Any, *loc: Any) -> Any:
        """``value`` as the trainer's field ``key`` holds it, or SpecError naming ``loc``."""
        try:
            config = self._validated({key: value})
        except pydantic.ValidationError as err:
            first = err.errors()[0]
            raise SpecError(f"{self.where(*loc)}: {excerpt(dotted(loc))}: value {excerpt(value)} is not valid for "
                            f"{self.spec.trainer}'s {key!r}: {first['msg']}.") from None
        except _TooLarge as err:
            raise SpecError(f"{self.where(*loc)}: {excerpt(dotted(loc))}: {err}. Train fewer epochs.") from None
        return field_value(config, key)

    def axes(self) -> None:
        for key, axis in self.spec.search.items():
            if not axis.listed:
                for value in axis.ends:
                    self.coerce(key, value, "search", key, axis.kind)
                continue
            coerced = [self.coerce(key, value, "search", key, axis.kind) for value in axis.values]
            for index, value in enumerate(coerced):
                if value in coerced[:index]:
                    first = coerced.index(value)
                    raise SpecError(f"{self.where('search', key)}: 'search.{key}.{axis.kind}' lists "
                                    f"{excerpt(axis.values[first])} and {excerpt(axis.values[index])}, which are "
                                    f"the same value {excerpt(value)} for {self.spec.trainer}. List each value once.")
            setattr(axis, axis.kind, coerced)

    def conditions(self) -> None:
        """``when`` values, coerced like the parent axis's, are among its values (the structure of the conditions
        is a rule of the spec model)."""
        search = self.spec.search
        for key, axis in search.items():
            for cond_key in list(axis.when or {}):
                loc = ("search", key, "when", cond_key)
                parent = search[cond_key]
                wanted = [self.coerce(cond_key, v, *loc) for v in axis.condition_values(cond_key)]
                missing = [v for v in wanted if v not in parent.values]
                if missing:
                    raise SpecError(f"{self.where(*loc)}: 'search.{key}.when.{cond_key}' value(s) {excerpt(missing)} "
                                    f"are not among {excerpt(parent.values)}.")
                axis.when[cond_key] = wanted if isinstance(axis.when[cond_key], list) else wanted[0]

    def points(self) -> None:
        search = self.spec.search
        for index, point in enumerate(self.spec.searcher.points_to_evaluate):
            loc = ("searcher", "points_to_evaluate", index)
            unknown = [k for k in point if k not in search]
            if unknown:
                raise SpecError(f"{self.where(*loc)}: point {excerpt(point)} names {excerpt(unknown)}, which are not "
                                f"search axes.{closest(unknown[0], list(search))}")
            for key in point:
                point[key] = value = self.coerce(key, point[key], *loc, key)
                problem = outside_axis(search[key], value)
                if problem:
                    raise SpecError(f"{self.where(*loc, key)}: point {index} sets {key!r} to {excerpt(value)}, "
                                    f"{problem}. Use a value the axis can take.")
            try:
                self._validated(point)
            except pydantic.ValidationError as err:
                raise SpecError(f"{self.where(*loc)}: point {excerpt(point)} is not valid: "
                                f"{err.errors()[0]['msg']}.") from None

    def objectives(self) -> None:
        spec = self.spec
        config = self._validated({})
        known = self.trainer.metric_names(config, spec.data)
        for index, objective in enumerate(spec.objectives):
            loc = ("objective", index, "metric") if isinstance(spec.objective, list) else ("objective", "metric")
            if objective.metric.startswith("test/"):
                raise SpecError(f"{self.where(*loc)}: objective {excerpt(objective.metric)} is a test score; the "
                                "test split is reported, never used to choose: select on the val metric "
                                f"{excerpt('val/' + objective.metric.split('/', 2)[-1])} instead.")
            if objective.metric not in known:
                raise SpecError(f"{self.where(*loc)}: unknown metric {excerpt(objective.metric)} for trainer "
                                f"{spec.trainer}.{closest(objective.metric, sorted(known))}")
        if spec.scheduler.type == "asha" and spec.scheduler.grace_period > config.epochs:
            raise SpecError(f"{self.where('scheduler', 'grace_period')}: 'scheduler.grace_period' "
                            f"({spec.scheduler.grace_period}) exceeds the epochs ({config.epochs}).")

    def explore(self) -> None:
        """``explore.baseline`` names search axes, with values they take (coerced like points)."""
        baseline = self.spec.explore.baseline or {}
        for key in list(baseline):
            loc = ("explore", "baseline", key)
            if key not in self.spec.search:
                raise SpecError(f"{self.where(*loc)}: 'explore.baseline' names {excerpt(key)}, which is not a search "
                                f"axis.{closest(key, list(self.spec.search))}")
            baseline[key] = value = self.coerce(key, baseline[key], *loc)
            problem = outside_axis(self.spec.search[key], value)
            if problem:
                raise SpecError(f"{self.where(*loc)}: the baseline's {key!r} is {excerpt(value)}, {problem}.")

    def trainer_check(self) -> None:
        """The trainer's own ``check`` of the fixed config and of each searched value (e.g. advnorm's patch size
        against its depths, glua's domains), located at the field it names when it names one."""
        spec = self.spec
        configs = [((), {})] + [((key, axis.kind), {key: value}) for key, axis in spec.search.items()
                                if axis.listed for value in axis.values]
        for loc, values in configs:
            problems = self.trainer.check(self._validated(values), spec.data)
            if problems:
                field = problems[0].split(" ", 1)[0]
                where = self.where("search", *loc) if loc else self.where(*(
                    ("data", field.removeprefix("data.")) if field.startswith("data.") else ("fixed", field)))
                detail = f" (with {excerpt(values)})" if values else ""
                raise SpecError(f"{where}: {spec.trainer}{detail}: " + "; ".join(problems) + ".")


class _TooLarge(Exception):
    """A value beyond the platform's limits (e.g. 10^11 epochs)."""


def public_names(config: type[BaseModel]) -> dict[str, str]:
    """Every spelling a spec may use for a field of a trainer's ``Config`` -> the field's public name: its alias
    when it has one (``lambda`` for advnorm's ``lambda_``, a Python keyword), else its name. Spellings: the
    name, the alias and an old name of ``RENAMED``."""
    names: dict[str, str] = {}
    for name, info in config.model_fields.items():
        names[name] = names[info.alias or name] = info.alias or name
    for old, new in getattr(config, "RENAMED", {}).items():
        names[old] = names.get(new, new)
    return names


def field_value(config: BaseModel, key: str) -> Any:
    """The value of field ``key`` (its name or alias) of a validated Config, as plain Python."""
    for name, info in type(config).model_fields.items():
        if key in (name, info.alias):
            value = getattr(config, name)
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json")
            return list(value) if isinstance(value, tuple) else value
    raise KeyError(key)


def outside_axis(axis: Any, value: Any) -> str | None:
    """Why ``value`` is not one the axis can propose (not a choice, outside the range), or None."""
    if axis.listed:
        return None if value in axis.values else f"which is not among {excerpt(axis.values)}"
    low, high = axis.ends
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"which is not a number in [{low}, {high}]"
    if axis.kind == "int" and not float(value).is_integer():
        return f"which is not an integer of [{low}, {high}]"
    if not low <= value <= high:
        return f"outside the {axis.kind} range [{low}, {high}]"
    return None


def when_cycle(search: dict[str, Any]) -> list[str] | None:
    """A cycle of ``when`` conditions (``[a, b, a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        path.append(key)
        for parent in (search[key].when or {}) if key in search else {}:
            if state.get(parent) == 1:
                return [*path[path.index(parent):], parent]
            if parent in search and parent not in state:
                found = visit(parent)
                if found:
                    return found
        path.pop()
        state[key] = 2
        return None

    for key in search:
        if key not in state:
            found = visit(key)
            if found:
                return found
    return None
