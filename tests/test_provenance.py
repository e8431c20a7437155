"""Provenance records (code version, libraries, machine, command) and the code version in stage cache keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platform import provenance as prov
from platform.cache import code_version, module_closure

HAS_GIT = shutil.which("git") is not None


def _package(root: Path) -> Path:
    """A tiny package ``platform`` under ``root``: a stage module importing a helper, and an unrelated module."""
    package = root / "platform"
    (package / "trainers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "trainers" / "__init__.py").write_text("")
    (package / "trainers" / "stage.py").write_text("from platform.helper import f\nfrom . import sibling\n")
    (package / "trainers" / "sibling.py").write_text("X = 1\n")
    (package / "helper.py").write_text("def f():\n    return 1\n")
    (package / "unrelated.py").write_text("Y = 2\n")
    return package


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_a_record_has_every_field() -> None:
    record = prov.provenance(["python", "-m", "platform.reproduce", "a b"])
    assert set(record) == {"code", "versions", "cpu", "cpu_kernels", "gpu", "command", "created"}
    assert set(record["versions"]) == {"python", "torch", "monai", "ray", "optuna", "numpy"}
    assert all(record["versions"][name] for name in ("torch", "numpy", "ray", "optuna", "monai"))
    assert record["command"] == "python -m platform.reproduce 'a b'"
    assert isinstance(record["cpu"], str) and record["cpu"]
    assert len(record["code"]["source_sha256"]) == 64


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
def test_code_version_is_the_commit_with_a_dirty_flag(tmp_path: Path) -> None:
    package = _package(tmp_path)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "x")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    clean = prov.code_version(package)
    assert clean["commit"] == head and clean["dirty"] is False
    (package / "helper.py").write_text("def f():\n    return 2\n")
    dirty = prov.code_version(package)
    assert dirty["commit"] == head and dirty["dirty"] is True
    assert dirty["source_sha256"] != clean["source_sha256"]


def test_without_git_the_source_hash_stands_in(tmp_path: Path) -> None:
    package = _package(tmp_path)
    record = prov.code_version(package)
    assert record["commit"] is None and record["dirty"] is None
    assert record["source_sha256"] == prov.source_hash(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.py").write_text("ignored")  # bytecode caches are not source
    assert prov.source_hash(package) == record["source_sha256"]
    (package / "unrelated.py").write_text("Y = 3\n")
    assert prov.source_hash(package) != record["source_sha256"]


@pytest.mark.parametrize(("edited", "changes"), [
    ("trainers/stage.py", True),  # the stage's own module
    ("helper.py", True),  # a module it imports
    ("trainers/sibling.py", True),  # a relative import
    ("unrelated.py", False),  # nothing the stage imports
])
def test_the_stage_code_version_follows_its_modules_only(tmp_path: Path, edited: str, changes: bool) -> None:
    package = _package(tmp_path)
    assert set(module_closure(("platform.trainers.stage",), package)) == {
        "platform.trainers", "platform.trainers.stage", "platform.trainers.sibling", "platform.helper"}
    before = code_version(("platform.trainers.stage",), package)
    path = package / edited
    path.write_text(path.read_text() + "# edited\n")
    assert (code_version(("platform.trainers.stage",), package) != before) is changes


def test_the_glua_stage_key_includes_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from platform.trainers import base

    calls: list[tuple[str, ...]] = []

    def version(modules: tuple[str, ...]) -> str:
        calls.append(modules)
        return str(len(calls))

    monkeypatch.setattr(base, "code_version", version)

    class Stub:
        data_config = base.DataConfig()
        seed, fold, world_size = 0, None, 1

    Stub.__module__ = "platform.trainers.glua"
    first = base.Trainer.stage_cache_path(Stub(), "glua-stage1", {"a": 1}, 2)
    second = base.Trainer.stage_cache_path(Stub(), "glua-stage1", {"a": 1}, 2)
    assert calls[0] == ("platform.trainers.glua", "platform.trainers.base")
    assert first != second  # another code version: another cache file


def test_differences_name_fields_and_skip_incidental_ones() -> None:
    old = {"code": {"commit": "a", "dirty": False}, "versions": {"torch": "2.4"}, "cpu": "x", "gpu": None,
           "command": "one", "created": "then"}
    new = {"code": {"commit": "a", "dirty": True}, "versions": {"torch": "2.5", "ray": "2.9"}, "cpu": "x",
           "gpu": None, "command": "two", "created": "now"}
    assert prov.differences(old, new) == [("code.dirty", False, True), ("versions.ray", None, "2.9"),
                                          ("versions.torch", "2.4", "2.5")]
    assert prov.differences(old, old) == []


def test_cpu_model_reads_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n")
    assert prov.cpu_model(info) == "Example CPU @ 2.0GHz"
    assert prov.cpu_model(tmp_path / "missing")  # falls back to the machine type


def test_the_sweep_table_row_records_the_provenance() -> None:
    import json

    from platform.spec import load_spec
    from platform.tuning import sweep_row

    row = sweep_row(load_spec(Path(__file__).resolve().parent.parent / "search_spaces" / "lambda.yaml"))
    record = json.loads(row["provenance"])
    assert record["code"]["source_sha256"] == prov.source_hash() and record["versions"]["torch"]


@pytest.mark.parametrize(("value", "expected"),
                         [(None, "avx2"), ("", "avx2"), ("AVX2", "avx2"), (" native ", "native")])
def test_the_cpu_kernel_choice_defaults_to_avx2(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                               expected: str) -> None:
    if value is None:
        monkeypatch.delenv(prov.CPU_KERNELS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(prov.CPU_KERNELS_VARIABLE, value)
    assert prov.cpu_kernel_choice() == expected


def test_a_mistyped_cpu_kernel_choice_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prov.CPU_KERNELS_VARIABLE, "avx9")
    with pytest.raises(ValueError, match="SEGSWEEP_CPU_KERNELS='avx9' is not one of avx2, native"):
        prov.cpu_kernel_choice()


def _child_kernels() -> str:
    """The CPU kernels a process started now runs (as Ray's workers, which inherit the environment)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=300).stdout.strip()


def test_pinned_kernels_are_what_a_started_process_runs() -> None:
    prov.pin_cpu_kernels("native")  # the conftest restores the environment after the test
    native = _child_kernels()
    if native not in ("AVX2", "AVX512"):
        pytest.skip(f"this CPU's torch kernels are {native}, not an x86-64 AVX2 level")
    prov.pin_cpu_kernels("avx2")
    assert _child_kernels() == "AVX2"
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    prov.pin_cpu_kernels("native")  # lifts the pin: the host's best again
    assert "ATEN_CPU_CAPABILITY" not in os.environ and _child_kernels() == native


def test_the_summary_names_the_kernels_or_says_they_were_not_recorded() -> None:
    record = prov.provenance(["python"])
    assert f"({record['cpu_kernels']} kernels)" in prov.summary(record)
    del record["cpu_kernels"]
    assert "(kernels not recorded)" in prov.summary(record)
