"""The spec loader under property-based fuzzing: any YAML either validates or fails with a SpecError that
names the file (the CLI: exit code 2, one paragraph, never a traceback)."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from platform.spec import SpecError, SweepSpec, load_spec
from tests.conftest import REPO_ROOT

BASE: dict[str, Any] = {
    "name": "fuzz",
    "trainer": "advnorm",
    "data": {"domains": ["infant", "adult"], "subjects_per_domain": 3, "size": 24, "patch_size": 16},
    "fixed": {"epochs": 3, "n_steps": 2},
    "search": {"lambda": {"loguniform": [0.01, 10.0]}, "discriminator": {"choice": ["dcgan", "resnet"]},
               "resnet_depth": {"choice": [10, 18], "when": {"discriminator": "resnet"}}},
    "searcher": {"sampler": "tpe", "seed": 0, "points_to_evaluate": [{"lambda": 0.1}]},
    "scheduler": {"type": "asha", "grace_period": 1},
    "objective": {"metric": "val/dice", "mode": "max"},
    "budget": {"trials": 4, "concurrent": 2},
    "repeats": {"seeds": [0, 1]},
    "resources": {"workers_per_trial": 1, "cpus_per_worker": 0.5, "memory_gb": 1.0},
}

# Words the loader gives meaning to, so mutations reach deep validation, not only "unknown key".
WORDS = ["name", "trainer", "data", "fixed", "search", "searcher", "scheduler", "objective", "budget", "repeats",
         "resources", "storage", "advnorm", "dualnorm", "glua", "phantom", "manifest", "val/dice", "val/hd95",
         "lambda", "epochs", "discriminator", "resnet", "dcgan", "none", "when", "choice", "grid", "uniform",
         "loguniform", "int", "tpe", "random", "asha", "max", "min", "seeds", "folds", "domains", "size",
         "infant", "adult", "site3", "ct", "workers_per_trial", "memory_gb", "points_to_evaluate", "sampler"]

keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**20), st.floats(), st.sampled_from(WORDS),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside a nested dict/list document."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield (*prefix, key)
        yield from paths_of(child, (*prefix, key))


ALL_PATHS = list(paths_of(BASE))


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    """The valid BASE spec with one to three values replaced, keys deleted or unknown keys added."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed it
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
    return yaml.safe_dump(doc, allow_unicode=True)


# Raw text mixes YAML's syntax characters with words, for parser errors, anchors, tags, odd scalars.
raw_yaml = st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(list(":-[]{},&*!?|>'\"#%@` \n\t")),
                              st.text(max_size=4)), max_size=40).map("".join)
documents = st.one_of(mutated_specs(), values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)), raw_yaml)
overrides = st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from([p for p in WORDS[:12]] + [
    "budget.trials", "fixed.epochs", "data.size", "repeats.seeds", "search.lambda.loguniform", "name.x", ""]),
    st.sampled_from(["4", "-1", "[1, 2]", "{a: 1}", "x", "", "null", "[", "1e400"])), max_size=2)

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "spec.yaml"


def check_loads_or_explains(path: Path, text: str, extra: list[str], smoke: bool) -> None:
    path.write_text(text)
    try:
        spec = load_spec(path, extra, smoke=smoke)
    except SpecError as err:
        message = str(err)
        assert message.strip() and "Traceback" not in message
        # Problems with the file name the file; a bad command-line override names the override.
        assert str(path) in message or "command-line override" in message, message
    else:
        assert isinstance(spec, SweepSpec)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents, extra=overrides, smoke=st.booleans())
@example(text=yaml.safe_dump(BASE), extra=[], smoke=False)
@example(text=yaml.safe_dump(BASE), extra=["budget.trials=3"], smoke=True)
@example(text="name: &x [1, *x]\n", extra=[], smoke=False)  # recursive alias
@example(text="[" * 3000 + "]" * 3000, extra=[], smoke=False)  # deeper than Python's recursion limit
@example(text=LAUGHS, extra=[], smoke=False)  # a billion laughs
@example(text="? [a, b]\n: 1\n", extra=[], smoke=False)  # unhashable key
@example(text="name: t\ntrainer: advnorm\ndata: {size: abc}\n", extra=[], smoke=True)
@example(text="name: t\ntrainer: advnorm\nbudget: {trials: [1]}\n", extra=[], smoke=True)
@example(text="\t", extra=[], smoke=False)
@example(text="", extra=[], smoke=False)
def test_any_yaml_validates_or_names_the_file(spec_file: Path, text: str, extra: list[str], smoke: bool) -> None:
    check_loads_or_explains(spec_file, text, extra, smoke)


CLI_CASES = {
    "not yaml": "name: [unclosed\n",
    "not a mapping": "- just\n- a list\n",
    "recursive alias": "name: t\ntrainer: advnorm\nfixed: &x {epochs: *x}\n",
    "too deep": "[" * 3000 + "]" * 3000,
    "unknown key": yaml.safe_dump({**BASE, "budgett": {"trials": 4}}),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_dry_run_exits_2_without_traceback(tmp_path: Path, case: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(CLI_CASES[case])
    result = subprocess.run([sys.executable, "-m", "platform.sweep", str(path), "--dry-run"], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and str(path) in result.stderr, result.stderr
