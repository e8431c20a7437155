"""The sweep specification: YAML -> validated ``SweepSpec`` with errors that name file, key path and line.

Every model forbids unknown keys. ``load_spec`` also checks the parts that need the trainer: ``fixed`` and
each ``search`` axis must be valid values of the trainer's ``Config``, and the objective metrics must be
metrics the trainer reports. Nothing here starts Ray or touches the storage.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from platform.data.config import DataConfig

SAMPLERS = ("tpe", "random", "grid")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice", "grid")
Integer = int  # Axis has a field named ``int``, which shadows the builtin inside its class body


class SpecError(Exception):
    """A user mistake in a sweep spec; ``str(err)`` is the whole one-paragraph message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Axis(_Strict):
    """One search axis: exactly one distribution key, optionally a ``when`` condition."""

    uniform: tuple[float, float] | None = Field(None, description="continuous range [low, high]")
    loguniform: tuple[float, float] | None = Field(None, description="log-scaled range [low, high], low > 0")
    int: tuple[Integer, Integer] | None = Field(None, description="integer range [low, high], both included")
    choice: list[Any] | None = Field(None, description="categorical values, sampled by the searcher")
    grid: list[Any] | None = Field(None, description="values that are all run (needs searcher.sampler: grid)")
    when: dict[str, Any] | None = Field(
        None, description="only sample this axis when every named axis has the given value (or one of a list)"
    )

    @model_validator(mode="after")
    def _one_distribution(self) -> Axis:
        given = [name for name in DISTRIBUTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an axis needs exactly one of {', '.join(DISTRIBUTIONS)}; got {given or 'none'}"
            )
        kind = given[0]
        if kind in ("uniform", "loguniform", "int"):
            low, high = getattr(self, kind)
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise ValueError(f"{kind} range [{low}, {high}] is empty or inverted: write [low, high], low < high")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform range [{low}, {high}] must have low > 0")
        elif not getattr(self, kind):
            raise ValueError(f"{kind} needs at least one value")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in DISTRIBUTIONS if getattr(self, name) is not None)

    def values_to_check(self) -> list[Any]:
        """Values that must each be valid for the trainer's Config field (range ends, or every choice)."""
        spec = getattr(self, self.kind)
        return list(spec)

    def condition_values(self, key: str) -> list[Any]:
        wanted = (self.when or {})[key]
        return list(wanted) if isinstance(wanted, list) else [wanted]


class SearcherSpec(_Strict):
    type: Literal["optuna"] = Field("optuna", description="the search library (Optuna through Ray Tune)")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Optuna sampler")
    seed: int = Field(0, description="sampler seed, so a sweep is repeatable")
    points_to_evaluate: list[dict[str, Any]] = Field(
        default_factory=list, description="configurations tried first (e.g. the paper's values)"
    )


class SchedulerSpec(_Strict):
    type: Literal["none", "asha"] = Field("none", description="trial scheduler (early stopping)")
    grace_period: int = Field(1, ge=1, description="ASHA: epochs every trial runs before it may be stopped")
    reduction_factor: float = Field(2.0, gt=1, description="ASHA: fraction 1/reduction_factor promoted per rung")


class Objective(_Strict):
    metric: str = Field(description="metric name, e.g. val/dice")
    mode: Literal["max", "min"] = Field("max", description="whether larger or smaller is better")


class Budget(_Strict):
    trials: int = Field(8, ge=1, description="sampled configurations (each runs once per repeat)")
    concurrent: int | None = Field(None, ge=1, description="trials at once; default: what resources allow")
    time_budget_s: float | None = Field(None, gt=0, description="stop starting trials after this many seconds")


class Repeats(_Strict):
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="each config runs per seed")
    folds: list[int] | None = Field(None, description="cross-validation folds, crossed with seeds")

    @field_validator("seeds", "folds")
    @classmethod
    def _unique(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"values repeat: {values}")
        return values

    def combos(self) -> list[tuple[int, int | None]]:
        """(seed, fold) for each repeat, in a stable order."""
        folds: list[int | None] = list(self.folds) if self.folds else [None]
        return [(seed, fold) for fold in folds for seed in self.seeds]


class Resources(_Strict):
    workers_per_trial: int = Field(1, ge=1, description="1 runs in the trial process; >1 uses Ray Train DDP")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs per worker (torch threads follow it)")
    gpus_per_worker: float = Field(0.0, ge=0, description="GPUs per worker; fractional shares a GPU")
    memory_gb: float | None = Field(None, gt=0, description="memory per worker (GB): reserved from Ray, and on "
                                    "Linux a cap on what it allocates after start-up (over it the trial errors)")


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="experiment name (a directory)")
    trainer: str = Field(description="registered trainer name, e.g. advnorm")
    data: DataConfig = Field(default_factory=DataConfig, description="dataset and sampling")
    fixed: dict[str, Any] = Field(default_factory=dict, description="trainer Config overrides for every trial")
    search: dict[str, Axis] = Field(default_factory=dict, description="trainer Config fields to sample")
    searcher: SearcherSpec = Field(default_factory=SearcherSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    objective: Objective | list[Objective] = Field(
        default_factory=lambda: Objective(metric="val/dice", mode="max"),
        description="one objective, or a list for a multi-objective (Pareto) search",
    )
    budget: Budget = Field(default_factory=Budget)
    repeats: Repeats = Field(default_factory=Repeats)
    resources: Resources = Field(default_factory=Resources)
    storage: str = Field("./runs", description="local directory or pyarrow filesystem URI (s3://, gs://)")

    @property
    def objectives(self) -> list[Objective]:
        return self.objective if isinstance(self.objective, list) else [self.objective]

    @property
    def grid_axes(self) -> list[str]:
        return [key for key, axis in self.search.items() if axis.kind == "grid"]

    def configs_to_sample(self) -> int:
        """Number of configurations the searcher proposes (a full grid, or the budget)."""
        if self.searcher.sampler == "grid":
            count = 1
            for axis in self.search.values():
                count *= len(axis.values_to_check())
            return count
        return self.budget.trials

    def trial_count(self) -> int:
        return self.configs_to_sample() * len(self.repeats.combos())


# --- YAML with line numbers ----------------------------------------------------------------------------------


class _BadStructure(Exception):
    """A document no spec can be: an alias inside the value it names (``a: &x [*x]``), or aliases that
    expand to an enormous document (a 'billion laughs')."""


MAX_YAML_NODES = 100_000


def _line_index(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map every key path in a composed YAML document to its 1-based line number."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...], inside: frozenset[int]) -> None:
        line = node.start_mark.line + 1
        if id(node) in inside:
            raise _BadStructure(f", line {line}: an alias (*name) refers to the value that contains it, which "
                                "makes the spec infinite. Repeat the values instead.")
        if len(lines) > MAX_YAML_NODES:
            raise _BadStructure(f": the document expands to more than {MAX_YAML_NODES} values (aliases "
                                "repeated inside aliases?). A sweep spec is small.")
        lines[path] = line
        inside = inside | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                # A non-scalar key is unhashable; the loader rejects it with a line number.
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.id}>"
                walk(value_node, (*path, key), inside)
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index), inside)

    walk(root, (), frozenset())
    return lines


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for end in range(len(loc), -1, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at ``loc`` (the parent of an unknown key), for 'did you mean'."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if current is SweepSpec and part == "search":
            return []
        fields = getattr(current, "model_fields", {})
        if part in fields:
            annotation = fields[part].annotation
            current = next(
                (arg for arg in (*getattr(annotation, "__args__", ()), annotation)
                 if isinstance(arg, type) and issubclass(arg, BaseModel)),
                None,
            )
        elif current is SweepSpec or current is None:
            current = Axis
    return list(getattr(current, "model_fields", {})) if current is not None else []


def _closest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else f" Valid keys here: {', '.join(options)}." if options else ""


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _format_validation(err: pydantic.ValidationError, source: str, lines: dict[tuple[Any, ...], int]) -> str:
    problems = []
    for item in err.errors():
        loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        # pydantic names union members in loc (e.g. "list[Objective]"); they mean nothing to a user.
        loc = tuple(part for part in loc if not (isinstance(part, str) and ("[" in part or part in (
            "Objective", "tuple[float, float]", "tuple[Integer, Integer]"))))
        line = _line_of(lines, loc)
        where = f"{source}" + (f", line {line}" if line else "")
        if item["type"] == "extra_forbidden":
            hint = _closest(loc[-1], _allowed_keys(SweepSpec, loc[:-1]))
            problems.append(f"{where}: unknown key '{_dotted(loc)}'.{hint}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: '{_dotted(loc)}': {message} (got {item.get('input')!r}).")
    # One message per location is enough: union branches repeat themselves.
    unique = list(dict.fromkeys(problems))
    return "\n".join(unique)


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Parse a YAML mapping and its line index; SpecError for unreadable files or bad YAML."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror or exc}). Check the path.") from None
    try:
        node = yaml.compose(text)
        # Recursive aliases first: the loader would build a self-containing value.
        lines = _line_index(node) if node is not None else {}
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}{where}: not valid YAML ({problem}). Fix the syntax.") from None
    except _BadStructure as exc:
        raise SpecError(f"{path}{exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: the YAML is nested too deeply to be a sweep spec.") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep spec is a YAML mapping (name:, trainer:, ...), got {type(data).__name__}.")
    return data, lines


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` command-line override (value parsed as YAML) in place."""
    if "=" not in override:
        raise SpecError(f"command-line override {override!r}: write key=value, e.g. budget.trials=4.")
    key, _, raw = override.partition("=")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    parts = [part for part in key.strip().split(".") if part]
    if not parts:
        raise SpecError(f"command-line override {override!r}: the key is empty.")
    target = data
    for part in parts[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise SpecError(f"command-line override {override!r}: '{part}' is not a mapping in the spec.")
        target = child
    target[parts[-1]] = value


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


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = (), smoke: bool = False) -> SweepSpec:
    """Read, override (and for ``smoke`` shrink) and validate a sweep spec, with the trainer checks."""
    path = Path(path)
    data, lines = read_yaml(path)
    if smoke:
        apply_smoke(data)
    for override in overrides:
        apply_override(data, override)
    source = str(path)
    try:
        spec = SweepSpec.model_validate(data)
    except pydantic.ValidationError as err:
        raise SpecError(_format_validation(err, source, lines)) from None
    check_against_trainer(spec, source, lines)
    return spec


def check_against_trainer(spec: SweepSpec, source: str, lines: dict[tuple[Any, ...], int]) -> None:
    """Trainer name, fixed overrides, search keys/values, conditions and objective metrics."""
    from platform.trainers import TRAINERS  # the registry fills on import of the trainer modules

    def where(*loc: Any) -> str:
        line = _line_of(lines, loc)
        return f"{source}" + (f", line {line}" if line else "")

    if spec.trainer not in TRAINERS:
        raise SpecError(f"{where('trainer')}: 'trainer': {TRAINERS.unknown_message(spec.trainer)}")
    trainer = TRAINERS.get(spec.trainer)
    config_cls = trainer.Config
    fields = trainer.config_keys()

    problems: list[str] = []
    for key in spec.fixed:
        if key not in fields:
            problems.append(f"{where('fixed', key)}: 'fixed.{key}' is not a field of {spec.trainer}'s Config."
                            f"{_closest(key, sorted(fields))}")
    for key in spec.search:
        if key not in fields:
            problems.append(f"{where('search', key)}: search key 'search.{key}' is not a field of "
                            f"{spec.trainer}'s Config.{_closest(key, sorted(fields))}")
        if key in spec.fixed:
            problems.append(f"{where('search', key)}: '{key}' is both fixed and searched; keep one.")
    if problems:
        raise SpecError("\n".join(problems))

    try:
        config_cls.model_validate(spec.fixed)
    except pydantic.ValidationError as err:
        raise SpecError("\n".join(
            f"{where('fixed', *item['loc'])}: 'fixed.{_dotted(item['loc'])}': "
            f"{item['msg'].removeprefix('Value error, ')} (got {item.get('input')!r})."
            for item in err.errors()
        )) from None
    for key, axis in spec.search.items():
        for value in axis.values_to_check():
            try:
                config_cls.model_validate({**spec.fixed, key: value})
            except pydantic.ValidationError as err:
                first = err.errors()[0]
                raise SpecError(f"{where('search', key)}: 'search.{key}': value {value!r} is not valid for "
                                f"{spec.trainer}: {first['msg']}.") from None
        for cond_key in axis.when or {}:
            if cond_key not in spec.search:
                raise SpecError(f"{where('search', key, 'when', cond_key)}: 'search.{key}.when' refers to "
                                f"'{cond_key}', which is not a search axis.{_closest(cond_key, list(spec.search))}")
            parent = spec.search[cond_key]
            if parent.kind in ("uniform", "loguniform", "int"):
                raise SpecError(f"{where('search', key, 'when')}: 'search.{key}.when' needs '{cond_key}' to be "
                                "a choice or grid axis.")
            missing = [v for v in axis.condition_values(cond_key) if v not in parent.values_to_check()]
            if missing:
                raise SpecError(f"{where('search', key, 'when')}: 'search.{key}.when.{cond_key}' value(s) "
                                f"{missing} are not among {parent.values_to_check()}.")
    if spec.searcher.sampler == "grid":
        loose = [k for k, a in spec.search.items() if a.kind not in ("grid", "choice")]
        if loose:
            raise SpecError(f"{where('searcher', 'sampler')}: 'searcher.sampler: grid' needs every axis to be "
                            f"grid or choice; {loose} are ranges. Use tpe/random or list the values.")
        if spec.searcher.points_to_evaluate:
            raise SpecError(f"{where('searcher', 'points_to_evaluate')}: a grid runs every point already; "
                            "remove 'searcher.points_to_evaluate'.")
        if any(a.when for a in spec.search.values()):
            raise SpecError(f"{where('searcher', 'sampler')}: 'searcher.sampler: grid' cannot use 'when' "
                            "conditions; use tpe or random.")
    elif spec.grid_axes:
        raise SpecError(f"{where('search', spec.grid_axes[0])}: grid axis 'search.{spec.grid_axes[0]}' runs every "
                        f"value only with 'searcher.sampler: grid' (sampler is {spec.searcher.sampler!r}). "
                        "Use choice: for a sampled categorical, or set the sampler to grid.")
    for index, point in enumerate(spec.searcher.points_to_evaluate):
        unknown = [k for k in point if k not in spec.search]
        if unknown:
            raise SpecError(f"{where('searcher', 'points_to_evaluate', index)}: point {point} names "
                            f"{unknown}, which are not search axes.{_closest(unknown[0], list(spec.search))}")
        try:
            config_cls.model_validate({**spec.fixed, **point})
        except pydantic.ValidationError as err:
            raise SpecError(f"{where('searcher', 'points_to_evaluate', index)}: point {point} is not valid: "
                            f"{err.errors()[0]['msg']}.") from None

    config = config_cls.model_validate(spec.fixed)
    known = trainer.metric_names(config, spec.data)
    for index, objective in enumerate(spec.objectives):
        if objective.metric not in known:
            loc = ("objective", index, "metric") if isinstance(spec.objective, list) else ("objective", "metric")
            raise SpecError(f"{where(*loc)}: unknown metric {objective.metric!r} for trainer {spec.trainer}."
                            f"{_closest(objective.metric, sorted(known))}")
    if spec.scheduler.type == "asha" and spec.scheduler.grace_period > config.epochs:
        raise SpecError(f"{where('scheduler', 'grace_period')}: 'scheduler.grace_period' "
                        f"({spec.scheduler.grace_period}) exceeds the epochs ({config.epochs}).")
    if spec.data.dataset == "phantom":
        from platform.data.phantom import known_domain

        bad = [d for d in spec.data.domains if not known_domain(d)]
        if bad:
            raise SpecError(f"{where('data', 'domains')}: 'data.domains': unknown phantom domain(s) {bad}; "
                            "use infant, adult, site1..siteN, ct, mr.")

