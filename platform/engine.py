"""The epoch loop shared by every trainer: train_epoch -> (epoch counter, finite-loss check) -> evaluate ->
end_epoch -> report (+ checkpoint)."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import torch

from platform.results import ARTIFACTS_KEY, CASES_KEY, EPOCH_TIME, SELECTION_CLOCK
from platform.trainers.base import Trainer

STATE_FILE = "state.pt"
# SELECTION_CLOCK is reported (as the epoch count) only in epochs the trainer declares eligible for selection
# (``Trainer.selectable``): ASHA's clock (platform.tuning), so a scheduler never ranks a trial on an epoch that cannot
# be selected; the trials table's best/<objective> is taken over those epochs too.
log = logging.getLogger(__name__)

# report(metrics, checkpoint_dir or None); the directory only lives during the call.
Report = Callable[[dict[str, Any], Path | None], None]
# artifacts(trainer, split) -> artifact rows (path, kind, domain, subject, split, legend): called after each val
# evaluation that is the best so far and after the last one ("val": a picture per domain), and after the test
# evaluation of the selected networks ("test": one per case).
ArtifactSink = Callable[[Trainer, str], list[dict[str, str]]]


def save_checkpoint(trainer: Trainer, directory: Path) -> Path:
    """Write the trainer's whole state to ``directory``; returns the file."""
    path = directory / STATE_FILE
    torch.save(trainer.state_dict(), path)
    return path


def load_checkpoint(trainer: Trainer, directory: Path) -> None:
    """Restore a trainer from a directory written by ``save_checkpoint``; clear error if it is unusable."""
    path = Path(directory) / STATE_FILE
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which, not a pickle traceback
        raise RuntimeError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc})") from exc
    trainer.load_state_dict(state)


def earlier_checkpoints(checkpoint: Any) -> list[Any]:
    """The ``checkpoint_*`` directories beside a Ray ``Checkpoint`` that sort before it, newest first
    (Tune and Train name them by index or time, so the name order is the report order)."""
    parent, _, name = checkpoint.path.rstrip("/").rpartition("/")
    try:
        infos = checkpoint.filesystem.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
    except OSError:
        return []
    names = sorted((info.base_name for info in infos if info.type == pafs.FileType.Directory
                    and info.base_name.startswith("checkpoint_") and info.base_name < name), reverse=True)
    return [type(checkpoint)(path=f"{parent}/{other}", filesystem=checkpoint.filesystem) for other in names]


def restore_checkpoint(trainer: Trainer, checkpoint: Any) -> Any:
    """Load the latest Ray ``Checkpoint``; if it is unusable (a crash while writing, a corrupt file), fall back
    to the earlier ones still kept, newest first. Returns the one loaded; RuntimeError naming each if none loads.
    """
    problems: list[str] = []
    for candidate in [checkpoint, *earlier_checkpoints(checkpoint)]:
        try:
            with candidate.as_directory() as directory:
                load_checkpoint(trainer, Path(directory))
        except Exception as exc:  # unreadable state, or a checkpoint that cannot be fetched from storage
            problems.append(str(exc) if isinstance(exc, RuntimeError) else f"{candidate.path}: {exc}")
            continue
        if problems:
            log.warning("%s; continuing from the earlier checkpoint %s (epoch %s)", "; ".join(problems),
                        candidate.path, trainer.epoch)
        return candidate
    raise RuntimeError(f"no usable checkpoint to resume from: {'; '.join(problems)}. Remove the trial's "
                       "checkpoint_* directories to restart it from scratch.")


def check_losses(metrics: dict[str, Any], epoch: int) -> None:
    """FloatingPointError when a ``train/loss*`` metric is NaN or infinite (the trial errors with it)."""
    for key, value in metrics.items():
        if key.startswith("train/loss") and isinstance(value, (int, float)) and not math.isfinite(value):
            raise FloatingPointError(f"{key} became {value} at epoch {epoch + 1}")


def _improved(value: Any, best: dict[str, Any] | None, mode: str) -> bool:
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


def run_epochs(trainer: Trainer, report: Report, *, checkpoint_every: int | None = 1,
               checkpoint_interval_s: float = 0.0, artifacts: ArtifactSink | None = None, evaluate: bool = True,
               select: tuple[str, str] = ("val/dice", "max")) -> None:
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
    """
    epochs = trainer.config.epochs
    metric, mode = select
    # The networks' sizes do not change during training: counted once, reported with every epoch.
    sizes = {f"model/params/{name}": float(sum(p.numel() for p in trainer.net(name).parameters()))
             for name in trainer.nets}
    last_checkpoint = time.monotonic()
    for epoch in range(trainer.epoch, epochs):
        started = time.perf_counter()
        with trainer.autocast():  # the runtime's precision (a no-op in fp32)
            metrics: dict[str, Any] = dict(trainer.train_epoch(epoch))
        trainer.epoch = epoch + 1  # the engine owns the counter; a checkpoint of this epoch resumes after it
        check_losses(metrics, epoch)  # the one finite-loss check: a NaN anywhere in the epoch reaches its mean
        trained = time.perf_counter()
        if evaluate:
            with trainer.autocast():
                metrics.update(trainer.evaluate("val"))
            if trainer.last_cases:
                # Each evaluated volume's own scores, for the results' cases table.
                metrics[CASES_KEY] = json.dumps([{"split": "val", **row} for row in trainer.last_cases])
        trainer.end_epoch(epoch, metrics)
        eligible = trainer.selectable()
        if eligible:
            metrics[SELECTION_CLOCK] = float(epoch + 1)
        improved = evaluate and eligible and _improved(metrics.get(metric), trainer.best, mode)
        if improved:
            trainer.best = {"epoch": epoch + 1, "value": float(metrics[metric]), "nets": trainer.network_state()}
        last = epoch + 1 == epochs
        pictures = []
        if (last or improved) and artifacts is not None and evaluate:
            # At each new best epoch too, not only the last: a trial the scheduler stops early (it is not told
            # in advance) keeps the pictures of its best epoch. The same files are overwritten, so a trial holds
            # one picture per domain: of its last epoch if it ran to the end, else of its best one.
            pictures = [{**row, "epoch": epoch + 1, "checkpoint": "last" if last else "best"}
                        for row in artifacts(trainer, "val")]
        if last and evaluate and trainer.test_cases:
            test_metrics, test_cases = evaluate_test(trainer)
            metrics.update(test_metrics)
            rows = json.loads(metrics.get(CASES_KEY, "[]")) + test_cases
            metrics[CASES_KEY] = json.dumps(rows)
            if artifacts is not None:
                # evaluate_test scores the selected (best on val) networks last: every test case's picture.
                selected = int(test_metrics["test/selected_epoch"])
                pictures += [{**row, "epoch": selected, "checkpoint": "best"} for row in artifacts(trainer, "test")]
        if pictures:
            metrics[ARTIFACTS_KEY] = json.dumps(pictures)
        evaluated = time.perf_counter()
        metrics.update({
            **sizes,
            "epoch": epoch + 1,
            "time/train_s": trained - started,
            "time/eval_s": evaluated - trained,
            EPOCH_TIME: evaluated - started,
        })
        due = ((epoch + 1) % checkpoint_every == 0 if checkpoint_every
               else time.monotonic() - last_checkpoint >= checkpoint_interval_s)
        if last or due:
            last_checkpoint = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="ckpt-") as directory:
                save_checkpoint(trainer, Path(directory))
                report(metrics, Path(directory))
        else:
            report(metrics, None)
