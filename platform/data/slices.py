"""Axial 2D (or 2.5D) slices of in-memory cases for the 2D trainers.

A slice is taken along the last spatial axis Z. With ``context`` k > 0 each modality contributes the 2k+1
slices z-k .. z+k as channels (modality-major: all of modality 0's slices, then modality 1's, ...), with the
first and last slice replicated past the volume's ends. X and Y are zero-padded at their ends up to a multiple
of ``multiple`` (so a U-Net's poolings divide them evenly), which cropping ``[..., :X, :Y]`` undoes.

:class:`SliceSampler` keeps each case once, as a (Z, C, X', Y') tensor, plus a table of the rows (slice and
its context) of every foreground slice: a batch is a few vectorised random draws and one gather, so memory
stays that of the volumes (not 2k+1 times it) and no Python loop runs over voxels or slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from platform.data.case import Case


def _padded_size(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def pad_to_multiple(image: np.ndarray, label: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad X and Y of image (C, X, Y, Z) and label (X, Y, Z) at their ends up to a multiple of ``multiple``.

    Padding only at the end keeps voxel (i, j) in place, so ``[..., :X, :Y, :]`` recovers the input.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if image.ndim != 4 or label.shape != image.shape[1:]:
        raise ValueError(f"expected image (C, X, Y, Z) and label (X, Y, Z), got {image.shape} and {label.shape}")
    _, sx, sy, _ = image.shape
    extra = [(0, _padded_size(sx, multiple) - sx), (0, _padded_size(sy, multiple) - sy), (0, 0)]
    return np.pad(image, [(0, 0), *extra]), np.pad(label, extra)


def _check_context(case: Case, context: int) -> None:
    depth = case.label.shape[-1]
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if 2 * context + 1 > depth:
        raise ValueError(
            f"case {case.domain}/{case.subject} has Z = {depth} slices, fewer than the 2*context+1 = "
            f"{2 * context + 1} a slice with context {context} spans: lower the context"
        )


def _context_rows(depth: int, context: int) -> np.ndarray:
    """(Z, 2k+1) slice indices z-k .. z+k of every slice z, clipped so the end slices are replicated."""
    offsets = np.arange(-context, context + 1)
    return np.clip(np.arange(depth)[:, None] + offsets[None, :], 0, depth - 1)


def _stack(image: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """Gather slices of a (Z, C, X, Y) tensor: rows (B, 2k+1) -> float32 (B, C*(2k+1), X, Y), modality-major."""
    gathered = torch.as_tensor(image)[torch.as_tensor(rows)]  # (B, 2k+1, C, X, Y)
    b, n, c, sx, sy = gathered.shape
    return gathered.transpose(1, 2).reshape(b, c * n, sx, sy)


def _slices_first(image: np.ndarray) -> np.ndarray:
    """(C, X, Y, Z) -> contiguous float32 (Z, C, X, Y), so a slice is one contiguous block."""
    return np.ascontiguousarray(np.moveaxis(image.astype(np.float32, copy=False), -1, 0))


def volume_slices(case: Case, context: int, multiple: int = 16) -> torch.Tensor:
    """Every axial slice of ``case`` as one batch: float32 (Z, C*(2*context+1), X', Y'), X', Y' padded up."""
    _check_context(case, context)
    image, _ = pad_to_multiple(case.image, case.label, multiple)
    depth = image.shape[-1]
    return _stack(_slices_first(image), _context_rows(depth, context))


def _checked_layout(cases: list[Case], domains: list[str], batch_size: int, context: int, rotate: bool,
                    multiple: int) -> tuple[dict[str, int], int, int, int]:
    """(domain index, image channels, padded X, padded Y) of a sampler's cases, or ValueError saying what to fix."""
    if batch_size < 1 or multiple < 1:
        raise ValueError(f"batch_size ({batch_size}) and multiple ({multiple}) must be >= 1")
    if len(set(domains)) != len(domains):
        raise ValueError(f"domains {domains} lists a domain twice")
    if not cases:
        raise ValueError("SliceSampler needs at least one case")
    index = {name: i for i, name in enumerate(domains)}
    stray = sorted({case.domain for case in cases} - set(index))
    if stray:
        raise ValueError(f"cases of domain(s) {stray} are not among the sampler's domains {domains}")
    channels = {case.image.shape[0] for case in cases}
    if len(channels) != 1:
        raise ValueError(f"cases have different numbers of image channels {sorted(channels)}")
    for case in cases:
        _check_context(case, context)
    sx = max(_padded_size(case.label.shape[0], multiple) for case in cases)
    sy = max(_padded_size(case.label.shape[1], multiple) for case in cases)
    if rotate and sx != sy:
        raise ValueError(
            f"rotate needs square slices, but they are padded to {sx} x {sy}: "
            "turn rotate off or use cases with X and Y padding to the same size"
        )
    return index, channels.pop(), sx, sy


class SliceSampler:
    """Domain-balanced batches of 2D (or 2.5D) slices that contain foreground.

    ``domains`` fixes each case's domain index z (its position in ``domains``); domains without cases keep
    their index but are skipped. Consecutive samples cycle through the domains that have cases (the cycle
    carries across batches); each is a uniformly drawn foreground slice (label > 0 anywhere in it) of a
    uniformly drawn case of its domain that has one. Every case is padded to the same X', Y': the largest of
    the cases' sizes, each rounded up to ``multiple``. ``flip`` draws a horizontal and a vertical flip per sample
    (probability 1/2 each), ``rotate`` a multiple of 90 degrees; both act on x and y alike. ``every_slice``
    draws among all slices, with or without foreground (as :class:`ImageSliceSampler` does without labels).
    """

    def __init__(
        self,
        cases: list[Case],
        domains: Sequence[str],
        batch_size: int,
        seed: int,
        context: int = 0,
        flip: bool = False,
        rotate: bool = False,
        multiple: int = 16,
        every_slice: bool = False,
    ) -> None:
        self.domains = list(domains)
        index, channels, sx, sy = _checked_layout(cases, self.domains, batch_size, context, rotate, multiple)
        self.batch_size, self.context, self.flip, self.rotate = batch_size, context, flip, rotate
        self.shape = (channels * (2 * context + 1), sx, sy)  # of one sample's x: what a 2D net takes

        images: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        fg_start: list[int] = []  # per case with foreground: its first row in `rows`, and how many
        fg_count: list[int] = []
        members: list[list[int]] = [[] for _ in self.domains]  # per domain: numbers of cases with foreground
        base = fg_total = 0  # rows of _images, and foreground slices, taken by the cases before this one
        for case in cases:
            label = np.asarray(case.label)
            # Pad every case to the common size directly (end-padding, as pad_to_multiple does).
            pads = [(0, sx - label.shape[0]), (0, sy - label.shape[1]), (0, 0)]
            depth = label.shape[-1]
            foreground = (np.arange(depth) if every_slice  # uniform over all slices, as a label-free sampler draws
                          else np.flatnonzero((label > 0).any(axis=(0, 1))))
            images.append(_slices_first(np.pad(case.image, [(0, 0), *pads])))
            labels.append(np.moveaxis(np.pad(label, pads), -1, 0))
            if len(foreground):
                members[index[case.domain]].append(len(fg_start))
                fg_start.append(fg_total)
                fg_count.append(len(foreground))
                fg_total += len(foreground)
                rows.append(_context_rows(depth, context)[foreground] + base)
            base += depth
        self._active = [d for d, m in enumerate(members) if m]
        empty = sorted({case.domain for case in cases} - {self.domains[d] for d in self._active})
        if empty:
            raise ValueError(f"domain(s) {empty} have cases but no slice with foreground (label > 0)")
        self._images = torch.from_numpy(np.concatenate(images))  # (sum Z, C, X', Y')
        label_stack = np.concatenate(labels)
        # uint8 labels when they fit: an eighth of the memory, widened to int64 per batch only.
        narrow = label_stack.min(initial=0) >= 0 and label_stack.max(initial=0) < 256
        self._labels = torch.from_numpy(label_stack.astype(np.uint8 if narrow else np.int64))
        self._rows = np.concatenate(rows)  # (foreground slices, 2k+1) rows of _images
        self._fg_start = np.asarray(fg_start, dtype=np.int64)
        self._fg_count = np.asarray(fg_count, dtype=np.int64)
        # Ragged per-domain case lists, flattened: domain d's cases are _members[_member_start[d]:][:n].
        self._members = np.asarray([c for m in members for c in m], dtype=np.int64)
        self._member_start = np.cumsum([0, *(len(m) for m in members)])[:-1]
        self._member_count = np.asarray([len(m) for m in members], dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        self._cursor = 0  # position in the domain cycle, carried across batches

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch: x float32 (B, C*(2k+1), X', Y'), y int64 (B, X', Y'), z int64 (B,) domain indices."""
        return self.build(self.draw())

    def draw(self) -> dict[str, Any]:
        """The random part of a batch, advancing the stream: domains, slice rows, flips and quarter turns."""
        b = self.batch_size
        active = np.asarray(self._active)
        domain = active[(self._cursor + np.arange(b)) % len(active)]
        self._cursor += b
        case = self._members[self._member_start[domain] + self._rng.integers(0, self._member_count[domain])]
        row = self._fg_start[case] + self._rng.integers(0, self._fg_count[case])
        flips = self._rng.random((2, b)) < 0.5 if self.flip else None
        turns = self._rng.integers(0, 4, size=b) if self.rotate else None
        return {"domain": domain, "rows": self._rows[row], "flips": flips, "turns": turns}

    def build(self, plan: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch of a ``draw`` (reads the slices only, so builds may run in parallel threads)."""
        rows = plan["rows"]
        x = _stack(self._images, rows)
        y = self._labels[torch.as_tensor(rows[:, self.context])].long()
        if plan["flips"] is not None:
            for dim, chosen in zip((-2, -1), plan["flips"], strict=True):
                mask = torch.as_tensor(chosen)
                x[mask], y[mask] = x[mask].flip(dim), y[mask].flip(dim)
        if plan["turns"] is not None:
            turns = torch.as_tensor(plan["turns"])
            for k in (1, 2, 3):
                mask = turns == k
                x[mask] = torch.rot90(x[mask], k, dims=(-2, -1))
                y[mask] = torch.rot90(y[mask], k, dims=(-2, -1))
        return x, y, torch.as_tensor(plan["domain"], dtype=torch.int64)

    def state_dict(self) -> dict[str, Any]:
        """The random stream's position, so a resumed trial continues the same sequence of slices."""
        return {"rng": self._rng.bit_generator.state, "cursor": self._cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict` (on a sampler built from the same cases)."""
        self._rng.bit_generator.state = state["rng"]
        self._cursor = int(state["cursor"])


def pad_xy(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-pad the X, Y axes (the last three are X, Y, Z) at their ends up to ``shape``."""
    x, y = array.shape[-3:-1]
    return np.pad(array, [(0, 0)] * (array.ndim - 3) + [(0, shape[0] - x), (0, shape[1] - y), (0, 0)])


class ImageSliceSampler:
    """Label-free batches of 2D slices of one domain: uniform over every non-constant slice of its cases.

    Never reads labels (target images in unsupervised training). Slices are padded to ``shape`` (X', Y').
    """

    def __init__(self, cases: list[Case], batch_size: int, seed: int, shape: tuple[int, int]) -> None:
        if not cases:
            raise ValueError("ImageSliceSampler needs at least one case")
        stacks = []
        for case in cases:
            image = pad_xy(case.image, shape)
            stacks.append(np.ascontiguousarray(np.moveaxis(image.astype(np.float32), -1, 0)))
        images = np.concatenate(stacks)  # (sum Z, C, X', Y')
        keep = images.reshape(len(images), -1).std(axis=1) > 0
        if not keep.any():
            raise ValueError("every slice of the cases is constant")
        self._images = torch.from_numpy(images[keep])
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)

    def sample(self) -> torch.Tensor:
        """(batch, C, X', Y') float32."""
        return self.build(self.draw())

    def draw(self) -> np.ndarray:
        """The random part of a batch, advancing the stream: the slice indices."""
        return self._rng.integers(0, len(self._images), self.batch_size)

    def build(self, plan: np.ndarray) -> torch.Tensor:
        """The batch of a ``draw`` (a copy of those slices)."""
        return self._images[torch.as_tensor(plan)].clone()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
