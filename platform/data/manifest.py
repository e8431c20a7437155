"""Load and validate a manifest of NIfTI volumes (the README's "Real data"; splits: ``platform.data.datasets``).

A manifest is a CSV file with a header, or a JSON file holding a list of objects or ``{"rows": [...]}``.
Each row is one subject of one domain:

- ``image``: the image path. Multi-modal subjects: in CSV, extra columns ``image_1``, ``image_2``, ... (one
  modality each, in channel order after ``image``); in JSON, ``image`` may also be a list of paths (or use
  the same ``image_1``... keys). A single 4D file is read as its channels along the last axis.
- ``label``: the label path (integer values 0..num_classes-1, 0 is background).
- ``domain``, ``subject``: subject ids must be unique within a domain.
- optional ``split`` (``train`` / ``val`` / ``test``) and ``fold`` (integer >= 0), on every row or on none.

Relative paths resolve against the manifest's directory. Other columns are ignored (free for metadata).
Everything is validated before anything is returned, and every problem found is reported in one
:class:`ManifestError`, each naming the manifest, the 1-based data row and the column or file at fault.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from monai.data import NibabelReader
from monai.transforms import LoadImage

from platform.data.case import Case

if TYPE_CHECKING:
    pass

REQUIRED_COLUMNS = ("image", "label", "domain", "subject")
SPLITS = ("train", "val", "test")
# World coordinates in mm: headers written by different tools disagree in the float32 noise of their
# affines, never by a thousandth of a millimetre when they describe the same grid.
AFFINE_TOLERANCE_MM = 1e-3
_EXTRA_IMAGE = re.compile(r"image_([1-9][0-9]*)")


class ManifestError(ValueError):
    """A manifest failed validation; ``problems`` lists every problem found, one sentence each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in manifest {path}:\n{lines}")

    def __reduce__(self) -> tuple[type[ManifestError], tuple[Path, list[str]]]:
        # Ray pickles errors raised in trials; the default reduce would replay only the message.
        return (type(self), (self.path, self.problems))


@dataclass
class _Row:
    number: int  # 1-based data row, as users count them in a spreadsheet
    images: list[tuple[str, str]]  # (column, path) per modality
    label: str
    domain: str
    subject: str
    split: str | None
    fold: int | None


@dataclass
class _Volume:
    array: np.ndarray
    affine: np.ndarray


class _Validator:
    """Collects problems (never stopping at the first one) while a manifest is read and loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.problems: list[str] = []
        # Runtime reader passed at call time: LoadImage then uses exactly nibabel, instead of falling back to
        # every registered reader and logging each failure when a file is broken.
        self._load = LoadImage(image_only=False, dtype=None)
        self._reader = NibabelReader()

    def add(self, where: str, problem: str, fix: str) -> None:
        self.problems.append(f"{self.path}: {where}: {problem}. Fix: {fix}.")

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path

    def volume(self, row: _Row, column: str, value: str) -> _Volume | None:
        """Load one file with MONAI's nibabel reader, reporting a missing or unreadable file."""
        where = f"row {row.number}, column {column!r}"
        path = self.resolve(value)
        if path.is_dir():
            self.add(where, f"{path} is a directory, not an image file", "name the NIfTI file inside it")
            return None
        if not path.is_file():
            self.add(
                where,
                f"file not found: {path}",
                f"relative paths resolve against {self.base}; fix the path or add the file",
            )
            return None
        try:
            data, meta = self._load(str(path), reader=self._reader)
        except Exception as error:  # nibabel raises many types for corrupt files; all mean "unreadable"
            self.add(
                where,
                f"cannot read {path} as NIfTI ({type(error).__name__}: {error})",
                "re-export the file as .nii or .nii.gz",
            )
            return None
        return _Volume(np.asarray(data), np.asarray(meta["affine"], dtype=np.float64))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _read_raw(check: _Validator) -> tuple[list[dict[str, Any]], set[str] | None]:
    """Raw rows, and the CSV header (None for JSON, whose rows may each have their own keys)."""
    path = check.path
    if path.is_dir():
        check.add("file", "this is a directory, not a manifest", "pass the path of a CSV or JSON file")
        return [], None
    if not path.is_file():
        check.add("file", "manifest not found", "pass the path of an existing CSV or JSON file")
        return [], None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            check.add("file", f"not valid JSON ({error})", "fix the JSON syntax")
            return [], None
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            check.add("file", "top level is neither a list nor {'rows': [...]}", "wrap the rows in a list")
            return [], None
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                check.add(
                    f"row {number}", f"expected an object, got {type(row).__name__}", "make it an object"
                )
        return [row if isinstance(row, dict) else {} for row in rows], None
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark, which would rename "image".
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = {_text(name) for name in reader.fieldnames or []}
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        check.add("file", f"cannot read as CSV ({error})", "save it as UTF-8 CSV with a header row")
        return [], None
    for number, row in enumerate(rows, start=1):
        if None in row:  # DictReader files surplus cells under the key None
            check.add(
                f"row {number}", "more cells than header columns", "remove the extra cells or name them"
            )
    return [{_text(k): v for k, v in row.items() if k is not None} for row in rows], header


def _parse_rows(check: _Validator, raw_rows: list[dict[str, Any]], header: set[str] | None) -> list[_Row]:
    """Typed rows; a row with any problem in its fields is reported and left out."""
    if header is not None:
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            for column in missing:
                check.add(
                    "header",
                    f"missing column {column!r} (columns present: {sorted(header)})",
                    f"add a {column!r} column to every row",
                )
            return []
    rows: list[_Row] = []
    for number, raw in enumerate(raw_rows, start=1):
        where = f"row {number}"
        before = len(check.problems)
        fields = {}
        for column in REQUIRED_COLUMNS:
            if column not in raw:
                check.add(where, f"missing column {column!r}", f"add {column!r} to the row")
            elif column != "image" and not _text(raw[column]):
                check.add(f"{where}, column {column!r}", "empty value", f"fill in the {column}")
            else:
                fields[column] = _text(raw[column])
        images = _image_columns(check, where, raw)
        split = _text(raw.get("split")).lower() or None
        if split is not None and split not in SPLITS:
            check.add(
                f"{where}, column 'split'", f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}"
            )
        fold = _fold(check, where, raw.get("fold"))
        if len(check.problems) == before:
            rows.append(
                _Row(number, images, fields["label"], fields["domain"], fields["subject"], split, fold)
            )
    return rows


def _image_columns(check: _Validator, where: str, raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(column, path) of every modality: ``image`` (a path, or a JSON list of paths), then ``image_1``..."""
    images: list[tuple[str, str]] = []
    first = raw.get("image")
    if isinstance(first, list):
        images += [(f"image[{i}]", _text(p)) for i, p in enumerate(first)]
    elif "image" in raw:
        images.append(("image", _text(first)))
    extra = sorted((int(m.group(1)), k) for k in raw if (m := _EXTRA_IMAGE.fullmatch(k)))
    images += [(key, _text(raw[key])) for _, key in extra]
    for column, value in images:
        if not value:
            check.add(f"{where}, column {column!r}", "empty image path", "fill in the path of the modality")
    if "image" in raw and not images:
        check.add(f"{where}, column 'image'", "empty list of images", "list at least one image path")
    return images


def _fold(check: _Validator, where: str, value: Any) -> int | None:
    text = _text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or number < 0:
        check.add(f"{where}, column 'fold'", f"fold {text!r} is not an integer >= 0", "use 0, 1, 2, ...")
        return None
    return int(number)


def _check_rows_together(check: _Validator, rows: list[_Row]) -> None:
    """Problems spanning rows: duplicate subjects, split/fold given on only some rows."""
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.domain, row.subject)
        if key in seen:
            check.add(
                f"row {row.number}, column 'subject'",
                f"subject {row.subject!r} of domain {row.domain!r} already appears in row {seen[key]}",
                "give every subject of a domain its own id (one row per subject)",
            )
        else:
            seen[key] = row.number
    for column in ("split", "fold"):
        given = [row.number for row in rows if getattr(row, column) is not None]
        absent = [row.number for row in rows if getattr(row, column) is None]
        if given and absent:
            check.add(
                f"rows {_numbers(absent)}, column {column!r}",
                f"{column} is empty here but given in rows {_numbers(given)}",
                f"give a {column} on every row or on none",
            )


def _numbers(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def _spatial(check: _Validator, where: str, volume: _Volume, is_label: bool) -> np.ndarray | None:
    """The volume as (C, X, Y, Z) for images or (X, Y, Z) for labels, or None (reported) if neither fits."""
    array = volume.array
    while array.ndim > 3 and array.shape[-1] == 1:  # NIfTI often stores a trailing singleton t axis
        array = array[..., 0]
    if array.ndim == 3:
        return array if is_label else array[None]
    if array.ndim == 4 and not is_label:
        return np.moveaxis(array, -1, 0)  # one 4D file holding several modalities along its last axis
    kind = "a 3D label map" if is_label else "a 3D (or 4D multi-channel) image"
    check.add(where, f"shape {volume.array.shape} is not {kind}", "store one volume per file")
    return None


def _load_label(check: _Validator, row: _Row, num_classes: int, channels: list[np.ndarray],
                first: tuple[str, _Volume] | None) -> np.ndarray | None:
    """The row's label volume, checked against its values and the image grid (problems reported)."""
    label_volume = check.volume(row, "label", row.label)
    where = f"row {row.number}, column 'label' ({check.resolve(row.label)})"
    label = None if label_volume is None else _spatial(check, where, label_volume, is_label=True)
    if label is None or label_volume is None:
        return None
    _check_label(check, where, label, num_classes)
    if channels and label.shape != channels[0].shape[1:]:
        check.add(
            where,
            f"label shape {label.shape} differs from image shape {channels[0].shape[1:]}",
            "the label must be on the image's voxel grid",
        )
    elif first is not None and not np.allclose(label_volume.affine, first[1].affine, atol=AFFINE_TOLERANCE_MM,
                                               rtol=0.0):
        check.add(
            where,
            "label affine differs from the image's "
            f"(max difference {np.abs(label_volume.affine - first[1].affine).max():.4g} mm)",
            "save the label with the image's affine (or resample it onto the image)",
        )
    return label


def _load_row(check: _Validator, row: _Row, num_classes: int) -> Case | None:
    """Load and check one row's files; None (with problems reported) if anything is wrong."""
    before = len(check.problems)
    channels: list[np.ndarray] = []
    first: tuple[str, _Volume] | None = None
    for column, value in row.images:
        volume = check.volume(row, column, value)
        where = f"row {row.number}, column {column!r} ({check.resolve(value)})"
        if volume is None:
            continue
        image = _spatial(check, where, volume, is_label=False)
        if image is None:
            continue
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        if bad:
            check.add(where, f"{bad} NaN or infinite intensities", "replace them (e.g. by 0) before training")
        if first is None:
            first = (column, volume)
        elif image.shape[1:] != channels[0].shape[1:]:
            check.add(
                where,
                f"shape {image.shape[1:]} differs from {first[0]!r}'s {channels[0].shape[1:]}",
                "resample every modality of a subject to one grid",
            )
            continue
        elif not np.allclose(volume.affine, first[1].affine, atol=AFFINE_TOLERANCE_MM, rtol=0.0):
            check.add(
                where,
                f"affine differs from {first[0]!r}'s",
                "resample every modality of a subject to one grid (same affine)",
            )
        channels.append(image)
    label = _load_label(check, row, num_classes, channels, first)
    if len(check.problems) != before or label is None or first is None:
        return None
    return Case(
        subject=row.subject,
        domain=row.domain,
        image=np.concatenate(channels).astype(np.float32, copy=False),
        label=label.astype(np.int64),
        split=row.split,
        fold=row.fold,
        affine=first[1].affine,
    )


def _check_label(check: _Validator, where: str, label: np.ndarray, num_classes: int) -> None:
    if not (np.issubdtype(label.dtype, np.integer) or np.issubdtype(label.dtype, np.floating)):
        check.add(where, f"label dtype {label.dtype} is not numeric", "store integer class values")
        return
    if np.issubdtype(label.dtype, np.floating):
        fractional = label != np.round(label)  # NaN compares unequal, so it counts as non-integer too
        if fractional.any():
            examples = np.unique(label[fractional])[:5].tolist()
            check.add(
                where,
                f"{int(fractional.sum())} non-integer label values (e.g. {examples})",
                "labels must be integer class indices; re-export without interpolation",
            )
            return
    low, high = label.min(), label.max()
    if low < 0 or high >= num_classes:
        outside = (label < 0) | (label >= num_classes)
        values = np.unique(label[outside])[:10].tolist()
        check.add(
            where,
            f"label values {values} outside 0..{num_classes - 1}",
            f"use values 0..{num_classes - 1} or raise data.num_classes",
        )


def load_manifest(path: str | Path, num_classes: int, domains: Sequence[str] | None = None) -> list[Case]:
    """Read, load and validate every row of ``path`` (in the requested ``domains``; None or empty: all).

    Raises :class:`ManifestError` listing every problem found, so one run shows everything to fix.
    """
    check = _Validator(Path(path).expanduser().resolve())
    raw_rows, header = _read_raw(check)
    if check.problems and not raw_rows:
        # The file itself is missing or unreadable: that alone is the problem (no cascade of empty domains).
        raise ManifestError(check.path, check.problems)
    rows = _parse_rows(check, raw_rows, header)
    _check_rows_together(check, rows)
    if not raw_rows and not check.problems:
        check.add("file", "no data rows", "add one row per subject")
    if domains:
        present = sorted({row.domain for row in rows})
        for domain in domains:
            if domain not in present:
                check.add(
                    f"domain {domain!r}",
                    f"requested domain has no subjects (domains present: {present})",
                    "fix data.domains or add rows for this domain",
                )
        rows = [row for row in rows if row.domain in domains]
    loaded = [(row.number, case) for row in rows if (case := _load_row(check, row, num_classes)) is not None]
    rows_by_channels: dict[int, list[int]] = defaultdict(list)
    for number, case in loaded:
        rows_by_channels[case.image.shape[0]].append(number)
    if len(rows_by_channels) > 1:
        detail = "; ".join(f"{c} in rows {_numbers(n)}" for c, n in sorted(rows_by_channels.items()))
        check.add(
            "image columns",
            f"rows have different numbers of modalities ({detail})",
            "give every row the same modalities, in the same order",
        )
    if check.problems:
        raise ManifestError(check.path, check.problems)
    return [case for _, case in loaded]
