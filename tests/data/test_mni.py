"""The mni dataset: packaged template files only, determinism, labels from the probability maps, domains."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import numpy as np
import pytest

from platform.data import mni
from platform.data.config import DataConfig
from platform.data.datasets import check_data, load_cases
from platform.data.phantom import BG, CSF, GM, WM
from platform.data.phantom_names import CLASS_NAMES


def small(tmp: Path, **overrides: object) -> DataConfig:
    fields: dict[str, object] = {"dataset": "mni", "size": 20, "subjects_per_domain": 2, "cache_dir": str(tmp)}
    fields.update(overrides)
    return DataConfig(**fields)


def contrast(image: np.ndarray, label: np.ndarray) -> float:
    """|mean WM - mean GM| in units of the brain's intensity std (scale-free, so domains compare)."""
    brain = image[label != BG]
    return abs(float(image[label == WM].mean() - image[label == GM].mean())) / float(brain.std())


def test_template_files_are_packaged_with_nilearn(monkeypatch: pytest.MonkeyPatch) -> None:
    for file in mni.TEMPLATE_FILES.values():
        assert (mni.template_directory() / file).is_file()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the mni dataset must not open a network connection")

    # Read with the network refused: the maps come from the installed package, never a download.
    monkeypatch.setattr(socket.socket, "connect", refuse)
    mni._template_1mm.cache_clear()
    maps = mni._template_1mm()
    assert {"t1", "gm", "wm", "mask"} <= set(maps) and maps["mask"].sum() > 1e6  # over a litre of brain at 1 mm


SPACES = Path(__file__).parents[2] / "search_spaces"
SPECS = [*sorted(SPACES.glob("*.yaml")), *sorted((SPACES / "paper").glob("*.yaml")),
         *sorted((SPACES / "paper" / "mni").glob("*.yaml"))]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_validates_on_mni(spec: Path) -> None:
    from platform.spec import load_spec

    loaded = load_spec(spec, ["data.dataset=mni"])
    assert loaded.data.dataset == "mni" and check_data(loaded.data) == []


def test_same_seed_same_volumes_other_seed_other_volumes(tmp_path: Path) -> None:
    a = mni.generate_subject(small(tmp_path), "adult", 0)
    b = mni.generate_subject(small(tmp_path), "adult", 0)
    c = mni.generate_subject(small(tmp_path, seed=1), "adult", 0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_subjects_are_deformed_differently(tmp_path: Path) -> None:
    first = mni.generate_subject(small(tmp_path), "adult", 0)[1]
    second = mni.generate_subject(small(tmp_path), "adult", 1)[1]
    assert (first != second).mean() > 0.01


def test_labels_follow_the_probability_maps() -> None:
    # Hand-made maps: each voxel takes the class with the largest share, bg = 1 - mask, CSF = mask - GM - WM.
    # The last two are a brain-edge voxel (mask .6): bg .40 beats CSF .36 and GM .18, so it is background, not
    # the CSF a mask threshold followed by a tissue argmax made of it; and one where CSF .42 beats bg .30.
    mask = np.array([0.2, 1.0, 1.0, 1.0, 0.8, 0.6, 0.7], dtype=np.float32)
    gm = np.array([0.9, 0.6, 0.2, 0.1, 0.3, 0.3, 0.2], dtype=np.float32)
    wm = np.array([0.0, 0.3, 0.7, 0.1, 0.1, 0.1, 0.2], dtype=np.float32)
    assert mni._labels(mask, gm, wm).tolist() == [BG, GM, WM, CSF, CSF, BG, CSF]


def test_sampled_fractions_sum_to_one_and_decide_the_label(tmp_path: Path) -> None:
    # Fractions are made at 1 mm and resampled (linear), so each output voxel's four shares sum to 1 and its
    # label is the largest; a rim voxel's cortex is not counted as outside twice (resampled GM times a resampled
    # mask), which turned the brain's edge into CSF.
    size = 20
    look = mni._appearance("adult")
    rng = np.random.default_rng(0)
    p = mni._fractions(mni._sample(mni._deformed_coordinates(size, rng, look), size))
    assert p.shape == (4, size, size, size)
    assert np.allclose(p.sum(axis=0), 1.0, atol=1e-4)
    label = mni._majority(p)
    csf = label == CSF
    assert csf.any() and bool(np.all(p[CSF][csf] >= p[BG][csf]))
    brain = mni._template_blurred(size)
    assert np.allclose(sum(brain[f"p{k}"] for k in (BG, WM, GM, CSF)), 1.0, atol=1e-4)


def test_csf_is_darker_than_grey_matter_in_adult(tmp_path: Path) -> None:
    # T1: CSF < GM < WM in the voxels labelled so, at a size where the ventricles are resolved (48 voxels: 4 mm).
    image, label = mni.generate_subject(small(tmp_path, size=48), "adult", 0)
    medians = [float(np.median(image[label == k])) for k in (CSF, GM, WM)]
    assert medians == sorted(medians)


def test_generated_labels_agree_with_the_sampled_maps(tmp_path: Path) -> None:
    cfg = small(tmp_path)
    image, label = mni.generate_subject(cfg, "adult", 0)
    fractions = np.bincount(label.ravel(), minlength=4) / label.size
    # Every class present; at 20 voxels (9.6 mm) CSF is the few voxels where it is the largest share, the
    # ventricles' core.
    assert all(fractions > 0)
    assert fractions[GM] > fractions[WM] > fractions[CSF]  # the cortex is the largest tissue, CSF the smallest
    # Adult T1: GM below WM. CSF's voxels at 9.6 mm are ventricle cores half WM, so its order is checked at 48
    # (test_csf_is_darker_than_grey_matter_in_adult).
    assert image[label == GM].mean() < image[label == WM].mean()


def test_infant_contrast_is_lower_than_adult(tmp_path: Path) -> None:
    cfg = small(tmp_path)
    adult = np.mean([contrast(*mni.generate_subject(cfg, "adult", i)) for i in range(2)])
    infant = np.mean([contrast(*mni.generate_subject(cfg, "infant", i)) for i in range(2)])
    # Tissue means alone: .05 of the range apart in infant, .30 in adult; partial volume at 10 mm voxels (GM
    # mixes with CSF and background) narrows the gap, measured about 0.6 of adult's.
    assert infant < 0.75 * adult


@pytest.mark.parametrize(("domain", "low", "high"), [("adult", -200, 1200), ("infant", -600, 3600),
                                                       ("ct", -1200, 1100), ("mr", -200, 1800)])
def test_domain_units(tmp_path: Path, domain: str, low: float, high: float) -> None:
    image, _ = mni.generate_subject(small(tmp_path), domain, 0)
    assert low <= float(np.percentile(image, 1)) and float(np.percentile(image, 99)) <= high


def test_ct_has_a_skull_mr_does_not(tmp_path: Path) -> None:
    ct, ct_label = mni.generate_subject(small(tmp_path), "ct", 0)
    mr, mr_label = mni.generate_subject(small(tmp_path), "mr", 0)
    # ct's brightest background is bone, brighter than every tissue; mr's background stays below its brightest
    # tissue (CSF in T2).
    ct_top = float(np.percentile(ct[ct_label == BG], 99))
    assert all(ct_top > ct[ct_label == k].mean() for k in (WM, GM, CSF))
    assert float(np.percentile(mr[mr_label == BG], 99)) < float(mr[mr_label == CSF].mean())


def test_sites_differ_in_scale(tmp_path: Path) -> None:
    cfg = small(tmp_path)
    scales = [float(np.percentile(mni.generate_subject(cfg, f"site{k}", 0)[0], 99)) for k in (1, 2, 3)]
    assert max(scales) / min(scales) > 1.3


def test_built_and_cached_with_manifest(tmp_path: Path) -> None:
    cfg = small(tmp_path, domains=["adult", "infant"])
    manifest = mni.build_mni(cfg)
    stamp = manifest.stat().st_mtime_ns
    assert mni.build_mni(cfg) == manifest and manifest.stat().st_mtime_ns == stamp  # reused, not rebuilt
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["domain"] for r in rows) == ["adult", "adult", "infant", "infant"]
    cases = load_cases(cfg)
    assert len(cases) == 4
    assert mni.mni_dir(small(tmp_path, seed=3)) != mni.mni_dir(cfg)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"domains": ["adult", "ct"]}, None),
    ({"domains": ["site4", "mr"]}, None),
    ({"domains": ["btcv"]}, "unknown mni dataset domain"),
    ({"num_classes": 9}, "num_classes"),
])
def test_spec_check(fields: dict[str, object], problem: str | None) -> None:
    problems = check_data(DataConfig(dataset="mni", **fields))
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems)
    assert DataConfig(dataset="mni").names_of_classes() == list(CLASS_NAMES)
