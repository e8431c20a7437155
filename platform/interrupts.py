"""SIGINT and SIGTERM in the sweep's driver: the first stops the sweep cleanly, a second stops it at once.

A first signal asks Tune to stop the way its own Ctrl-C handler does: Tune ends its loop after the current step,
saves the experiment state (the results callback writes every queued row as part of that save) and stops the
trials, which stay unfinished and continue from their last checkpoint on ``--resume``. A SIGTERM (what a cluster
scheduler or ``kubectl delete`` sends) is handled the same way. A second signal raises ``StopNow`` in the driver's
main thread: the driver writes the queued rows and exits without waiting for Tune or Ray to wind down; the
trials then resume from the state Tune saved last, as after a killed driver.

Tune installs its SIGINT handler inside ``Tuner.fit`` (and puts back, after the first SIGINT, the handler it
found): ``InterruptCallback.setup``, which Tune calls once its handler is in place, routes both signals through
this module, which calls Tune's handler on the first. The handlers replace Ray's own SIGTERM handling, which in
a driver prints a native stack dump and aborts; they are installed after ``ray.init`` for that reason.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from ray import tune

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal: what a shell reports
NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}
Handler = Callable[[int, FrameType | None], Any]


class StopNow(BaseException):
    """A second SIGINT or SIGTERM: stop without waiting. A BaseException, so that no ``except Exception`` on the
    way (Tune's loop has several) takes it for a failure and carries on."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _State:
    received: int | None = None  # the first signal, once one came
    tune_handler: Handler | None = None  # Tune's own SIGINT handler, while Tuner.fit runs
    installed = False

    def __init__(self) -> None:
        self.flushers: list[Callable[[], None]] = []


_STATE = _State()


def received() -> int | None:
    """The first SIGINT/SIGTERM this driver received since ``install``, or None."""
    return _STATE.received


def exit_code() -> int:
    """130 after SIGINT, 143 after SIGTERM."""
    return EXIT_CODES.get(_STATE.received or signal.SIGINT, 130)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _STATE.received is not None:
        raise StopNow(signum)
    _STATE.received = signum
    print(f"\n{NAMES.get(signum, signum)} received: stopping the sweep. Tune saves its state and every reported "
          "epoch is written; the unfinished trials continue from their last checkpoint on --resume. Send it "
          "again to stop at once.", file=sys.stderr, flush=True)
    if _STATE.tune_handler is None:  # before or after Tuner.fit: nothing of Tune's to stop
        raise StopNow(signum)
    # Tune's own notice repeats the above, and names Tuner.restore, not the command line's --resume.
    logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)
    handler, _STATE.tune_handler = _STATE.tune_handler, None
    handler(signal.SIGINT, frame)
    signal.signal(signal.SIGINT, _handle)  # Tune put back the handler it found: make sure it is this one


def register_flush(flush: Callable[[], None]) -> None:
    """``flush`` writes what the driver holds queued (the results callback's rows): run by ``flush_all`` when a
    second signal stops the driver without Tune's last state save."""
    _STATE.flushers.append(flush)


def flush_all() -> None:
    for flush in _STATE.flushers:
        flush()


def _leave_now(signum: int, frame: FrameType | None) -> None:
    os._exit(EXIT_CODES.get(_STATE.received or signum, 130))


def stopping() -> None:
    """After ``StopNow``: the rows are written and the driver winds down; a further signal ends it at once."""
    for signum in EXIT_CODES:
        signal.signal(signum, _leave_now)


def install() -> None:
    """Route SIGINT and SIGTERM through this module (the main thread only; after ``ray.init``)."""
    _STATE.received, _STATE.tune_handler, _STATE.flushers = None, None, []
    for signum in EXIT_CODES:
        signal.signal(signum, _handle)
    _STATE.installed = True


class InterruptCallback(tune.Callback):
    """Takes over Tune's SIGINT handler once ``Tuner.fit`` installed it, so a first SIGINT or SIGTERM stops
    Tune cleanly through it and this module knows which signal came."""

    def setup(self, **info: Any) -> None:
        if not _STATE.installed:
            return
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current is not _handle:
            _STATE.tune_handler = current
            signal.signal(signal.SIGINT, _handle)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        _STATE.tune_handler = None  # Tune's loop is over: a signal now has nothing of Tune's to stop
