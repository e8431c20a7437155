"""The epoch loop shared by every trainer: a short loop over hooks (platform.hooks), which hold each behaviour.

Per epoch: ``before_epoch`` -> ``trainer.train_epoch`` (under the runtime's autocast; the engine then counts the
epoch) -> ``after_train_epoch`` -> ``trainer.evaluate("val")`` -> ``after_eval`` -> ``on_improvement`` (a new
best) -> ``before_report`` -> report (+ checkpoint) -> ``after_report``; ``before_train`` and ``after_train`` around
all epochs. The built-in hooks, in order: the finite-loss check, the val cases, the trainer's ``end_epoch``,
selection of the best epoch, the best networks stored once, pictures, the final test, the artifact rows, timing,
checkpoint cadence; then the trainer's own hooks and the caller's (see platform.hooks for the exact contract).
Checkpoints: platform.checkpoints.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from platform.checkpoints import (
    STATE_FILE,
    BestStore,
    earlier_checkpoints,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from platform.hooks import (
    ArtifactSink,
    Epoch,
    Hook,
    Loop,
    builtin_hooks,
    check_losses,
    evaluate_test,
    trainer_hooks,
)
from platform.results import SELECTION_CLOCK
from platform.trainers.base import Trainer

# SELECTION_CLOCK is reported (as the epoch count) only in epochs the trainer declares eligible for selection
# (``Trainer.selectable``): ASHA's clock (platform.tuning), so a scheduler never ranks a trial on an epoch that cannot
# be selected; the trials table's best/<objective> is taken over those epochs too.
__all__ = ["SELECTION_CLOCK", "STATE_FILE", "ArtifactSink", "Report", "check_losses", "earlier_checkpoints",
           "evaluate_test", "load_checkpoint", "restore_checkpoint", "run_epochs", "save_checkpoint"]

# report(metrics, checkpoint_dir or None); the directory only lives during the call.
Report = Callable[[dict[str, Any], Path | None], None]


def run_epochs(trainer: Trainer, report: Report, *, checkpoint_every: int | None = 1,
               checkpoint_interval_s: float = 0.0, artifacts: ArtifactSink | None = None, evaluate: bool = True,
               select: tuple[str, str] = ("val/dice", "max"), hooks: Sequence[Hook] = (),
               best_store: BestStore | None = None) -> None:
    """Run epochs ``trainer.epoch .. config.epochs-1`` and report once per epoch.

    A report carries a checkpoint every ``checkpoint_every`` epochs, or (``checkpoint_every`` None) at the end
    of the first epoch ``checkpoint_interval_s`` after the previous one; always at the last epoch. A checkpoint
    costs a save and, in Ray, an upload and its registration by the driver: on short epochs that is most of the
    platform's cost per trial, and a crash repeats only the epochs since the last one.

    ``select`` (metric, mode) is the first objective: the networks of the epoch best on it are kept, and after
    the last epoch the test split is scored with them and with the last ones (:func:`evaluate_test`). Only the
    epochs the trainer declares eligible (``trainer.selectable()``, asked once the epoch is counted; e.g. not
    dualnorm's BN-only pretraining, whose networks are not the method's) can be kept, and only they carry
    ``selection/epoch`` (:data:`SELECTION_CLOCK`, the epoch count), ASHA's time attribute: ASHA skips a result
    without its time attribute, so an ineligible epoch is neither recorded at a rung nor a reason to stop the
    trial, and a trial joins the rungs at its first eligible epoch (at the highest rung it has reached). Every
    epoch still reports all its metrics. If no epoch is eligible, the last networks are the selected ones.
    ``evaluate=False`` (non-zero DDP ranks) skips evaluation but still reports, because every Train worker
    must call ``report`` the same number of times.

    ``hooks`` run after the built-in ones and the trainer's (platform.hooks). ``best_store``: where the best
    networks are written once per improvement (the checkpoints name the file); None keeps them in each checkpoint.
    """
    loop = Loop(trainer, select=select, evaluate=evaluate, artifacts=artifacts, checkpoint_every=checkpoint_every,
                checkpoint_interval_s=checkpoint_interval_s, best_store=best_store)
    loop.hooks = [*builtin_hooks(), *trainer_hooks(trainer), *hooks]
    for hook in loop.hooks:
        hook.before_train(loop)
    try:
        for index in range(trainer.epoch, trainer.config.epochs):
            _run_epoch(loop, Epoch(index, last=index + 1 == trainer.config.epochs), report)
    finally:
        for hook in loop.hooks:
            hook.after_train(loop)


def _fire(loop: Loop, point: str, epoch: Epoch) -> None:
    for hook in loop.hooks:
        getattr(hook, point)(loop, epoch)


def _run_epoch(loop: Loop, epoch: Epoch, report: Report) -> None:
    """One epoch: training and val evaluation between the hook points, then the report."""
    trainer = loop.trainer
    _fire(loop, "before_epoch", epoch)
    with trainer.autocast():  # the runtime's precision (a no-op in fp32)
        epoch.metrics = dict(trainer.train_epoch(epoch.index))
    trainer.epoch = epoch.number  # the engine owns the counter; a checkpoint of this epoch resumes after it
    _fire(loop, "after_train_epoch", epoch)
    if loop.evaluate:
        with trainer.autocast():
            epoch.metrics.update(trainer.evaluate("val"))
    _fire(loop, "after_eval", epoch)
    if epoch.improved:
        _fire(loop, "on_improvement", epoch)
    _fire(loop, "before_report", epoch)
    if epoch.checkpoint:
        with tempfile.TemporaryDirectory(prefix="ckpt-") as directory:
            save_checkpoint(trainer, Path(directory), loop.best_file)
            report(epoch.metrics, Path(directory))
    else:
        report(epoch.metrics, None)
    _fire(loop, "after_report", epoch)
