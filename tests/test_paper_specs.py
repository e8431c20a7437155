"""The paper specs of both folders: ``search_spaces/paper/<stem>.yaml`` (the brain phantom) and
``search_spaces/paper/mni/<stem>.yaml`` (real anatomy, named ``mni/<stem>``), through ``platform.reproduce``:
names, outputs, references, ``--check`` and ``--readme``. The command is exercised on temporary spec folders
(``PAPER_DIR`` and ``REFERENCE_DIR`` monkeypatched) whose trials are written directly, so no sweep runs."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.fault_trainer  # noqa: F401  (registers the fault trainer: no data, any dataset)
from platform import papertables, reference, reproduce
from platform.papertables import (
    counterpart_problems,
    paper_names,
    plan_table,
    shared_experiments,
    spec_path,
    table_name,
)
from platform.results import ResultsStore
from platform.spec import load_spec
from platform.storage import experiment_uri

DATA = {"domains": ["infant", "adult"], "subjects_per_domain": 2, "size": 16, "patch_size": 8, "batch_size": 1,
        "patches_per_epoch": 1}
PAPER = {"title": "Table X: a over b", "rows": [{"label": "a", "where": {"once_dir": "a"}, "paper": 0.8},
                                                {"label": "b", "where": {"once_dir": "b"}, "paper": 0.6}],
         "claims": [{"text": "a over b", "larger": "a", "smaller": "b"}]}
# Test Dice per (dataset, level, seed): the two datasets measure different values, so a table read from the wrong
# folder's experiments shows.
DICE = {("phantom", "a"): 0.80, ("phantom", "b"): 0.60, ("mni", "a"): 0.70, ("mni", "b"): 0.50}


def spec_data(dataset: str, name: str, storage: Path) -> dict[str, Any]:
    return {"name": name, "trainer": "fault", "data": {"dataset": dataset, **DATA}, "storage": str(storage),
            "search": {"once_dir": {"grid": ["a", "b"]}}, "searcher": {"sampler": "grid"},
            "scheduler": {"type": "none"}, "repeats": {"seeds": [0, 1, 2]}, "paper": copy.deepcopy(PAPER)}


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A repository-like layout with one phantom table ``x`` and its real-anatomy counterpart ``mni/x``, the
    command pointed at it."""
    paper = tmp_path / "repo" / "search_spaces" / "paper"
    (paper / "mni").mkdir(parents=True)
    (paper / "reference").mkdir()
    storage = tmp_path / "runs"
    (paper / "x.yaml").write_text(yaml.safe_dump(spec_data("phantom", "paper-x", storage)))
    (paper / "mni" / "x.yaml").write_text(yaml.safe_dump(spec_data("mni", "paper-mni-x", storage)))
    monkeypatch.setattr(papertables, "PAPER_DIR", paper)
    monkeypatch.setattr(reference, "REFERENCE_DIR", paper / "reference")
    return {"paper": paper, "reference": paper / "reference", "storage": storage, "out": tmp_path / "out"}


def write_trials(table: papertables.Table, storage: str, shift: float = 0.0) -> None:
    """Finished trials of every sweep of ``table`` in ``storage``: each level and seed with its ``DICE``."""
    dataset = "mni" if table.stem.startswith("mni/") else "phantom"
    for spec in table.runs.values():
        rows = [{"trial_id": f"t-{level}-{seed}", "experiment": spec.name, "trainer": "fault",
                 "status": "TERMINATED", "seed": seed, "repeat": seed, "config/once_dir": level,
                 "objectives": json.dumps([{"metric": "val/dice", "mode": "max"}]), "best/val/dice": 0.5,
                 "test/best/dice": DICE[dataset, level] + 0.01 * seed + shift}
                for level in ("a", "b") for seed in spec.repeats.seeds]
        ResultsStore(experiment_uri(storage, spec.name)).append("trials", rows)


def write_all(folders: dict[str, Path], quick: bool) -> None:
    for name in paper_names():
        write_trials(plan_table(spec_path(name), quick, str(folders["storage"])), str(folders["storage"]))


# --- names ------------------------------------------------------------------------------------------------------------

def test_tables_of_both_folders_are_named_by_folder(folders: dict[str, Path]) -> None:
    assert paper_names() == ["x", "mni/x"]
    assert spec_path("mni/x") == folders["paper"] / "mni" / "x.yaml"
    assert [table_name(spec_path(name)) for name in paper_names()] == ["x", "mni/x"]
    assert table_name(folders["out"] / "y.yaml") == "y"  # a spec elsewhere is named by its stem
    assert plan_table(spec_path("mni/x"), False, None).stem == "mni/x"


@pytest.mark.parametrize("quick", [False, True])
def test_the_default_reads_both_folders_and_saves_the_mni_reference_beside(
        folders: dict[str, Path], capsys: pytest.CaptureFixture[str], quick: bool) -> None:
    write_all(folders, quick)
    code = reproduce.main(["--read", *(["--quick"] if quick else []), "--storage", str(folders["storage"]),
                           "--out", str(folders["out"]), "--save-reference"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads((folders["out"] / "reproduce.json").read_text())
    assert list(data) == ["x", "mni/x"]
    # Each table read its own experiments: the phantom's a at seed 0 is .80, real anatomy's .70.
    assert data["x"]["rows"][0]["values"]["seed 0"] == pytest.approx(0.80)
    assert data["mni/x"]["rows"][0]["values"]["seed 0"] == pytest.approx(0.70)
    assert data["mni/x"]["claims"][0]["n"] == (2 if quick else 3)
    text = (folders["out"] / "reproduce.md").read_text()
    assert "\n## x: Table X: a over b\n" in text and "\n## mni/x: Table X: a over b\n" in text
    assert "<h2 id='mni-x'>mni/x: Table X: a over b</h2>" in (folders["out"] / "reproduce.html").read_text()
    saved = folders["reference"] / "mni" / "x.json"
    assert saved.exists() and (folders["reference"] / "x.json").exists()
    assert list(reference.load_reference(saved)) == ["mni/x"]
    assert f"reference written: {saved}" in captured.out


def test_one_mni_table_by_its_name(folders: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    write_all(folders, False)
    code = reproduce.main(["mni/x", "mni/x", "--read", "--storage", str(folders["storage"]),
                           "--out", str(folders["out"])])
    assert code == 0, capsys.readouterr().err
    assert list(json.loads((folders["out"] / "reproduce.json").read_text())) == ["mni/x"]


@pytest.mark.parametrize("name", ["nope", "mni/nope", "mni/mni/x", "reference/x"])
def test_an_unknown_name_lists_the_tables_of_both_folders(folders: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert reproduce.main([name]) == 2
    err = capsys.readouterr().err
    assert f"unknown paper spec(s) ['{name}']" in err and "['x', 'mni/x']" in err and "Traceback" not in err
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize("names", [[], ["mni/x"], ["x"]])
def test_two_tables_writing_one_experiment_are_refused_before_anything_runs(
        folders: dict[str, Path], capsys: pytest.CaptureFixture[str], names: list[str]) -> None:
    """Even one table alone: its sweeps would resume into the other's experiments."""
    (folders["paper"] / "mni" / "x.yaml").write_text(
        yaml.safe_dump(spec_data("mni", "paper-x", folders["storage"])))  # the phantom's name kept
    assert reproduce.main([*names, "--storage", str(folders["storage"]), "--out", str(folders["out"])]) == 2
    captured = capsys.readouterr()
    assert "the tables x, mni/x share the experiment name 'paper-x'" in captured.err
    assert "its own name" in captured.err and "running" not in captured.out and "Traceback" not in captured.err
    assert not folders["storage"].exists()
    assert any("both would write one experiment" in line for line in counterpart_problems())


def test_planned_sweeps_sharing_an_experiment_are_named(folders: dict[str, Path]) -> None:
    tables = [plan_table(spec_path(name), False, None) for name in paper_names()]
    assert shared_experiments(tables) == []
    tables[1].runs[()] = tables[0].runs[()]  # as if mni/x planned the phantom's experiment
    [line] = shared_experiments(tables)
    assert line.startswith("experiment 'paper-x' would be written by the tables x, mni/x (")


# --- references: --check and --readme --------------------------------------------------------------------------------

class FakeSweeps:
    """``run_sweeps`` that writes the trials a sweep would (every value plus ``shift``) in the rerun's storage, and
    no Ray: ``ran`` lists the tables it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.shift = 0.0

    def run_sweeps(self, table: papertables.Table, quick: bool, storage: str | None, read_only: bool,
                   head: Any = None) -> list[str]:
        assert storage is not None and not read_only
        self.ran.append(table.stem)
        write_trials(table, storage, self.shift)
        return []


@pytest.fixture
def fake_sweeps(monkeypatch: pytest.MonkeyPatch) -> FakeSweeps:
    fake = FakeSweeps()

    @contextlib.contextmanager
    def no_ray(tables: list[papertables.Table], read_only: bool) -> Iterator[None]:
        yield None

    monkeypatch.setattr(papertables, "run_sweeps", fake.run_sweeps)
    monkeypatch.setattr(papertables, "shared_ray", no_ray)
    return fake


def saved_reference(folders: dict[str, Path], name: str) -> Path:
    table = plan_table(spec_path(name), False, str(folders["storage"]))
    write_trials(table, str(folders["storage"]))
    papertables.measure(table)
    result = {**papertables.table_result(table), "provenance": reference.provenance(), "quick": False}
    [path] = reference.save_references({name: result})
    return path


def test_check_reruns_an_mni_reference(folders: dict[str, Path], fake_sweeps: FakeSweeps,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = saved_reference(folders, "mni/x")
    assert path == folders["reference"] / "mni" / "x.json"
    assert reference.check(path, []) == 0
    out = capsys.readouterr().out
    assert fake_sweeps.ran == ["mni/x"] and "checking mni/x against" in out and "no row differs" in out
    fake_sweeps.shift = 0.001  # every value of the rerun moves
    assert reference.check(path, ["mni/x"]) == 1
    assert "differs: mni/x: row 'a': seed 0: 0.700000 -> 0.701000" in capsys.readouterr().out


def test_check_of_a_table_without_a_spec_is_exit_2(folders: dict[str, Path], fake_sweeps: FakeSweeps,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = saved_reference(folders, "mni/x")
    (folders["paper"] / "mni" / "x.yaml").unlink()
    assert reference.check(path, []) == 2
    err = capsys.readouterr().err
    assert "unknown paper spec(s) ['mni/x']" in err and "Traceback" not in err and fake_sweeps.ran == []


def test_the_readme_lists_the_mni_tables_in_their_own_subsection(folders: dict[str, Path]) -> None:
    block = reference.readme_block()
    assert "No committed reference yet for `x` (" in block
    assert block.index("`x` (") < block.index(reference.MNI_HEADING) < block.index("yet for `mni/x` (")
    saved_reference(folders, "x")
    saved_reference(folders, "mni/x")
    block = reference.readme_block()
    assert "No committed reference yet" not in block
    phantom, mni = block.index("#### x: Table X"), block.index("#### mni/x: Table X")
    assert phantom < block.index(reference.MNI_HEADING) < mni
    assert "Reference `search_spaces/paper/reference/mni/x.json` (full size" in block[mni:]
    # Without a spec or a reference on real anatomy there is no such subsection (the phantom block alone).
    (folders["reference"] / "mni" / "x.json").unlink()
    (folders["paper"] / "mni" / "x.yaml").unlink()
    assert reference.MNI_HEADING not in reference.readme_block()


# --- the counterparts ---------------------------------------------------------------------------------------------

def _mutated(change: str, storage: Path) -> dict[str, Any]:
    data = spec_data("mni", "paper-mni-x", storage)
    if change == "title":
        data["paper"]["title"] = "Table X on real anatomy"
    elif change == "claims":
        data["paper"]["claims"][0]["min_effect"] = 0.1
    elif change == "rows":
        data["paper"]["rows"][1]["paper"] = 0.61
    elif change == "metric":
        data["paper"]["metric"] = "test/last/dice"
    elif change == "trainer":
        data["trainer"] = "advnorm"
    elif change == "dataset":
        data["data"]["dataset"] = "phantom"
    elif change == "name":
        data["name"] = "paper-x"
    return data


@pytest.mark.parametrize(("change", "problem"), [
    ("none", None),
    ("title", None),  # the title may say which dataset
    ("claims", "paper.claims differs"),
    ("rows", "paper.rows differs"),
    ("metric", "paper.metric differs"),
    ("trainer", "trainer 'advnorm'"),
    ("dataset", "data.dataset is 'phantom', not 'mni'"),
    ("name", "both would write one experiment"),
])
def test_an_mni_spec_answers_its_counterparts_claims(folders: dict[str, Path], change: str,
                                                      problem: str | None) -> None:
    (folders["paper"] / "mni" / "x.yaml").write_text(yaml.safe_dump(_mutated(change, folders["storage"])))
    problems = counterpart_problems()
    assert (problems == []) if problem is None else (len(problems) == 1 and problem in problems[0]), problems


def test_an_mni_spec_without_a_counterpart_is_a_problem(folders: dict[str, Path]) -> None:
    (folders["paper"] / "mni" / "x.yaml").rename(folders["paper"] / "mni" / "y.yaml")
    [problem] = counterpart_problems()
    assert "y.yaml: no phantom counterpart" in problem


# --- the committed specs ------------------------------------------------------------------------------------------

def test_every_committed_mni_spec_answers_its_phantom_counterparts_claims() -> None:
    assert counterpart_problems() == []


@pytest.mark.parametrize("name", paper_names())
def test_every_committed_paper_spec_loads_with_its_table(name: str) -> None:
    spec = load_spec(spec_path(name))
    assert spec.paper is not None and spec.paper.rows
    assert (spec.data.dataset == "mni") == name.startswith("mni/")


def test_no_two_committed_tables_write_one_experiment() -> None:
    for quick in (False, True):
        tables = [plan_table(spec_path(name), quick, None) for name in paper_names()]
        assert shared_experiments(tables) == []
