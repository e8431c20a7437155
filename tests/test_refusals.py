"""Mistakes and hostile inputs around the sweep, the explorer, the report and reproduce: each is one paragraph and
exit code 2 (or a 404), never a traceback, and nothing waits without end: an unreachable ``--address``, mistyped
environment variables, ``--out`` where nothing can be written, a port in use, paths the explorer does not serve.
Also the local Ray's start-up limit, which follows the machine, and reproduce's tables of sweeps that failed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform.outputs import OutputError, write_file, write_files
from tests.conftest import REPO_ROOT

SPEC = {"name": "refused", "trainer": "fault", "objective": {"metric": "val/dice", "mode": "max"},
        "data": {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8,
                 "batch_size": 1, "patches_per_epoch": 1}, "fixed": {"epochs": 1}}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "storage": str(tmp_path / "runs")}))
    return path


# case -> (extra arguments, environment, words of the message)
SWEEP_CASES = {
    "an --address where nothing listens": (["--address", "127.0.0.1:1", "--dry-run"], {},
                                           ["could not join the Ray cluster at '127.0.0.1:1'", "nothing answers"]),
    "a ray:// address where nothing listens": (["--address", "ray://127.0.0.1:1", "--dry-run"], {},
                                               ["could not join", "nothing answers"]),
    "SEGSWEEP_STORAGE_TIMEOUT_S=abc": (["--dry-run"], {"SEGSWEEP_STORAGE_TIMEOUT_S": "abc"},
                                       ["SEGSWEEP_STORAGE_TIMEOUT_S='abc'", "positive number"]),
    "SEGSWEEP_PLUGINS naming no module": (["--dry-run"], {"SEGSWEEP_PLUGINS": "tests.fault_trainer,no.such.module"},
                                          ["SEGSWEEP_PLUGINS", "'no.such.module'", "No module named"]),
    "SEGSWEEP_RAY_START_TIMEOUT_S=abc": ([], {"SEGSWEEP_RAY_START_TIMEOUT_S": "abc"},
                                         ["SEGSWEEP_RAY_START_TIMEOUT_S='abc'", "positive number"]),
}


@pytest.mark.parametrize("case", list(SWEEP_CASES))
def test_sweep_refusals_are_one_paragraph_and_bounded(tmp_path: Path, cache_dir: Path, case: str) -> None:
    arguments, env, words = SWEEP_CASES[case]
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "platform.sweep", str(_spec(tmp_path)), *arguments],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
                            env={**os.environ, "SEGSWEEP_PLUGINS": "tests.fault_trainer",
                                 "SEGSWEEP_CACHE": str(cache_dir), "RAY_DISABLE_USAGE_STATS": "1", **env})
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0, "one paragraph"
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert time.monotonic() - started < 120, "bounded"
    assert not (tmp_path / "runs" / "refused").exists()


# --- the local Ray's start-up limit ------------------------------------------------------------------------------

TIMEOUTS = [  # SEGSWEEP_RAY_START_TIMEOUT_S, load per CPU -> seconds, or None for a refusal naming the variable
    (None, 0.5, 120.0),
    (None, 5.0, 600.0),
    (None, 100.0, 1800.0),
    ("300", 50.0, 300.0),
    ("abc", 1.0, None),
    ("0", 1.0, None),
    ("-5", 1.0, None),
    ("inf", 1.0, None),
]


@pytest.mark.parametrize(("value", "load", "seconds"), TIMEOUTS)
def test_the_local_ray_start_up_limit_follows_the_machine(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                                          load: float, seconds: float | None) -> None:
    from platform import localray

    if value is None:
        monkeypatch.delenv(localray.START_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(localray.START_TIMEOUT_ENV, value)
    monkeypatch.setattr(localray, "machine_load", lambda: load)
    if seconds is None:
        with pytest.raises(ValueError, match=localray.START_TIMEOUT_ENV):
            localray.ray_start_timeout_s()
    else:
        assert localray.ray_start_timeout_s() == pytest.approx(seconds)


RAY_STARTS = [  # how many starts time out in Ray's own 30 s, the limit -> starts made, or the refusal's words
    (0, "60", 1, None),
    (2, "60", 3, None),
    (10**6, "1", None, ["did not start within 1 s", "SEGSWEEP_RAY_START_TIMEOUT_S=300", "try again"]),
]


@pytest.mark.parametrize(("failures", "limit", "starts", "words"), RAY_STARTS)
def test_a_local_ray_that_overruns_rays_own_limit_is_started_again_until_ours(
        monkeypatch: pytest.MonkeyPatch, failures: int, limit: str, starts: int | None,
        words: list[str] | None) -> None:
    import ray

    from platform import sweep

    calls: list[dict[str, Any]] = []

    def init(**kwargs: Any) -> None:
        calls.append(kwargs)
        if len(calls) <= failures:
            raise Exception("The current node timed out during startup. This could happen because some of the "
                            "raylet failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setenv("SEGSWEEP_RAY_START_TIMEOUT_S", limit)
    if words is None:
        sweep._init_ray(address="local")
        assert len(calls) == starts
    else:
        with pytest.raises(sweep.RayStartError) as info:
            sweep._init_ray(address="local")
        for word in words:
            assert word in str(info.value), str(info.value)


def test_an_address_is_checked_before_ray_is_asked() -> None:
    from platform.localray import cluster_unreachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert cluster_unreachable(f"127.0.0.1:{port}", 5) is None
        assert cluster_unreachable(f"ray://127.0.0.1:{port}", 5) is None
    assert "nothing answers at 127.0.0.1:1" in (cluster_unreachable("127.0.0.1:1", 5) or "")
    assert cluster_unreachable("auto", 5) is None  # left to Ray


# --- storage timeout ------------------------------------------------------------------------------------------------

STORAGE_TIMEOUTS = [(None, 30.0), ("5", 5.0), ("0.5", 0.5), ("abc", None), ("0", None), ("-1", None), ("nan", None)]


@pytest.mark.parametrize(("value", "seconds"), STORAGE_TIMEOUTS)
def test_the_storage_timeout_is_read_when_used(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                               seconds: float | None) -> None:
    from platform.storage import StorageError, storage_timeout_s

    if value is None:
        monkeypatch.delenv("SEGSWEEP_STORAGE_TIMEOUT_S", raising=False)
    else:
        monkeypatch.setenv("SEGSWEEP_STORAGE_TIMEOUT_S", value)
    if seconds is None:
        with pytest.raises(StorageError, match="SEGSWEEP_STORAGE_TIMEOUT_S"):
            storage_timeout_s()
    else:
        assert storage_timeout_s() == seconds


# --- --out ----------------------------------------------------------------------------------------------------------

def _read_only(tmp_path: Path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


OUT_FILES = [  # where, relative to tmp_path -> the words of the refusal, or None when it is written
    ("report.md", None),
    ("missing/report.md", ["does not exist", "mkdir -p"]),
    (".", ["is a folder"]),
    pytest.param("read-only/report.md", ["cannot be written"],
                 marks=pytest.mark.skipif(IS_ROOT, reason="root writes into a read-only folder")),
]


@pytest.mark.parametrize(("where", "words"), OUT_FILES)
def test_an_output_file_where_it_cannot_go_is_one_paragraph(tmp_path: Path, where: str,
                                                            words: list[str] | None) -> None:
    if where.startswith("read-only"):
        _read_only(tmp_path)
    target = tmp_path / where
    if words is None:
        write_file(target, "text")
        assert target.read_text() == "text"
        return
    with pytest.raises(OutputError) as info:
        write_file(target, "text")
    assert all(word in str(info.value) for word in words), str(info.value)


OUT_FOLDERS = [
    ("reports/deep", None),
    ("a-file", ["is a file"]),
    ("a-file/reports", ["cannot be created"]),
    pytest.param("read-only/reports", ["cannot be created"],
                 marks=pytest.mark.skipif(IS_ROOT, reason="root writes into a read-only folder")),
]


@pytest.mark.parametrize(("where", "words"), OUT_FOLDERS)
def test_an_output_folder_where_it_cannot_go_is_one_paragraph(tmp_path: Path, where: str,
                                                              words: list[str] | None) -> None:
    (tmp_path / "a-file").write_text("")
    if where.startswith("read-only"):
        _read_only(tmp_path)
    if words is None:
        write_files(tmp_path / where, {"a.md": "a", "b.json": "{}"})
        assert (tmp_path / where / "b.json").read_text() == "{}"
        return
    with pytest.raises(OutputError) as info:
        write_files(tmp_path / where, {"a.md": "a"})
    assert all(word in str(info.value) for word in words), str(info.value)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dashboards.bench import build_experiment

    root = tmp_path_factory.mktemp("storage")
    build_experiment(root, "synthetic", trials=12, epochs=3, seeds=2, images=1)
    return root


@pytest.mark.parametrize(("where", "words"), [("missing/report.md", ["does not exist"]), (".", ["is a folder"])])
def test_report_out_where_it_cannot_go_exits_2(storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               where: str, words: list[str]) -> None:
    from dashboards import report

    code = report.main(["--storage", str(storage), "--experiment", "synthetic", "--factor", "disc_arch",
                        "--split", "val", "--out", str(tmp_path / where)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --out") and all(word in err for word in words), err


@pytest.mark.parametrize(("arguments", "words"), [
    (["--storage", "{file}"], ["cannot be created", "--out DIR"]),
    (["--storage", "{missing}", "--out", "{file}"], ["is a file"]),
])
def test_reproduce_read_where_reports_cannot_go_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        arguments: list[str], words: list[str]) -> None:
    from platform import reproduce

    (tmp_path / "file").write_text("")
    filled = [a.format(file=tmp_path / "file", missing=tmp_path / "missing") for a in arguments]
    code = reproduce.main(["advnorm_table2", "--quick", "--read", *filled])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and all(word in err for word in words), err


def test_reproduce_reports_a_table_whose_sweep_failed_as_not_measured(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from platform import papertables as reproduce

    table = reproduce.plan_table(reproduce.PAPER_DIR / "advnorm_table2.yaml", True, str(tmp_path / "runs"))
    monkeypatch.setattr(reproduce, "_finished", lambda spec: (0, spec.trial_count()))
    monkeypatch.setattr(reproduce, "_has_state", lambda spec: False)

    class FailedSweep:  # what `python -m platform.sweep` prints and returns when its Ray does not start
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.stdout = iter(["loading spec\n", "error: the local Ray did not start within 120 s (...)\n"])

        def wait(self) -> int:
            return 2

    monkeypatch.setattr(reproduce.subprocess, "Popen", FailedSweep)
    problems = reproduce.run_sweeps(table, True, str(tmp_path / "runs"), read_only=False)
    assert len(problems) == len(table.runs) and all("not measured" in p for p in problems), problems
    assert all("exited 2: error: the local Ray did not start" in p for p in problems), problems
    assert table.unmeasured == set(table.runs)

    def read_table(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the trials of a sweep that failed here were read")

    monkeypatch.setattr("platform.results.read_table", read_table)
    reproduce.measure(table)
    assert all(not values for values in table.values.values()), table.values


# --- the explorer ----------------------------------------------------------------------------------------------------

PATHS = [  # path -> status
    ("/", 200),
    ("/_dash-layout", 200),
    ("/admin", 404),
    ("/.env", 404),
    ("/index.html", 404),
    ("/synthetic", 404),
    ("/artifacts/synthetic/t000000/" + "a" * 5000 + ".png", 404),
    ("/artifacts/" + "b" * 5000 + "/t000000/x.png", 404),
]


@pytest.mark.parametrize(("path", "status"), PATHS, ids=[p[0][:40] for p in PATHS])
def test_the_explorer_serves_its_page_and_nothing_else(storage: Path, path: str, status: int) -> None:
    from dashboards.app import Explorer, create_app

    response = create_app(Explorer(str(storage))).server.test_client().get(path)
    assert response.status_code == status, response.data[:200]
    if status == 404:
        assert b"<html" not in response.data.lower()


def test_the_explorer_on_a_port_in_use_is_one_paragraph(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dashboards import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = app.main(["--storage", str(storage), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: the explorer cannot listen on 127.0.0.1:{port}"), err
    assert "--port" in err and "Traceback" not in err
