"""The explorer under faults: a writer merging parts under its reads, bad parts, and artifacts that try to leave
their experiment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dashboards.app import Explorer, create_app
from dashboards.bench import build_experiment
from dashboards.tables import Catalog, ExplorerError
from tests.conftest import REPO_ROOT

WRITER = """
import sys, time
import platform.results as results
results.MERGE_EVERY, results.MERGED_LIMIT = 2, 4  # a merge (parts deleted) every other append
store = results.ResultsStore(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
index = 0
while time.monotonic() < deadline:
    store.append("trials", [{"trial_id": f"w{index:05d}", "status": "RUNNING", "config/lambda": 0.5}])
    store.append("epochs", [{"trial_id": f"w{index:05d}", "epoch": 1, "val/dice": 0.5}])
    index += 1
"""



def _picture(artifacts: Any) -> Any:
    """The first listed picture (the served kind; a case's volumes are read by the server, never served)."""
    return artifacts[artifacts["kind"] != "volume"].iloc[0]

def test_reloads_never_fail_while_a_fast_writer_merges(tmp_path: Path) -> None:
    location = build_experiment(tmp_path, "live", trials=6, epochs=2, seeds=1, images=0)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, location, "60"], cwd=REPO_ROOT)
    try:
        catalog = Catalog(str(tmp_path))
        time.sleep(1.0)  # the writer is appending
        for _ in range(100):
            experiment = catalog.load("live")  # schemas and tables both under the retry
            assert len(experiment.trials) >= 6
            catalog._cache.clear()  # every reload reads the tables again, as a new version would
        assert writer.poll() is None, "the writer was still appending during every reload"
    finally:
        writer.kill()
        writer.wait()


BAD_PARTS = {
    "garbage": lambda part: part.write_bytes(b"garbage, not parquet"),
    "empty": lambda part: part.write_bytes(b""),
    "conflicting types": None,  # a real part whose config/lambda is text
}


@pytest.mark.parametrize("case", sorted(BAD_PARTS))
def test_one_bad_part_leaves_the_rest_viewable_with_a_notice(tmp_path: Path, case: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    location = build_experiment(tmp_path, "hurt", trials=6, epochs=2, seeds=1, images=1)
    part = Path(location) / "tables" / "trials" / "part-0-bad.parquet"
    if BAD_PARTS[case] is None:
        pq.write_table(pa.table({"trial_id": ["zz"], "status": ["TERMINATED"], "config/lambda": ["lots"],
                                 "_seq": [0]}), part)
    else:
        BAD_PARTS[case](part)
    explorer = Explorer(str(tmp_path))
    version, _, message = explorer.refresh(0, "hurt", None)
    assert version is not None
    experiment = explorer.experiment(version)
    assert len(experiment.trials) >= 6
    if case == "conflicting types":
        assert message == "" and "lots" in set(experiment.trials["config/lambda"])  # unified as text: all rows
    else:
        assert "tables/trials/part-0-bad.parquet" in message and str(tmp_path) not in message, message
        assert "skipped 1 unreadable part" in message
    server = create_app(explorer).server.test_client()
    listed = _picture(experiment.artifacts)
    response = server.get(f"/artifacts/hurt/{listed['trial_id']}/{listed['file']}")
    assert response.status_code == 200 and response.data.startswith(b"\x89PNG")
    assert server.get("/").status_code == 200


def _links(tmp_path: Path, location: str, target: Path) -> dict[str, object]:
    """Ways a listed artifact's name can lead to bytes that are not its own."""
    inside_root_elsewhere = tmp_path / "root" / "other" / "secret.png"
    inside_root_elsewhere.parent.mkdir(parents=True, exist_ok=True)
    inside_root_elsewhere.write_bytes(b"\x89PNG another experiment's file")
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG outside")
    return {
        "symlink outside the storage root": lambda: os.symlink(outside, target),
        "symlink to another experiment under the root": lambda: os.symlink(inside_root_elsewhere, target),
        "hard link to a file outside": lambda: os.link(outside, target),
        "hard link to another experiment's file": lambda: os.link(inside_root_elsewhere, target),
        "a directory": lambda: target.mkdir(),
        "symlink to the experiment directory": lambda: os.symlink(location, target),
    }


LINK_CASES = ["symlink outside the storage root", "symlink to another experiment under the root",
              "hard link to a file outside", "hard link to another experiment's file", "a directory",
              "symlink to the experiment directory"]


@pytest.mark.parametrize("case", LINK_CASES)
def test_artifacts_are_confined_to_their_experiment(tmp_path: Path, case: str) -> None:
    location = build_experiment(tmp_path / "root", "exp", trials=3, epochs=1, seeds=1, images=1)
    catalog = Catalog(str(tmp_path / "root"))
    listed = _picture(catalog.load("exp").artifacts)
    target = Path(location) / "artifacts" / listed["trial_id"] / listed["file"]
    assert catalog.artifact_bytes("exp", listed["trial_id"], listed["file"]).startswith(b"\x89PNG")
    target.unlink()
    _links(tmp_path, location, target)[case]()
    with pytest.raises(ExplorerError) as info:
        catalog.artifact_bytes("exp", listed["trial_id"], listed["file"])
    assert str(tmp_path) not in str(info.value)
    response = create_app(Explorer(str(tmp_path / "root"))).server.test_client().get(
        f"/artifacts/exp/{listed['trial_id']}/{listed['file']}")
    assert response.status_code == 404 and response.data == b"not found"


def test_a_symlink_inside_the_experiment_is_still_served(tmp_path: Path) -> None:
    location = build_experiment(tmp_path / "root", "exp", trials=3, epochs=1, seeds=1, images=1)
    catalog = Catalog(str(tmp_path / "root"))
    listed = _picture(catalog.load("exp").artifacts)
    target = Path(location) / "artifacts" / listed["trial_id"] / listed["file"]
    moved = Path(location) / "artifacts" / "moved.png"
    target.rename(moved)
    os.symlink(moved, target)
    assert catalog.artifact_bytes("exp", listed["trial_id"], listed["file"]).startswith(b"\x89PNG")
