"""``--resume`` checks the spec (platform.resume): the sweep table keeps the resolved spec and its hash, and a
resume whose spec changes the trainer, the data, the search space or the objectives is refused naming the keys;
budget, concurrency and resources may change. No Ray: the experiment is made by hand (Tune's ``tuner.pkl`` marker
and the sweep table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platform.results import ResultsStore
from platform.resume import HASH_COLUMN, SPEC_COLUMN, defining_differences, resume_problem, spec_columns, spec_hash
from platform.spec import load_spec
from tests.conftest import REPO_ROOT
from tests.test_user_input import spec_with, write

# override(s) applied to the resumed spec -> the differing keys named (empty: the resume is accepted).
CHANGES = [
    ("the same spec", [], []),
    ("a larger budget", ["budget.trials=40"], []),
    ("another concurrency and time budget", ["budget.concurrent=1", "budget.time_budget_s=600"], []),
    ("other resources and runtime", ["resources.cpus_per_worker=1"], []),
    ("other data", ["data.size=32"], ["data.size"]),
    ("a changed search range", ["search.lambda.loguniform=[0.1, 10.0]"], ["search.lambda.loguniform"]),
    ("an added axis", ["search.lr_g={loguniform: [0.0001, 0.01]}"], ["search.lr_g"]),
    ("another objective", ["objective.mode=min"], ["objective.mode"]),
    ("another fixed value", ["fixed.epochs=5"], ["fixed.epochs"]),
    ("other repeats", ["repeats.seeds=[0, 1]"], ["repeats.seeds"]),
]


def started_experiment(tmp_path: Path, spec_path: Path, overrides: list[str] | None = None) -> str:
    """An experiment as a first run leaves it: Tune's marker and the sweep table's stored spec."""
    spec = load_spec(spec_path, overrides or [])
    experiment = str(tmp_path / "runs" / spec.name)
    Path(experiment).mkdir(parents=True)
    (Path(experiment) / "tuner.pkl").write_bytes(b"")  # what Tune's can_restore looks for
    ResultsStore(experiment).append("sweep", [{"experiment": spec.name, **spec_columns(spec)}])
    return experiment


@pytest.mark.parametrize(("case", "overrides", "keys"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_resume_that_changes_what_defines_the_trials_is_refused(tmp_path: Path, case: str,
                                                                   overrides: list[str], keys: list[str]) -> None:
    path = write(tmp_path, spec_with(storage=str(tmp_path / "runs")))
    experiment = started_experiment(tmp_path, path)
    resumed = load_spec(path, overrides)
    stored = json.loads(ResultsStore(experiment).read("sweep").column(SPEC_COLUMN)[0].as_py())
    assert ResultsStore(experiment).read("sweep").column(HASH_COLUMN)[0].as_py() == spec_hash(stored)
    assert [k for k in defining_differences(stored, json.loads(resumed.model_dump_json()))
            if not any(k.startswith(f"{known}.") for known in keys)] == keys
    problem = resume_problem(experiment, resumed)
    if not keys:
        assert problem is None
        return
    assert problem is not None and problem.startswith("--resume: the spec differs")
    for key in keys:
        assert f"{key}:" in problem, f"{key!r} not named in: {problem}"
    assert "budget" in problem and "name=" in problem  # what may change, and the way out


# (stored, current) resolved specs -> the defining keys named: nested keys by their dotted path, and only them.
DIFFERENCES = [
    ({"trainer": "advnorm", "budget": {"trials": 4}}, {"trainer": "glua", "budget": {"trials": 8}}, ["trainer"]),
    ({"data": {"size": 24, "domains": ["a"]}}, {"data": {"size": 24, "domains": ["a", "b"]}}, ["data.domains"]),
    ({"search": {"x": {"int": [1, 2]}}}, {"search": {"y": {"int": [1, 2]}}}, ["search.x", "search.y"]),
    ({"objective": {"metric": "val/dice"}}, {"objective": [{"metric": "val/dice"}]}, ["objective"]),
    ({"resources": {"cpus_per_worker": 1}, "storage": "a"}, {"resources": {"cpus_per_worker": 2}, "storage": "b"}, []),
]


@pytest.mark.parametrize(("stored", "current", "keys"), DIFFERENCES)
def test_defining_differences_name_dotted_keys(stored: dict, current: dict, keys: list[str]) -> None:
    assert defining_differences(stored, current) == keys
    assert (spec_hash(stored) == spec_hash(current)) == (stored == current)


def test_cross_domain_resumed_with_the_lambda_spec_is_refused(tmp_path: Path) -> None:
    """A cross_domain experiment continued with lambda.yaml (under the same name): the search and data differ."""
    storage = f"storage={tmp_path / 'runs'}"
    experiment = started_experiment(tmp_path, REPO_ROOT / "search_spaces" / "cross_domain.yaml", [storage])
    lambda_spec = load_spec(REPO_ROOT / "search_spaces" / "lambda.yaml", [storage, "name=cross-domain"])
    problem = resume_problem(experiment, lambda_spec)
    assert problem is not None and "in data, fixed, search, " in problem and "data.domains: " in problem, problem


def test_an_experiment_without_a_stored_spec_is_not_checked(tmp_path: Path) -> None:
    path = write(tmp_path, spec_with(storage=str(tmp_path / "runs")))
    experiment = str(tmp_path / "runs" / "t")
    ResultsStore(experiment).append("sweep", [{"experiment": "t", "trainer": "advnorm"}])  # an older experiment
    assert resume_problem(experiment, load_spec(path, ["fixed.epochs=5"])) is None


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_cli_resume_with_another_spec_exits_2_naming_the_keys(tmp_path: Path, dry_run: bool) -> None:
    path = write(tmp_path, spec_with(storage=str(tmp_path / "runs")))
    started_experiment(tmp_path, path)
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(spec_with(storage=str(tmp_path / "runs"), data={
        **spec_with()["data"], "size": 32})))
    result = subprocess.run([sys.executable, "-m", "platform.sweep", str(changed), "--resume",
                             *(["--dry-run"] if dry_run else [])], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=180, env={**os.environ, "RAY_DISABLE_USAGE_STATS": "1"})
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stderr.startswith("error: --resume: the spec differs") and "Traceback" not in result.stderr
    assert "data.size: 24 -> 32" in result.stderr, result.stderr
