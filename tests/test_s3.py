"""``s3://`` storage end to end, against a local S3 server (moto's server mode, bound to 127.0.0.1, started and
stopped here): the endpoint travels in the URI's query, as pyarrow reads it, and the same URI serves the sweep,
``--resume`` after a SIGKILL, ``read_table`` and the explorer."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from platform.localray import reap_abandoned
from platform.results import ResultsStore, read_table
from platform.storage import experiment_uri, join
from tests.conftest import REPO_ROOT, TINY_ADVNORM

moto_server = pytest.importorskip("moto.server", reason='the S3 tests need moto: pip install "moto[server]"')

BUCKET = "segsweep-test"
# Dummy credentials: moto accepts any. No profile, config file or instance metadata is consulted.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@pytest.fixture(scope="module")
def s3_storage() -> Iterator[str]:
    """``s3://BUCKET/runs?endpoint_override=127.0.0.1:PORT&scheme=http`` on a fresh local S3 server, with the
    credentials in this process's environment (the sweeps started here inherit them)."""
    import pyarrow.fs as pafs

    werkzeug = logging.getLogger("werkzeug")  # one line per request otherwise, in every failure report
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("AWS_PROFILE", raising=False)
            patch.delenv("AWS_SESSION_TOKEN", raising=False)
            patch.delenv("AWS_ENDPOINT_URL", raising=False)
            for key, value in AWS_ENV.items():
                patch.setenv(key, value)
            fs = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", allow_bucket_creation=True)
            fs.create_dir(BUCKET)
            try:  # pyarrow uploads in parts and checks the completion's answer, which moto 5.2.1 got wrong
                with fs.open_output_stream(f"{BUCKET}/probe") as stream:
                    stream.write(b"ok")
            except OSError as exc:
                pytest.fail(f'moto cannot complete an upload from pyarrow ({exc}): pip install "moto[server]>=5.2.5"')
            yield f"s3://{BUCKET}/runs?endpoint_override={host}:{port}&scheme=http"
    finally:
        server.stop()
        werkzeug.setLevel(level)


def test_a_uri_with_a_query_joins_before_the_query() -> None:
    uri = "s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http"
    assert experiment_uri(uri, "exp") == "s3://bucket/runs/exp?endpoint_override=127.0.0.1:9000&scheme=http"
    assert join(experiment_uri(uri, "exp"), "artifacts", "t1") == (
        "s3://bucket/runs/exp/artifacts/t1?endpoint_override=127.0.0.1:9000&scheme=http")
    assert experiment_uri("s3://bucket/runs/", "exp") == "s3://bucket/runs/exp"
    assert experiment_uri("s3://bucket", "exp") == "s3://bucket/exp"


def test_a_table_round_trips_through_the_s3_endpoint(s3_storage: str) -> None:
    experiment = experiment_uri(s3_storage, "roundtrip")
    store = ResultsStore(experiment)
    store.append("trials", [{"trial_id": "t1", "status": "RUNNING"}])
    store.append("trials", [{"trial_id": "t1", "status": "TERMINATED", "best/val/dice": 0.5}])
    store.append("epochs", [{"trial_id": "t1", "epoch": e, "val/dice": e / 10} for e in (1, 2)])
    assert store.root == f"{BUCKET}/runs/roundtrip"
    (trial,) = read_table(experiment, "trials").to_pylist()
    assert trial["status"] == "TERMINATED" and trial["best/val/dice"] == 0.5
    assert [row["epoch"] for row in read_table(experiment, "epochs").to_pylist()] == [1, 2]


@pytest.mark.slow
def test_sweep_on_s3_then_sigkill_resume_and_read_back(tmp_path: Path, cache_dir: Path, s3_storage: str) -> None:
    from dashboards.app import Explorer

    ray_tmp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # short: Ray's socket paths have a length limit
    epochs = 3
    spec = {"name": "on-s3", "trainer": "advnorm",
            "data": {"domains": ["infant", "adult"], "subjects_per_domain": 3, "size": 24, "patch_size": 16,
                     "batch_size": 2, "patches_per_epoch": 4},
            "fixed": dict(TINY_ADVNORM, epochs=epochs), "search": {"lambda": {"grid": [0.1, 1.0, 5.0]}},
            "searcher": {"sampler": "grid"}, "budget": {"concurrent": 2}, "scheduler": {"type": "none"},
            "resources": {"cpus_per_worker": 1}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "SEGSWEEP_CACHE": str(cache_dir), "RAY_DISABLE_USAGE_STATS": "1"}
    command = [sys.executable, "-m", "platform.sweep", str(path), "--storage", s3_storage]
    experiment = experiment_uri(s3_storage, "on-s3")
    log = tmp_path / "first-run.log"
    try:
        with log.open("w") as sink:
            sweep = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and sweep.poll() is None:  # some epochs written, trials left
                time.sleep(0.25)  # the window is the last trial's few seconds on a quiet machine
                try:
                    if read_table(experiment, "epochs").num_rows >= 2:
                        break
                except Exception:  # not written yet, or a part mid-rename
                    continue
            assert sweep.poll() is None, "the sweep ended before it could be interrupted:\n" + log.read_text()[-4000:]
        finally:
            with contextlib.suppress(ProcessLookupError):  # the supervisor and the driver, no chance to clean up
                os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
        before = read_table(experiment, "trials").to_pylist()
        assert sum(t["status"] == "TERMINATED" for t in before) < 3, "nothing was left to resume"

        resumed = subprocess.run([*command, "--resume"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                 timeout=600)
        output = resumed.stdout + resumed.stderr
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
        assert "Traceback" not in output, resumed.stderr[-4000:]
    finally:
        reap_abandoned(ray_tmp / "ray", grace_s=5)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    trials = read_table(experiment, "trials").to_pylist()
    assert len(trials) == 3 and len({t["trial_id"] for t in trials}) == 3
    assert {t["status"] for t in trials} == {"TERMINATED"}
    assert sorted(t["config/lambda"] for t in trials) == [0.1, 1.0, 5.0]
    rows = read_table(experiment, "epochs").to_pylist()
    for trial in trials:
        numbers = sorted(row["epoch"] for row in rows if row["trial_id"] == trial["trial_id"])
        assert numbers == list(range(1, epochs + 1)), (trial["trial_id"], numbers)

    explorer = Explorer(s3_storage)
    assert "on-s3" in explorer.catalog.names()
    loaded = explorer.catalog.load("on-s3")
    assert sorted(loaded.trials["trial_id"]) == sorted(t["trial_id"] for t in trials)
    assert set(loaded.trials["status"]) == {"TERMINATED"}
    pictures = loaded.artifacts[loaded.artifacts["file"].str.endswith(".png")]  # saved to the bucket too
    assert len(pictures) and all(path.startswith(f"s3://{BUCKET}/runs/on-s3/artifacts/") for path in pictures["path"])
    picture = pictures.iloc[0]
    assert explorer.catalog.artifact_bytes("on-s3", picture["trial_id"], picture["file"]).startswith(b"\x89PNG")
