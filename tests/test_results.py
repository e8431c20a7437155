"""The results store: appends are visible at once, the last write per key wins, compaction keeps it."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import fsspec.implementations.local
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from platform.results import ResultsStore, read_table
from platform.storage import check_writable, copy_to_storage, experiment_uri


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


# Trials (id -> writer token, None: no trials row) in a table, what Tune knows, this experiment's drivers, and the
# trials a compaction keeps: only a trial of one of the experiment's own drivers that Tune does not know goes.
COMPACTIONS = [
    ("an orphan of an earlier driver goes", {"a": "w1", "orphan": "w1"}, {"a"}, {"w1", "w2"}, ["a"]),
    ("an orphan of this driver goes", {"a": "w2", "orphan": "w2"}, {"a"}, {"w1", "w2"}, ["a"]),
    ("another writer's trials stay", {"a": "w2", "theirs": "x9"}, {"a"}, {"w1", "w2"}, ["a", "theirs"]),
    ("a trial written before writers were recorded stays", {"a": "w2", "old": None}, {"a"}, {"w2"}, ["a", "old"]),
    ("epochs without a trials row stay", {"a": "w2", "lone": "-"}, {"a"}, {"w2"}, ["a", "lone"]),
    ("nothing known, nothing own: all stay", {"p": "x1", "q": "x2"}, set(), {"w1"}, ["p", "q"]),
]


@pytest.mark.parametrize(("case", "writers_of", "known", "lineage", "kept"), COMPACTIONS,
                         ids=[c[0] for c in COMPACTIONS])
def test_compaction_keeps_every_row_it_may_not_replace(tmp_path: Path, case: str, writers_of: dict, known: set,
                                                      lineage: set, kept: list) -> None:
    location = str(tmp_path / "exp")
    for trial, writer in writers_of.items():
        store = ResultsStore(location, writer=writer if writer not in (None, "-") else None)
        if writer != "-":
            store.append("trials", [{"trial_id": trial, "status": "TERMINATED"}])
        store.append("epochs", [{"trial_id": trial, "epoch": e} for e in (1, 2)])
    mine = ResultsStore(location, writer="w2")
    dropped = mine.replaceable_trials(known, lineage)
    for table in ("trials", "epochs"):
        mine.compact(table, drop_trials=dropped)
    epochs = mine.read("epochs")
    assert sorted(set(epochs.column("trial_id").to_pylist())) == kept
    assert epochs.num_rows == 2 * len(kept), "every epoch of a kept trial"
    assert sorted(mine.read("trials").column("trial_id").to_pylist()) == [t for t in kept if writers_of[t] != "-"]
    assert len(list((tmp_path / "exp" / "tables" / "epochs").glob("*.parquet"))) == 1


class _FullDisk(fsspec.implementations.local.LocalFileSystem):
    """A local filesystem that raises ENOSPC on every write while ``full`` is set (then recovers)."""

    full = False

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if _FullDisk.full and ("w" in mode or "a" in mode):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return super()._open(path, mode, **kwargs)


# A row of each table, the i-th (distinct keys).
ROW_OF = {
    "trials": lambda i: {"trial_id": f"t{i}", "status": "RUNNING"},
    "epochs": lambda i: {"trial_id": "t", "epoch": i + 1, "val/dice": 0.5},
    "cases": lambda i: {"trial_id": "t", "epoch": 1, "split": "val", "checkpoint": "best", "domain": "d",
                        "subject": f"s{i}", "dice": 0.5},
    "artifacts": lambda i: {"trial_id": "t", "path": f"a{i}.png"},
}
# Deferred rows per table when the disk fills: what a full disk must not lose.
FULL_DISK = [
    ("one table", {"epochs": 3}),
    ("every table", {"trials": 2, "epochs": 5, "cases": 4, "artifacts": 1}),
]


@pytest.mark.parametrize(("case", "counts"), FULL_DISK, ids=[c[0] for c in FULL_DISK])
def test_a_failed_flush_keeps_its_rows_until_they_are_written(tmp_path: Path, case: str, counts: dict) -> None:
    store = ResultsStore(str(tmp_path / "exp"))
    store.fs = pafs.PyFileSystem(pafs.FSSpecHandler(_FullDisk(skip_instance_cache=True)))
    for table, count in counts.items():
        store.append(table, [ROW_OF[table](i) for i in range(count)], defer=True)
    waiting = store.pending_rows()
    _FullDisk.full = True
    try:
        for _ in range(2):  # the write fails, and fails again: nothing is dropped in between
            with pytest.raises(OSError) as info:
                store.flush()
            assert info.value.errno == errno.ENOSPC
            assert store.pending_rows() == waiting and store.pending_age() > 0
        assert not any((tmp_path / "exp").rglob("*.parquet")), "no part cut short is left behind"
    finally:
        _FullDisk.full = False
    store.flush()  # space freed
    assert store.pending_rows() == 0 and store.pending_age() == 0
    for table, count in counts.items():
        assert store.read(table).num_rows == count, table


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


# --- one declared type per column, and tables with bad parts still read ------------------------------------------


def test_declared_types_make_every_part_agree(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    declared = {"trials": {"config/d_dropout": pa.float64(), "config/blocks": pa.string()}}
    store = ResultsStore(str(tmp_path / "exp"), declared=declared)
    store.append("trials", [{"trial_id": "a", "config/d_dropout": 0.1, "config/blocks": "[1]", "seed": 0,
                             "best/val/dice": 1}])
    store.append("trials", [{"trial_id": "b", "config/d_dropout": "0.2", "config/blocks": "[]", "seed": 1.0,
                             "best/val/dice": 0.5}])
    store.append("epochs", [{"trial_id": "a", "epoch": 1.0, "val/dice": 1, "time/epoch_s": 2}])
    for table in ("trials", "epochs"):
        schemas = {str(pq.read_schema(p)) for p in (tmp_path / "exp" / "tables" / table).glob("*.parquet")}
        assert len(schemas) == 1 or table == "epochs", schemas
    trials = store.read("trials")
    assert trials.schema.field("config/d_dropout").type == pa.float64()
    assert trials.schema.field("seed").type == pa.int64() and trials.schema.field("best/val/dice").type == pa.float64()
    assert trials.column("config/d_dropout").to_pylist() == [0.1, 0.2]
    assert store.read("epochs").schema.field("epoch").type == pa.int64()
    store.compact("trials")
    assert store.read("trials").num_rows == 2


def test_a_value_that_does_not_fit_its_declared_type_is_kept_as_text(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa

    store = ResultsStore(str(tmp_path / "exp"), declared={"trials": {"config/x": pa.float64()}})
    store.append("trials", [{"trial_id": "a", "config/x": "not a number"}])
    row = store.read("trials").to_pylist()[0]
    assert row["config/x"] is None and row["config/x#text"] == "not a number"
    assert "kept as text" in capsys.readouterr().err


def _write_part(directory: Path, name: str, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), directory / name)


# (what the older parts hold, the values read back, the type read back)
MIXED_PARTS = [
    ("double and numeric text", [[0.1], ["0.2"]], [0.1, 0.2], "double"),
    ("double and words", [[0.1], ["dcgan"]], ["0.1", "dcgan"], "string"),
    ("int and double", [[1], [2.5]], [1.0, 2.5], "double"),
    ("bool and text", [[True], ["x"]], ["true", "x"], "string"),
    ("int and text, three parts", [[1], ["2"], [3]], [1.0, 2.0, 3.0], "double"),
]


@pytest.mark.parametrize(("case", "parts", "expected", "kind"), MIXED_PARTS, ids=[c[0] for c in MIXED_PARTS])
def test_a_table_with_mixed_parts_still_reads_and_compacts(tmp_path: Path, case: str, parts: list, expected: list,
                                                           kind: str) -> None:
    directory = tmp_path / "exp" / "tables" / "trials"
    for index, values in enumerate(parts):
        _write_part(directory, f"part-{index}.parquet", {"trial_id": [f"t{index}"], "config/x": values,
                                                         "_seq": [index]})
    store = ResultsStore(str(tmp_path / "exp"))
    table = store.read("trials")
    assert str(table.schema.field("config/x").type) == kind
    assert table.column("config/x").to_pylist() == expected
    store.compact("trials")  # the end of a sweep: one file, nothing lost
    assert read_table(str(tmp_path / "exp"), "trials").column("config/x").to_pylist() == expected
    assert len(list(directory.glob("*.parquet"))) == 1


BAD_PARTS = [
    ("garbage bytes", b"this is not parquet at all"),
    ("empty file", b""),
    ("a truncated part", None),  # the first half of a real part
]


@pytest.mark.parametrize(("case", "content"), BAD_PARTS, ids=[c[0] for c in BAD_PARTS])
def test_an_unreadable_part_is_named_and_the_rest_reads(tmp_path: Path, case: str, content: bytes | None) -> None:
    store = ResultsStore(str(tmp_path / "exp"))
    store.append("trials", [{"trial_id": "a", "status": "TERMINATED"}])
    store.append("trials", [{"trial_id": "b", "status": "TERMINATED"}])
    directory = tmp_path / "exp" / "tables" / "trials"
    if content is None:
        whole = sorted(directory.glob("*.parquet"))[0].read_bytes()
        content = whole[: len(whole) // 2]
    (directory / "part-0-bad.parquet").write_bytes(content)
    assert sorted(store.read("trials").column("trial_id").to_pylist()) == ["a", "b"]
    assert [line.split(":")[0] for line in store.unreadable()] == [str(directory / "part-0-bad.parquet")]
    store.compact("trials")
    assert (directory / "part-0-bad.parquet").exists(), "a part that cannot be read is never deleted"
    assert sorted(store.read("trials").column("trial_id").to_pylist()) == ["a", "b"]


# --- the sweep's writer on a failing storage (platform.tuning.ResultsCallback) ------------------------------------

# (must the rows be written now, seconds the storage has failed for) -> whether the sweep stops (StorageFailed).
FAILING_STORE = [
    ("mid-sweep, just failed", False, 0.0, False),
    ("mid-sweep, failing past the retry time", False, 1e6, True),
    ("before Tune saves its state", True, 0.0, True),
]


@pytest.mark.parametrize(("case", "must", "failing_s", "stops"), FAILING_STORE, ids=[c[0] for c in FAILING_STORE])
def test_the_sweep_writer_waits_for_a_failing_storage_then_stops_in_one_paragraph(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, must: bool, failing_s: float,
        stops: bool) -> None:
    from platform.spec import load_spec
    from platform.sweep import _storage_failure
    from platform.tuning import ResultsCallback, StorageFailed
    from tests.test_user_input import spec_with, write

    callback = ResultsCallback(load_spec(write(tmp_path, spec_with())), str(tmp_path / "exp"))
    callback.store.fs = pafs.PyFileSystem(pafs.FSSpecHandler(_FullDisk(skip_instance_cache=True)))
    callback.store.append("epochs", [{"trial_id": "t", "epoch": 1}], defer=True)
    _FullDisk.full = True
    try:
        callback._flush(must=False)  # the first failure: a warning, the rows wait
        callback._failing_since -= failing_s
        if stops:
            with pytest.raises(StorageFailed) as info:
                callback._flush(must=must)
            message = _storage_failure(RuntimeError("Tune's wrapper")) or ""
            assert message == "", "only a storage failure is named"
            wrapped = RuntimeError("Tune's wrapper")
            wrapped.__cause__ = info.value
            assert "no space left on the device" in (_storage_failure(wrapped) or "")
        else:
            callback._flush(must=must)
    finally:
        _FullDisk.full = False
    assert callback.store.pending_rows() == 1, "the rows wait in every case"
    warning = capsys.readouterr().err
    assert warning.count("warning: the results storage cannot be written (no space left on the device") == 1
    callback._flush(must=True)  # space freed
    assert callback.store.pending_rows() == 0 and callback.store_error is None
    assert callback.store.read("epochs").num_rows == 1
