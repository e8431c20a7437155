"""Reference outputs: ``reproduce --check`` against hand-made references, and the README generated from them."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from platform import reference
from platform.provenance import provenance

REPO_ROOT = Path(__file__).resolve().parent.parent


def _result(values: dict[str, dict[str, float]], record: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"title": "t", "rows": [{"name": name, "values": per_repeat} for name, per_repeat in values.items()],
            "claims": [], "provenance": record if record is not None else provenance(), "quick": False}


REFERENCE_VALUES = {"a": {"seed 0": 0.5, "seed 1": 0.25}, "b": {"seed 0": 1.0, "seed 1": 2.0}}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "ref.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _fake_run(measured: dict[str, dict[str, Any]]) -> Any:
    calls = []

    def run(names: list[str], quick: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
        calls.append((names, quick))
        return {name: measured[name] for name in names}, []

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_identical_values_differ_in_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"tab": _result(REFERENCE_VALUES)})
    nearly = copy.deepcopy(REFERENCE_VALUES)
    nearly["a"]["seed 0"] += 4e-8  # below the 1e-6 rounding
    run = _fake_run({"tab": _result(nearly)})
    assert reference.check(path, [], run) == 0
    out = capsys.readouterr().out
    assert "no row differs" in out and "differs:" not in out and "no environment difference" in out
    assert run.calls == [(["tab"], False)]


def test_a_changed_value_and_the_environment_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = provenance()
    old["versions"] = {**old["versions"], "torch": "0.0.1"}
    old["gpu"] = "Some GPU"
    path = _write(tmp_path, {"tab": _result(REFERENCE_VALUES, old)})
    changed = copy.deepcopy(REFERENCE_VALUES)
    changed["b"]["seed 1"] = 2.001
    assert reference.check(path, ["tab"], _fake_run({"tab": _result(changed)})) == 1
    out = capsys.readouterr().out
    assert "differs: tab: row 'b': seed 1: 2.000000 -> 2.001000" in out
    assert "row 'a'" not in out
    assert "environment: versions.torch: reference '0.0.1', now" in out
    assert "environment: gpu: reference 'Some GPU'" in out


def test_a_missing_repeat_or_row_differs() -> None:
    ref = _result(REFERENCE_VALUES)
    new = _result({"a": {"seed 0": 0.5}, "c": {"seed 0": 1.0}})
    assert reference.row_differences(ref, new) == ["row 'a': seed 1: 0.250000 -> absent",
                                                   "row 'b': only in the reference", "row 'c': only in the new run"]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    ([1, 2], "expected an object of tables"),
    ({"tab": {"rows": [{"name": "a", "values": {}}]}}, "no provenance record"),
    ({"tab": {"provenance": {}, "rows": [{"name": "a"}]}}, "row 1: needs a name and a values object"),
    ({"tab": {"provenance": {}, "rows": [{"name": "a", "values": {"seed 0": "x"}}]}}, "is not a number"),
])
def test_a_bad_reference_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any,
                                   message: str) -> None:
    path = _write(tmp_path, content)
    assert reference.check(path, [], _fake_run({})) == 2
    assert message in capsys.readouterr().err


def test_a_table_the_reference_lacks_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"tab": _result(REFERENCE_VALUES)})
    assert reference.check(path, ["other"], _fake_run({})) == 2
    assert "holds no table ['other']" in capsys.readouterr().err


def test_the_command_line_refuses_a_missing_reference(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "--check", str(tmp_path / "none.json")],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 2 and "cannot be read" in result.stderr and "Traceback" not in result.stderr


def test_a_reference_round_trips_through_save_and_load(tmp_path: Path) -> None:
    written = reference.save_references({"tab": _result(REFERENCE_VALUES)}, tmp_path)
    assert written == [tmp_path / "tab.json"]
    loaded = reference.load_reference(written[0])
    assert loaded["tab"]["rows"][1]["values"] == REFERENCE_VALUES["b"]


def test_repeat_labels_parse_back() -> None:
    assert reference._repeat_key("seed 3") == (3, None)
    assert reference._repeat_key("seed 3 fold 1") == (3, 1)
    with pytest.raises(reference.ReferenceError):
        reference._repeat_key("run 3")


def test_a_table_is_recomputed_from_stored_values() -> None:
    from platform.papertables import PAPER_DIR
    from platform.spec import load_spec

    paper = load_spec(PAPER_DIR / "advnorm_table3.yaml").paper
    values = {row.label: {f"seed {s}": 0.5 + 0.1 * i + 0.01 * s for s in range(3)}
              for i, row in enumerate(paper.rows)}
    fresh = reference.table_from_reference("advnorm_table3", _result(values))
    assert [row["name"] for row in fresh["rows"]] == [row.label for row in paper.rows]
    assert fresh["rows"][0]["values"] == {"seed 0": 0.5, "seed 1": 0.51, "seed 2": 0.52}
    assert len(fresh["claims"]) == len(paper.claims) and all("verdict" in c for c in fresh["claims"])


def test_the_readme_block_is_what_the_references_generate() -> None:
    block = reference.readme_block_in()
    assert block is not None, "docs/fidelity.md lacks the generated measured-tables block"
    assert block == reference.readme_block(), "docs/fidelity.md is stale: run `python -m platform.reproduce --readme`"


def test_write_readme_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{reference.README_BEGIN}\nold text\n{reference.README_END}\nafter\n")
    empty = tmp_path / "refs"
    empty.mkdir()
    assert reference.write_readme(readme, empty) is True
    text = readme.read_text()
    assert text.startswith(f"before\n{reference.README_BEGIN}\n") and text.endswith(f"{reference.README_END}\nafter\n")
    assert "old text" not in text and "No committed reference yet for `advnorm_table2`" in text
    assert reference.write_readme(readme, empty) is False
    readme.write_text("no markers")
    with pytest.raises(reference.ReferenceError):
        reference.write_readme(readme, empty)


def test_a_saved_check_is_appended_to_the_checked_table_only(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    untouched = _result({"x": {"seed 0": 3.0}})
    path = _write(tmp_path, {"tab": _result(REFERENCE_VALUES), "other": untouched})
    changed = copy.deepcopy(REFERENCE_VALUES)
    changed["b"]["seed 1"] = 2.001
    assert reference.check(path, ["tab"], _fake_run({"tab": _result(REFERENCE_VALUES)}), save=True) == 0
    assert reference.check(path, ["tab"], _fake_run({"tab": _result(changed)}), save=True) == 1
    assert f"check recorded in {path}" in capsys.readouterr().out
    stored = reference.load_reference(path)
    first, second = stored["tab"]["checks"]
    assert first["differing_rows"] == [] and first["problems"] == [] and first["environment"] == []
    assert second["differing_rows"] == ["row 'b': seed 1: 2.000000 -> 2.001000"]
    assert second["provenance"]["code"] == provenance()["code"] and isinstance(second["seconds"], int)
    assert stored["other"] == untouched  # a table the check did not rerun keeps its record as it was
    assert stored["tab"]["rows"] == _result(REFERENCE_VALUES)["rows"]  # a check never rewrites the values


def test_a_record_that_cannot_be_written_is_exit_2_and_leaves_the_reference_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, {"tab": _result(REFERENCE_VALUES)})
    before = path.read_text()

    def full_disk(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reference.os, "replace", full_disk)
    assert reference.check(path, [], _fake_run({"tab": _result(REFERENCE_VALUES)}), save=True) == 2
    assert "the check's record cannot be written (No space left on device)" in capsys.readouterr().err
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["ref.json"]


def test_a_check_without_save_leaves_the_reference_as_it_was(tmp_path: Path) -> None:
    path = _write(tmp_path, {"tab": _result(REFERENCE_VALUES)})
    before = path.read_text()
    assert reference.check(path, [], _fake_run({"tab": _result(REFERENCE_VALUES)})) == 0
    assert path.read_text() == before


@pytest.mark.parametrize(("checks", "message"), [
    ({"provenance": {}}, "'checks' must be a list"),
    ([{"provenance": {}, "differing_rows": []}], "check 1: needs a provenance record and the lists"),
    ([{"differing_rows": [], "environment": [], "problems": []}], "check 1: needs a provenance record"),
])
def test_a_malformed_check_record_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], checks: Any,
                                            message: str) -> None:
    path = _write(tmp_path, {"tab": {**_result(REFERENCE_VALUES), "checks": checks}})
    assert reference.check(path, [], _fake_run({})) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("checks", "expected"), [
    ([], ["No recorded check yet: `python -m platform.reproduce --check REFERENCE.json --save-check`"]),
    ([{"differing_rows": [], "environment": ["code.commit: reference 'a', now 'b'"], "problems": []}],
     ["Latest `--check` (1 recorded)", "**no row differs**", "environment differences: code.commit."]),
    ([{"differing_rows": [], "environment": [], "problems": []},
      {"differing_rows": ["row 'a': seed 1: 0.250000 -> 0.260000"], "environment": [], "problems": ["a trial failed"]}],
     ["(2 recorded)", "**1 row(s) differ: row 'a': seed 1: 0.250000 -> 0.260000; 1 problem(s): a trial failed**",
      "environment differences: none."]),
])
def test_the_readme_line_shows_the_latest_check(checks: list[dict[str, Any]], expected: list[str]) -> None:
    record = {**provenance(), "created": "2026-01-02T03:04:05Z"}
    result = {**_result(REFERENCE_VALUES), "checks": [{**c, "provenance": record, "seconds": 7} for c in checks]}
    line = reference.check_line(result)
    assert all(part in line for part in expected), line
    if checks:
        assert line.count("2026-01-02") == 1 and "7 s" in line and str(record["code"]["commit"])[:12] in line


def test_save_check_without_check_is_a_user_error() -> None:
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "--save-check"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 2 and "--check REFERENCE.json" in result.stderr and "Traceback" not in result.stderr


def test_a_mistyped_cpu_kernel_choice_is_a_user_error() -> None:
    env = {**os.environ, "SEGSWEEP_CPU_KERNELS": "fastest"}
    result = subprocess.run([sys.executable, "-m", "platform.reproduce", "--check", "none.json"], env=env,
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 2 and "SEGSWEEP_CPU_KERNELS='fastest'" in result.stderr
    assert "Traceback" not in result.stderr
