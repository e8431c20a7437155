"""The synthetic experiment the explorer's benchmark and tests read: ``build_experiment`` writes, in the results-tables
format, a multi-objective lambda / discriminator sweep with seeds, some errored and running trials, per-case test
scores, logs and real PNG and volume artifacts."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from platform.results import ROW_GROUP_ROWS, ResultsStore
from platform.storage import experiment_uri

DOMAINS = ("infant", "adult")
CLASSES = ("wm", "gm", "csf")
SUBJECTS = 3  # test subjects per domain


def _write(store: ResultsStore, table: str, columns: dict[str, Any]) -> None:
    """One part as the store's compaction writes it: sorted by trial, in row groups of ``ROW_GROUP_ROWS``."""
    directory = store.table_dir(table)
    os.makedirs(directory, exist_ok=True)
    data = pa.table(columns)
    data = data.append_column("_seq", pa.array(np.arange(data.num_rows, dtype=np.int64) + time.time_ns()))
    data = data.sort_by([("trial_id", "ascending")]) if "trial_id" in data.column_names else data
    pq.write_table(data, f"{directory}/part-{time.time_ns()}-compact.parquet", row_group_size=ROW_GROUP_ROWS)


def build_experiment(storage: str | Path, name: str = "synthetic", trials: int = 200, epochs: int = 10,
                     seeds: int = 3, images: int = 4, seed: int = 0) -> str:
    """Write an experiment of ``trials`` trials x ``epochs`` epochs; returns its location.

    Configurations: lambda (log-uniform), disc_arch (dcgan | resnet), n_steps (1..5), each run for ``seeds``
    seeds. Dice peaks near lambda = 0.1 and falls for large lambda; resnet is slightly better; 2% of trials
    errored and 1% still running. The first ``images`` trials saved a PNG per domain.
    """
    rng = np.random.default_rng(seed)
    location = experiment_uri(str(storage), name)
    store = ResultsStore(location)
    sweep = _configurations(rng, trials, seeds, epochs)
    _write(store, "epochs", sweep.epoch_columns)
    _write(store, "trials", _trial_columns(sweep, name))
    # What a real sweep records beside its objectives: each metric's declared direction, each axis's kind.
    store.append("sweep", [{
        "experiment": name, "trainer": "synthetic", "objectives": OBJECTIVES,
        "metrics": json.dumps({"dice": {"direction": "max", "kind": "overlap"},
                               "jsd_norm": {"direction": "min", "kind": "divergence"},
                               "hd95": {"direction": "min", "kind": "distance"}}),
        "axes": json.dumps({"lambda": {"kind": "loguniform", "log": True},
                            "disc_arch": {"kind": "choice", "log": False, "values": ["dcgan", "resnet"]},
                            "n_steps": {"kind": "int", "log": False}}),
        "explore": json.dumps({"baseline": None})}])
    cases = _case_columns(sweep, rng)
    if cases["trial_id"]:
        _write(store, "cases", {k: np.asarray(v, dtype=np.int64 if k == "epoch" else None) for k, v in cases.items()})
    rows = _artifacts(sweep, rng, Path(location), images)
    if rows["trial_id"]:
        _write(store, "artifacts", rows)
    return location


OBJECTIVES = json.dumps([{"metric": "val/dice", "mode": "max"}, {"metric": "val/jsd_norm", "mode": "min"}])


@dataclass
class _Sweep:
    """The drawn sweep: per trial its configuration, status and start, per (trial, epoch) its scores."""

    ids: np.ndarray
    lam: np.ndarray
    arch: np.ndarray
    steps: np.ndarray
    seeds: np.ndarray
    status: np.ndarray
    started: np.ndarray
    dice: np.ndarray  # (trials, epochs)
    jsd: np.ndarray  # (trials, epochs)
    epoch_columns: dict[str, Any]

    @property
    def epochs(self) -> int:
        return self.dice.shape[1]


def _configurations(rng: np.random.Generator, trials: int, seeds: int, epochs: int) -> _Sweep:
    """Draw the configurations (each run for ``seeds`` seeds), statuses and every epoch's scores."""
    configs = max(1, trials // seeds)
    lam = np.repeat(10 ** rng.uniform(-2, 1, configs), seeds)[:trials]
    arch = np.repeat(rng.choice(["dcgan", "resnet"], configs), seeds)[:trials]
    steps = np.repeat(rng.integers(1, 6, configs), seeds)[:trials]
    if len(lam) < trials:  # trials not a multiple of seeds: the last configuration gets the remainder
        extra = trials - len(lam)
        lam, arch, steps = (np.concatenate([a, a[-1:].repeat(extra)]) for a in (lam, arch, steps))
    seed_column = np.tile(np.arange(seeds), configs + 1)[:trials]
    ids = np.array([f"t{i:06d}" for i in range(trials)])
    status = np.where(rng.random(trials) < 0.02, "ERROR", "TERMINATED").astype(object)
    status[rng.random(trials) < 0.01] = "RUNNING"
    quality = 0.85 - 0.08 * (np.log10(lam) + 1) ** 2 + np.where(arch == "resnet", 0.02, 0.0) - 0.01 * (steps - 3) ** 2
    # Dice per epoch rises towards the configuration's quality; noise per trial and per epoch.
    epoch_index = np.arange(1, epochs + 1)
    curve = 1 - np.exp(-epoch_index / max(1.0, epochs / 4))
    dice = np.clip(quality[:, None] * curve[None, :] + rng.normal(0, 0.02, (trials, epochs)), 0, 1)
    jsd = np.clip(0.3 / (1 + lam[:, None]) * (2 - curve[None, :]) + rng.normal(0, 0.01, (trials, epochs)), 0, 1)
    started = time.time() - 3600 - np.arange(trials) * 2.0
    columns: dict[str, Any] = {
        "trial_id": np.repeat(ids, epochs), "epoch": np.tile(epoch_index, trials),
        "time_total_s": np.tile(epoch_index * 3.0, trials), "val/dice": dice.ravel(), "val/jsd_norm": jsd.ravel(),
        "train/loss": (1 - dice + rng.normal(0, 0.01, dice.shape)).ravel(),
        "train/disc_acc": rng.uniform(0.3, 0.9, dice.size), "time/epoch_s": rng.uniform(2.5, 3.5, dice.size),
        # What the engine records per epoch of each trial (float32: a sweep's epochs table stays small).
        "resources/cpu_percent": rng.uniform(60, 100, dice.size).astype(np.float32),
        "resources/rss_peak_mb": (1800 + 10 * np.tile(epoch_index, trials)).astype(np.float32),
        "resources/gpu_percent": rng.uniform(70, 99, dice.size).astype(np.float32),
        "resources/gpu_mem_peak_mb": np.full(dice.size, 5200, dtype=np.float32)}
    for domain_index, domain in enumerate(DOMAINS):
        for class_index, klass in enumerate(CLASSES):
            offset = 0.03 * (class_index - 1) - 0.02 * domain_index
            columns[f"val/dice/{domain}/{klass}"] = np.clip(dice.ravel() + offset, 0, 1)
        columns[f"val/dice/{domain}"] = np.clip(dice.ravel() - 0.02 * domain_index, 0, 1)
        columns[f"val/hd95/{domain}"] = (1 - dice.ravel()) * 20
    return _Sweep(ids, lam, arch, steps, seed_column, status, started, dice, jsd, columns)


def _trial_columns(sweep: _Sweep, name: str) -> dict[str, Any]:
    """The trials table: one row per trial, its configuration, status, best and last scores."""
    trials, epochs, status, started = len(sweep.ids), sweep.epochs, sweep.status, sweep.started
    last = {k: np.asarray(v).reshape(trials, epochs)[:, -1] for k, v in sweep.epoch_columns.items()
            if "/" in k and not k.startswith(("time/", "resources/"))}
    config_json = [json.dumps({"epochs": epochs, "lambda": float(a), "disc_arch": str(b), "n_steps": int(c),
                               "lr": 2e-4, "bias_field": True})
                   for a, b, c in zip(sweep.lam, sweep.arch, sweep.steps, strict=True)]
    return {
        "trial_id": sweep.ids, "experiment": np.full(trials, name), "trainer": np.full(trials, "advnorm"),
        "seed": sweep.seeds, "fold": pa.nulls(trials, pa.int64()), "repeat": sweep.seeds,
        "objectives": np.full(trials, OBJECTIVES), "config/lambda": sweep.lam, "config/disc_arch": sweep.arch,
        "config/n_steps": sweep.steps, "config_json": config_json, "status": status, "started_at": started,
        "ended_at": np.where(status == "RUNNING", np.nan, started + epochs * 3.0 + 2.0),
        "wall_s": np.full(trials, epochs * 3.0 + 2.0), "epochs": np.full(trials, epochs),
        "error": np.where(status == "ERROR", "FloatingPointError: loss is NaN at epoch 3", None),
        "traceback": np.where(status == "ERROR", "Traceback (most recent call last):\n  File \"platform/engine.py\","
                              " line 150, in run_epochs\n    check_losses(metrics, epoch)\nFloatingPointError: "
                              "loss is NaN at epoch 3", None),
        "best/val/dice": sweep.dice.max(axis=1), "best/val/jsd_norm": sweep.jsd.min(axis=1),
        **{f"last/{k}": v for k, v in last.items()}, "overhead_s": np.full(trials, 2.0)}


def _case_columns(sweep: _Sweep, rng: np.random.Generator) -> dict[str, list[Any]]:
    """Per-case test scores (best and last networks) of every finished trial: SUBJECTS test subjects per domain,
    each with its own difficulty, so paired per-case comparisons and rank stability have real structure."""
    finished = np.flatnonzero(sweep.status == "TERMINATED")
    difficulty = rng.normal(0, 0.05, (len(DOMAINS), SUBJECTS))
    columns: dict[str, list[Any]] = {key: [] for key in ("trial_id", "epoch", "split", "checkpoint", "domain",
                                                         "subject", "dice", *(f"dice/{k}" for k in CLASSES))}
    for checkpoint in ("best", "last"):
        base = sweep.dice.max(axis=1) if checkpoint == "best" else sweep.dice[:, -1]
        for domain_index, domain in enumerate(DOMAINS):
            for subject in range(SUBJECTS):
                score = np.clip(base[finished] - difficulty[domain_index, subject]
                                + rng.normal(0, 0.01, finished.size), 0, 1)
                for key, value in (("trial_id", None), ("epoch", sweep.epochs), ("split", "test"),
                                   ("checkpoint", checkpoint), ("domain", domain),
                                   ("subject", f"{domain}-{subject:03d}")):
                    columns[key] += sweep.ids[finished].tolist() if value is None else [value] * finished.size
                columns["dice"] += score.tolist()
                for class_index, klass in enumerate(CLASSES):
                    columns[f"dice/{klass}"] += np.clip(score + 0.03 * (class_index - 1), 0, 1).tolist()
    return columns


def _artifacts(sweep: _Sweep, rng: np.random.Generator, location: Path, images: int) -> dict[str, list[Any]]:
    """The first ``images`` trials' log, pictures (a val picture per domain, a test picture per test case) and
    val volumes, written under ``location``; the artifacts table's rows."""
    legend = json.dumps([{"name": "wm", "color": "#e6503c"}, {"name": "gm", "color": "#46b45a"},
                         {"name": "csf", "color": "#3c78e6"}])
    rows: dict[str, list[Any]] = {"trial_id": [], "path": [], "kind": [], "domain": [], "subject": [], "split": [],
                                  "legend": []}
    for index in range(min(images, len(sweep.ids))):
        directory = location / "artifacts" / sweep.ids[index]
        directory.mkdir(parents=True, exist_ok=True)
        # The trial's log, where the engine keeps it (not listed in the artifacts table).
        (directory / "log.txt").write_text("".join(f"epoch {e}: val/dice {sweep.dice[index, e - 1]:.4f}\n"
                                                   for e in range(1, sweep.epochs + 1)))
        for domain in DOMAINS:
            for split, subject in [("val", f"{domain}-val"), *[("test", f"{domain}-{s:03d}") for s in range(SUBJECTS)]]:
                picture = (rng.random((24, 96, 3)) * 255).astype(np.uint8)
                path = directory / (f"{domain}_{subject}.png" if split == "val" else f"test-{domain}_{subject}.png")
                Image.fromarray(picture).save(path)
                saved = [(path, "input|normalized|prediction|truth")]
                if split == "val":  # the case's volumes for the slice viewer, as the trainers save them
                    saved.append((_synthetic_volume(path.with_suffix(".npz"), rng), "volume"))
                for file, kind in saved:
                    for key, value in (("trial_id", sweep.ids[index]), ("path", str(file)), ("kind", kind),
                                       ("domain", domain), ("subject", subject), ("split", split),
                                       ("legend", legend)):
                        rows[key].append(value)
    return rows


def _synthetic_volume(path: Path, rng: np.random.Generator, size: int = 16) -> Path:
    """A 16^3 case: an image, a truth of three nested shells and a prediction that misses a random part of it."""
    grid = np.indices((size,) * 3).astype(float) - (size - 1) / 2
    radius = np.sqrt((grid ** 2).sum(axis=0))
    label = np.digitize(radius, [3, 5, 7]).astype(np.uint8) % 4
    image = (label * 60 + rng.normal(0, 10, label.shape)).clip(0, 255).astype(np.uint8)
    pred = np.where(rng.random(label.shape) < 0.15, (label + 1) % 4, label).astype(np.uint8)
    with open(path, "wb") as stream:
        np.savez_compressed(stream, image=image, pred=pred, label=label)
    return path
