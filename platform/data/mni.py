"""Embedded real-anatomy dataset (``dataset: mni``) from the MNI ICBM152 2009 template that nilearn ships.

The anatomy is real: nilearn's wheel carries the skull-stripped ICBM152 2009 (release a, symmetric) T1 template
and its GM and WM probability maps at 1 mm (``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_
converted.nii.gz``, the files behind ``nilearn.datasets.load_mni152_template`` and friends). They are read from
the installed package with nibabel; nothing is downloaded. Subjects, domains and caching follow the brain
phantom (:mod:`platform.data.phantom`), whose domain names and scanner models are reused, so every spec written
for the phantom runs with ``data.dataset=mni``. Choices, and the passage each follows:

- Labels, in the phantom's order (0 bg, 1 WM, 2 GM, 3 CSF): the brain mask is the template's non-zero voxels
  (the template is skull-stripped, the mask has no holes); inside it, CSF's probability is what GM and WM leave,
  ``p_csf = 1 - p_gm - p_wm`` (clipped at 0; the 2009 maps never sum above 1), and background is outside the
  mask. These four fractions are made at 1 mm and only then blurred and resampled, which is linear, so at the
  output size they are still each class's share of the voxel and sum to 1 (multiplying resampled GM and WM by a
  resampled mask would count a rim voxel's cortex twice as outside and hand it to CSF). Each voxel takes the
  class with the largest share, background included (a partial-volume voxel is labelled by what fills most of
  it). With a mask threshold and a tissue argmax instead, the median voxel labelled CSF at 32 voxels was 36%
  background and 35% CSF: a one-voxel rim of 266 specks on the brain's edge whose intensity is a bg-GM mixture,
  a label no image feature decides. (At 48 voxels a segmenter alone learned CSF with either rule, later and
  lower with the old one: val CSF Dice .02 / .38 at epoch 15 and .50 / .58 at 30, old / new.) The three tissues are the
  papers' "three main tissues" (the adversarial-normalization paper, section 2.1; iSEG and MRBrainS label WM,
  GM and CSF). CSF is then mostly the ventricles and deep sulci: 0.3% of the volume at 32 voxels (6 mm), 0.8% at
  64 (3 mm), against 8.5% of the brain at 1 mm, most of it a 1-2 mm subarachnoid layer no coarse voxel holds.
- Subjects: each is the template seen through a smooth random deformation (seeded by seed, domain and subject):
  a random scale per axis (0.92-1.06, times the domain's brain size, 0.9 for ``infant``), an in-plane rotation
  (+-0.25 rad), a shift (+-0.05 of the half field) and a displacement field of sinusoids (about 3% of the half
  field at low frequencies). Drawn per domain, so no two domains share a subject (Mind the Gap's "unpaired"
  domains, section III; the adversarial-normalization paper's datasets are different people, section 2.1).
- Intensities: ``sum_k p_k * mean_k`` over the (deformed) tissue probabilities, so partial volume comes from the
  real maps, times the real template's own texture: its T1 divided by the same mixture with the template's
  measured tissue means (clipped to +-30%), i.e. what the template shows beyond three flat tissues (deep grey
  nuclei, cortical and WM variation). The tissue means, noise, scanner gain and offset, gamma, slice thickness,
  blur, the ``ct`` head shell and the ``ct`` granular GM texture are the phantom's per-domain appearance:
  ``adult`` CSF < GM < WM with 3x thicker slices ("0.958 mm x 0.958 mm x 3.0 mm", section 2.1); ``infant``
  isointense, "white matter and gray matter voxel intensities greatly overlap, thus leading to a lower tissue
  contrast. Its images are also noisier" (section 2.1); ``siteK`` a scanner's gain, offset, gamma, noise and
  1-4x slice thickness derived from K alone (ABIDE's sites); ``mr`` T2-like and ``ct`` Hounsfield-like with a
  bright skull shell (7 mm of bone and 6 mm of scalp beyond a CSF-dense band of 5 mm, each
  at least a voxel), a granular GM and a blurrier rendering: a gap that differs between structures, Mind the
  Gap's "local regions ... more difficult to align than others" (abstract). Not modelled: the phantom's larger
  ``ct`` ventricles (the template's ventricles are kept).
- The optional bias field is the journal paper's linear ramp ``B = y/H*alpha + (1-alpha)`` along axis 1.
- Size: a 192 mm cube centred on the brain's bounding box (the phantom's field of view), resampled to
  ``data.size`` voxels after an anti-aliasing Gaussian blur of the 1 mm maps (sigma 0.4 output voxels).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from platform.data.embedded import build_embedded, dataset_dir
from platform.data.phantom import (
    BG,
    CSF,
    FIELD_OF_VIEW_MM,
    GM,
    WM,
    _Appearance,
    _appearance,
    _grid,
    _smooth_field,
    acquire,
    affine_for,
)
from platform.data.phantom_names import VALID_DOMAINS_TEXT, known_domain
from platform.seeds import stable_seed

if TYPE_CHECKING:
    from platform.data.config import DataConfig

# Bump whenever generation changes: it is part of the cache key.
FORMAT_VERSION = 2
TEMPLATE_FILES = {name: f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz" for name in ("t1", "gm", "wm")}


def template_directory() -> Path:
    """Folder of the installed nilearn package's data files (the packaged ICBM152 2009 maps)."""
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data"


@functools.lru_cache(maxsize=1)
def _template_1mm() -> dict[str, np.ndarray]:
    """The T1, GM, WM maps at 1 mm (float32 in [0, 1]), cropped/padded to the field-of-view cube around the
    brain, and the brain mask (T1 > 0)."""
    import nibabel as nib

    maps = {name: np.asarray(nib.load(template_directory() / file).dataobj).astype(np.float32) / 255.0
            for name, file in TEMPLATE_FILES.items()}
    mask = (maps["t1"] > 0).astype(np.float32)
    where = np.argwhere(mask > 0)
    centre = (where.min(axis=0) + where.max(axis=0)) // 2
    edge = int(FIELD_OF_VIEW_MM)  # 1 mm voxels
    out: dict[str, np.ndarray] = {}
    for name, array in [*maps.items(), ("mask", mask)]:
        cube = np.zeros((edge, edge, edge), dtype=np.float32)
        src, dst = [], []
        for axis in range(3):
            start = int(centre[axis]) - edge // 2
            lo, hi = max(0, start), min(array.shape[axis], start + edge)
            src.append(slice(lo, hi))
            dst.append(slice(lo - start, hi - start))
        cube[tuple(dst)] = array[tuple(src)]
        out[name] = cube
    return out


@functools.lru_cache(maxsize=2)
def _template_blurred(size: int) -> dict[str, np.ndarray]:
    """The 1 mm T1 and class fractions (``p``: (4, ...) bg, WM, GM, CSF, see :func:`_probabilities`) blurred
    against aliasing before sampling at ``size`` voxels (sigma 0.4 output voxels)."""
    from scipy import ndimage

    sigma = 0.4 * FIELD_OF_VIEW_MM / size
    maps = _template_1mm()
    fractions = _probabilities(maps["mask"], maps["gm"], maps["wm"])
    # Background is blurred as 1 - brain, not with zero padding, so the four shares still sum to 1 at the edges.
    blurred = {f"p{k}": ndimage.gaussian_filter(fractions[k], sigma, mode="constant") for k in (WM, GM, CSF)}
    blurred[f"p{BG}"] = 1.0 - (blurred[f"p{WM}"] + blurred[f"p{GM}"] + blurred[f"p{CSF}"])
    blurred["t1"] = ndimage.gaussian_filter(maps["t1"], sigma, mode="constant")
    return blurred


@functools.lru_cache(maxsize=1)
def template_tissue_means() -> tuple[float, float, float]:
    """Mean template T1 (fraction of its maximum) of WM, GM and CSF voxels (most probable tissue at 1 mm)."""
    maps = _template_1mm()
    label = _labels(maps["mask"], maps["gm"], maps["wm"])
    return tuple(float(maps["t1"][label == k].mean()) for k in (WM, GM, CSF))  # type: ignore[return-value]


def _probabilities(mask: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """(4, ...) probabilities of bg, WM, GM, CSF: CSF is the mask minus GM and WM, bg outside the mask."""
    mask = np.clip(mask, 0.0, 1.0)
    gm = np.clip(gm, 0.0, None) * mask
    wm = np.clip(wm, 0.0, None) * mask
    csf = np.clip(mask - gm - wm, 0.0, None)
    return np.stack([1.0 - mask, wm, gm, csf]).astype(np.float32)


def _labels(mask: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Label map: the class (bg, WM, GM, CSF) with the largest share of each voxel."""
    return _majority(_probabilities(mask, gm, wm))


def _majority(p: np.ndarray) -> np.ndarray:
    """Label map of (4, ...) class fractions: the class with the largest share (ties to the lower label)."""
    return np.argmax(p, axis=0).astype(np.uint8)


def _deformed_coordinates(size: int, rng: np.random.Generator, look: _Appearance) -> np.ndarray:
    """(3, size, size, size) sampling positions in 1 mm template voxels of a smooth random deformation."""
    grid = _grid(size)
    x, y, z = grid
    scale = look.size * rng.uniform(0.92, 1.04) * rng.uniform(0.94, 1.06, size=3)
    angle = float(rng.uniform(-0.25, 0.25))
    shift = rng.uniform(-0.05, 0.05, size=3)
    # Output position -> template position: undo the subject's scale and rotation.
    u = (math.cos(angle) * x - math.sin(angle) * y) / scale[0]
    v = (math.sin(angle) * x + math.cos(angle) * y) / scale[1]
    w = z / scale[2]
    points = [u, v, w]
    for axis in range(3):
        points[axis] = points[axis] - shift[axis] + _smooth_field(rng, grid, waves=6, freq=(1.5, 4.0), amp=0.04)
    half = FIELD_OF_VIEW_MM / 2.0
    # Normalized [-1, 1] -> 1 mm voxel index of the template cube (voxel centres).
    return np.stack([(p * half + half - 0.5) for p in points]).astype(np.float32)


def _sample(coordinates: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The blurred T1 and class fractions at ``coordinates`` (trilinear; outside the template is background)."""
    from scipy import ndimage

    return {name: ndimage.map_coordinates(array, coordinates, order=1, mode="constant",
                                          cval=1.0 if name == f"p{BG}" else 0.0)
            for name, array in _template_blurred(size).items()}


def _fractions(maps: dict[str, np.ndarray]) -> np.ndarray:
    """(4, ...) class fractions bg, WM, GM, CSF of sampled ``maps`` (clipped at 0 against rounding)."""
    return np.clip(np.stack([maps[f"p{k}"] for k in (BG, WM, GM, CSF)]), 0.0, 1.0).astype(np.float32)


def _render(maps: dict[str, np.ndarray], label: np.ndarray, look: _Appearance, rng: np.random.Generator,
            bias_field: float, noise: float) -> np.ndarray:
    """Intensities of one (domain, subject) in the domain's units (see the module docstring)."""
    size = label.shape[0]
    p = _fractions(maps)
    template_means = np.asarray((0.0, *template_tissue_means()), dtype=np.float32)
    mixture = np.tensordot(template_means, p, axes=1)
    inside = p[BG] < 0.95
    texture = np.ones_like(mixture)
    texture[inside] = np.clip(maps["t1"][inside] / np.maximum(mixture[inside], 1e-3), 0.7, 1.3)
    means = np.asarray(look.means, dtype=np.float32)
    means[1:] += rng.normal(0.0, 0.015, size=3).astype(np.float32)  # per-subject tissue jitter
    image = np.tensordot(means, p, axes=1) * texture
    if look.shell is not None:
        from scipy import ndimage

        skull, scalp = look.shell
        outside = label == BG
        depth = ndimage.distance_transform_edt(outside)  # voxels from the brain
        spacing = FIELD_OF_VIEW_MM / size
        band = max(1.0, round(5.0 / spacing))  # mm -> voxels, at least one voxel each
        bone = band + max(1.0, round(7.0 / spacing))
        image[outside & (depth <= bone + max(1.0, round(6.0 / spacing)))] = scalp
        image[outside & (depth <= bone)] = skull
        # The subarachnoid space the skull-stripped template leaves out: CSF-dense, so the skull does not touch
        # the brain (it would brighten the outer CSF through partial volume).
        image[outside & (depth <= band)] = means[CSF]
    return acquire(image, label, look, rng, bias_field, noise)


def generate_subject(cfg: DataConfig, domain: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32, the domain's units) and label (uint8: bg, WM, GM, CSF) volumes of one subject."""
    look = _appearance(domain)
    coordinates = _deformed_coordinates(cfg.size, np.random.default_rng(stable_seed("mni-anatomy", cfg.seed, domain,
                                                                                    index)), look)
    maps = _sample(coordinates, cfg.size)
    label = _majority(_fractions(maps))
    rng = np.random.default_rng(stable_seed("mni-appearance", cfg.seed, domain, index))
    noise = look.noise if cfg.noise is None else cfg.noise
    return _render(maps, label, look, rng, cfg.bias_field, noise), label


def _parameters(cfg: DataConfig) -> dict[str, object]:
    import nilearn

    return {"dataset": "mni", "format_version": FORMAT_VERSION, "domains": sorted(cfg.domains),
            "subjects_per_domain": cfg.subjects_per_domain, "size": cfg.size, "bias_field": cfg.bias_field,
            "noise": cfg.noise, "seed": cfg.seed, "template": f"nilearn {nilearn.__version__} ICBM152 2009a sym"}


def mni_dir(cfg: DataConfig) -> Path:
    """Directory the ``mni`` dataset of ``cfg`` lives in (named by a hash of the generating parameters)."""
    return dataset_dir("mni", cfg.cache_dir, _parameters(cfg))


def build_mni(cfg: DataConfig) -> Path:
    """Generate (or reuse from the cache) the ``mni`` dataset of ``cfg``; return the path of its manifest CSV."""
    unknown = [d for d in cfg.domains if not known_domain(d)]
    if unknown or not cfg.domains:
        raise ValueError(f"unknown mni domain(s) {unknown}: valid domains are {VALID_DOMAINS_TEXT}")
    return build_embedded(mni_dir(cfg), _parameters(cfg), list(cfg.domains), cfg.subjects_per_domain,
                          lambda domain, index: generate_subject(cfg, domain, index), affine_for(cfg.size))


def voxel_report(cfg: DataConfig) -> str:
    """A Markdown table per domain: mean class fractions and the tissue means (0.5/99.5 percentile range)."""
    from platform.data.voxelreport import voxel_table

    def tissue_means(image: np.ndarray, label: np.ndarray) -> list[float]:
        return [float(image[label == k].mean()) for k in (WM, GM, CSF)]

    return voxel_table(cfg, generate_subject, [("mean wm", ".0f"), ("mean gm", ".0f"), ("mean csf", ".0f")],
                       tissue_means)


if __name__ == "__main__":
    from platform.data.voxelreport import report_command

    report_command("python -m platform.data.mni", "class fractions and tissue intensities of the mni dataset",
                   voxel_report, ["adult", "infant", "site1", "site2", "mr", "ct"], 2, dataset="mni")
