"""The README's two commands run twice: ``make sweep`` (``platform.makesweep``) starts, continues or reports an
experiment; its arguments pass through; ``make sweep`` installs the base, ``make test`` the test tools on top, each
with its own stamp. No Ray: the experiment is made by hand (Tune's marker and the results tables)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platform import makesweep, sweep
from platform.results import ResultsStore
from platform.resume import spec_columns
from platform.spec import load_spec
from tests.conftest import REPO_ROOT

LAMBDA = REPO_ROOT / "search_spaces" / "lambda.yaml"


def made_experiment(storage: Path, finished: int | None) -> tuple[str, int]:
    """The lambda spec's experiment at ``storage`` with ``finished`` trials ended (None: all); (name, planned)."""
    spec = load_spec(LAMBDA, [f"storage={storage}"])
    finished = spec.trial_count() if finished is None else finished
    experiment = storage / spec.name
    experiment.mkdir(parents=True)
    (experiment / "tuner.pkl").write_bytes(b"")  # what Tune's can_restore looks for
    store = ResultsStore(str(experiment))
    store.append("sweep", [{"experiment": spec.name, **spec_columns(spec)}])
    store.append("trials", [{"trial_id": f"t{i}", "status": "TERMINATED", "seed": 0, "config/lambda": 0.1 * (i + 1),
                             f"best/{spec.objectives[0].metric}": 0.5 + 0.01 * i} for i in range(finished)])
    return spec.name, spec.trial_count()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every sweep makesweep would start (recorded, not run)."""
    seen: list[list[str]] = []

    def fake(argv: list[str], supervised: bool = False) -> int:
        seen.append(list(argv))
        return 0

    monkeypatch.setattr(sweep, "main", fake)
    return seen


def test_a_finished_experiment_is_reported_and_the_second_run_exits_0(tmp_path: Path) -> None:
    name, planned = made_experiment(tmp_path / "runs", finished=None)
    argv = [sys.executable, "-m", "platform.makesweep", str(LAMBDA), "--storage", str(tmp_path / "runs")]
    again = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"has finished all {planned} trials" in again.stdout and "nothing to run" in again.stdout
    # The closing hint runs as printed from the repository root, outside an activated environment.
    python = Path(sys.executable)
    shown = python.relative_to(REPO_ROOT).as_posix() if python.is_relative_to(REPO_ROOT) else str(python)
    assert f"{shown} -m dashboards.app --storage" in again.stdout and f"--experiment {name}" in again.stdout
    # The plain sweep refuses the same second run: what `make sweep` ran before.
    plain = subprocess.run([sys.executable, "-m", "platform.sweep", *argv[3:], "--dry-run"], capture_output=True,
                           text=True, cwd=REPO_ROOT, timeout=300)
    assert plain.returncode == 2 and "already exists" in plain.stderr


@pytest.mark.parametrize(("finished", "extra", "expected"), [
    (None, [], []),  # no experiment: started as given
    (3, [], ["--resume"]),  # unfinished: continued
    (3, ["--resume"], []),  # the user's own --resume passes through once
    (3, ["--dry-run"], []),
])
def test_an_unfinished_experiment_is_continued(tmp_path: Path, calls: list[list[str]], finished: int | None,
                                               extra: list[str], expected: list[str]) -> None:
    if finished is not None:
        made_experiment(tmp_path / "runs", finished)
    argv = [str(LAMBDA), "--storage", str(tmp_path / "runs"), "budget.trials=4", *extra]
    assert makesweep.main(argv) == 0
    assert calls == [[*argv, *expected]]


def make_n(target: str, venv: Path, *variables: str) -> str:
    result = subprocess.run(["make", "-n", target, f"VENV={venv}", *variables], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_sweep_passes_spec_and_args_and_installs_only_the_base(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    plan = make_n("sweep", venv)
    assert "pip install \"torch==2.13.0\" .\n" in plan and ".[dev]" not in plan
    assert "-m platform.makesweep search_spaces/lambda.yaml" in plan
    plan = make_n("sweep", venv, "SPEC=search_spaces/cross_domain.yaml", "ARGS=name=my-run --smoke")
    assert "-m platform.makesweep search_spaces/cross_domain.yaml name=my-run --smoke" in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_after_make_sweep_adds_only_the_test_tools(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    base = venv / ".installed-cpu"
    base.touch()  # what `make sweep` leaves
    future = os.stat(REPO_ROOT / "pyproject.toml").st_mtime + 10
    os.utime(base, (future, future))
    plan = make_n("test", venv)
    assert ".[dev]" in plan and "python3 -m venv" not in plan and "--upgrade pip" not in plan
    dev = venv / ".installed-dev-cpu"
    dev.touch()
    os.utime(dev, (future + 1, future + 1))
    plan = make_n("test", venv)
    assert "pip install" not in plan and "-m pytest" in plan
    assert "pip install" not in make_n("sweep", venv)  # and a later `make sweep` keeps both
