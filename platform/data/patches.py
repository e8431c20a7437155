"""Domain-balanced batches of foreground-centred 3D patches, drawn from cases held in memory.

Everything per case is prepared once at construction (padding, foreground coordinates, tensors), so a batch
costs B random draws and B tensor slice copies: no per-voxel Python loops and no MONAI transform chain in the
hot path, which keeps the sampler far faster than even a tiny 3D U-Net consumes patches on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from platform.data.case import Case


def _padding(dim: int, low: int | None, high: int | None, patch: int) -> tuple[int, int]:
    """Zeros before/after one axis so every foreground voxel in [low, high] can be an exact patch centre.

    A case without foreground (low is None) is only padded up to the patch size, centred.
    """
    half = patch // 2
    if low is None or high is None:
        extra = max(0, patch - dim)
        return extra // 2, extra - extra // 2
    return max(0, half - low), max(0, high + patch - half - dim)


class PatchSampler:
    """Domain-balanced batches of foreground-centred 3D patches from in-memory cases.

    ``domains`` fixes the domain index z of each case (its position in ``domains``); domains without cases
    keep their index but are skipped. Consecutive patches cycle through the domains that have cases, with
    the cycle carried across batches, so every batch is as balanced as its size allows. A patch is centred
    (voxel ``patch_size // 2`` on each axis) on a uniformly drawn foreground voxel (label > 0) of a uniformly
    drawn case of its domain; volumes are zero-padded once so that centre always fits.

    ``class_share`` > 0 is nnU-Net's class-aware oversampling, made exact: of every run of patches, a share
    ``class_share * K`` (K foreground classes present in the cases) is centred on a voxel of one given class, the
    classes taking turns, so each foreground class is at the centre of at least ``class_share`` of the patches
    however small it is (a case of the patch's domain that has the class, drawn uniformly). The other patches are
    drawn as above; with 0 the stream of patches is the one without the option.
    """

    def __init__(
        self, cases: list[Case], domains: Sequence[str], patch_size: int, batch_size: int, seed: int,
        class_share: float = 0.0,
    ) -> None:
        if patch_size < 1 or batch_size < 1:
            raise ValueError(f"patch_size ({patch_size}) and batch_size ({batch_size}) must be >= 1")
        self.domains = list(domains)
        if len(set(self.domains)) != len(self.domains):
            raise ValueError(f"domains {self.domains} lists a domain twice")
        index = {name: i for i, name in enumerate(self.domains)}
        stray = sorted({case.domain for case in cases} - set(index))
        if stray:
            raise ValueError(f"cases of domain(s) {stray} are not among the sampler's domains {self.domains}")
        if not cases:
            raise ValueError("PatchSampler needs at least one case")
        channels = {case.image.shape[0] for case in cases}
        if len(channels) != 1:
            raise ValueError(f"cases have different numbers of image channels {sorted(channels)}")
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.channels = channels.pop()
        self._images: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        # Padded coordinates of the foreground voxels, or None for a case without foreground.
        self._centres: list[np.ndarray | None] = []
        self._by_domain: list[list[int]] = [[] for _ in self.domains]
        for number, case in enumerate(cases):
            self._add(case)
            self._by_domain[index[case.domain]].append(number)
        self._active = [i for i, members in enumerate(self._by_domain) if members]
        self._rng = np.random.default_rng(seed)
        self._cursor = 0  # position in the domain cycle, carried across batches
        self._class_share = float(class_share)
        self._classes: list[int] = []
        # Per case, the padded coordinates of each foreground class's voxels; per domain and class, its cases.
        self._class_centres: list[dict[int, np.ndarray]] = []
        self._with_class: list[dict[int, list[int]]] = [{} for _ in self.domains]
        if self._class_share > 0:
            self._index_classes(cases, index)

    def _index_classes(self, cases: list[Case], index: dict[str, int]) -> None:
        """The per-class voxel lists ``class_share`` draws from (built only when it is used)."""
        for number, case in enumerate(cases):
            centres = self._centres[number]
            if centres is None:
                self._class_centres.append({})
                continue
            label = np.asarray(case.label)
            values = label[label > 0]  # in np.argwhere's order, the order of the foreground centres
            by_class = {int(c): centres[values == c] for c in np.unique(values)}
            self._class_centres.append(by_class)
            for c in by_class:
                self._with_class[index[case.domain]].setdefault(c, []).append(number)
        self._classes = sorted({c for by_class in self._class_centres for c in by_class})
        if self._class_share * len(self._classes) > 1:
            raise ValueError(f"class_share {self._class_share} times the {len(self._classes)} foreground classes "
                             "is more than every patch: give at most 1 / (number of foreground classes)")

    def _add(self, case: Case) -> None:
        label = np.asarray(case.label)
        foreground = np.argwhere(label > 0).astype(np.int32)
        has_fg = len(foreground) > 0
        low = foreground.min(axis=0).tolist() if has_fg else [None] * 3
        high = foreground.max(axis=0).tolist() if has_fg else [None] * 3
        pads = [_padding(label.shape[a], low[a], high[a], self.patch_size) for a in range(3)]
        image = np.pad(case.image.astype(np.float32, copy=False), [(0, 0), *pads])
        label = np.pad(label, pads)
        self._images.append(torch.from_numpy(np.ascontiguousarray(image)))
        # uint8 labels when they fit: a quarter of the memory, widened to int64 per patch only.
        narrow = label.max(initial=0) < 256 and label.min(initial=0) >= 0
        self._labels.append(torch.from_numpy(label.astype(np.uint8 if narrow else np.int64)))
        shift = np.array([before for before, _ in pads], dtype=np.int32)
        self._centres.append(foreground + shift if has_fg else None)

    def _start(self, number: int) -> tuple[int, int, int]:
        """Corner of a patch of case ``number`` (padded coordinates)."""
        centres = self._centres[number]
        if centres is None:
            limits = np.array(self._labels[number].shape) - self.patch_size + 1
            sx, sy, sz = (int(v) for v in self._rng.integers(0, limits))
            return sx, sy, sz
        cx, cy, cz = centres[self._rng.integers(len(centres))].tolist()
        half = self.patch_size // 2
        return cx - half, cy - half, cz - half

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch: x float32 (B, C, P, P, P), y int64 (B, P, P, P), z int64 (B,) domain indices."""
        return self.build(self.draw())

    def draw(self) -> list[tuple[int, int, int, int, int]]:
        """The random part of a batch, advancing the stream: (case, x, y, z corner, domain) per sample."""
        plan = []
        for _ in range(self.batch_size):
            position = self._cursor
            domain = self._active[position % len(self._active)]
            self._cursor += 1
            forced = self._forced_class(position)
            having = self._with_class[domain].get(forced, []) if forced is not None else []
            if having:
                number = having[self._rng.integers(len(having))]
                voxels = self._class_centres[number][forced]
                cx, cy, cz = voxels[self._rng.integers(len(voxels))].tolist()
                half = self.patch_size // 2
                plan.append((number, cx - half, cy - half, cz - half, domain))
                continue
            members = self._by_domain[domain]
            number = members[self._rng.integers(len(members))]
            plan.append((number, *self._start(number), domain))
        return plan

    def _forced_class(self, position: int) -> int | None:
        """The class patch number ``position`` must be centred on, or None: a share ``class_share * K`` of the
        positions, spread evenly (the k-th such position takes class k mod K)."""
        if not self._classes:
            return None
        rate = self._class_share * len(self._classes)
        before, after = int(np.floor(position * rate)), int(np.floor((position + 1) * rate))
        return self._classes[before % len(self._classes)] if after > before else None

    def build(self, plan: list[tuple[int, int, int, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch of a ``draw`` (reads the cases only, so builds may run in parallel threads)."""
        p, b = self.patch_size, len(plan)
        x = torch.empty((b, self.channels, p, p, p), dtype=torch.float32)
        y = torch.empty((b, p, p, p), dtype=torch.int64)
        z = torch.empty(b, dtype=torch.int64)
        for i, (number, sx, sy, sz, domain) in enumerate(plan):
            x[i] = self._images[number][:, sx : sx + p, sy : sy + p, sz : sz + p]
            y[i] = self._labels[number][sx : sx + p, sy : sy + p, sz : sz + p]
            z[i] = domain
        return x, y, z

    def state_dict(self) -> dict[str, Any]:
        """The random stream's position, so a resumed trial continues the same sequence of patches."""
        return {"rng": self._rng.bit_generator.state, "cursor": self._cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict` (on a sampler built from the same cases)."""
        self._rng.bit_generator.state = state["rng"]
        self._cursor = int(state["cursor"])


def standardize(image: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per sample and channel: zero mean, unit std over the spatial dims of (B, C, *spatial); same shape.

    ``eps`` bounds the divisor so a constant patch maps to zeros instead of NaN.
    """
    if image.ndim < 3:
        raise ValueError(f"expected (B, C, *spatial), got shape {tuple(image.shape)}")
    dims = tuple(range(2, image.ndim))
    mean = image.mean(dim=dims, keepdim=True)
    std = image.std(dim=dims, keepdim=True, correction=0)
    return (image - mean) / std.clamp_min(eps)


def linear_bias_field(shape: tuple[int, ...], alpha: torch.Tensor) -> torch.Tensor:
    """The adversarial-normalization journal paper's linear field ``B = y/H * alpha + (1 - alpha)`` along axis y,
    per sample (its bias-field augmentation, section 3.5).

    shape: (B, C, X, Y, Z); alpha: (B,). Returns a tensor broadcastable to ``shape``.
    """
    height = shape[3]
    ramp = torch.arange(height, dtype=torch.float32) / max(height - 1, 1)
    return ramp.view(1, 1, 1, height, 1) * alpha.view(-1, 1, 1, 1, 1) + (1 - alpha).view(-1, 1, 1, 1, 1)


def apply_bias_field(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``x`` degraded by :func:`linear_bias_field` of strength ``alpha`` (B,), over its intensities above each
    sample's minimum: the field scales tissue and leaves the (z-scored, negative) background where it is, as it
    would on a raw image whose background is 0. x: (B, C, X, Y, Z); same shape out."""
    low = x.flatten(1).min(dim=1).values.view(-1, *[1] * (x.dim() - 1))
    return (x - low) * linear_bias_field(tuple(x.shape), alpha).to(x.device) + low
