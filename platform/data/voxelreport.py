"""The voxel report of a generated dataset (``python -m platform.data.phantom`` / ``platform.data.mni``): a Markdown
table per domain of the mean class fractions over its subjects, the dataset's own columns and the intensity range."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from platform.data.config import DataConfig

Subject = Callable[["DataConfig", str, int], tuple[np.ndarray, np.ndarray]]  # (cfg, domain, index) -> image, label
Measure = Callable[[np.ndarray, np.ndarray], Sequence[float]]  # (image, label) -> one value per extra column


def voxel_table(cfg: DataConfig, subject: Subject, columns: Sequence[tuple[str, str]], measure: Measure) -> str:
    """One row per domain of ``cfg``: the mean fraction of classes 0-3 (bg, wm, gm, csf) over its subjects, then
    each of ``columns`` (name, format) as the mean over subjects of ``measure(image, label)``, then the intensity
    range (the mean 0.5 and 99.5 percentiles). ``subject(cfg, domain, index)``: image and label, shape (D, H, W)."""
    header = ["domain", "bg", "wm", "gm", "csf", *(name for name, _ in columns), "intensity range"]
    lines = [f"size {cfg.size}, {cfg.subjects_per_domain} subjects per domain, seed {cfg.seed}",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for domain in cfg.domains:
        fractions, measured, low, high = [], [], [], []
        for index in range(cfg.subjects_per_domain):
            image, label = subject(cfg, domain, index)
            fractions.append(np.bincount(label.ravel(), minlength=4)[:4] / label.size)
            measured.append(list(measure(image, label)))
            low.append(np.percentile(image, 0.5))
            high.append(np.percentile(image, 99.5))
        means = np.mean(measured, axis=0) if columns else []
        cells = [domain, *(f"{f:.3f}" for f in np.mean(fractions, axis=0)),
                 *(format(float(v), spec) for v, (_, spec) in zip(means, columns, strict=True)),
                 f"[{np.mean(low):.0f}, {np.mean(high):.0f}]"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_command(prog: str, description: str, report: Callable[[DataConfig], str], domains: list[str],
                   subjects: int, **config: Any) -> None:
    """Print ``report`` of the DataConfig that ``--size``, ``--domains`` and ``--subjects`` (and ``config``) give."""
    import argparse

    from platform.data.config import DataConfig

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--size", type=int, default=DataConfig().size)
    parser.add_argument("--domains", nargs="+", default=domains)
    parser.add_argument("--subjects", type=int, default=subjects)
    args = parser.parse_args()
    print(report(DataConfig(size=args.size, domains=args.domains, subjects_per_domain=args.subjects, **config)))
