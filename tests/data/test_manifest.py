"""Manifest loading and validation, subject splits, and the data config."""

from __future__ import annotations

import csv
import json
import math
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydantic
import pytest

from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.datasets import DATASETS, check_data, load_cases, split_cases
from platform.data.manifest import ManifestError, load_manifest
from platform.data.phantom import build_phantom

Rows = list[dict[str, object]]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny phantom (3 adult + 3 infant subjects, 16^3) whose files the tests copy and corrupt."""
    cache = tmp_path_factory.mktemp("cache")
    return build_phantom(DataConfig(size=16, subjects_per_domain=3, cache_dir=str(cache)))


def absolute_rows(manifest: Path) -> Rows:
    with open(manifest, newline="") as handle:
        rows: Rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("image", "label"):
            row[column] = str(manifest.parent / str(row[column]))
    return rows


def write_csv(path: Path, rows: Rows) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read(path: object) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(str(path))
    return np.asarray(image.dataobj), image.affine


def save(path: Path, array: np.ndarray, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(array, affine), path)
    return str(path)


# --- every kind of bad input is reported with its row and file ---------------------------------------------


def missing_file(rows: Rows, tmp: Path) -> list[str]:
    rows[1]["image"] = str(tmp / "absent_image.nii.gz")
    return ["row 2, column 'image'", "absent_image.nii.gz", "not found"]


def unreadable_file(rows: Rows, tmp: Path) -> list[str]:
    (tmp / "broken_label.nii.gz").write_bytes(b"not a nifti file")
    rows[0]["label"] = str(tmp / "broken_label.nii.gz")
    return ["row 1, column 'label'", "broken_label.nii.gz", "cannot read"]


def shape_mismatch(rows: Rows, tmp: Path) -> list[str]:
    label, affine = read(rows[2]["label"])
    rows[2]["label"] = save(tmp / "cropped_label.nii.gz", label[:, :, :-1], affine)
    return [
        "row 3, column 'label'",
        "cropped_label.nii.gz",
        "(16, 16, 15) differs from image shape (16, 16, 16)",
    ]


def affine_mismatch(rows: Rows, tmp: Path) -> list[str]:
    label, affine = read(rows[0]["label"])
    shifted = affine.copy()
    shifted[0, 3] += 2.0
    rows[0]["label"] = save(tmp / "shifted_label.nii.gz", label, shifted)
    return ["row 1, column 'label'", "shifted_label.nii.gz", "affine differs", "max difference 2 mm"]


def label_out_of_range(rows: Rows, tmp: Path) -> list[str]:
    label, affine = read(rows[1]["label"])
    label = label.copy()
    label[0, 0, 0] = 7
    rows[1]["label"] = save(tmp / "seven_label.nii.gz", label, affine)
    return ["row 2, column 'label'", "seven_label.nii.gz", "label values [7] outside 0..3"]


def float_labels(rows: Rows, tmp: Path) -> list[str]:
    label, affine = read(rows[4]["label"])
    smooth = label.astype(np.float32)
    smooth[5:8, 5:8, 5:8] += 0.5
    rows[4]["label"] = save(tmp / "interpolated_label.nii.gz", smooth, affine)
    return ["row 5, column 'label'", "interpolated_label.nii.gz", "27 non-integer label values"]


def nan_intensities(rows: Rows, tmp: Path) -> list[str]:
    image, affine = read(rows[3]["image"])
    image = image.copy()
    image[0, 0, :3] = np.nan
    image[1, 1, 1] = np.inf
    rows[3]["image"] = save(tmp / "nan_image.nii.gz", image, affine)
    return ["row 4, column 'image'", "nan_image.nii.gz", "4 NaN or infinite intensities"]


def modality_shape_mismatch(rows: Rows, tmp: Path) -> list[str]:
    image, affine = read(rows[0]["image"])
    for row in rows:
        row["image_1"] = row["image"]
    rows[0]["image_1"] = save(tmp / "small_t2.nii.gz", image[:8], affine)
    return ["row 1, column 'image_1'", "small_t2.nii.gz", "(8, 16, 16) differs from 'image'"]


def duplicate_subject(rows: Rows, tmp: Path) -> list[str]:
    rows[2]["subject"] = rows[0]["subject"]
    return ["row 3, column 'subject'", f"subject {rows[0]['subject']!r}", "already appears in row 1"]


def empty_domain(rows: Rows, tmp: Path) -> list[str]:
    rows[5]["domain"] = ""
    return ["row 6, column 'domain'", "empty value"]


def bad_split(rows: Rows, tmp: Path) -> list[str]:
    for row in rows:
        row["split"] = "train"
    rows[1]["split"] = "training"
    return ["row 2, column 'split'", "unknown split 'training'", "train, val, test"]


def partial_split(rows: Rows, tmp: Path) -> list[str]:
    for row in rows:
        row["split"] = "train"
    rows[3]["split"] = rows[4]["split"] = ""
    return ["rows 4, 5, column 'split'", "given in rows 1, 2, 3, 6"]


def bad_fold(rows: Rows, tmp: Path) -> list[str]:
    for number, row in enumerate(rows):
        row["fold"] = str(number % 2)
    rows[5]["fold"] = "1.5"
    return ["row 6, column 'fold'", "'1.5' is not an integer"]


def missing_column(rows: Rows, tmp: Path) -> list[str]:
    for row in rows:
        del row["label"]
    return ["header", "missing column 'label'", "add a 'label' column"]


@pytest.mark.parametrize(
    "corrupt",
    [
        missing_file,
        unreadable_file,
        shape_mismatch,
        affine_mismatch,
        label_out_of_range,
        float_labels,
        nan_intensities,
        modality_shape_mismatch,
        duplicate_subject,
        empty_domain,
        bad_split,
        partial_split,
        bad_fold,
        missing_column,
    ],
)
def test_bad_input_is_reported_with_row_and_file(
    source: Path, tmp_path: Path, corrupt: Callable[[Rows, Path], list[str]]
) -> None:
    rows = absolute_rows(source)
    expected = corrupt(rows, tmp_path)
    manifest = write_csv(tmp_path / "manifest.csv", rows)
    with pytest.raises(ManifestError) as error:
        load_manifest(manifest, num_classes=4)
    assert len(error.value.problems) == 1, error.value.problems
    message = str(error.value)
    assert str(manifest) in message
    for fragment in expected:
        assert fragment in message
    assert ". Fix: " in error.value.problems[0]


def test_error_survives_pickling(source: Path, tmp_path: Path) -> None:
    rows = absolute_rows(source)
    missing_file(rows, tmp_path)
    with pytest.raises(ManifestError) as error:
        load_manifest(write_csv(tmp_path / "manifest.csv", rows), num_classes=4)
    copy = pickle.loads(pickle.dumps(error.value))  # as Ray ships it out of a trial
    assert str(copy) == str(error.value) and copy.problems == error.value.problems


def test_spreadsheet_byte_order_mark(source: Path, tmp_path: Path) -> None:
    manifest = write_csv(tmp_path / "manifest.csv", absolute_rows(source))
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    assert len(load_manifest(manifest, num_classes=4)) == 6


def test_missing_key_in_json_row(source: Path, tmp_path: Path) -> None:
    rows = absolute_rows(source)
    del rows[2]["subject"]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(rows))
    with pytest.raises(ManifestError, match=r"row 3: missing column 'subject'"):
        load_manifest(manifest, num_classes=4)


def test_all_problems_are_reported_together(source: Path, tmp_path: Path) -> None:
    rows = absolute_rows(source)
    expectations = [
        missing_file(rows, tmp_path),
        label_out_of_range(rows, tmp_path),
        nan_intensities(rows, tmp_path),
        float_labels(rows, tmp_path),
    ]
    manifest = write_csv(tmp_path / "manifest.csv", rows)
    with pytest.raises(ManifestError) as error:
        load_manifest(manifest, num_classes=4, domains=["adult", "infant", "neonate"])
    assert len(error.value.problems) == 5
    message = str(error.value)
    assert message.startswith("5 problem(s) in manifest")
    for fragments in expectations:
        for fragment in fragments:
            assert fragment in message
    assert "requested domain has no subjects" in message and "'neonate'" in message


def test_requested_domain_without_subjects(source: Path) -> None:
    with pytest.raises(ManifestError, match=r"domain 'neonate': requested domain has no subjects") as error:
        load_manifest(source, num_classes=4, domains=["adult", "neonate"])
    assert "['adult', 'infant']" in str(error.value)  # the domains that do exist


def test_label_classes_checked_against_num_classes(source: Path) -> None:
    with pytest.raises(ManifestError, match=r"label values \[2, 3\] outside 0..1") as error:
        load_manifest(source, num_classes=2)
    assert len(error.value.problems) == 6  # every row, not just the first


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("image,label,domain,subject\n", "no data rows"),
        ("{not json", "not valid JSON"),
        ('{"subjects": []}', "neither a list nor {'rows': [...]}"),
        ("[1, 2]", "row 1: expected an object, got int"),
    ],
)
def test_malformed_manifest_files(tmp_path: Path, content: str, fragment: str) -> None:
    suffix = ".csv" if content.startswith("image") else ".json"
    manifest = tmp_path / f"manifest{suffix}"
    manifest.write_text(content)
    with pytest.raises(ManifestError) as error:
        load_manifest(manifest, num_classes=4)
    assert fragment in str(error.value)


def test_manifest_not_found(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "nowhere.csv", num_classes=4)


# --- what a valid manifest gives ---------------------------------------------------------------------------


def test_phantom_manifest_loads(source: Path) -> None:
    cases = load_manifest(source, num_classes=4)
    assert [(c.domain, c.subject) for c in cases] == [
        (d, f"{d}-{i:03d}") for d in ("adult", "infant") for i in range(3)
    ]
    for case in cases:
        assert case.image.dtype == np.float32 and case.image.shape == (1, 16, 16, 16)
        assert case.label.dtype == np.int64 and case.label.shape == (16, 16, 16)
        assert case.affine.shape == (4, 4) and case.affine[0, 0] == pytest.approx(12.0)
        assert case.split is None and case.fold is None
        assert set(np.unique(case.label).tolist()) == {0, 1, 2, 3}
        assert np.isfinite(case.image).all()


def test_relative_paths_resolve_against_the_manifest(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the manifest's directory
    assert len(load_manifest(source, num_classes=4, domains=["infant"])) == 3
    nested = tmp_path / "lists"
    nested.mkdir()
    rows = absolute_rows(source)
    rows[0]["image"] = str(Path("..") / "copy.nii.gz")
    shutil.copy(absolute_rows(source)[0]["image"], tmp_path / "copy.nii.gz")  # type: ignore[arg-type]
    cases = load_manifest(write_csv(nested / "manifest.csv", rows), num_classes=4)
    np.testing.assert_array_equal(cases[0].image, load_manifest(source, 4)[0].image)


@pytest.mark.parametrize("form", ["csv", "json-list", "json-rows"])
def test_csv_and_json_give_the_same_cases(source: Path, tmp_path: Path, form: str) -> None:
    rows = absolute_rows(source)
    for number, row in enumerate(rows):
        row["split"] = "val" if number % 3 == 2 else "train"
        row["fold"] = number % 2
    if form == "csv":
        manifest = write_csv(tmp_path / "m.csv", rows)
    else:
        manifest = tmp_path / "m.json"
        manifest.write_text(json.dumps(rows if form == "json-list" else {"rows": rows}))
    cases = load_manifest(manifest, num_classes=4)
    reference = load_manifest(source, num_classes=4)
    assert [(c.domain, c.subject, c.split, c.fold) for c in cases] == [
        (r.domain, r.subject, "val" if i % 3 == 2 else "train", i % 2) for i, r in enumerate(reference)
    ]
    for case, ref in zip(cases, reference, strict=True):
        np.testing.assert_array_equal(case.image, ref.image)
        np.testing.assert_array_equal(case.label, ref.label)


@pytest.mark.parametrize("form", ["csv-columns", "json-list"])
def test_multimodal_rows_stack_channels(source: Path, tmp_path: Path, form: str) -> None:
    rows = absolute_rows(source)[:3]
    for number, row in enumerate(rows):
        image, affine = read(row["image"])
        second = save(tmp_path / f"t2_{number}.nii.gz", (1.0 - image).astype(np.float32), affine)
        if form == "csv-columns":
            row["image_1"] = second
        else:
            row["image"] = [row["image"], second]
    if form == "csv-columns":
        manifest = write_csv(tmp_path / "m.csv", rows)
    else:
        manifest = tmp_path / "m.json"
        manifest.write_text(json.dumps(rows))
    cases = load_manifest(manifest, num_classes=4)
    for case in cases:
        assert case.image.shape == (2, 16, 16, 16)
        np.testing.assert_allclose(case.image[1], 1.0 - case.image[0], atol=1e-6)


def test_rows_must_have_the_same_modalities(source: Path, tmp_path: Path) -> None:
    rows = absolute_rows(source)
    rows[0]["image"] = [rows[0]["image"], rows[0]["image"]]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(rows))
    with pytest.raises(
        ManifestError, match=r"different numbers of modalities \(1 in rows 2, 3, 4, 5, 6; 2 in rows 1\)"
    ):
        load_manifest(manifest, num_classes=4)


def test_four_d_file_gives_channels(source: Path, tmp_path: Path) -> None:
    rows = absolute_rows(source)[:1]
    image, affine = read(rows[0]["image"])
    rows[0]["image"] = save(tmp_path / "both.nii.gz", np.stack([image, 2 * image], axis=-1), affine)
    (case,) = load_manifest(write_csv(tmp_path / "m.csv", rows), num_classes=4)
    assert case.image.shape == (2, 16, 16, 16)
    np.testing.assert_allclose(case.image[1], 2 * case.image[0])


def test_load_cases_from_phantom_and_manifest(source: Path, tmp_path: Path) -> None:
    phantom_cfg = DataConfig(size=16, subjects_per_domain=2, domains=["mr"], cache_dir=str(tmp_path))
    assert {c.domain for c in load_cases(phantom_cfg)} == {"mr"}
    every = load_cases(DataConfig(dataset="manifest", manifest=str(source), domains=[]))
    assert len(every) == 6
    adults = load_cases(DataConfig(dataset="manifest", manifest=str(source), domains=["adult"]))
    assert [c.domain for c in adults] == ["adult"] * 3
    with pytest.raises(ManifestError, match="'ghost'"):
        load_cases(DataConfig(dataset="manifest", manifest=str(source), domains=["ghost"]))


# --- splits ------------------------------------------------------------------------------------------------


def case(subject: str, domain: str = "a", split: str | None = None, fold: int | None = None) -> Case:
    return Case(
        subject=subject,
        domain=domain,
        image=np.zeros((1, 2, 2, 2), np.float32),
        label=np.zeros((2, 2, 2), np.int64),
        split=split,
        fold=fold,
        affine=np.eye(4),
    )


def ids(cases: list[Case]) -> list[tuple[str, str]]:
    return sorted((c.domain, c.subject) for c in cases)


def test_split_column_is_respected() -> None:
    cases = [
        case("s1", split="train"),
        case("s2", split="val"),
        case("s3", split="test"),
        case("s4", split="train"),
    ]
    cases += [case("t1", "b", "val"), case("t2", "b", "train"), case("t3", "b", "test")]
    train, val, test = split_cases(cases, DataConfig(domains=[], val_fraction=0.9, test_fraction=0.0))
    assert ids(train) == [("a", "s1"), ("a", "s4"), ("b", "t2")]
    assert ids(val) == [("a", "s2"), ("b", "t1")]
    assert ids(test) == [("a", "s3"), ("b", "t3")]
    with pytest.raises(ValueError, match="split column"):
        split_cases(cases, DataConfig(domains=[], folds=2), fold=0)


@pytest.mark.parametrize(
    ("rows", "roles", "message"),
    [
        # b has test rows but no val row: an evaluation domain needs both.
        ([("s1", "a", "train"), ("s2", "a", "val"), ("s3", "a", "test"), ("t1", "b", "train"),
          ("t2", "b", "test")], {}, r"'b' has no val subject"),
        # a test set exists, so every evaluation domain needs a test subject.
        ([("s1", "a", "train"), ("s2", "a", "val"), ("s3", "a", "test"), ("t1", "b", "train"),
          ("t2", "b", "val")], {}, r"'b' has no test subject"),
        # b only evaluates, so it needs no training row ...
        ([("s1", "a", "train"), ("s2", "a", "val"), ("t1", "b", "val")], {"train_domains": ["a"]}, None),
        # ... and a only trains, so it needs no val row.
        ([("s1", "a", "train"), ("t1", "b", "train"), ("t2", "b", "val")], {"eval_domains": ["b"]}, None),
        ([("s1", "a", "train"), ("t1", "b", "val")], {"train_domains": ["b"]}, r"'b' has no train subject"),
    ],
)
def test_split_column_must_give_each_role_its_subjects(rows: list[tuple[str, str, str]], roles: dict[str, list[str]],
                                                      message: str | None) -> None:
    cases = [case(subject, domain, split) for subject, domain, split in rows]
    config = DataConfig(domains=["a", "b"], **roles)
    if message is None:
        split_cases(cases, config)
    else:
        with pytest.raises(ValueError, match=message):
            split_cases(cases, config)


@pytest.mark.parametrize(("folds", "per_domain"), [(2, 3), (3, 8), (5, 7), (4, 11)])
def test_folds_partition_subjects_within_each_domain(folds: int, per_domain: int) -> None:
    cases = [case(f"s{i}", d) for d in ("a", "b") for i in range(per_domain)]
    cfg = DataConfig(domains=[], folds=folds, seed=3)
    seen: list[tuple[str, str]] = []
    tests = set()
    for fold in range(folds):
        train, val, test = split_cases(cases, cfg, fold=fold)
        assert not set(ids(train)) & set(ids(val)) and not (set(ids(train)) | set(ids(val))) & set(ids(test))
        assert sorted(ids(train) + ids(val) + ids(test)) == ids(cases)
        tests.add(tuple(ids(test)))
        rest = per_domain - sum(c.domain == "a" for c in test)
        for domain in ("a", "b"):
            size = sum(c.domain == domain for c in val)
            assert rest // folds <= size <= math.ceil(rest / folds)
        seen += ids(val)
    assert len(tests) == 1  # the test set is held out once, the same in every fold
    assert sorted(seen + list(tests.pop())) == ids(cases)  # every other subject validates exactly once
    assert split_cases(cases, cfg, fold=1) == split_cases(list(cases), cfg, fold=1)  # deterministic


def test_fold_column_of_the_manifest_is_used() -> None:
    cases = [case(f"s{i}", fold=i % 3) for i in range(6)]
    train, val, test = split_cases(cases, DataConfig(domains=[], folds=3, test_fraction=0.0), fold=2)
    assert ids(val) == [("a", "s2"), ("a", "s5")]
    assert len(train) == 4 and test == []
    with pytest.raises(ValueError, match=r"manifest folds \[2\] are >= data.folds=2"):
        split_cases(cases, DataConfig(domains=[], folds=2), fold=0)


@pytest.mark.parametrize(
    ("cfg", "fold", "message"),
    [
        (DataConfig(domains=[], folds=3), 3, r"fold 3 is out of range for data.folds=3: use 0..2"),
        (DataConfig(domains=[], folds=3), -1, r"fold -1 is out of range"),
        (DataConfig(domains=[]), 0, r"data.folds is not set"),
        (DataConfig(domains=[], folds=4), 3, r"'a' has no val subject"),  # 2 subjects cannot fill 4 folds
    ],
)
def test_bad_fold_requests(cfg: DataConfig, fold: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_cases([case(f"s{i}") for i in range(3)], cfg, fold=fold)


@pytest.mark.parametrize(
    ("subjects", "val_fraction", "test_fraction", "n_val", "n_test"),
    [(3, 0.34, 0.0, 2, 0), (3, 0.2, 0.2, 1, 1), (8, 0.2, 0.2, 2, 2), (10, 0.1, 0.1, 1, 1), (6, 0.34, 0.2, 3, 2),
     (5, 0.5, 0.0, 3, 0)],
)
def test_default_split_holds_out_the_last_subjects(subjects: int, val_fraction: float, test_fraction: float,
                                                   n_val: int, n_test: int) -> None:
    cases = [case(f"s{i:02d}", d) for d in ("a", "b") for i in reversed(range(subjects))]
    train, val, test = split_cases(cases, DataConfig(domains=[], val_fraction=val_fraction,
                                                     test_fraction=test_fraction))
    last = subjects - n_test
    assert ids(test) == [(d, f"s{i:02d}") for d in ("a", "b") for i in range(last, subjects)]
    assert ids(val) == [(d, f"s{i:02d}") for d in ("a", "b") for i in range(last - n_val, last)]
    assert len(train) == 2 * (subjects - n_val - n_test) >= 2


def test_a_domains_subjects_do_not_depend_on_its_roles() -> None:
    cases = [case(f"s{i}", d) for d in ("a", "b") for i in range(8)]
    both = split_cases(cases, DataConfig(domains=["a", "b"]))
    only_a = split_cases(cases, DataConfig(domains=["a", "b"], train_domains=["a"], eval_domains=["b"]))
    for part_both, part_a in zip(both, only_a, strict=True):
        assert ids(part_both) == ids(part_a)


@pytest.mark.parametrize(("subjects", "fraction"), [(1, 0.34), (2, 0.9)])
def test_default_split_needs_train_and_val_in_every_domain(subjects: int, fraction: float) -> None:
    cases = [case("x0", "big"), case("x1", "big"), case("x2", "big")]
    cases += [case(f"s{i}", "small") for i in range(subjects)]
    with pytest.raises(ValueError, match=r"'small' has no train subject .*small: 0/"):
        split_cases(cases, DataConfig(domains=[], val_fraction=fraction, test_fraction=0.0))


# --- the data config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"class_names": ["bg", "fg"]}, "class_names has 2 names but num_classes is 4"),
        ({"domains": ["adult", "adult"]}, r"\['adult'\] more than once"),
        ({"patch": 16}, "Extra inputs are not permitted"),
        ({"val_fraction": 1.0}, "less than 1"),
        ({"folds": 1}, "greater than or equal to 2"),
    ],
)
def test_data_config_rejects(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        DataConfig(**fields)


# Checks of one dataset (the DATASETS registry), made at spec time: each names the field to change.
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dataset": "manifest"}, "data.manifest: dataset 'manifest' needs a manifest path"),
        ({"num_classes": 3}, "data.num_classes: the phantom has 4 classes"),
        ({"domains": []}, "data.domains: the phantom needs at least one domain"),
        ({"domains": ["adult", "mri"]}, r"data.domains: unknown phantom domain\(s\) \['mri'\]"),
    ],
)
def test_dataset_checks_reject(fields: dict[str, object], message: str) -> None:
    problems = check_data(DataConfig(**fields))
    assert len(problems) == 1 and re.match(message, problems[0]), problems


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_accepts_its_defaults(name: str, tmp_path: Path) -> None:
    fields = {"manifest": str(tmp_path / "m.csv")} if name == "manifest" else {}
    assert check_data(DataConfig(dataset=name, **fields)) == []


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({}, ["bg", "wm", "gm", "csf"]),
        ({"dataset": "manifest", "manifest": "m.csv", "num_classes": 3}, ["bg", "class1", "class2"]),
        (
            {"dataset": "manifest", "manifest": "m.csv", "num_classes": 2, "class_names": ["bg", "prostate"]},
            ["bg", "prostate"],
        ),
    ],
)
def test_names_of_classes(fields: dict[str, object], names: list[str]) -> None:
    assert DataConfig(**fields).names_of_classes() == names


def test_every_config_field_is_described() -> None:
    for name, field in DataConfig.model_fields.items():
        assert field.description, name
