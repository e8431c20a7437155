"""Embedded multi-domain brain phantom (format 3), written as real NIfTI files with a manifest.

Every subject is a brain-like ellipsoid of nested, smoothly deformed shells: central ventricles (CSF) inside WM,
a folded GM cortex around it, an outer CSF shell, background outside. The phantom models the conditions the papers
describe, never the answer: each choice below follows a passage of the papers, and no domain carries a cue that
only one method could exploit.

- Anatomy is drawn per (seed, domain, subject): no two domains share a subject's label map. Mind the Gap stresses
  *unpaired* domains ("unpaired source and target images", section III), and the adversarial-normalization paper's
  datasets are different people (iSEG infants, MRBrainS adults, section 2.1).
- GM is the cortex and the largest tissue class, several voxels thick at the default size (it survives a one-voxel
  erosion): the cortical ribbon of real T1 scans, which the papers segment as one of three main tissues.
- Each domain has its own intensity *units*: a scanner gain and offset put ``adult`` in about [0, 1000] and
  ``infant`` in about [0, 3000], ``mr`` in [0, 1500] and ``ct`` in Hounsfield-like units [-1000, 1000]. The
  adversarial-normalization paper's Figure 2: "the intensity range being largely different between both datasets".
- ``adult`` (MRBrainS-like): clear T1 contrast CSF < GM < WM, low noise, acquired with 3x thicker z slices and
  resampled to the cube ("voxel size of 0.958 mm x 0.958 mm x 3.0 mm", section 2.1).
- ``infant`` (iSEG-like): T1 in the isointense phase, "where the white matter and gray matter voxel intensities
  greatly overlap, thus leading to a lower tissue contrast. Its images are also noisier" (section 2.1); CSF is still
  darkest (a T1 image). A smaller brain (6-8 months) with a thinner WM core and a wider CSF space.
- ``siteK`` (ABIDE-like multi-site, and DualNorm-UNet's multi-site prostate setting): the same modality and
  anatomy statistics as ``adult`` through a per-site scanner: gain and offset (units), gamma (contrast), noise and
  slice thickness (1-4x), all derived from K alone, so a site is a property of the scanner, not of the data seed.
- ``mr`` / ``ct`` (Mind the Gap's cross-modality pair): T2-like ``mr`` (WM < GM < CSF, dark background) and ``ct``
  (CSF < WM < GM, a bright skull and scalp shell in the background). A modality-specific morphology change: ``ct``
  subjects have larger ventricles. A structure-specific gap that no global, per-domain style can remove: ``ct``
  renders the GM cortex with a granular texture (its own high-frequency multiplicative pattern) and blurs its
  tissue boundaries more (lower resolution), while ``mr`` GM is smooth; and the two orderings differ, so a monotone
  global intensity map (histogram matching of the whole volume) leaves a per-structure residual. This is the
  "local imbalance" of the paper: "some local regions ... are more difficult to align than others" (abstract).

Appearance noise, per-subject tissue jitter and texture come from a generator seeded by (seed, domain, subject).
The optional bias field is the journal paper's linear ramp ``B = y/H*alpha + (1-alpha)`` along axis 1, applied
to the brain's intensities above the domain's zero. Datasets are cached under a directory named by a hash of the
generating parameters.
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
FORMAT_VERSION = 3
BG, WM, GM, CSF = 0, 1, 2, 3
MANIFEST_NAME = "manifest.csv"
# Field of view of the cube in mm: the voxel spacing in the affine is FOV / size, so a brain-sized object.
FIELD_OF_VIEW_MM = 192.0

@dataclass(frozen=True)
class _Appearance:
    """How one domain draws anatomy and renders a label map into intensities."""

    means: tuple[float, float, float, float]  # bg, wm, gm, csf as fractions of the domain's range
    noise: float  # Gaussian noise std, as a fraction of the range
    scale: float  # units of the range (scanner gain): intensity = offset + scale * fraction
    offset: float = 0.0  # units of the zero (scanner offset)
    z_factor: int = 1  # >1: acquired with z voxels this many times thicker, then resampled to the cube
    shell: tuple[float, float] | None = None  # (skull, scalp) fraction of a head shell around the brain
    gamma: float = 1.0  # contrast transfer of a site: fraction ** gamma
    blur: float = 0.6  # partial-volume blur (voxels)
    gm_texture: float = 0.0  # std of a granular multiplicative texture on GM only (fraction of its mean)
    size: float = 1.0  # brain size relative to the adult's
    wm_edge: tuple[float, float] = (0.56, 0.62)  # WM/GM boundary radius range (fraction of the brain radius)
    csf_edge: tuple[float, float] = (0.88, 0.91)  # GM/CSF boundary radius range
    ventricles: float = 0.14  # radius of the central CSF ventricles (fraction of the brain radius)


_ADULT_MEANS = (0.0, 0.85, 0.55, 0.25)


def _appearance(domain: str) -> _Appearance:
    if domain == "adult":
        return _Appearance(means=_ADULT_MEANS, noise=0.03, scale=1000.0, z_factor=3)
    if domain == "infant":
        # Isointense: WM a little darker than GM (the T1 contrast of the first year inverts), CSF darkest.
        return _Appearance(means=(0.0, 0.53, 0.58, 0.28), noise=0.06, scale=3000.0, offset=40.0, size=0.9,
                           wm_edge=(0.50, 0.55), csf_edge=(0.84, 0.87), ventricles=0.12)
    if domain == "ct":
        return _Appearance(means=(0.0, 0.55, 0.70, 0.22), noise=0.025, scale=2000.0, offset=-1000.0,
                           shell=(0.95, 0.5), blur=0.9, gm_texture=0.12, ventricles=0.22)
    if domain == "mr":
        return _Appearance(means=(0.0, 0.30, 0.55, 0.90), noise=0.03, scale=1500.0)
    match = SITE.fullmatch(domain)
    if match is None:
        raise ValueError(f"unknown phantom domain {domain!r}: valid domains are {VALID_DOMAINS_TEXT}")
    # A scanner's transfer is a property of the site, not of the data seed: derive it from K alone.
    rng = np.random.default_rng(stable_seed("site", int(match.group(1))))
    return _Appearance(
        means=_ADULT_MEANS,
        noise=float(rng.uniform(0.02, 0.06)),
        scale=float(rng.uniform(400.0, 3000.0)),
        offset=float(rng.uniform(-50.0, 150.0)),
        gamma=float(rng.uniform(0.7, 1.4)),
        z_factor=int(rng.integers(1, 5)),
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


def _anatomy(size: int, rng: np.random.Generator, look: _Appearance) -> tuple[np.ndarray, np.ndarray]:
    """Label map (uint8) and the deformed outer radial distance (1.0 at the brain's surface)."""
    grid = _grid(size)
    x, y, z = grid
    cx, cy, cz = (float(c) for c in rng.uniform(-0.05, 0.05, size=3))
    scale = look.size * rng.uniform(0.92, 1.04) * rng.uniform(0.94, 1.06, size=3)
    rx, ry, rz = (float(r) for r in np.array([0.90, 0.96, 0.86]) * scale)
    angle = float(rng.uniform(-0.25, 0.25))  # in-plane (x-y) head rotation
    px, py, pz = x - cx, y - cy, z - cz
    u = math.cos(angle) * px + math.sin(angle) * py
    v = -math.sin(angle) * px + math.cos(angle) * py
    distance = np.sqrt((u / rx) ** 2 + (v / ry) ** 2 + (pz / rz) ** 2)
    # Multiplicative perturbation keeps the shells nested around the centre; the inner boundary gets higher
    # frequencies, like gyri folding the WM/GM interface.
    outer = distance * (1.0 + _smooth_field(rng, grid, waves=6, freq=(1.5, 3.5), amp=0.06))
    inner = distance * (1.0 + _smooth_field(rng, grid, waves=10, freq=(4.0, 9.0), amp=0.14))
    gm_edge = rng.uniform(*look.csf_edge)
    wm_edge = rng.uniform(*look.wm_edge)
    label = np.full((size, size, size), BG, dtype=np.uint8)
    label[outer < 1.0] = CSF
    label[outer < gm_edge] = GM
    # WM only inside the GM region, so WM never touches the outer CSF whatever the two fields do.
    label[(inner < wm_edge) & (outer < gm_edge)] = WM
    # Ventricles: a flattened central CSF ellipsoid inside the WM.
    ventricle = np.sqrt((u / rx) ** 2 + (v / (1.6 * ry)) ** 2 + (pz / (0.7 * rz)) ** 2)
    label[(ventricle < look.ventricles * rng.uniform(0.9, 1.1)) & (label == WM)] = CSF
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
    """Intensities of one (domain, subject): tissue means, texture, partial volume, scanner, bias, noise, units."""
    means = np.asarray(look.means, dtype=np.float32)
    # Per-subject tissue jitter (scan-to-scan variation); background stays at its domain value.
    means[1:] += rng.normal(0.0, 0.015, size=3).astype(np.float32)
    image = means[label]
    if look.shell is not None:
        skull, scalp = look.shell
        outside = label == BG
        image[outside & (outer < 1.22)] = scalp
        image[outside & (outer < 1.12)] = skull
    return acquire(image, label, look, rng, bias_field, noise)


def acquire(image: np.ndarray, label: np.ndarray, look: _Appearance, rng: np.random.Generator, bias_field: float,
            noise: float) -> np.ndarray:
    """What the scanner adds to the tissue intensities ``image`` (float32, shape (S, S, S), ``label`` beside it):
    smooth inhomogeneity, the cortex's texture, blur, gamma, the bias-field ramp, noise, thick slices and the
    domain's units. Shared by every brain-like embedded dataset, so their domains differ in the same way."""
    size = label.shape[0]
    image *= 1.0 + _smooth_field(rng, _grid(size), waves=6, freq=(2.0, 6.0), amp=0.04)
    if look.gm_texture > 0.0:
        # A granular pattern of the cortex alone (this modality's rendering of one structure): white noise
        # blurred over about a voxel, so it is texture rather than acquisition noise.
        grain = _gaussian_blur(rng.normal(size=label.shape).astype(np.float32), sigma=0.8)
        grain /= grain.std() + 1e-6
        gm = label == GM
        image[gm] *= 1.0 + look.gm_texture * grain[gm]
    image = _gaussian_blur(image, sigma=look.blur)
    if look.gamma != 1.0:
        image = np.clip(image, 0.0, None) ** look.gamma
    if bias_field > 0.0:
        ramp = np.arange(size, dtype=np.float32) / size * bias_field + (1.0 - bias_field)
        image = image * ramp[None, :, None]
    if noise > 0.0:
        image = image + rng.normal(0.0, noise, size=image.shape).astype(np.float32)
    if look.z_factor > 1:
        # Noise was acquired at the coarse resolution too, so it goes through the resampling as well.
        image = _thick_slices(image, look.z_factor)
    return (look.offset + look.scale * image).astype(np.float32)


def generate_subject(cfg: DataConfig, domain: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32, the domain's units) and label (uint8) volumes of subject ``index`` of ``domain``, without
    writing files."""
    look = _appearance(domain)
    label, outer = _anatomy(cfg.size, np.random.default_rng(stable_seed("anatomy", cfg.seed, domain, index)), look)
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


def voxel_report(cfg: DataConfig) -> str:
    """A Markdown table per domain of ``cfg``: the mean voxel fraction of each class over its subjects, the fraction
    of GM that survives a one-voxel erosion, and the intensity range (0.5 and 99.5 percentiles)."""
    from scipy import ndimage

    from platform.data.voxelreport import voxel_table

    def gm_kept(image: np.ndarray, label: np.ndarray) -> list[float]:
        gm = label == GM
        return [float(ndimage.binary_erosion(gm).sum() / max(1, gm.sum()))]

    return voxel_table(cfg, generate_subject, [("GM after erosion", ".2f")], gm_kept)


if __name__ == "__main__":
    from platform.data.config import DataConfig
    from platform.data.voxelreport import report_command

    report_command("python -m platform.data.phantom", "voxel fractions and intensity ranges of the embedded phantom",
                   voxel_report, ["adult", "infant", "site1", "site2", "site3", "mr", "ct"],
                   DataConfig().subjects_per_domain)
