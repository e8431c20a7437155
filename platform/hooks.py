"""Hooks around the epoch loop (platform.engine), in the manner of detectron2's ``HookBase``: each per-epoch
behaviour is one :class:`Hook` subclass, and a new one is a new class, added without editing the engine.

The engine calls, on every hook in list order (a point not overridden does nothing)::

    before_train(loop)                      once, after a restore: trainer.epoch is the first epoch to run
    for each epoch:
        before_epoch(loop, epoch)
        <trainer.train_epoch under autocast; trainer.epoch = epoch.number>
        after_train_epoch(loop, epoch)      epoch.metrics holds the training metrics
        <trainer.evaluate("val") under autocast, when loop.evaluate>
        after_eval(loop, epoch)             every epoch; the val metrics are in epoch.metrics when loop.evaluate
        on_improvement(loop, epoch)         only when epoch.improved (set by Selection in after_eval)
        before_report(loop, epoch)          last chance to add metrics; set epoch.checkpoint to save one
        <save the checkpoint when epoch.checkpoint; report(epoch.metrics, its directory or None)>
        after_report(loop, epoch)
    after_train(loop)                       also when an epoch raised (then before the error propagates)

The built-in hooks, in this order (:func:`builtin_hooks`): :class:`LossCheck`, :class:`ValCases`,
:class:`EndEpoch`, :class:`Selection`, :class:`BestWeights` (when the loop has a store for them),
:class:`Pictures`, :class:`FinalTest`, :class:`ArtifactRows`, :class:`Timer`, :class:`CheckpointCadence`. After them
come the hooks the trainer asks for (an optional ``hooks()`` method returning a list of hooks), then those the
caller passes (the sweep: :class:`platform.monitoring.ResourceUsage`, :class:`platform.monitoring.TrialLog` and
each ``runtime.hooks`` entry, a ``"package.module:Class"`` built with no arguments, see :func:`load_hook`).
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from platform.checkpoints import BestStore
from platform.results import ARTIFACTS_KEY, CASES_KEY, EPOCH_TIME, SELECTION_CLOCK
from platform.trainers.base import Trainer

# artifacts(trainer, split) -> artifact rows (path, kind, domain, subject, split, legend): called after each val
# evaluation that is the best so far and after the last one ("val": a picture per domain), and after the test
# evaluation of the selected networks ("test": one per case).
ArtifactSink = Callable[[Trainer, str], list[dict[str, str]]]


@dataclass
class Epoch:
    """One epoch as the hooks see it; ``index`` counts from 0, ``number`` (the reported ``epoch``) from 1."""

    index: int
    last: bool  # the trial's last epoch (config.epochs)
    metrics: dict[str, Any] = field(default_factory=dict)
    eligible: bool = False  # the trainer declares this epoch's networks selectable (Selection)
    improved: bool = False  # the best eligible epoch so far on the first objective (Selection)
    pictures: list[dict[str, Any]] = field(default_factory=list)  # artifact rows of this epoch
    checkpoint: bool = False  # this report carries a checkpoint (CheckpointCadence)

    @property
    def number(self) -> int:
        return self.index + 1


@dataclass
class Loop:
    """What the hooks share: the trainer and the engine's settings (see ``platform.engine.run_epochs``)."""

    trainer: Trainer
    select: tuple[str, str] = ("val/dice", "max")  # the first objective: (metric, mode)
    evaluate: bool = True  # False on non-zero DDP ranks: no evaluation, reports still made
    artifacts: ArtifactSink | None = None
    checkpoint_every: int | None = 1
    checkpoint_interval_s: float = 0.0
    best_store: BestStore | None = None  # where the best networks are stored once (else inside each checkpoint)
    best_file: str | None = None  # the file holding trainer.best's networks, named by the next checkpoint
    hooks: list[Hook] = field(default_factory=list)


class Hook:
    """Base of every hook: each method is called at its point of the loop (module docstring); all do nothing."""

    def before_train(self, loop: Loop) -> None:
        """Once, before the first epoch to run."""

    def before_epoch(self, loop: Loop, epoch: Epoch) -> None:
        """Before the epoch's training."""

    def after_train_epoch(self, loop: Loop, epoch: Epoch) -> None:
        """After training; ``epoch.metrics`` holds what ``train_epoch`` returned."""

    def after_eval(self, loop: Loop, epoch: Epoch) -> None:
        """After the val evaluation (or where it would be, when ``loop.evaluate`` is False)."""

    def on_improvement(self, loop: Loop, epoch: Epoch) -> None:
        """The epoch is the best eligible one so far; ``loop.trainer.best`` holds its networks."""

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        """Before ``epoch.metrics`` is reported (with a checkpoint when ``epoch.checkpoint``)."""

    def after_report(self, loop: Loop, epoch: Epoch) -> None:
        """After the report."""

    def after_train(self, loop: Loop) -> None:
        """Once at the end, also when an epoch raised."""


def check_losses(metrics: dict[str, Any], epoch: int) -> None:
    """FloatingPointError when a ``train/loss*`` metric is NaN or infinite (the trial errors with it)."""
    for key, value in metrics.items():
        if key.startswith("train/loss") and isinstance(value, (int, float)) and not math.isfinite(value):
            raise FloatingPointError(f"{key} became {value} at epoch {epoch + 1}")


def improved(value: Any, best: dict[str, Any] | None, mode: str) -> bool:
    """Whether ``value`` (finite) beats ``best["value"]`` in ``mode`` (any finite value beats no best)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best["value"] if mode == "max" else value < best["value"]


def evaluate_test(trainer: Trainer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score the test split with the last networks and with those of the epoch best on val (``trainer.best``):
    ``test/last/...`` and ``test/best/...`` metrics, ``test/selected_epoch``, and the per-case rows of both
    (``split`` test, ``checkpoint`` last or best, ``epoch`` the networks' epoch). The last networks stay loaded."""
    with trainer.autocast():
        last, last_rows = trainer.evaluate("test"), list(trainer.last_cases)
    best, selected = trainer.best, trainer.epoch
    if best is None or best["epoch"] == trainer.epoch:
        chosen, chosen_rows = last, last_rows
    else:
        current, epoch = trainer.network_state(), trainer.epoch
        # The networks of that epoch, and its epoch count: a method whose inference depends on its stage (dualnorm
        # scores its first forward during pretraining) scores them as it did then.
        trainer.load_network_state(best["nets"])
        trainer.epoch = best["epoch"]
        try:
            with trainer.autocast():
                chosen, chosen_rows, selected = trainer.evaluate("test"), list(trainer.last_cases), best["epoch"]
        finally:
            trainer.load_network_state(current)
            trainer.epoch = epoch
    metrics: dict[str, Any] = {"test/selected_epoch": float(selected)}
    for checkpoint, scores in (("last", last), ("best", chosen)):
        metrics.update({f"test/{checkpoint}/{key[5:]}": value for key, value in scores.items()
                        if key.startswith("test/")})
    cases = [{**row, "split": "test", "checkpoint": "last", "epoch": trainer.epoch} for row in last_rows]
    cases += [{**row, "split": "test", "checkpoint": "best", "epoch": selected} for row in chosen_rows]
    return metrics, cases


class LossCheck(Hook):
    """The one finite-loss check: a NaN anywhere in the epoch reaches its mean, and the trial errors with it."""

    def after_train_epoch(self, loop: Loop, epoch: Epoch) -> None:
        check_losses(epoch.metrics, epoch.index)


class ValCases(Hook):
    """Each evaluated val volume's own scores, as JSON under ``cases`` (the results' cases table)."""

    def after_eval(self, loop: Loop, epoch: Epoch) -> None:
        if loop.evaluate and loop.trainer.last_cases:
            epoch.metrics[CASES_KEY] = json.dumps([{"split": "val", **row} for row in loop.trainer.last_cases])


class EndEpoch(Hook):
    """The trainer's own ``end_epoch(epoch, metrics)`` (schedulers, a stage switch, extra metrics)."""

    def after_eval(self, loop: Loop, epoch: Epoch) -> None:
        loop.trainer.end_epoch(epoch.index, epoch.metrics)


class Selection(Hook):
    """Only epochs the trainer declares eligible (``trainer.selectable()``, asked once the epoch is counted) carry
    :data:`SELECTION_CLOCK` (ASHA's time attribute) and can become ``trainer.best``: the networks of the epoch best
    on the first objective, scored on test at the end."""

    def after_eval(self, loop: Loop, epoch: Epoch) -> None:
        trainer, (metric, mode) = loop.trainer, loop.select
        epoch.eligible = trainer.selectable()
        if epoch.eligible:
            epoch.metrics[SELECTION_CLOCK] = float(epoch.number)
        epoch.improved = loop.evaluate and epoch.eligible and improved(epoch.metrics.get(metric), trainer.best, mode)
        if epoch.improved:
            trainer.best = {"epoch": epoch.number, "value": float(epoch.metrics[metric]),
                            "nets": trainer.network_state()}


class BestWeights(Hook):
    """The best networks stored once per improvement in ``loop.best_store``, which the checkpoints then name."""

    def before_train(self, loop: Loop) -> None:
        best, store = loop.trainer.best, loop.best_store
        if best is None or store is None:
            return
        # Restored from a checkpoint: the file it named, or (a checkpoint holding the networks) a new one.
        loop.best_file = best.get("file") or store.write(best)
        store.checkpointed(loop.best_file)

    def on_improvement(self, loop: Loop, epoch: Epoch) -> None:
        if loop.best_store is not None and loop.trainer.best is not None:
            loop.best_file = loop.best_store.write(loop.trainer.best)

    def after_report(self, loop: Loop, epoch: Epoch) -> None:
        if loop.best_store is not None and epoch.checkpoint:
            loop.best_store.checkpointed(loop.best_file)


class Pictures(Hook):
    """Val pictures at each new best epoch and at the last: a trial the scheduler stops early (it is not told in
    advance) keeps the pictures of its best epoch. The same files are overwritten, so a trial holds one picture per
    domain: of its last epoch if it ran to the end, else of its best one."""

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        if (epoch.last or epoch.improved) and loop.artifacts is not None and loop.evaluate:
            epoch.pictures += [{**row, "epoch": epoch.number, "checkpoint": "last" if epoch.last else "best"}
                               for row in loop.artifacts(loop.trainer, "val")]


class FinalTest(Hook):
    """After the last epoch, the test split scored with the best-on-val and the last networks
    (:func:`evaluate_test`), its cases added to ``cases``, and a picture of every test case of the selected ones."""

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        if not (epoch.last and loop.evaluate and loop.trainer.test_cases):
            return
        test_metrics, test_cases = evaluate_test(loop.trainer)
        epoch.metrics.update(test_metrics)
        rows = json.loads(epoch.metrics.get(CASES_KEY, "[]")) + test_cases
        epoch.metrics[CASES_KEY] = json.dumps(rows)
        if loop.artifacts is not None:
            # evaluate_test scores the selected (best on val) networks last: every test case's picture.
            selected = int(test_metrics["test/selected_epoch"])
            epoch.pictures += [{**row, "epoch": selected, "checkpoint": "best"}
                               for row in loop.artifacts(loop.trainer, "test")]


class ArtifactRows(Hook):
    """The epoch's pictures as JSON under ``artifacts`` (the results' artifacts table)."""

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        if epoch.pictures:
            epoch.metrics[ARTIFACTS_KEY] = json.dumps(epoch.pictures)


class Timer(Hook):
    """``epoch``, ``time/train_s``, ``time/eval_s`` (evaluation, pictures and test), ``time/epoch_s`` and each
    network's size ``model/params/<net>`` (counted once: sizes do not change during training)."""

    def __init__(self) -> None:
        self.sizes: dict[str, float] = {}
        self.started = self.trained = 0.0

    def before_train(self, loop: Loop) -> None:
        trainer = loop.trainer
        self.sizes = {f"model/params/{name}": float(sum(p.numel() for p in trainer.net(name).parameters()))
                      for name in trainer.nets}

    def before_epoch(self, loop: Loop, epoch: Epoch) -> None:
        self.started = time.perf_counter()

    def after_train_epoch(self, loop: Loop, epoch: Epoch) -> None:
        self.trained = time.perf_counter()

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        evaluated = time.perf_counter()
        epoch.metrics.update({**self.sizes, "epoch": epoch.number, "time/train_s": self.trained - self.started,
                              "time/eval_s": evaluated - self.trained, EPOCH_TIME: evaluated - self.started})


class CheckpointCadence(Hook):
    """A checkpoint every ``checkpoint_every`` epochs, or (None) at the end of the first epoch
    ``checkpoint_interval_s`` after the previous one; always at the last epoch."""

    def __init__(self) -> None:
        self.previous = 0.0

    def before_train(self, loop: Loop) -> None:
        self.previous = time.monotonic()

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        every = loop.checkpoint_every
        due = (epoch.number % every == 0 if every
               else time.monotonic() - self.previous >= loop.checkpoint_interval_s)
        epoch.checkpoint = epoch.last or due
        if epoch.checkpoint:
            self.previous = time.monotonic()


def builtin_hooks() -> list[Hook]:
    """The engine's own behaviours, in their order (module docstring)."""
    return [LossCheck(), ValCases(), EndEpoch(), Selection(), BestWeights(), Pictures(), FinalTest(),
            ArtifactRows(), Timer(), CheckpointCadence()]


def trainer_hooks(trainer: Trainer) -> list[Hook]:
    """The hooks a trainer asks for through an optional ``hooks()`` method (none without one)."""
    method = getattr(trainer, "hooks", None)
    return list(method()) if callable(method) else []


def hook_class(path: str) -> type[Hook]:
    """The class named ``"package.module:Class"``; ValueError saying why when it cannot be imported or is not a
    :class:`Hook` (the spec names the field, ``runtime.hooks``)."""
    module_name, colon, name = path.partition(":")
    if not colon or not module_name or not name:
        raise ValueError(f"{path!r} is not 'package.module:Class'")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except Exception as exc:  # ImportError, AttributeError, or the module itself failing
        raise ValueError(f"{path!r} cannot be imported ({type(exc).__name__}: {exc}); the module must be "
                         "importable from the repository root or PYTHONPATH") from None
    if not (isinstance(found, type) and issubclass(found, Hook)):
        raise ValueError(f"{path!r} is not a subclass of platform.hooks.Hook")
    return found


def load_hook(path: str) -> Hook:
    """An instance of the hook class named ``"package.module:Class"`` (built with no arguments)."""
    return hook_class(path)()
