"""Embedded abdominal CT-like dataset (``dataset: abdomen``) for DualNorm-UNet's multi-organ setting.

DualNorm-UNet (Xiao et al.) motivates its dual normalization with abdominal CT: "a typical medical image generally
exhibits small intra-class variations and large inter-class variations" between structures (section 1, Figure
1(a), "region-wise intensity distribution of different subjects on abdominal CT images"), and "the batch-wise
distribution is quite similar to the background distribution since the background occupies a relatively large
portion of the entire image" (section 3). Its Figure 6 (where to add the DNRB) is measured on BTCV. This dataset
models those conditions, never a result. Choices, and the passage each follows:

- Classes: background and the eight BTCV organs "spleen, left kidney, right kidney, gallbladder, pancreas,
  liver, stomach and aorta" (section 5.1), labels 1-8 in the order of its Table 2's columns. Their sizes differ
  by two orders of magnitude as in the body: a large liver (3-4% of the volume), a medium stomach and
  spleen, kidneys, and small structures, the gallbladder and the thin pancreas (each about 0.1-0.15%: a
  gallbladder of about 40 mL, 7-8 cm long, and a pancreas of about 45 mL, 13 cm long and 2-3 cm thick, an
  adult's usual sizes) and the aorta's tube (about 0.3%); the paper names the pancreas a "hard" organ and the
  gallbladder among the improved ones (5.5, appendix). Organs are ellipsoids at their usual places (liver upper
  right, spleen upper left and posterior, kidneys posterior beside the spine, the pancreas across the middle in
  front of the aorta, the gallbladder under the liver), each deformed by a smooth random field and jittered in
  place and size per subject.
- Background: most of the volume and textured, as the paper's motivation needs: air outside the body, a
  subcutaneous fat layer of per-subject thickness, the muscle wall, a mesentery of fat and bowel loops (a
  thresholded random field) with gas pockets (kept two voxels off the organs), the spine (bone) and the
  paraspinal muscles. Background is every voxel that is not one of the eight organs, as in BTCV's labels.
- Intensities in Hounsfield units, per structure from the usual portal-venous ranges (BTCV's and TCIA's scans
  are contrast-enhanced, portal-venous): liver 100-120, spleen 110-130, kidneys 150-190, gallbladder (bile)
  0-20, pancreas 90-110, stomach contents 10-40 inside an enhancing wall (70-90), aorta 150-200, muscle 40-60,
  fat -110 to -80, bowel 20-50, gas -900, bone 300-700, air -1000. Each subject draws its own means within the
  ranges (Figure 1(a): distributions differ between subjects, less within a class than between classes). Texture
  per structure: blurred noise of a structure's own standard deviation and grain (fine and smooth in the liver
  and spleen, coarser and lobulated in the pancreas, heterogeneous in the stomach and bowel).
- Domains: the paper's two institutions (section 5.1, Table 4), ``btcv`` (Beyond the Cranial Vault) and ``tcia``
  (TCIA Pancreas-CT), both portal-venous CT from different sites, so they differ in acquisition: slice thickness
  (BTCV's slices are thicker, 2.5-5 mm against 1.5-2.5 mm: simulated as 2x and 1x the in-plane voxel), noise and
  reconstruction sharpness (a per-domain noise std and blur), and the contrast timing (enhancement above 40 HU
  scaled by 1.0 and 0.9). Both label all eight organs; the paper's multi-domain experiments drop the right kidney
  and aorta, which TCIA lacks (a spec can leave them out of its reading, not the data).
- Preprocessing the paper applies, here at generation: "clip the image intensities with the soft tissue CT
  window range of [-125, 275]" (section 5.1); z-scoring is the platform's ``data.intensity``.
- Size: a cube of ``data.size`` voxels over a 320 mm field (an abdomen's width); 48-64 voxels fit 2 CPU cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from platform.data.embedded import build_embedded, dataset_dir
from platform.data.phantom import _gaussian_blur, _grid, _smooth_field, _thick_slices
from platform.data.phantom_names import ABDOMEN_CLASS_NAMES, ABDOMEN_DOMAINS
from platform.seeds import stable_seed

if TYPE_CHECKING:
    from platform.data.config import DataConfig

FORMAT_VERSION = 3  # 2: the aorta spans the organs' slices, not the whole cube; 3: adult gallbladder, pancreas
FIELD_OF_VIEW_MM = 320.0
WINDOW = (-125.0, 275.0)
BG, SPLEEN, KIDNEY_R, KIDNEY_L, GALLBLADDER, PANCREAS, LIVER, STOMACH, AORTA = range(9)


@dataclass(frozen=True)
class _Organ:
    """An organ: label, ellipsoid centre and radii (normalized [-1, 1] cube; x: patient right (-) to left (+), y:
    anterior (-) to posterior (+), z: inferior (-) to superior (+)), HU range and texture (std HU, grain voxels)."""

    label: int
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: tuple[float, float]
    texture: float
    grain: float


# Drawing order: later organs overwrite earlier ones where they meet (small organs last, so they stay whole).
_ORGANS = (
    _Organ(LIVER, (-0.38, -0.05, 0.25), (0.40, 0.42, 0.45), (100.0, 120.0), 8.0, 1.2),
    _Organ(SPLEEN, (0.55, 0.22, 0.35), (0.15, 0.20, 0.22), (110.0, 130.0), 6.0, 1.2),
    _Organ(STOMACH, (0.30, -0.18, 0.30), (0.22, 0.18, 0.25), (10.0, 40.0), 15.0, 1.5),
    _Organ(KIDNEY_R, (-0.30, 0.36, -0.15), (0.11, 0.13, 0.24), (150.0, 190.0), 10.0, 0.8),
    _Organ(KIDNEY_L, (0.30, 0.36, -0.05), (0.11, 0.13, 0.24), (150.0, 190.0), 10.0, 0.8),
    _Organ(PANCREAS, (0.05, 0.10, 0.02), (0.40, 0.075, 0.09), (90.0, 110.0), 15.0, 0.6),
    _Organ(GALLBLADDER, (-0.22, -0.30, -0.05), (0.10, 0.10, 0.24), (0.0, 20.0), 4.0, 1.0),
)
# The aorta: a tube along z of about 24 mm diameter (0.075 of the 160 mm half field).
AORTA_CENTRE, AORTA_RADIUS, AORTA_HU = (0.06, 0.24), 0.075, (150.0, 200.0)
STOMACH_WALL_HU = (70.0, 90.0)
# Background structures (HU ranges).
AIR, FAT, MUSCLE, BOWEL, GAS, BONE = -1000.0, (-110.0, -80.0), (40.0, 60.0), (20.0, 50.0), -900.0, (300.0, 700.0)


@dataclass(frozen=True)
class _Scanner:
    """A domain's acquisition: slice thickness (x in-plane voxel), noise std (HU), blur (voxels), enhancement."""

    z_factor: int
    noise: float
    blur: float
    enhancement: float


_SCANNERS = {"btcv": _Scanner(z_factor=2, noise=12.0, blur=0.7, enhancement=1.0),
             "tcia": _Scanner(z_factor=1, noise=8.0, blur=0.5, enhancement=0.9)}


def _texture(rng: np.random.Generator, shape: tuple[int, ...], grain: float) -> np.ndarray:
    """Unit-std blurred white noise: a structure's texture with grain ``grain`` voxels."""
    field = _gaussian_blur(rng.normal(size=shape).astype(np.float32), sigma=grain)
    return field / (field.std() + 1e-6)


def _ellipsoid(grid: tuple[np.ndarray, np.ndarray, np.ndarray], centre: np.ndarray, radii: np.ndarray,
               wobble: np.ndarray) -> np.ndarray:
    x, y, z = grid
    distance = np.sqrt(((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
                       + ((z - centre[2]) / radii[2]) ** 2)
    return distance * (1.0 + wobble) < 1.0


def _anatomy(size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Label map (uint8) and the background's structure masks (body, fat, muscle, bowel, gas, bone)."""
    grid = _grid(size)
    x, y, _ = grid
    body_scale = rng.uniform(0.90, 1.04)
    bx, by = 0.92 * body_scale, 0.70 * body_scale
    ellipse = np.sqrt((x / bx) ** 2 + ((y - 0.05) / by) ** 2)
    ellipse = ellipse * (1.0 + _smooth_field(rng, grid, waves=4, freq=(1.0, 3.0), amp=0.03))
    fat_depth = rng.uniform(0.05, 0.16)  # subcutaneous fat, fraction of the body radius
    body = ellipse < 1.0
    inner = ellipse < 1.0 - fat_depth
    cavity = ellipse < 1.0 - fat_depth - 0.06
    label = np.zeros((size, size, size), dtype=np.uint8)
    for organ in _ORGANS:
        centre = np.asarray(organ.centre) + rng.uniform(-0.04, 0.04, size=3)
        radii = np.asarray(organ.radii) * rng.uniform(0.9, 1.1) * rng.uniform(0.93, 1.07, size=3)
        wobble = _smooth_field(rng, grid, waves=6, freq=(2.0, 5.0), amp=0.10)
        label[_ellipsoid(grid, centre, radii, wobble) & cavity] = organ.label
    ax, ay = np.asarray(AORTA_CENTRE) + rng.uniform(-0.02, 0.02, size=2)
    radius = AORTA_RADIUS * rng.uniform(0.9, 1.1)
    # The abdominal aorta runs from the diaphragm (the liver's dome, the highest organ slice) to its bifurcation
    # just below the kidneys' lower poles (the lowest organ slice): the span BTCV labels and that the paper's
    # "out-of-mask slice clipping" keeps. A tube through the whole cube would make the slices above and below the
    # organs foreground slices holding the aorta alone.
    organ_slices = np.flatnonzero((label > 0).any(axis=(0, 1)))
    span = np.zeros(size, dtype=bool)
    if organ_slices.size:
        span[organ_slices[0]:organ_slices[-1] + 1] = True
    aorta = ((x - ax) ** 2 + (y - ay) ** 2 < radius**2) & span[None, None, :]
    label[aorta & cavity] = AORTA
    # The spine and the paraspinal muscles behind the cavity: background, never an organ.
    spine = (x**2 + (y - 0.50) ** 2 < 0.13**2) & inner
    paraspinal = ((np.abs(x) - 0.22) ** 2 / 0.12**2 + (y - 0.55) ** 2 / 0.10**2 < 1.0) & inner
    label[spine | paraspinal] = BG
    free = (label == BG) & cavity & ~spine & ~paraspinal
    loops = _smooth_field(rng, grid, waves=12, freq=(5.0, 10.0), amp=1.0)
    bowel = free & (loops > 0.0)
    gas = bowel & (_smooth_field(rng, grid, waves=12, freq=(6.0, 12.0), amp=1.0) > 0.9)
    # Gas lies in bowel lumens, not against an organ's surface (where it would bloom into the organ's voxels).
    from scipy import ndimage

    gas &= ~ndimage.binary_dilation(label > 0, iterations=2)
    masks = {"body": body, "muscle": (inner & ~cavity) | paraspinal, "bowel": bowel & ~gas, "gas": gas, "bone": spine}
    return label, masks


def _render(label: np.ndarray, masks: dict[str, np.ndarray], scanner: _Scanner, rng: np.random.Generator) -> np.ndarray:
    """Hounsfield units of one subject, clipped to the soft-tissue window."""
    shape = label.shape

    def enhanced(hu: tuple[float, float]) -> float:
        # Contrast timing scales the enhancement above an unenhanced soft-tissue level of 40 HU.
        value = float(rng.uniform(*hu))
        return 40.0 + (value - 40.0) * scanner.enhancement if value > 40.0 else value

    image = np.full(shape, AIR, dtype=np.float32)
    fat = masks["body"]
    image[fat] = rng.uniform(*FAT) + 10.0 * _texture(rng, shape, 1.0)[fat]
    for name, hu, std in (("muscle", MUSCLE, 8.0), ("bowel", BOWEL, 25.0), ("bone", BONE, 60.0)):
        where = masks[name]
        image[where] = enhanced(hu) + std * _texture(rng, shape, 1.0)[where]
    image[masks["gas"]] = GAS
    for organ in _ORGANS:
        where = label == organ.label
        image[where] = enhanced(organ.hu) + organ.texture * _texture(rng, shape, organ.grain)[where]
    stomach = label == STOMACH
    if stomach.any():
        from scipy import ndimage

        wall = stomach & ~ndimage.binary_erosion(stomach)
        image[wall] = enhanced(STOMACH_WALL_HU)
    aorta = label == AORTA
    image[aorta] = enhanced(AORTA_HU) + 5.0 * _texture(rng, shape, 1.0)[aorta]
    image = _gaussian_blur(image, sigma=scanner.blur)
    image = image + rng.normal(0.0, scanner.noise, size=shape).astype(np.float32)
    if scanner.z_factor > 1:
        image = _thick_slices(image, scanner.z_factor)
    return np.clip(image, *WINDOW).astype(np.float32)


def generate_subject(cfg: DataConfig, domain: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32, HU clipped to the window) and label (uint8, 0-8) volumes of one subject."""
    if domain not in _SCANNERS:
        raise ValueError(f"unknown abdomen domain {domain!r}: valid domains are {', '.join(ABDOMEN_DOMAINS)}")
    label, masks = _anatomy(cfg.size, np.random.default_rng(stable_seed("abdomen-anatomy", cfg.seed, domain, index)))
    rng = np.random.default_rng(stable_seed("abdomen-appearance", cfg.seed, domain, index))
    return _render(label, masks, _SCANNERS[domain], rng), label


def affine_for(size: int) -> np.ndarray:
    """RAS affine of a ``size``-cube over the field of view, origin at the cube centre."""
    spacing = FIELD_OF_VIEW_MM / size
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (size - 1) / 2.0
    return affine


def _parameters(cfg: DataConfig) -> dict[str, object]:
    return {"dataset": "abdomen", "format_version": FORMAT_VERSION, "domains": sorted(cfg.domains),
            "subjects_per_domain": cfg.subjects_per_domain, "size": cfg.size, "seed": cfg.seed}


def abdomen_dir(cfg: DataConfig) -> Path:
    """Directory the abdomen dataset of ``cfg`` lives in (named by a hash of the generating parameters)."""
    return dataset_dir("abdomen", cfg.cache_dir, _parameters(cfg))


def build_abdomen(cfg: DataConfig) -> Path:
    """Generate (or reuse from the cache) the abdomen dataset of ``cfg``; return the path of its manifest CSV."""
    unknown = [d for d in cfg.domains if d not in ABDOMEN_DOMAINS]
    if unknown or not cfg.domains:
        raise ValueError(f"unknown abdomen domain(s) {unknown}: valid domains are {', '.join(ABDOMEN_DOMAINS)}")
    return build_embedded(abdomen_dir(cfg), _parameters(cfg), list(cfg.domains), cfg.subjects_per_domain,
                          lambda domain, index: generate_subject(cfg, domain, index), affine_for(cfg.size))


def voxel_report(cfg: DataConfig) -> str:
    """A Markdown table per domain: each class's mean volume fraction and mean HU."""
    header = " | ".join(ABDOMEN_CLASS_NAMES)
    lines = [f"size {cfg.size}, {cfg.subjects_per_domain} subjects per domain, seed {cfg.seed}; fraction (mean HU)",
             f"| domain | {header} |", "|---" * (len(ABDOMEN_CLASS_NAMES) + 1) + "|"]
    for domain in cfg.domains:
        fractions, means = [], []
        for index in range(cfg.subjects_per_domain):
            image, label = generate_subject(cfg, domain, index)
            fractions.append(np.bincount(label.ravel(), minlength=9) / label.size)
            means.append([image[label == k].mean() if (label == k).any() else math.nan for k in range(9)])
        f, m = np.mean(fractions, axis=0), np.nanmean(means, axis=0)
        lines.append(f"| {domain} | " + " | ".join(f"{a:.4f} ({b:.0f})" for a, b in zip(f, m, strict=True)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    from platform.data.config import DataConfig

    parser = argparse.ArgumentParser(prog="python -m platform.data.abdomen",
                                     description="class fractions and intensities of the abdomen dataset")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--subjects", type=int, default=2)
    args = parser.parse_args()
    print(voxel_report(DataConfig(dataset="abdomen", size=args.size, domains=list(ABDOMEN_DOMAINS),
                                  subjects_per_domain=args.subjects, num_classes=9)))
