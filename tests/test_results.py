"""The results store: appends are visible at once, the last write per key wins, compaction keeps it."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest

from platform.results import ResultsStore, check_writable, copy_to_storage, experiment_uri, read_table


def test_latest_write_per_key_and_new_columns(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "exp"))
    store.append("trials", [{"trial_id": "a", "status": "RUNNING", "seed": 0},
                            {"trial_id": "b", "status": "RUNNING", "seed": 1}])
    store.append("trials", [{"trial_id": "a", "status": "TERMINATED", "seed": 0, "best/val/dice": 0.8}])
    rows = {r["trial_id"]: r for r in store.read("trials").to_pylist()}
    assert rows["a"]["status"] == "TERMINATED" and rows["a"]["best/val/dice"] == 0.8
    assert rows["b"]["status"] == "RUNNING" and rows["b"]["best/val/dice"] is None
    assert store.read("trials", latest=False).num_rows == 3


def test_epochs_rewritten_after_resume_are_not_duplicated(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "exp"))
    store.append("epochs", [{"trial_id": "a", "epoch": e, "val/dice": 0.1 * e} for e in (1, 2, 3)])
    store.append("epochs", [{"trial_id": "a", "epoch": e, "val/dice": 0.2 * e} for e in (3, 4)])  # re-run of 3
    store.compact("epochs")
    table = store.read("epochs")
    assert table.column("epoch").to_pylist() == [1, 2, 3, 4]
    assert table.column("val/dice").to_pylist()[2:] == pytest.approx([0.6, 0.8])
    parts = list((tmp_path / "exp" / "tables" / "epochs").glob("*.parquet"))
    assert len(parts) == 1
    # Readable by plain pyarrow.dataset, as the dashboard reads it.
    assert ds.dataset(str(parts[0])).to_table().num_rows == 4


def test_types_widen_and_filter(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "exp"))
    store.append("epochs", [{"trial_id": "a", "epoch": 1, "x": 1}])
    store.append("epochs", [{"trial_id": "b", "epoch": 1, "x": 2.5}])
    assert sorted(store.read("epochs").column("x").to_pylist()) == [1.0, 2.5]
    assert store.read("epochs", where=("trial_id", "b")).column("x").to_pylist() == [2.5]
    assert read_table(str(tmp_path / "exp"), "artifacts").num_rows == 0


def test_storage_helpers(tmp_path: Path) -> None:
    check_writable(str(tmp_path / "new" / "dir"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        check_writable(str(blocker / "below"))
    source = tmp_path / "img.png"
    source.write_bytes(b"png")
    stored = copy_to_storage(source, str(tmp_path / "exp" / "artifacts" / "t1"))
    assert Path(stored).read_bytes() == b"png"
    assert experiment_uri("s3://bucket/runs", "x") == "s3://bucket/runs/x"
    assert experiment_uri(str(tmp_path), "x") == str(tmp_path / "x")


def test_compact_drops_trials_tune_does_not_know(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "exp"))
    store.append("epochs", [{"trial_id": t, "epoch": 1} for t in ("a", "orphan")])
    store.compact("epochs", keep_trials={"a"})
    assert store.read("epochs").column("trial_id").to_pylist() == ["a"]


def test_many_appends_are_merged_and_rewrites_still_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platform.results as results

    monkeypatch.setattr(results, "MERGE_EVERY", 4)
    monkeypatch.setattr(results, "MERGED_LIMIT", 3)
    store = ResultsStore(str(tmp_path / "exp"))
    for epoch in range(1, 31):
        store.append("epochs", [{"trial_id": "a", "epoch": epoch, "val/dice": 0.01 * epoch}])
    store.append("epochs", [{"trial_id": "a", "epoch": 5, "val/dice": 0.99}])  # a re-run epoch written later
    parts = list((tmp_path / "exp" / "tables" / "epochs").glob("*.parquet"))
    assert len(parts) <= 3 + 4  # merged files below the limit plus the newest small parts, never one per row
    table = store.read("epochs")
    assert table.column("epoch").to_pylist() == list(range(1, 31))
    assert table.column("val/dice").to_pylist()[4] == pytest.approx(0.99)
