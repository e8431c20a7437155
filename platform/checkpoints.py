"""A trial's checkpoints: one ``state.pt`` per Ray checkpoint directory, self-describing, and the best networks
stored once beside them.

``state.pt`` is the trainer's ``state_dict()`` (networks, optimizers, schedulers, samplers, scalers, RNG, epoch,
the method's extra state) plus :data:`ABOUT`: the format version, the trainer class that wrote it, the trial's
resolved trainer Config and the version of the trainer's code (a sha256 over its module and every package module
it imports, :func:`platform.cache.code_version`). Loading refuses a checkpoint of another trainer, naming both.

The networks of the epoch best on val (``trainer.best``) change only when an epoch improves on it, while a
checkpoint is written every epoch or every few: a :class:`BestStore` writes them once per improvement to
``<folder>/best-epoch<NNNN>.pt`` and a checkpoint records only which file holds them (``best.file``). Files no
recent checkpoint names are removed. Without a store (a trainer run outside a sweep) the best networks stay inside
``state.pt``, as before.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs
import torch

from platform.cache import code_version
from platform.storage import filesystem, is_uri, join
from platform.trainers.base import Trainer

STATE_FILE = "state.pt"
ABOUT = "about"  # the key of the description in ``state.pt``
FORMAT = 2  # 1: the trainer's state alone, the best networks inside every checkpoint (still loaded)
BEST_PREFIX = "best-epoch"
log = logging.getLogger(__name__)


def trainer_name(trainer: Trainer | type[Trainer]) -> str:
    """The import path of the trainer's class, ``module.QualName``: unambiguous, registered or not."""
    cls = trainer if isinstance(trainer, type) else type(trainer)
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def _code(module: str) -> str:
    return code_version((module,))


def describe(trainer: Trainer) -> dict[str, Any]:
    """The ``about`` record of a checkpoint: format, trainer, resolved Config (JSON types) and code version."""
    return {"format": FORMAT, "trainer": trainer_name(trainer), "config": trainer.config.model_dump(mode="json"),
            "code": _code(type(trainer).__module__)}


def save_checkpoint(trainer: Trainer, directory: Path, best_file: str | None = None) -> Path:
    """Write the trainer's whole state and its description to ``directory``; returns the file. ``best_file``:
    where :class:`BestStore` keeps ``trainer.best``'s networks (recorded instead of a copy of them)."""
    path = directory / STATE_FILE
    state = trainer.state_dict()
    best = state.get("best")
    if best is not None and best_file is not None:
        state["best"] = {"epoch": best["epoch"], "value": best["value"], "file": best_file}
    torch.save({**state, ABOUT: describe(trainer)}, path)
    return path


def load_checkpoint(trainer: Trainer, directory: Path) -> None:
    """Restore a trainer from a directory written by ``save_checkpoint``; clear error if it is unusable, was
    written by another trainer, or names best networks that cannot be read."""
    path = Path(directory) / STATE_FILE
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which, not a pickle traceback
        raise RuntimeError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc})") from exc
    about = state.pop(ABOUT, None) if isinstance(state, dict) else None
    if about is not None:
        if about.get("trainer") != trainer_name(trainer):
            raise RuntimeError(f"checkpoint {path} was written by trainer {about.get('trainer')}, not by "
                               f"{trainer_name(trainer)}: a trial resumes only with the trainer that wrote it")
        if about.get("code") != _code(type(trainer).__module__):
            log.warning("checkpoint %s was written by another version of %s's code; continuing with this one",
                        path, about.get("trainer"))
    best = state.get("best")
    if best is not None and "file" in best:
        state["best"] = {**best, "nets": read_best(best["file"], best["epoch"], path)}
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


def read_best(location: str, epoch: int, checkpoint: Path) -> dict[str, Any]:
    """The networks a best file holds, checked to be of ``epoch``; RuntimeError naming the checkpoint if not."""
    try:
        fs, file = filesystem(location)
        with fs.open_input_file(file) as stream:
            saved = torch.load(io.BytesIO(stream.read()), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"checkpoint {checkpoint} names its best networks {location}, which cannot be read "
                           f"({type(exc).__name__}: {exc})") from exc
    if saved.get("epoch") != epoch:
        raise RuntimeError(f"checkpoint {checkpoint} names best networks of epoch {epoch}, but {location} holds "
                           f"epoch {saved.get('epoch')}")
    return saved["nets"]


def _base_name(location: str) -> str:
    """The file name of a path or URI (a URI's query, the store's options, left out)."""
    return urlsplit(location).path.rpartition("/")[2] if is_uri(location) else Path(location).name


class BestStore:
    """The best networks of one trial, one file per improvement in ``folder`` (a path or URI); only the files the
    last ``keep`` checkpoints or the current best name are kept (a damaged latest checkpoint falls back to an
    earlier one, which must still find its best networks)."""

    def __init__(self, folder: str, keep: int = 3) -> None:
        self.folder = folder
        self.named: collections.deque[str] = collections.deque(maxlen=keep)  # by the last checkpoints
        self.current: str | None = None

    def file_of(self, epoch: int) -> str:
        return join(self.folder, f"{BEST_PREFIX}{epoch:04d}.pt")

    def write(self, best: dict[str, Any]) -> str:
        """Store ``trainer.best``'s networks (an improvement); returns the file."""
        location = self.file_of(best["epoch"])
        fs, file = filesystem(location)
        fs.create_dir(file.rpartition("/")[0], recursive=True)
        buffer = io.BytesIO()
        torch.save({"epoch": best["epoch"], "nets": best["nets"]}, buffer)
        temporary = f"{file}.partial"
        with fs.open_output_stream(temporary) as stream:  # a reader never sees half a file
            stream.write(buffer.getvalue())
        fs.move(temporary, file)
        self.current = location
        return location

    def checkpointed(self, location: str | None) -> None:
        """A checkpoint naming ``location`` was reported (or restored): keep it, remove what nothing names."""
        if location is not None:
            self.named.append(location)
        keep = {_base_name(name) for name in [*self.named, self.current] if name}
        fs, folder = filesystem(self.folder)
        try:
            infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        except OSError:
            return
        for info in infos:
            if info.base_name.startswith(BEST_PREFIX) and info.base_name not in keep:
                # Removed by another attempt of the trial, or a store that refuses: harmless.
                with contextlib.suppress(OSError):
                    fs.delete_file(info.path)
