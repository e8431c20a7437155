"""A hook defined outside the package, added to a trial through the spec's ``runtime.hooks``
(``tests.hooks_outside:RecordingHook``) by tests/test_hooks.py: the engine picks it up without any edit."""

from __future__ import annotations

from typing import Any

from platform.hooks import Epoch, Hook, Loop

# (point, epoch number or None, what the hook saw): appended in call order by every RecordingHook in this process.
CALLS: list[tuple[str, int | None, dict[str, Any]]] = []


class RecordingHook(Hook):
    """Records each call with the epoch and the metrics it saw, and reports ``outside/epoch`` in every epoch."""

    def before_train(self, loop: Loop) -> None:
        CALLS.append(("before_train", None, {"trainer_epoch": loop.trainer.epoch}))

    def before_epoch(self, loop: Loop, epoch: Epoch) -> None:
        CALLS.append(("before_epoch", epoch.number, dict(epoch.metrics)))

    def after_train_epoch(self, loop: Loop, epoch: Epoch) -> None:
        CALLS.append(("after_train_epoch", epoch.number, dict(epoch.metrics)))

    def after_eval(self, loop: Loop, epoch: Epoch) -> None:
        CALLS.append(("after_eval", epoch.number, dict(epoch.metrics)))

    def on_improvement(self, loop: Loop, epoch: Epoch) -> None:
        best = loop.trainer.best or {}
        CALLS.append(("on_improvement", epoch.number, {"best_epoch": best.get("epoch")}))

    def before_report(self, loop: Loop, epoch: Epoch) -> None:
        epoch.metrics["outside/epoch"] = float(epoch.number)
        CALLS.append(("before_report", epoch.number, dict(epoch.metrics)))

    def after_report(self, loop: Loop, epoch: Epoch) -> None:
        CALLS.append(("after_report", epoch.number, {"checkpoint": epoch.checkpoint}))

    def after_train(self, loop: Loop) -> None:
        CALLS.append(("after_train", None, {"trainer_epoch": loop.trainer.epoch}))


class NotAHook:
    """Named by a test as a hook: refused at spec time."""
