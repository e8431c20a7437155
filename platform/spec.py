"""The sweep specification: YAML -> validated ``SweepSpec`` with errors that name file, key path and line.

Every model forbids unknown keys (the models are in ``platform.specmodels``, re-exported here). ``load_spec``
also checks the parts that need the trainer: ``fixed`` and each ``search`` axis must be valid values of the
trainer's ``Config``, and the objective metrics must be metrics the trainer reports. Nothing here starts Ray or
touches the storage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel

from platform.spec_checks import SpecChecks
from platform.specfile import Source, SpecError, format_validation, read_yaml
from platform.specmodels import Axis, PaperClaim, PaperRow, PaperTable, SweepSpec

__all__ = ["Axis", "PaperClaim", "PaperRow", "PaperTable", "SpecError", "SweepSpec", "apply_smoke",
           "check_against_trainer", "load_spec"]


# --- loading ---------------------------------------------------------------------------------------------------


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names valid under ``loc`` (the parent of an unknown key), for 'did you mean'."""
    current: Any = SweepSpec
    parts = [part for part in loc if not isinstance(part, int)]
    index = 0
    while index < len(parts):
        part = parts[index]
        if current is SweepSpec and part == "search":
            if index + 1 >= len(parts):
                return []  # search keys are trainer fields, checked against the trainer
            current, index = Axis, index + 2  # search.<axis>: the axis model
            continue
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [*getattr(annotation, "__args__", ()), annotation]
        candidates += [inner for arg in list(candidates) for inner in getattr(arg, "__args__", ())]
        current = next((arg for arg in candidates if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
        if current is None:
            return []
        index += 1
    return list(getattr(current, "model_fields", {}))


def _capped(value: Any, cap: int) -> Any:
    """``min(value, cap)`` for a number; anything else unchanged, for validation to report."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return min(value, cap) if number else value


def apply_smoke(data: dict[str, Any]) -> None:
    """Shrink a raw spec so any sweep runs in about a minute (``--smoke``): tiny data, networks and budget."""
    from platform.trainers import TRAINERS

    if isinstance(data.get("name"), str):
        data["name"] = f"{data['name']}-smoke"
    section = data.setdefault("data", {})
    if isinstance(section, dict):
        section["size"] = _capped(section.get("size", 32), 32)
        section["subjects_per_domain"] = _capped(section.get("subjects_per_domain", 3), 3)
        section.update(patch_size=16, batch_size=2, patches_per_epoch=8)
    search = data.get("search") if isinstance(data.get("search"), dict) else {}
    fixed = data.setdefault("fixed", {})
    if isinstance(fixed, dict) and isinstance(data.get("trainer"), str) and data["trainer"] in TRAINERS:
        for key, value in TRAINERS.get(data["trainer"]).smoke_overrides().items():
            if key not in search:
                fixed[key] = value
    budget = data.setdefault("budget", {})
    if isinstance(budget, dict):
        budget["trials"] = _capped(budget.get("trials", 2), 2)
    repeats = data.get("repeats")
    if isinstance(repeats, dict):
        for key in ("seeds", "folds"):
            if isinstance(repeats.get(key), list) and repeats[key]:
                repeats[key] = repeats[key][:1]
    scheduler = data.get("scheduler")
    if isinstance(scheduler, dict) and "grace_period" in scheduler:
        scheduler["grace_period"] = 1
    searcher = data.get("searcher")
    if isinstance(searcher, dict) and isinstance(searcher.get("points_to_evaluate"), list):
        searcher["points_to_evaluate"] = searcher["points_to_evaluate"][:2]


def _as_fixed(data: dict[str, Any], override: str) -> str:
    """``generator=none`` is shorthand for ``fixed.generator=none``: a bare key that names a field of the spec's
    trainer, not a section of the spec."""
    from platform.trainers import TRAINERS

    key = override.partition("=")[0].strip()
    trainer = data.get("trainer")
    if ("." in key or key in SweepSpec.model_fields or not isinstance(trainer, str) or trainer not in TRAINERS
            or key not in TRAINERS.get(trainer).config_keys()):
        return override
    return f"fixed.{override.lstrip()}"


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = (), smoke: bool = False) -> SweepSpec:
    """Read, override (and for ``smoke`` shrink) and validate a sweep spec, with the trainer checks.

    Choice, grid, condition and point values come back coerced to the type of the trainer's field (``'0.2'``
    of a float field is ``0.2``), so every trial of a sweep records a value of one type."""
    path = Path(path)
    data, lines = read_yaml(path)
    source = Source(path, lines)
    if smoke:
        apply_smoke(data)
    for override in overrides:
        source.apply_override(data, _as_fixed(data, override))
    try:
        spec = SweepSpec.model_validate(data)
    except pydantic.ValidationError as err:
        raise SpecError(format_validation(err, source, data, _allowed_keys)) from None
    check_against_trainer(spec, source)
    return spec


def check_against_trainer(spec: SweepSpec, source: Source | str, lines: dict[tuple[Any, ...], int] | None = None
                          ) -> None:
    """Trainer name, fixed overrides, search keys and values (coerced in place), conditions, points, objective
    metrics and limits. SpecError names the file and line, or the command-line override, of each problem."""
    from platform.trainers import TRAINERS  # the registry fills on import of the trainer modules

    src = source if isinstance(source, Source) else Source(source, lines or {})
    if spec.trainer not in TRAINERS:
        raise SpecError(f"{src.where('trainer')}: 'trainer': {TRAINERS.unknown_message(spec.trainer)}")
    trainer = TRAINERS.get(spec.trainer)
    _check_hooks(spec.runtime.hooks, src)
    checks = SpecChecks(spec, trainer, src)
    checks.data()
    checks.names()
    checks.keys()
    checks.fixed()
    checks.axes()
    checks.conditions()
    checks.points()
    checks.objectives()
    checks.explore()
    checks.trainer_check()


def _check_hooks(hooks: list[str], src: Source) -> None:
    """Each ``runtime.hooks`` entry names an importable :class:`platform.hooks.Hook` subclass (checked here, with
    the trainers, so the runtime settings need not import the engine's hooks)."""
    if not hooks:
        return
    from platform.hooks import hook_class  # torch and the trainers load only when a spec names hooks

    for index, path in enumerate(hooks):
        try:
            hook_class(path)
        except ValueError as err:
            raise SpecError(f"{src.where('runtime', 'hooks', index)}: 'runtime.hooks': {err}") from None
