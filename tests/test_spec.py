"""Sweep specs: valid ones load; each user mistake names the file, key path and line, and suggests a fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from platform.spec import SpecError, load_spec
from tests.conftest import REPO_ROOT

GOOD = """\
name: t
trainer: advnorm
data: {domains: [infant, adult], subjects_per_domain: 3, size: 24, patch_size: 16}
fixed: {epochs: 3, n_steps: 2}
search:
  lambda: {loguniform: [0.01, 10.0]}
  discriminator: {choice: [dcgan, resnet]}
  resnet_depth: {choice: [10, 18], when: {discriminator: resnet}}
searcher: {sampler: tpe, seed: 0, points_to_evaluate: [{lambda: 0.1}]}
scheduler: {type: asha, grace_period: 1}
objective: {metric: val/dice, mode: max}
budget: {trials: 4, concurrent: 2}
repeats: {seeds: [0, 1]}
resources: {workers_per_trial: 1, cpus_per_worker: 0.5, gpus_per_worker: 0.25}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_spec_loads(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.trainer == "advnorm"
    assert spec.search["resnet_depth"].when == {"discriminator": "resnet"}
    assert spec.trial_count() == 8  # 4 configs x 2 seeds
    assert spec.resources.gpus_per_worker == 0.25


def test_overrides_apply(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD), ["budget.trials=3", "fixed.epochs=5", "repeats.seeds=[4]"])
    assert (spec.budget.trials, spec.fixed["epochs"], spec.repeats.seeds) == (3, 5, [4])


def test_smoke_shrinks(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD), smoke=True)
    assert spec.name == "t-smoke"
    assert spec.budget.trials == 2 and spec.repeats.seeds == [0] and spec.fixed["g_channels"] == 4
    assert spec.data.size <= 32


# (replace this line of GOOD, with this, expected fragments of the message)
BAD = [
    ("budget: {trials: 4, concurrent: 2}", "budgett: {trials: 4}", ["line 12", "unknown key 'budgett'", "'budget'"]),
    ("fixed: {epochs: 3, n_steps: 2}", "fixed: {epochs: 3, n_stepz: 2}", ["line 4", "fixed.n_stepz", "'n_steps'"]),
    ("fixed: {epochs: 3, n_steps: 2}", "fixed: {epochs: three}", ["line 4", "fixed.epochs", "integer"]),
    ("  lambda: {loguniform: [0.01, 10.0]}", "  lambda: {loguniform: [10.0, 0.01]}", ["line 6", "inverted"]),
    ("  lambda: {loguniform: [0.01, 10.0]}", "  lambda: {uniform: [1.0, 1.0]}", ["line 6", "empty"]),
    ("  lambda: {loguniform: [0.01, 10.0]}", "  lambda: {choice: []}", ["line 6", "at least one"]),
    ("  lambda: {loguniform: [0.01, 10.0]}", "  lambdaa: {loguniform: [0.01, 10.0]}",
     ["line 6", "search.lambdaa", "not a field", "'lambda'"]),
    ("  lambda: {loguniform: [0.01, 10.0]}", "  lambda: {loguniform: [0.01, 10.0], uniform: [0, 1]}",
     ["line 6", "exactly one"]),
    ("  lambda: {loguniform: [0.01, 10.0]}", "  lambda: {uniform: [-5.0, 1.0]}", ["line 6", "-5.0", "not valid"]),
    ("trainer: advnorm", "trainer: advnrom", ["line 2", "unknown trainer 'advnrom'", "'advnorm'"]),
    ("objective: {metric: val/dice, mode: max}", "objective: {metric: val/dise, mode: max}",
     ["line 11", "unknown metric 'val/dise'", "'val/dice'"]),
    ("objective: {metric: val/dice, mode: max}", "objective: {metric: val/dice, mode: biggest}",
     ["line 11", "objective.mode"]),
    ("  resnet_depth: {choice: [10, 18], when: {discriminator: resnet}}",
     "  resnet_depth: {choice: [10, 18], when: {discriminatr: resnet}}", ["line 8", "'discriminatr'"]),
    ("budget: {trials: 4, concurrent: 2}", "budget: {trials: 0}", ["line 12", "budget.trials"]),
    ("resources: {workers_per_trial: 1, cpus_per_worker: 0.5, gpus_per_worker: 0.25}",
     "resources: {workers_per_trial: 1, cpus_per_worker: 0}", ["line 14", "resources.cpus_per_worker"]),
    ("searcher: {sampler: tpe, seed: 0, points_to_evaluate: [{lambda: 0.1}]}",
     "searcher: {sampler: tpe, points_to_evaluate: [{lamda: 0.1}]}", ["line 9", "lamda"]),
    ("data: {domains: [infant, adult], subjects_per_domain: 3, size: 24, patch_size: 16}",
     "data: {domains: [infant, martian]}", ["line 3", "martian"]),
]


@pytest.mark.parametrize(("old", "new", "fragments"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_spec_is_named(tmp_path: Path, old: str, new: str, fragments: list[str]) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_grid_axis_needs_grid_sampler(tmp_path: Path) -> None:
    text = GOOD.replace("  lambda: {loguniform: [0.01, 10.0]}", "  lambda: {grid: [0.1, 1.5]}")
    with pytest.raises(SpecError, match="sampler: grid"):
        load_spec(write(tmp_path, text))


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"line 2.*not valid YAML"):
        load_spec(write(tmp_path, "name: t\ntrainer: advnorm: oops\n"))
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def run_cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "platform.sweep", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("override", ["budgett.trials=3", "fixed.lamda=2", "objective.metric=val/nope"])
def test_cli_exits_2_without_traceback(tmp_path: Path, override: str) -> None:
    spec = write(tmp_path, GOOD)
    result = run_cli(str(spec), override, "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")


def test_cli_dry_run_prints_plan(tmp_path: Path) -> None:
    # GPUs in the plan: the dry-run refuses what this CPU machine cannot run (a real run would), so the CLI is
    # asked for a CPU plan and the GPU resources are rendered against a cluster that has them.
    result = run_cli(str(write(tmp_path, GOOD)), "--dry-run", "resources.gpus_per_worker=0", "--storage",
                     str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    from platform.sweep import plan_text

    plan = plan_text(load_spec(write(tmp_path, GOOD)), str(tmp_path / "runs" / "t"), {"CPU": 2.0, "GPU": 1.0})
    for fragment in ["trainer      advnorm", "lambda: loguniform", "when {'discriminator': 'resnet'}",
                     "4 configs x 2 repeats = 8"]:
        assert fragment in result.stdout and fragment in plan
    assert "0.5 CPU, 0.25 GPU" in plan and "0.5 CPU, 0.0 GPU" in result.stdout
    refused = run_cli(str(write(tmp_path, GOOD)), "--dry-run", "--storage", str(tmp_path / "runs"))
    assert refused.returncode == 2 and "needs 0.25 GPUs" in refused.stderr, refused.stderr


def test_cli_unwritable_storage_and_missing_resume(tmp_path: Path) -> None:
    spec = write(tmp_path, GOOD)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(str(spec), "--storage", str(blocker / "runs"))
    assert result.returncode == 2 and "cannot be written" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(str(spec), "--storage", str(tmp_path / "runs"), "--resume")
    assert result.returncode == 2 and "no experiment 't'" in result.stderr
    assert not (tmp_path / "runs" / "t").exists()


def test_every_shipped_search_space_validates() -> None:
    for path in sorted((REPO_ROOT / "search_spaces").glob("*.yaml")):
        load_spec(path)


def test_cli_manifest_error_names_row_and_exits_2(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("image,label,domain,subject\nmissing.nii.gz,missing_label.nii.gz,site,s1\n")
    text = GOOD.replace("data: {domains: [infant, adult], subjects_per_domain: 3, size: 24, patch_size: 16}",
                        f"data: {{dataset: manifest, manifest: {manifest}, domains: []}}")
    result = run_cli(str(write(tmp_path, text)), "--storage", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "row 1" in result.stderr and "missing.nii.gz" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / "t").exists()


def test_cli_overrides_may_follow_options(tmp_path: Path) -> None:
    result = run_cli(str(write(tmp_path, GOOD)), "--dry-run", "budget.trials=3", "--storage", str(tmp_path),
                     "resources.gpus_per_worker=0")
    assert result.returncode == 0, result.stderr
    assert "3 configs x 2 repeats = 6" in result.stdout
