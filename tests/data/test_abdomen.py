"""The abdomen dataset: determinism, small and large organs, textured background, CT window, the two domains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from platform.data import abdomen
from platform.data.abdomen import AORTA, BG, GALLBLADDER, KIDNEY_L, LIVER, PANCREAS, SPLEEN, STOMACH
from platform.data.config import DataConfig
from platform.data.datasets import check_data, load_cases
from platform.data.phantom_names import ABDOMEN_CLASS_NAMES

SIZE = 40


def small(tmp: Path, **overrides: object) -> DataConfig:
    fields: dict[str, object] = {"dataset": "abdomen", "domains": ["btcv", "tcia"], "num_classes": 9, "size": SIZE,
                                 "subjects_per_domain": 2, "cache_dir": str(tmp)}
    fields.update(overrides)
    return DataConfig(**fields)


@pytest.fixture(scope="module")
def subjects() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    cfg = DataConfig(dataset="abdomen", domains=["btcv", "tcia"], num_classes=9, size=SIZE)
    return {d: [abdomen.generate_subject(cfg, d, i) for i in range(3)] for d in ("btcv", "tcia")}


def test_same_seed_same_volumes(tmp_path: Path) -> None:
    a = abdomen.generate_subject(small(tmp_path), "btcv", 0)
    b = abdomen.generate_subject(small(tmp_path), "btcv", 0)
    c = abdomen.generate_subject(small(tmp_path, seed=5), "btcv", 0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_every_organ_present_and_sizes_span_orders_of_magnitude(subjects: dict) -> None:
    for domain, volumes in subjects.items():
        for _, label in volumes:
            fractions = np.bincount(label.ravel(), minlength=9) / label.size
            assert all(fractions[1:] > 0), (domain, fractions)
            assert fractions[BG] > 0.85  # background dominates the batch statistics
            assert fractions[LIVER] > 0.012  # a large organ
            for small_organ in (GALLBLADDER, PANCREAS):
                assert fractions[small_organ] < 0.003
                assert fractions[LIVER] > 10 * fractions[small_organ]


@pytest.mark.parametrize(("organ", "low", "high"), [(LIVER, 85, 130), (SPLEEN, 90, 140), (KIDNEY_L, 120, 200),
                                                     (GALLBLADDER, -40, 40), (AORTA, 100, 210), (STOMACH, 0, 60)])
def test_organ_intensities_in_their_hu_ranges(subjects: dict, organ: int, low: float, high: float) -> None:
    # The organ's interior (one voxel eroded, where any is left) escapes the partial volume of its edges; the
    # ranges are the module's HU tables widened by the enhancement scaling, blur and noise (the aorta, about two
    # voxels across at this size, has no interior: its edges mix with the fat around it).
    for volumes in subjects.values():
        for image, label in volumes:
            where = label == organ
            interior = ndimage.binary_erosion(where)
            values = image[interior] if interior.sum() >= 5 else image[where]
            assert low <= float(np.median(values)) <= high


def test_window_and_textured_background(subjects: dict) -> None:
    image, label = subjects["tcia"][0]
    assert image.min() >= abdomen.WINDOW[0] and image.max() <= abdomen.WINDOW[1]
    inside = image[(label == BG) & (image > abdomen.WINDOW[0] + 1)]
    # Body background: fat, muscle, bowel, bone: a wide spread, not a flat colour.
    assert float(np.std(inside)) > 40
    assert float(np.mean(image[label == BG] <= abdomen.WINDOW[0] + 1)) > 0.2  # air and fat saturate


def test_domains_differ_in_slice_thickness_and_noise(subjects: dict) -> None:
    def z_roughness(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image, axis=2)).mean() / np.abs(np.diff(image, axis=0)).mean())

    btcv = np.mean([z_roughness(image) for image, _ in subjects["btcv"]])
    tcia = np.mean([z_roughness(image) for image, _ in subjects["tcia"]])
    assert btcv < 0.9 * tcia  # BTCV's thick slices are smoother along z than in-plane; TCIA's are not


def test_built_cached_loaded_and_named(tmp_path: Path) -> None:
    cfg = small(tmp_path, size=24)
    manifest = abdomen.build_abdomen(cfg)
    stamp = manifest.stat().st_mtime_ns
    assert abdomen.build_abdomen(cfg) == manifest and manifest.stat().st_mtime_ns == stamp
    cases = load_cases(cfg)
    assert sorted({c.domain for c in cases}) == ["btcv", "tcia"] and len(cases) == 4
    assert cfg.names_of_classes() == list(ABDOMEN_CLASS_NAMES)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"domains": ["btcv", "tcia"], "num_classes": 9}, None),
    ({"domains": ["btcv", "adult"], "num_classes": 9}, "unknown abdomen dataset domain"),
    ({"domains": ["btcv"], "num_classes": 4}, "num_classes"),
    ({"domains": [], "num_classes": 9}, "at least one domain"),
])
def test_spec_check(fields: dict[str, object], problem: str | None) -> None:
    problems = check_data(DataConfig(dataset="abdomen", **fields))
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_dualnorm_figure6_spec_validates_on_the_abdomen() -> None:
    from platform.spec import load_spec

    spec = Path(__file__).parents[2] / "search_spaces" / "paper" / "dualnorm_fig6.yaml"
    loaded = load_spec(spec, ["data.dataset=abdomen", "data.domains=[btcv,tcia]", "data.num_classes=9"])
    assert check_data(loaded.data) == [] and loaded.data.names_of_classes() == list(ABDOMEN_CLASS_NAMES)


def test_dataset_alone_gets_the_abdomen_domains_and_classes() -> None:
    cfg = DataConfig(dataset="abdomen")
    assert cfg.domains == ["btcv", "tcia"] and cfg.num_classes == 9 and check_data(cfg) == []
    assert DataConfig(dataset="abdomen", domains=["tcia"]).domains == ["tcia"]  # given fields win


def test_aorta_spans_the_organ_slices_only(subjects: dict) -> None:
    # The abdominal aorta ends at the diaphragm and at its bifurcation: no foreground slice holds the aorta alone,
    # so the 2D trainers' foreground slices are those the paper's out-of-mask slice clipping keeps.
    for volumes in subjects.values():
        for _, label in volumes:
            aorta_slices = np.flatnonzero((label == AORTA).any(axis=(0, 1)))
            organ_slices = np.flatnonzero(((label > 0) & (label != AORTA)).any(axis=(0, 1)))
            assert aorta_slices.size > 0
            assert organ_slices[0] <= aorta_slices[0] and aorta_slices[-1] <= organ_slices[-1]


@pytest.mark.parametrize(("organ", "low_ml", "high_ml"), [(GALLBLADDER, 15.0, 80.0), (PANCREAS, 25.0, 100.0)])
def test_small_organ_volumes_are_an_adults(subjects: dict, organ: int, low_ml: float, high_ml: float) -> None:
    # An adult's usual volumes (gallbladder 30-50 mL, pancreas 50-80 mL), widened for the per-subject jitter, the
    # smooth deformation and the voxel grid: the small organs are small as in the body, not a few voxels.
    voxel_ml = (abdomen.FIELD_OF_VIEW_MM / SIZE) ** 3 / 1000.0
    for volumes in subjects.values():
        for _, label in volumes:
            assert low_ml <= float((label == organ).sum()) * voxel_ml <= high_ml
