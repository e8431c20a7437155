"""Embedded multi-domain brain phantom, written as real NIfTI files with a manifest.

Every subject is a brain-like ellipsoid of nested, smoothly deformed shells: WM inside, a GM shell, an outer
CSF shell, background outside. Anatomy is drawn from a generator seeded by (seed, subject index) only, so the
same subject has the same labels in every domain and a domain changes appearance alone:

- ``adult``: clear T1 contrast, low noise, acquired with 3x thicker z slices and resampled to the cube.
- ``infant``: isointense (WM and GM overlap, CSF brighter than both), low contrast, noisier.
- ``siteK``: adult contrast through a per-site scanner transfer ``gain * I**gamma + offset`` derived from K.
- ``ct`` / ``mr``: a cross-modality pair: ct has a bright skull and scalp shell in the background and
  CSF < WM < GM; mr (T2-like) has a dark background and WM < GM < CSF.

Appearance noise, per-subject tissue jitter and texture come from a generator seeded by (seed, domain,
subject). The optional bias field is the journal paper's linear ramp ``B = y/H*alpha + (1-alpha)`` along
axis 1. Datasets are cached under a directory named by a hash of the generating parameters.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from platform.cache import atomic_directory, cache_root
from platform.data.phantom_names import SITE, VALID_DOMAINS_TEXT, known_domain
from platform.seeds import stable_seed

if TYPE_CHECKING:
    from platform.data.config import DataConfig

# Bump whenever generation changes: it is part of the cache key, so old caches are never reused.
FORMAT_VERSION = 2
BG, WM, GM, CSF = 0, 1, 2, 3
MANIFEST_NAME = "manifest.csv"
# Field of view of the cube in mm: the voxel spacing in the affine is FOV / size, so a brain-sized object.
FIELD_OF_VIEW_MM = 192.0

@dataclass(frozen=True)
class _Appearance:
    """How one domain renders a label map into intensities."""

    means: tuple[float, float, float, float]  # bg, wm, gm, csf, in roughly [0, 1]
    noise: float  # Gaussian noise std
    z_factor: int = 1  # >1: acquired with z voxels this many times thicker, then resampled to the cube
    shell: tuple[float, float] | None = None  # (skull, scalp) intensity of a head shell around the brain
    gain: float = 1.0
    gamma: float = 1.0
    offset: float = 0.0


_ADULT_MEANS = (0.0, 0.85, 0.55, 0.2)


def _appearance(domain: str) -> _Appearance:
    if domain == "adult":
        return _Appearance(means=_ADULT_MEANS, noise=0.03, z_factor=3)
    if domain == "infant":
        return _Appearance(means=(0.0, 0.50, 0.56, 0.75), noise=0.06)
    if domain == "ct":
        return _Appearance(means=(0.0, 0.40, 0.70, 0.10), noise=0.04, shell=(0.95, 0.35))
    if domain == "mr":
        return _Appearance(means=(0.0, 0.30, 0.55, 0.90), noise=0.03)
    match = SITE.fullmatch(domain)
    if match is None:
        raise ValueError(f"unknown phantom domain {domain!r}: valid domains are {VALID_DOMAINS_TEXT}")
    # A scanner's transfer is a property of the site, not of the data seed: derive it from K alone.
    rng = np.random.default_rng(stable_seed("site", int(match.group(1))))
    return _Appearance(
        means=_ADULT_MEANS,
        noise=0.03,
        gain=float(rng.uniform(0.7, 1.3)),
        gamma=float(rng.uniform(0.6, 1.6)),
        offset=float(rng.uniform(-0.1, 0.15)),
    )


def _parameters(cfg: DataConfig) -> dict[str, object]:
    # Domains sorted: the generated data does not depend on their order, so neither does the cache key.
    return {
        "format_version": FORMAT_VERSION,
        "domains": sorted(cfg.domains),
        "subjects_per_domain": cfg.subjects_per_domain,
        "size": cfg.size,
        "bias_field": cfg.bias_field,
        "noise": cfg.noise,
        "seed": cfg.seed,
    }


def phantom_dir(cfg: DataConfig) -> Path:
    """Directory the phantom for ``cfg`` lives in (named by a hash of the generating parameters)."""
    digest = hashlib.sha256(json.dumps(_parameters(cfg), sort_keys=True).encode()).hexdigest()
    return cache_root(cfg.cache_dir) / f"phantom-{digest[:16]}"


def affine_for(size: int) -> np.ndarray:
    """RAS affine of a ``size``-cube: isotropic spacing FOV/size mm, world origin at the cube centre."""
    spacing = FIELD_OF_VIEW_MM / size
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (size - 1) / 2.0
    return affine


def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    return x, y, z


def _smooth_field(
    rng: np.random.Generator,
    grid: tuple[np.ndarray, np.ndarray, np.ndarray],
    waves: int,
    freq: tuple[float, float],
    amp: float,
) -> np.ndarray:
    """Low-frequency random field: a sum of ``waves`` sinusoids with random directions and phases.

    ``freq`` is in radians per unit of the [-1, 1] grid, so the field is defined in normalized coordinates and
    the same seed gives the same shape at every cube size. Its std is about ``amp / sqrt(2)``.
    """
    x, y, z = grid
    field = np.zeros_like(x)
    for _ in range(waves):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction) + 1e-12
        # Python floats, so NumPy keeps the grid's float32 instead of promoting to float64.
        kx, ky, kz = (float(c) for c in direction * rng.uniform(*freq))
        phase = float(rng.uniform(0.0, 2.0 * math.pi))
        field += np.sin(kx * x + ky * y + kz * z + phase)
    return (amp / math.sqrt(waves)) * field


def _anatomy(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Label map (uint8) and the deformed outer radial distance (1.0 at the brain's surface)."""
    grid = _grid(size)
    x, y, z = grid
    cx, cy, cz = (float(c) for c in rng.uniform(-0.06, 0.06, size=3))
    scale = rng.uniform(0.88, 1.05) * rng.uniform(0.92, 1.08, size=3)
    rx, ry, rz = (float(r) for r in np.array([0.80, 0.90, 0.74]) * scale)
    angle = float(rng.uniform(-0.25, 0.25))  # in-plane (x-y) head rotation
    px, py, pz = x - cx, y - cy, z - cz
    u = math.cos(angle) * px + math.sin(angle) * py
    v = -math.sin(angle) * px + math.cos(angle) * py
    distance = np.sqrt((u / rx) ** 2 + (v / ry) ** 2 + (pz / rz) ** 2)
    # Multiplicative perturbation keeps the shells nested around the centre; the inner boundary gets higher
    # frequencies, like gyri folding the WM/GM interface.
    outer = distance * (1.0 + _smooth_field(rng, grid, waves=6, freq=(1.5, 3.5), amp=0.08))
    inner = distance * (1.0 + _smooth_field(rng, grid, waves=10, freq=(4.0, 9.0), amp=0.16))
    gm_edge = rng.uniform(0.83, 0.87)
    wm_edge = rng.uniform(0.60, 0.66)
    label = np.full((size, size, size), BG, dtype=np.uint8)
    label[outer < 1.0] = CSF
    label[outer < gm_edge] = GM
    # WM only inside the GM region, so WM never touches CSF whatever the two fields do.
    label[(inner < wm_edge) & (outer < gm_edge)] = WM
    return label, outer


def _gaussian_blur(volume: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge replication, standing in for partial-volume effects.

    Plain NumPy shifts and sums (not a library convolution) so the result is bit-identical on every machine
    and thread count: the phantom is a fixture, so its bytes should not depend on where it was built.
    """
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    out = volume.astype(np.float32)
    for axis in range(3):
        moved = np.moveaxis(out, axis, 0)
        n = moved.shape[0]
        padded = np.concatenate([np.repeat(moved[:1], radius, 0), moved, np.repeat(moved[-1:], radius, 0)])
        blurred = np.zeros_like(moved)
        for shift, weight in enumerate(weights):
            blurred += np.float32(weight) * padded[shift : shift + n]
        out = np.moveaxis(blurred, 0, axis)
    return np.ascontiguousarray(out)


def _thick_slices(volume: np.ndarray, factor: int) -> np.ndarray:
    """Simulate z slices ``factor`` times thicker, resampled back to the grid (linear between centres)."""
    sx, sy, sz = volume.shape
    n = math.ceil(sz / factor)
    padded = np.concatenate([volume, np.repeat(volume[:, :, -1:], n * factor - sz, axis=2)], axis=2)
    coarse = padded.reshape(sx, sy, n, factor).mean(axis=3, dtype=np.float32)
    # Thin slice k's centre in thick-slice units (the half-voxel convention of align_corners=False).
    position = np.clip((np.arange(sz) + 0.5) / factor - 0.5, 0.0, n - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    weight = (position - low).astype(np.float32)
    return coarse[:, :, low] * (1.0 - weight) + coarse[:, :, high] * weight


def _render(
    label: np.ndarray,
    outer: np.ndarray,
    look: _Appearance,
    rng: np.random.Generator,
    bias_field: float,
    noise: float,
) -> np.ndarray:
    """Intensities of one (domain, subject): tissue means, texture, partial volume, scanner, bias, noise."""
    size = label.shape[0]
    means = np.asarray(look.means, dtype=np.float32)
    # Per-subject tissue jitter (scan-to-scan variation); background stays at its domain value.
    means[1:] += rng.normal(0.0, 0.015, size=3).astype(np.float32)
    image = means[label]
    if look.shell is not None:
        skull, scalp = look.shell
        outside = label == BG
        image[outside & (outer < 1.2)] = scalp
        image[outside & (outer < 1.1)] = skull
    image *= 1.0 + _smooth_field(rng, _grid(size), waves=6, freq=(2.0, 6.0), amp=0.04)
    image = _gaussian_blur(image, sigma=0.6)
    if (look.gain, look.gamma, look.offset) != (1.0, 1.0, 0.0):
        image = look.gain * np.clip(image, 0.0, None) ** look.gamma + look.offset
    if bias_field > 0.0:
        ramp = np.arange(size, dtype=np.float32) / size * bias_field + (1.0 - bias_field)
        image = image * ramp[None, :, None]
    if noise > 0.0:
        image = image + rng.normal(0.0, noise, size=image.shape).astype(np.float32)
    if look.z_factor > 1:
        # Noise was acquired at the coarse resolution too, so it goes through the resampling as well.
        image = _thick_slices(image, look.z_factor)
    return image.astype(np.float32)


def generate_subject(cfg: DataConfig, domain: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32) and label (uint8) volumes of subject ``index`` of ``domain``, without writing files."""
    look = _appearance(domain)
    label, outer = _anatomy(cfg.size, np.random.default_rng(stable_seed("anatomy", cfg.seed, index)))
    rng = np.random.default_rng(stable_seed("appearance", cfg.seed, domain, index))
    noise = look.noise if cfg.noise is None else cfg.noise
    return _render(label, outer, look, rng, cfg.bias_field, noise), label


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)  # scanner-anatomical, so readers agree on the orientation
    image.set_sform(affine, code=1)
    nib.save(image, path)


def _write(directory: Path, cfg: DataConfig, domains: list[str]) -> None:
    images = directory / "images"
    images.mkdir()
    affine = affine_for(cfg.size)
    rows = []
    for domain in domains:
        for index in range(cfg.subjects_per_domain):
            subject = f"{domain}-{index:03d}"
            image, label = generate_subject(cfg, domain, index)
            _save_nifti(image, affine, images / f"{subject}_image.nii.gz")
            _save_nifti(label, affine, images / f"{subject}_label.nii.gz")
            # Relative paths: the directory is built under a temporary name and renamed afterwards.
            rows.append(
                {
                    "image": f"images/{subject}_image.nii.gz",
                    "label": f"images/{subject}_label.nii.gz",
                    "domain": domain,
                    "subject": subject,
                }
            )
    with open(directory / MANIFEST_NAME, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "label", "domain", "subject"])
        writer.writeheader()
        writer.writerows(rows)
    (directory / "parameters.json").write_text(json.dumps(_parameters(cfg), indent=2, sort_keys=True))


def build_phantom(cfg: DataConfig) -> Path:
    """Generate (or reuse from the cache) the phantom of ``cfg``; return the path of its manifest CSV."""
    unknown = [d for d in cfg.domains if not known_domain(d)]
    if unknown or not cfg.domains:
        raise ValueError(f"unknown phantom domain(s) {unknown}: valid domains are {VALID_DOMAINS_TEXT}")
    target = phantom_dir(cfg)
    manifest = target / MANIFEST_NAME
    with atomic_directory(target, manifest) as building:
        if building is not None:
            _write(building, cfg, sorted(cfg.domains))
    return manifest
