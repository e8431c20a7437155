"""Writing an embedded (generated) dataset: NIfTI volumes, a manifest and its parameters, cached atomically.

Shared by the ``mni`` and ``abdomen`` datasets; the brain phantom (:mod:`platform.data.phantom`) writes the same
layout. The directory is named by a hash of the generating parameters, so a change of any of them (or of the
generator's format version, which the parameters carry) never reuses an old cache.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from platform.cache import atomic_directory, cache_root
from platform.data.phantom import MANIFEST_NAME, _save_nifti

Generate = Callable[[str, int], tuple[np.ndarray, np.ndarray]]


def dataset_dir(prefix: str, cache_dir: str | None, parameters: dict[str, object]) -> Path:
    """Cache directory ``<prefix>-<hash of parameters>`` under the cache root."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
    return cache_root(cache_dir) / f"{prefix}-{digest[:16]}"


def build_embedded(target: Path, parameters: dict[str, object], domains: list[str], subjects: int,
                   generate: Generate, affine: np.ndarray) -> Path:
    """Write (or reuse) ``subjects`` volumes per domain made by ``generate(domain, index) -> (image, label)``;
    return the manifest's path."""
    manifest = target / MANIFEST_NAME
    with atomic_directory(target, manifest) as building:
        if building is not None:
            images = building / "images"
            images.mkdir()
            rows = []
            for domain in sorted(domains):
                for index in range(subjects):
                    subject = f"{domain}-{index:03d}"
                    image, label = generate(domain, index)
                    _save_nifti(image.astype(np.float32), affine, images / f"{subject}_image.nii.gz")
                    _save_nifti(label.astype(np.uint8), affine, images / f"{subject}_label.nii.gz")
                    # Relative paths: the directory is built under a temporary name and renamed afterwards.
                    rows.append({"image": f"images/{subject}_image.nii.gz", "label": f"images/{subject}_label.nii.gz",
                                 "domain": domain, "subject": subject})
            with open(building / MANIFEST_NAME, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["image", "label", "domain", "subject"])
                writer.writeheader()
                writer.writerows(rows)
            (building / "parameters.json").write_text(json.dumps(parameters, indent=2, sort_keys=True))
    return manifest
