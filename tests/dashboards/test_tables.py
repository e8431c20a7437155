"""The explorer's reader: experiments under a root, per-version cache, projection, and no path outside the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboards.bench import build_experiment
from dashboards.tables import Catalog, ExplorerError, Objective
from platform.results import ResultsStore


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("storage")
    build_experiment(root, "synthetic", trials=30, epochs=4, seeds=3, images=2)
    (root / "not-an-experiment").mkdir()  # a directory without tables is not listed
    (root / ".hidden" / "tables" / "trials").mkdir(parents=True)
    return root


def test_names_lists_only_experiments_with_tables(storage: Path) -> None:
    assert Catalog(str(storage)).names() == ["synthetic"]


def test_missing_storage_root_lists_nothing(tmp_path: Path) -> None:
    assert Catalog(str(tmp_path / "absent")).names() == []


@pytest.mark.parametrize("name", ["../synthetic", "/etc", ".hidden", "not-an-experiment", "synthetic/../..", "",
                                  None, "synthetic\x00"])
def test_a_name_outside_the_listing_is_refused(storage: Path, name: str | None) -> None:
    with pytest.raises(ExplorerError):
        Catalog(str(storage)).check_name(name)


def test_load_reads_trials_params_and_objectives(storage: Path) -> None:
    experiment = Catalog(str(storage)).load("synthetic")
    assert len(experiment.trials) == 30
    assert experiment.params == ["config/disc_arch", "config/lambda", "config/n_steps"]
    assert experiment.categorical == {"config/disc_arch"}
    assert experiment.objectives == [Objective("val/dice", "max"), Objective("val/jsd_norm", "min")]
    assert "config_json" not in experiment.trials  # large text is read on demand only
    assert experiment.trials.groupby("config_key").size().max() == 3  # seeds share a configuration
    assert experiment.mode_of("last/val/jsd_norm") == "min" and experiment.mode_of("last/val/hd95/adult") == "min"
    assert experiment.score_columns()[:2] == ["best/val/dice", "last/val/dice"]


def test_cache_is_kept_until_a_table_changes(tmp_path: Path) -> None:
    location = build_experiment(tmp_path, "live", trials=6, epochs=2, seeds=1, images=0)
    catalog = Catalog(str(tmp_path))
    first = catalog.load("live")
    assert catalog.load("live") is first
    ResultsStore(location).append("trials", [{"trial_id": "t999999", "status": "RUNNING"}])
    second = catalog.load("live")
    assert second is not first and len(second.trials) == 7


def test_epochs_are_read_for_chosen_trials_and_columns_only(storage: Path) -> None:
    epochs = Catalog(str(storage)).epochs("synthetic", ["t000001", "t000002"], ["val/dice"])
    assert set(epochs.columns) == {"trial_id", "epoch", "val/dice"}
    assert sorted(epochs["trial_id"].unique()) == ["t000001", "t000002"] and len(epochs) == 8


def test_objectives_fall_back_to_best_columns_for_older_tables(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "old"))
    store.append("trials", [{"trial_id": "a", "status": "TERMINATED", "best/val/dice": 0.5, "config/lambda": 0.1}])
    assert Catalog(str(tmp_path)).load("old").objectives == [Objective("val/dice", "max")]


def test_artifacts_are_served_only_when_listed_and_inside_the_experiment(storage: Path) -> None:
    catalog = Catalog(str(storage))
    experiment = catalog.load("synthetic")
    listed = experiment.artifacts[experiment.artifacts["kind"] != "volume"].iloc[0]  # a picture
    assert catalog.artifact_bytes("synthetic", listed["trial_id"], listed["file"]).startswith(b"\x89PNG")
    for trial_id, file_name in [(listed["trial_id"], "../../../../etc/passwd"), ("..", listed["file"]),
                                (listed["trial_id"], "unlisted.png"), ("t000029", listed["file"])]:
        with pytest.raises(ExplorerError):
            catalog.artifact_bytes("synthetic", trial_id, file_name)


def test_a_listed_artifact_that_links_outside_the_root_is_refused(tmp_path: Path) -> None:
    location = build_experiment(tmp_path / "root", "linked", trials=3, epochs=1, seeds=1, images=1)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    listed = Catalog(str(tmp_path / "root")).load("linked").artifacts.iloc[0]
    target = Path(location) / "artifacts" / listed["trial_id"] / listed["file"]
    target.unlink()
    os.symlink(secret, target)
    with pytest.raises(ExplorerError, match="no artifact") as info:
        Catalog(str(tmp_path / "root")).artifact_bytes("linked", listed["trial_id"], listed["file"])
    assert str(tmp_path) not in str(info.value)  # messages show no server paths


def test_a_filesystem_uri_reads_like_a_path(storage: Path) -> None:
    catalog = Catalog(f"file://{storage}")  # s3:// and gs:// go through the same pyarrow filesystem calls
    assert catalog.names() == ["synthetic"]
    experiment = catalog.load("synthetic")
    assert len(experiment.trials) == 30 and experiment.location.startswith("file://")
    listed = experiment.artifacts[experiment.artifacts["kind"] != "volume"].iloc[0]  # a picture
    assert catalog.artifact_bytes("synthetic", listed["trial_id"], listed["file"]).startswith(b"\x89PNG")
