"""The sweep specification's models: ``SweepSpec`` and its sections (search axes, searcher, scheduler,
objectives, budget, repeats, resources, explore, the paper table), with the rules that need no trainer.

Every model forbids unknown keys. ``platform.spec`` reads a file into these models and checks the parts that
need the trainer; it re-exports every public name here.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NoReturn

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from platform.data.config import DataConfig
from platform.runtime import RuntimeConfig
from platform.spec_checks import when_cycle
from platform.specfile import closest, excerpt
from platform.strictnum import refuse_bool_items, refuse_bool_numbers

DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice", "grid")
Integer = int  # Axis has a field named ``int``, which shadows the builtin inside its class body
SEED_LIMIT = 2**32  # seeds are in [0, 2^32): what numpy's and torch's generators take
MAX_TRIALS = 100_000  # trials of one sweep (configurations x repeats); a grid's points are built in memory
MAX_NAME_CHARS = 200  # a directory name (255 bytes at most on common filesystems), with room for '-smoke'
# Filesystems pyarrow opens from a URI (``pyarrow.fs.FileSystem.from_uri``).
STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any) -> Any:
        return refuse_bool_numbers(cls, data)


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
            # An int range includes both ends, so [3, 3] is the one value 3; a float range needs low < high.
            empty = low > high if kind == "int" else low >= high
            if not (math.isfinite(low) and math.isfinite(high)) or empty:
                relation = "low <= high" if kind == "int" else "low < high"
                raise ValueError(f"{kind} range [{low}, {high}] is empty or inverted: write [low, high], {relation}")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform range [{low}, {high}] must have low > 0")
        elif not getattr(self, kind):
            raise ValueError(f"{kind} needs at least one value")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in DISTRIBUTIONS if getattr(self, name) is not None)

    @property
    def listed(self) -> bool:
        """Whether the axis lists its values (choice or grid) rather than giving a range."""
        return self.kind in ("choice", "grid")

    @property
    def values(self) -> list[Any]:
        """The values a choice or grid axis takes, in the spec's order (TypeError for a range: see ``ends``)."""
        if not self.listed:
            raise TypeError(f"a {self.kind} axis is a range, not a list of values: read its ends")
        return list(getattr(self, self.kind))

    @property
    def ends(self) -> tuple[Any, Any]:
        """``(low, high)`` of a uniform, loguniform or int range (TypeError for a choice or grid axis)."""
        if self.listed:
            raise TypeError(f"a {self.kind} axis lists values, it has no range ends")
        low, high = getattr(self, self.kind)
        return low, high

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
    trials: int = Field(8, ge=1, le=MAX_TRIALS, description="sampled configurations (each runs once per repeat)")
    concurrent: int | None = Field(None, ge=1, description="trials at once; default: what resources allow")
    time_budget_s: float | None = Field(None, gt=0, description="stop starting trials after this many seconds")


class Repeats(_Strict):
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=MAX_TRIALS,
                             description="each config runs per seed")
    folds: list[int] | None = Field(None, min_length=1, max_length=MAX_TRIALS,
                                    description="cross-validation folds, crossed with seeds")

    @field_validator("seeds", "folds", mode="before")
    @classmethod
    def _no_booleans(cls, values: Any) -> Any:
        return refuse_bool_items(values, "seeds and folds")

    @field_validator("seeds", "folds")
    @classmethod
    def _unique(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"values repeat: {values}")
        return values

    @field_validator("seeds")
    @classmethod
    def _seed_range(cls, seeds: list[int]) -> list[int]:
        # Every seed reaches numpy and torch.manual_seed, and the results tables store it as int64.
        outside = [seed for seed in seeds if not 0 <= seed < SEED_LIMIT]
        if outside:
            raise ValueError(f"seed {excerpt(outside[0])} is outside [0, 2^32); seeds are integers from 0 to "
                             f"{SEED_LIMIT - 1}")
        return seeds

    def count(self) -> int:
        """Repeats per configuration, without building them."""
        return len(self.seeds) * (len(self.folds) if self.folds else 1)

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
    max_failures: int = Field(2, ge=0, le=100, description="times a trial is retried from its last checkpoint "
                              "after the infrastructure failed under it (a worker killed, a node lost); an error "
                              "of the trial's own code (an exception, a NaN) is never retried")


class Explore(_Strict):
    """How the explorer first shows this sweep (the tables carry it; nothing here changes a trial)."""

    baseline: dict[str, Any] | None = Field(
        None, description="the ablation baseline: a value per searched axis, e.g. {dnrb_blocks: []}")


class PaperRow(_Strict):
    """One row of a paper's table: which trials measure it, and the paper's number."""

    label: str = Field(description="the row's name, as the paper's table says it")
    where: dict[str, Any] | list[dict[str, Any]] = Field(
        default_factory=dict, description="search-axis values that pick the row's trials; a list of them pools "
        "several levels (per seed, their mean), e.g. every encoder placement")
    run: list[str] = Field(default_factory=list, description="command-line overrides of the sweep the row reads "
                           "(rows with the same overrides share one sweep), e.g. ['data.train_domains=[adult]']")
    metric: str | None = Field(None, description="the measured metric (a trials column); default: the table's")
    paper: float | None = Field(None, description="the paper's value of this row")


class PaperClaim(_Strict):
    """An ordering the paper reports: the ``larger`` row's value exceeds the ``smaller`` row's (kind ``greater``),
    by at least ``min_effect`` (kind ``min_effect``), or is at least the smaller one's within ``margin`` (kind
    ``at_least``, non-inferiority); see ``platform.statistics.evaluate_claims``."""

    text: str = Field(description="the claim in words")
    larger: str = Field(description="label of the row the paper finds larger")
    smaller: str = Field(description="label of the row the paper finds smaller")
    at_least: bool = Field(False, description="the paper's claim is 'larger or equal' (non-inferiority; needs a "
                           "margin)")
    margin: float | None = Field(None, gt=0, description="with at_least: how far below the smaller row the larger "
                                 "may lie and still count as 'at least' (e.g. 0.02 Dice)")
    min_effect: float | None = Field(None, gt=0, description="the least difference the paper's wording claims "
                                     "('far lower'): supported only when the interval lies above it")
    invalid: str | None = Field(None, min_length=1, description="why the claim measures a known artefact (it is "
                                "reported as invalid, never judged)")

    @model_validator(mode="after")
    def _kind_is_consistent(self) -> PaperClaim:
        if self.at_least and self.margin is None:
            raise ValueError(f"paper claim {self.text!r} has at_least: true without a margin: give the largest "
                             "shortfall that still counts as 'at least', e.g. margin: 0.02")
        if self.margin is not None and not self.at_least:
            raise ValueError(f"paper claim {self.text!r} has a margin without at_least: true (a margin belongs to "
                             "a non-inferiority claim)")
        if self.min_effect is not None and self.at_least:
            raise ValueError(f"paper claim {self.text!r} has both min_effect and at_least: a claim is either a "
                             "minimum effect or non-inferiority")
        return self

    @property
    def kind(self) -> str:
        """``greater``, ``min_effect`` or ``at_least`` (``platform.statistics.CLAIM_KINDS``)."""
        return "at_least" if self.at_least else "min_effect" if self.min_effect is not None else "greater"


class PaperTable(_Strict):
    """The paper result a spec reproduces (read by ``python -m platform.reproduce``; nothing here changes a
    trial)."""

    title: str = Field(description="which table or figure of which paper")
    metric: str = Field("test/best/dice", description="the measured trials column of every row (test, best on val)")
    rows: list[PaperRow] = Field(min_length=1, description="the table's rows")
    claims: list[PaperClaim] = Field(default_factory=list, description="the orderings to check")

    @model_validator(mode="after")
    def _claims_name_rows(self) -> PaperTable:
        labels = [row.label for row in self.rows]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"paper.rows repeat the labels {repeated}: give each row its own label")
        for claim in self.claims:
            for label in (claim.larger, claim.smaller):
                if label not in labels:
                    raise ValueError(f"paper claim {claim.text!r} names the row {label!r}, which is not among "
                                     f"{labels}")
        return self


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
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig,
                                   description="precision, memory format, compile, prefetch, checkpoint interval")
    storage: str = Field("./runs", description="local directory or pyarrow filesystem URI (s3://, gs://)")
    explore: Explore = Field(default_factory=Explore, description="how the explorer first shows the sweep")
    paper: PaperTable | None = Field(None, description="the paper table this sweep reproduces (platform.reproduce)")
    _base_config: Any = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _short_name(cls, name: str) -> str:
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"the experiment name has {len(name)} characters; at most {MAX_NAME_CHARS} fit in a "
                             "directory name (--smoke adds '-smoke'). Choose a shorter name")
        return name

    @field_validator("objective")
    @classmethod
    def _some_objectives(cls, objective: Objective | list[Objective]) -> Objective | list[Objective]:
        if isinstance(objective, list):
            if not objective:
                raise ValueError("a list of objectives needs at least one {metric:, mode:}")
            metrics = [o.metric for o in objective]
            repeated = sorted({m for m in metrics if metrics.count(m) > 1})
            if repeated:
                raise ValueError(f"objective(s) {repeated} are listed more than once; list each metric once")
        return objective

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, storage: str) -> str:
        if not storage.strip():
            raise ValueError("the storage location is empty: give a directory (e.g. ./runs) or a URI (s3://...)")
        control = next((char for char in storage if ord(char) < 32 or ord(char) == 127), None)
        if control is not None:
            # A newline or other control character would become part of a directory or object name.
            raise ValueError(f"the storage location {storage!r} contains the control character {control!r}; give "
                             "a directory or URI without newlines, tabs or other control characters")
        if "://" in storage:
            scheme = storage.split("://", 1)[0].lower()
            if scheme not in STORAGE_SCHEMES:
                raise ValueError(f"storage scheme {scheme + '://'!r} is not a filesystem pyarrow can open; use a "
                                 f"local path or one of {', '.join(s + '://' for s in STORAGE_SCHEMES)}")
        return storage

    @model_validator(mode="after")
    def _search_space_rules(self) -> SweepSpec:
        """The rules of a search space that need no trainer: ``when`` conditions name other choice or grid axes
        and form no cycle; a grid sampler takes only grid or choice axes, no points and no conditions; a grid
        axis needs the grid sampler. Each error is located at its key, so it gets the spec's line."""
        search = self.search
        for key, axis in search.items():
            for parent in axis.when or {}:
                loc = ("search", key, "when", parent)
                if parent == key:
                    _refuse(loc, f"names {key!r} itself; an axis cannot depend on its own value. Condition it on "
                                 "another axis", axis.when)
                if parent not in search:
                    _refuse(loc, f"refers to {excerpt(parent)}, which is not a search axis."
                                 f"{closest(parent, list(search))}", axis.when)
                if search[parent].kind in ("uniform", "loguniform", "int"):
                    _refuse(loc, f"needs {parent!r} to be a choice or grid axis", axis.when)
        cycle = when_cycle(search)
        if cycle:
            _refuse(("search", cycle[0], "when"), f"the 'when' conditions form a cycle ({' -> '.join(cycle)}), so no "
                                                 "axis of it can be sampled first. Remove one condition", None)
        if self.searcher.sampler == "grid":
            loose = [k for k, a in search.items() if a.kind not in ("grid", "choice")]
            if loose:
                _refuse(("searcher", "sampler"), f"'searcher.sampler: grid' needs every axis to be grid or choice; "
                                                 f"{loose} are ranges. Use tpe/random or list the values", "grid")
            if self.searcher.points_to_evaluate:
                _refuse(("searcher", "points_to_evaluate"), "a grid runs every point already; remove "
                                                            "'searcher.points_to_evaluate'", None)
            if any(a.when for a in search.values()):
                _refuse(("searcher", "sampler"), "'searcher.sampler: grid' cannot use 'when' conditions; use tpe or "
                                                 "random", "grid")
        elif self.grid_axes:
            first = self.grid_axes[0]
            _refuse(("search", first), f"grid axis 'search.{first}' runs every value only with 'searcher.sampler: "
                                       f"grid' (sampler is {self.searcher.sampler!r}). Use choice: for a sampled "
                                       "categorical, or set the sampler to grid", None)
        return self

    @model_validator(mode="after")
    def _bounded(self) -> SweepSpec:
        trials = self.trial_count()
        if trials > MAX_TRIALS:
            raise ValueError(f"the sweep has {self.configs_to_sample():,} configurations x "
                             f"{self.repeats.count():,} repeats = {trials:,} trials; at most {MAX_TRIALS:,} "
                             "run in one sweep. Narrow the grid or the budget")
        return self

    def trainer_class(self) -> Any:
        """The registered trainer class (``platform.trainers``) this sweep runs."""
        from platform.trainers import TRAINERS

        return TRAINERS.get(self.trainer)

    def base_config(self) -> Any:
        """The trainer Config of the ``fixed`` values, validated once (what every trial starts from)."""
        if self._base_config is None:
            self._base_config = self.trainer_class().Config.model_validate(self.fixed)
        return self._base_config

    @property
    def objectives(self) -> list[Objective]:
        return self.objective if isinstance(self.objective, list) else [self.objective]

    @property
    def grid_axes(self) -> list[str]:
        return [key for key, axis in self.search.items() if axis.kind == "grid"]

    def configs_to_sample(self) -> int:
        """Number of configurations the searcher proposes (a full grid, or the budget)."""
        if self.searcher.sampler == "grid":
            # The product of the axis lengths, never the points themselves (a grid may be absurdly large).
            return math.prod(len(axis.values) for axis in self.search.values())
        return self.budget.trials

    def trial_count(self) -> int:
        return self.configs_to_sample() * self.repeats.count()




def _refuse(loc: tuple[Any, ...], message: str, value: Any) -> NoReturn:
    """A validation error located at ``loc`` (a model validator's own errors otherwise have no location)."""
    error = PydanticCustomError("search_space", message.replace("{", "{{").replace("}", "}}"), {})
    raise pydantic.ValidationError.from_exception_data("SweepSpec", [InitErrorDetails(type=error, loc=loc,
                                                                                      input=value)])
