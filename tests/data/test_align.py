"""DualNorm Appendix A input alignment (region-wise and global) and its wiring into the data config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest

from platform.data.align import align_cases
from platform.data.case import Case
from platform.data.config import DataConfig
from platform.data.datasets import load_cases

SHAPE = (12, 12, 6)


def labels() -> np.ndarray:
    """Three classes: background, a block (class 1) and a slab (class 2)."""
    label = np.zeros(SHAPE, np.int64)
    label[2:10, 2:6] = 1
    label[2:10, 6:10] = 2
    return label


def synthetic(domain: str, means: list[float], count: int, seed: int, channels: int = 1) -> list[Case]:
    """``count`` cases whose class c has mean ``means[c]`` (times a per-case gain), noise std per class.

    Channel k is channel 0 scaled by k+1, so channels have different statistics.
    """
    rng = np.random.default_rng(seed)
    label = labels()
    cases = []
    for j in range(count):
        gain = rng.uniform(0.8, 1.2)
        stds = rng.uniform(0.05, 0.2, size=3)
        base = gain * np.asarray(means)[label] + stds[label] * rng.normal(size=SHAPE)
        image = np.stack([(k + 1) * base for k in range(channels)]).astype(np.float32)
        cases.append(Case(f"{domain}{j}", domain, image, label.copy(), None, None, np.eye(4)))
    return cases


def class_means(case: Case, classes: int = 3) -> np.ndarray:
    """(C, classes) mean intensity of every class, per channel."""
    return np.stack([[channel[case.label == c].mean() for c in range(classes)] for channel in case.image])


def class_stds(case: Case, classes: int = 3) -> np.ndarray:
    return np.stack([[channel[case.label == c].std() for c in range(classes)] for channel in case.image])


def domain_average(cases: list[Case], domain: str, statistic=class_means) -> np.ndarray:
    return np.mean([statistic(c) for c in cases if c.domain == domain], axis=0)


@pytest.fixture
def pool() -> list[Case]:
    # Interleaved, so order preservation is tested too; the source has an inverted contrast.
    ref = synthetic("ref", [0.0, 1.0, 3.0], 4, seed=1, channels=2)
    src = synthetic("src", [0.5, 2.0, 1.5], 3, seed=2, channels=2)
    return [ref[0], src[0], ref[1], src[1], ref[2], src[2], ref[3]]


def test_region_matches_the_reference_class_statistics(pool: list[Case]) -> None:
    aligned = align_cases(pool, "region", "ref", num_classes=3)
    for statistic in (class_means, class_stds):
        np.testing.assert_allclose(
            domain_average(aligned, "src", statistic), domain_average(pool, "ref", statistic), rtol=1e-4, atol=1e-5
        )
    # Eq 15: per-case class means keep their standardised position, rescaled to the reference's spread.
    spread = np.std([class_means(c) for c in aligned if c.domain == "src"], axis=0)
    ref_spread = np.std([class_means(c) for c in pool if c.domain == "ref"], axis=0)
    np.testing.assert_allclose(spread, ref_spread, rtol=1e-3, atol=1e-5)
    # Within a class, voxels are remapped affinely: their correlation with the original is 1.
    before, after = pool[1].image[0][pool[1].label == 2], aligned[1].image[0][pool[1].label == 2]
    assert np.corrcoef(before, after)[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_global_matches_the_image_mean_only_and_keeps_contrast(pool: list[Case]) -> None:
    aligned = align_cases(pool, "global", "ref", num_classes=3)

    def image_mean(case: Case) -> np.ndarray:
        return case.image.reshape(case.image.shape[0], -1).mean(axis=1)

    np.testing.assert_allclose(
        domain_average(aligned, "src", image_mean), domain_average(pool, "ref", image_mean), rtol=1e-4
    )
    gap = np.abs(domain_average(aligned, "src") - domain_average(pool, "ref"))
    assert gap.max() > 0.5  # class means stay apart: the inverted contrast is untouched

    def contrast(case: Case) -> np.ndarray:  # invariant under the affine map global mode applies
        means = class_means(case)
        return (means[:, 2] - means[:, 0]) / (means[:, 1] - means[:, 0])

    for before, after in zip(pool, aligned, strict=True):
        np.testing.assert_allclose(contrast(after), contrast(before), rtol=1e-4)


@pytest.mark.parametrize("mode", ["region", "global"])
def test_reference_cases_are_returned_unchanged_and_inputs_untouched(pool: list[Case], mode: str) -> None:
    copies = [case.image.copy() for case in pool]
    aligned = align_cases(pool, mode, "ref", num_classes=3)  # type: ignore[arg-type]
    assert [(c.domain, c.subject) for c in aligned] == [(c.domain, c.subject) for c in pool]
    for before, after, original in zip(pool, aligned, copies, strict=True):
        np.testing.assert_array_equal(before.image, original)
        assert after.label is before.label
        assert after.image.dtype == np.float32
        assert (after is before) == (before.domain == "ref")
        if before.domain == "src":
            assert not np.allclose(after.image, before.image)


def test_none_returns_the_cases_as_they_are(pool: list[Case]) -> None:
    aligned = align_cases(pool, "none", "anything", num_classes=3)
    assert all(a is b for a, b in zip(aligned, pool, strict=True))


def test_single_case_domain_takes_the_reference_mean() -> None:
    ref = synthetic("ref", [0.0, 1.0, 3.0], 3, seed=1)
    aligned = align_cases([*ref, *synthetic("src", [0.5, 2.0, 1.5], 1, seed=2)], "region", "ref", num_classes=3)
    src = aligned[-1]
    np.testing.assert_allclose(class_means(src), domain_average(ref, "ref"), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(class_stds(src), domain_average(ref, "ref", class_stds), rtol=1e-4)


def test_class_the_reference_lacks_is_left_unchanged() -> None:
    ref = synthetic("ref", [0.0, 1.0, 3.0], 2, seed=1)
    for case in ref:
        case.label[case.label == 2] = 1  # the reference has no class 2
    src = synthetic("src", [0.5, 2.0, 1.5], 2, seed=2)
    aligned = align_cases([*ref, *src], "region", "ref", num_classes=3)
    for before, after in zip(src, aligned[2:], strict=True):
        mask = before.label == 2
        np.testing.assert_array_equal(after.image[:, mask], before.image[:, mask])
        assert not np.allclose(after.image[:, before.label == 1], before.image[:, before.label == 1])


def test_constant_region_maps_to_the_new_mean() -> None:
    ref = synthetic("ref", [0.0, 1.0, 3.0], 2, seed=1)
    flat = synthetic("src", [0.5, 2.0, 1.5], 2, seed=2)
    for case in flat:
        case.image[:, case.label == 1] = 7.0  # sigma 0: floored, not divided by
    aligned = align_cases([*ref, *flat], "region", "ref", num_classes=3)
    for case in aligned[2:]:
        values = case.image[0][case.label == 1]
        assert np.isfinite(values).all() and np.ptp(values) < 1e-4
    assert np.mean([c.image[0][c.label == 1].mean() for c in aligned[2:]]) == pytest.approx(
        domain_average(ref, "ref")[0, 1], rel=1e-4
    )


@pytest.mark.parametrize(
    ("cases", "reference", "mode", "message"),
    [
        (synthetic("a", [0, 1, 2], 2, 0) + synthetic("b", [0, 1, 2], 2, 1), "ghost", "region",
         r"reference domain 'ghost' .*no cases \(domains present: \['a', 'b'\]\)"),
        (synthetic("a", [0, 1, 2], 2, 0), "b", "global", r"'b' .*no cases \(domains present: \['a'\]\)"),
        ([], "a", "region", r"'a' .*no cases \(domains present: \[\]\)"),
        (synthetic("a", [0, 1, 2], 2, 0), "a", "local", "unknown alignment mode 'local'"),
        (synthetic("a", [0, 1, 2], 1, 0) + synthetic("b", [0, 1, 2], 1, 1), "a", "region",
         r"case a/a0 has label values outside 0..1"),
    ],
)
def test_alignment_errors(cases: list[Case], reference: str, mode: str, message: str) -> None:
    num_classes = 2 if "outside" in message else 3
    with pytest.raises(ValueError, match=message):
        align_cases(cases, mode, reference, num_classes)  # type: ignore[arg-type]


# --- the data config and load_cases ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def wm_gm_gap(cases: list[Case]) -> float:
    """Summed |infant - adult| difference of the domain-average WM and GM mean intensities."""
    def means(domain: str) -> np.ndarray:
        return np.mean([class_means(c, 4)[0, 1:3] for c in cases if c.domain == domain], axis=0)

    return float(np.abs(means("infant") - means("adult")).sum())


def test_load_cases_with_region_alignment_closes_the_infant_adult_gap(cache: Path) -> None:
    base = {"size": 16, "subjects_per_domain": 3, "domains": ["infant", "adult"], "cache_dir": str(cache)}
    plain = load_cases(DataConfig(**base))
    aligned = load_cases(DataConfig(**base, align="region", align_reference="adult"))
    assert wm_gm_gap(plain) > 0.3
    assert wm_gm_gap(aligned) < 0.01 * wm_gm_gap(plain)
    for before, after in zip(plain, aligned, strict=True):
        if before.domain == "adult":
            np.testing.assert_array_equal(after.image, before.image)
        np.testing.assert_array_equal(after.label, before.label)
    # Default reference: the first of data.domains (infant), so the infant cases stay as loaded.
    default = load_cases(DataConfig(**base, align="global"))
    for before, after in zip(plain, default, strict=True):
        assert np.array_equal(after.image, before.image) == (before.domain == "infant")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"align_reference": "ct"}, r"align_reference 'ct' is not among data.domains \['infant', 'adult'\]"),
        ({"align": "local"}, "Input should be 'none', 'global' or 'region'"),
    ],
)
def test_data_config_rejects_bad_alignment(fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        DataConfig(**fields)


def test_align_reference_is_free_when_domains_is_empty() -> None:
    cfg = DataConfig(dataset="manifest", manifest="m.csv", domains=[], align="region", align_reference="x")
    assert cfg.align_reference == "x"  # checked against the manifest's domains when the cases are loaded
