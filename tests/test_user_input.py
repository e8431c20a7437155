"""Nothing a user types crashes a sweep or loses its tables: every defect class a hostile test found, table-driven.

Classes: the spec file, command-line overrides, the storage, the pre-flight checks that --dry-run shares with a
real run, and manifests. The results store and the explorer under faults are in their own test modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from platform.spec import SpecError, load_spec
from tests.conftest import REPO_ROOT
from tests.test_spec_fuzz import BASE as FUZZ_BASE

# The fuzzer's valid spec, named "t", without early stopping, repeats or a memory cap.
BASE = {**{k: v for k, v in FUZZ_BASE.items() if k not in ("scheduler", "repeats")}, "name": "t",
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 0.5}}


def spec_with(**changes: object) -> dict:
    """BASE with top-level keys replaced (None deletes); ``search`` and ``searcher`` entries merge."""
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        elif key in ("search", "searcher", "fixed") and isinstance(value, dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


def write(tmp_path: Path, content: str | bytes | dict) -> Path:
    path = tmp_path / "spec.yaml"
    if isinstance(content, dict):
        content = yaml.safe_dump(content)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


# --- values coerced to the trainer field's type (defect 1, the loader's end) ------------------------------------

COERCED = [
    ("float choice given as text", {"search": {"d_dropout": {"choice": [0.1, "0.2"]}}}, "d_dropout", [0.1, 0.2]),
    ("PyYAML reads 1e-2 as text", "lambda-1e-2", "lambda", [0.1, 0.01]),
    ("int grid given as text", {"search": {"lambda": {"grid": [0.1, "1.5"]}, "discriminator": None,
                                           "resnet_depth": None},
                                "searcher": {"sampler": "grid", "points_to_evaluate": []}}, "lambda", [0.1, 1.5]),
    ("int choice given as floats", {"search": {"d_channels": {"choice": [1, 2.0, "3"]}}}, "d_channels", [1, 2, 3]),
]


@pytest.mark.parametrize(("case", "changes", "key", "expected"), COERCED, ids=[c[0] for c in COERCED])
def test_choice_and_grid_values_take_the_field_type(tmp_path: Path, case: str, changes: object, key: str,
                                                    expected: list) -> None:
    if changes == "lambda-1e-2":
        text = yaml.safe_dump(spec_with(search={"lambda": {"choice": [0.1, 0.5]}}))
        path = write(tmp_path, text.replace("- 0.5", "- 1e-2"))
        assert yaml.safe_load(path.read_text())["search"]["lambda"]["choice"][1] == "1e-2"  # the YAML trap
    else:
        doc = spec_with(**{k: v for k, v in changes.items() if k != "search"})
        for axis, value in changes.get("search", {}).items():
            if value is None:
                doc["search"].pop(axis)
            else:
                doc["search"][axis] = value
        path = write(tmp_path, doc)
    spec = load_spec(path)
    axis = spec.search[key]
    values = axis.values
    assert values == expected and [type(v) for v in values] == [type(v) for v in expected]


def test_points_and_conditions_are_coerced_too(tmp_path: Path) -> None:
    doc = spec_with(searcher={"points_to_evaluate": [{"lambda": "1.5", "discriminator": "resnet",
                                                      "resnet_depth": 18}]})
    doc["search"]["resnet_depth"]["when"] = {"discriminator": ["resnet"]}
    spec = load_spec(write(tmp_path, doc))
    assert spec.searcher.points_to_evaluate == [{"lambda": 1.5, "discriminator": "resnet", "resnet_depth": 18}]
    assert isinstance(spec.searcher.points_to_evaluate[0]["lambda"], float)


# --- spec mistakes: one paragraph naming the file (and line), never a traceback ---------------------------------

LONG = "n" * 300
SPEC_MISTAKES: list[tuple[str, object, list[str]]] = [
    ("a choice that is not the field's type", {"search": {"discriminator": {"choice": ["dcgan", 3]}}},
     ["search.discriminator", "3"]),
    ("the same value twice after coercion", {"search": {"d_dropout": {"choice": [0.1, "0.1"]}}},
     ["same value", "0.1"]),
    ("a when that names its own axis", {"search": {"discriminator": {"choice": ["dcgan", "resnet"],
                                                                     "when": {"discriminator": "dcgan"}}}},
     ["itself"]),
    ("a cycle of when conditions", {"search": {
        "discriminator": {"choice": ["dcgan", "resnet"], "when": {"resnet_depth": 10}},
        "resnet_depth": {"choice": [10, 18], "when": {"discriminator": "resnet"}}}},
     ["cycle", "discriminator", "resnet_depth"]),
    ("a three-axis cycle", {"search": {
        "discriminator": {"choice": ["dcgan", "resnet"], "when": {"generator": "unet"}},
        "generator": {"choice": ["unet", "none"], "when": {"resnet_depth": 10}},
        "resnet_depth": {"choice": [10, 18], "when": {"discriminator": "resnet"}}}}, ["cycle"]),
    ("an empty list of objectives", {"objective": []}, ["objective", "at least one"]),
    ("an objective listed twice", {"objective": [{"metric": "val/dice"}, {"metric": "val/dice"}]},
     ["more than once"]),
    ("an http storage", {"storage": "http://example.org/runs"}, ["storage", "'http://'"]),
    ("an unknown storage scheme", {"storage": "foo://bar"}, ["'foo://'"]),
    ("an empty storage", {"storage": ""}, ["storage", "empty"]),
    ("a storage with a newline", {"storage": "runs\nb"}, ["storage", "control character '\\n'"]),
    ("a storage with a tab", {"storage": "runs\tb"}, ["storage", "control character '\\t'"]),
    ("a seed of 10^22", {"repeats": {"seeds": [99999999999999999999999]}},
     ["repeats.seeds", "99999999999999999999999", "[0, 2^32)"]),
    ("a seed of 2^32", {"repeats": {"seeds": [0, 2**32]}}, ["repeats.seeds", "4294967296", "[0, 2^32)"]),
    ("a negative seed", {"repeats": {"seeds": [-1]}}, ["repeats.seeds", "-1", "[0, 2^32)"]),
    ("a boolean seed", {"repeats": {"seeds": [True]}}, ["repeats.seeds", "boolean"]),
    ("epochs: true", {"fixed": {"epochs": True}}, ["fixed.epochs", "integer, not the boolean true"]),
    ("a float field given a boolean", {"fixed": {"lr_g": False}}, ["fixed.lr_g", "number, not the boolean false"]),
    ("budget.trials: true", {"budget": {"trials": True}}, ["budget.trials", "not the boolean true"]),
    ("a searched epochs of booleans", {"fixed": {"epochs": None}, "search": {"epochs": {"choice": [True, 2]}}},
     ["search.epochs", "boolean"]),
    ("an experiment name over 255 characters", {"name": LONG}, ["name", "300 characters"]),
    ("a point outside its choices", {"searcher": {"points_to_evaluate": [{"discriminator": "none"}]}},
     ["point 0", "not among"]),
    ("a point outside its range", {"searcher": {"points_to_evaluate": [{"lambda": 50.0}]}},
     ["point 0", "outside the loguniform range"]),
    ("a point not an integer of an int axis", {"search": {"d_channels": {"int": [1, 4]}},
                                               "searcher": {"points_to_evaluate": [{"d_channels": 2.5}]}},
     ["d_channels"]),
    ("a 10^12-point grid", {"search": {"lambda": {"grid": list(range(1, 1001))},
                                       "g_depth": {"grid": list(range(1, 1001))},
                                       "d_channels": {"grid": list(range(1, 1001))},
                                       "resnet_depth": None, "discriminator": None},
                            "searcher": {"sampler": "grid", "points_to_evaluate": []}},
     ["1,000,000,000 configurations", "at most 100,000"]),
    ("10^32 trials", {"budget": {"trials": 10**32}}, ["budget.trials", "100000"]),
    ("10^11 epochs", {"fixed": {"epochs": 10**11}}, ["fixed.epochs", "100,000,000,000", "100,000"]),
    ("a searched range up to 10^11 epochs", {"fixed": {"n_steps": 2, "epochs": None},
                                             "search": {"epochs": {"int": [1, 10**11]}}},
     ["search.epochs", "100,000"]),
    ("an absurd phantom", {"data": {"domains": ["infant"], "size": 10**6}}, ["data.size", "512"]),
    ("a misspelt axis key", {"search": {"lambda": {"loguniformm": [0.01, 10.0]}}}, ["Did you mean 'loguniform'"]),
    ("a baseline on an axis that is not searched", {"explore": {"baseline": {"n_steps": 2}}},
     ["explore.baseline", "'n_steps'", "not a search axis"]),
    ("a baseline value the axis never takes", {"explore": {"baseline": {"discriminator": "none"}}},
     ["baseline", "not among"]),
    ("an objective on the test split", {"objective": {"metric": "test/best/dice", "mode": "max"}},
     ["line ", "test score", "never used to choose", "'val/dice'"]),
    ("an evaluation domain that is not loaded",
     {"data": {"domains": ["infant", "adult"], "size": 24, "eval_domains": ["infant", "ct"]}},
     ["data", "eval_domains ['ct'] are not among data.domains"]),
    ("an empty list of training domains", {"data": {"domains": ["infant", "adult"], "size": 24, "train_domains": []}},
     ["train_domains is empty"]),
    ("fractions that leave nothing to train", {"data": {"domains": ["infant"], "size": 24, "val_fraction": 0.5,
                                                        "test_fraction": 0.5}},
     ["val_fraction 0.5 + test_fraction 0.5", "below 1"]),
]


def _apply(doc: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if key == "search":
            for axis, spec in value.items():
                if spec is None:
                    doc["search"].pop(axis, None)
                else:
                    doc["search"][axis] = spec
        elif key == "fixed":
            for field, field_value in value.items():
                if field_value is None:
                    doc["fixed"].pop(field, None)
                else:
                    doc["fixed"][field] = field_value
        elif key == "searcher":
            doc["searcher"].update(value)
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(("case", "changes", "fragments"), SPEC_MISTAKES, ids=[c[0] for c in SPEC_MISTAKES])
def test_spec_mistakes_are_one_paragraph(tmp_path: Path, case: str, changes: dict, fragments: list[str]) -> None:
    path = write(tmp_path, _apply(spec_with(), changes))
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert time.monotonic() - started < 10, "a refusal is quick"
    assert str(path) in message and "Traceback" not in message and len(message) < 1500, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_a_bare_trainer_field_on_the_command_line_is_fixed(tmp_path: Path) -> None:
    path = write(tmp_path, spec_with())
    spec = load_spec(path, ["generator=none", "data.intensity=raw", "data.train_domains=[adult]"])
    assert spec.fixed["generator"] == "none" and spec.data.intensity == "raw"
    assert spec.data.train_domains == ["adult"]
    with pytest.raises(SpecError, match=r"fixed\.generator"):
        load_spec(path, ["generator=mlp"])  # still validated as the field, and the message names it


def test_the_explore_baseline_is_coerced_like_a_point(tmp_path: Path) -> None:
    doc = _apply(spec_with(), {"search": {"d_channels": {"choice": [4, 8]}},
                               "explore": {"baseline": {"d_channels": "8"}}})
    assert load_spec(write(tmp_path, doc)).explore.baseline == {"d_channels": 8}


def test_int_range_includes_both_ends(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, _apply(spec_with(), {"search": {"d_channels": {"int": [3, 3]}}})))
    assert spec.search["d_channels"].int == (3, 3)


def test_name_that_fits_until_smoke_appends_its_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, spec_with(name="n" * 198))
    assert load_spec(path).name == "n" * 198
    with pytest.raises(SpecError, match="--smoke adds"):
        load_spec(path, smoke=True)


RAW_MISTAKES: list[tuple[str, bytes, list[str]]] = [
    ("Latin-1 text", "name: caf\xe9\ntrainer: advnorm\n".encode("latin-1"), ["not UTF-8", "0xe9"]),
    ("UTF-16 with a byte-order mark", "name: t\ntrainer: advnorm\n".encode("utf-16"), ["not UTF-8"]),
    ("UTF-16 without a byte-order mark", "name: t\n".encode("utf-16-le"), ["NUL"]),
    ("binary bytes", bytes(range(256)), ["not UTF-8"]),
    ("a key spelled like a pydantic union tag", b"'[': null\n", ["'['"]),
    ("only brackets as keys", b"'[x]': 1\n'list[Objective]': 2\n", ["'[x]'", "list[Objective]"]),
    ("a duplicated block", (yaml.safe_dump(BASE, sort_keys=False) + "budget: {trials: 2}\n").encode(),
     ["budget", "given twice", f"lines {yaml.safe_dump(BASE, sort_keys=False).splitlines().index('budget:') + 1} "
      f"and {len(yaml.safe_dump(BASE, sort_keys=False).splitlines()) + 1}"]),
    ("a duplicated search axis",
     b"name: t\ntrainer: advnorm\nsearch:\n  lambda: {uniform: [0.1, 1]}\n  lambda: {uniform: [1, 2]}\n",
     ["search.lambda", "lines 4 and 5"]),
    ("a duplicated key inside an axis", b"name: t\ntrainer: advnorm\nsearch:\n  lambda: {uniform: [0.1, 1], "
     b"uniform: [1, 2]}\n", ["search.lambda.uniform", "twice"]),
    ("a missing required key", yaml.safe_dump({k: v for k, v in BASE.items() if k != "trainer"}).encode(),
     ["'trainer'", "Field required"]),
    ("an unknown phantom domain", yaml.safe_dump({**BASE, "data": {"domains": ["infant", "martian"]}}).encode(),
     ["martian", "data"]),
]


@pytest.mark.parametrize(("case", "raw", "fragments"), RAW_MISTAKES, ids=[c[0] for c in RAW_MISTAKES])
def test_raw_spec_mistakes_are_one_paragraph(tmp_path: Path, case: str, raw: bytes, fragments: list[str]) -> None:
    path = write(tmp_path, raw)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    # Quote the key, never the whole section: the spec's other values do not appear in the message.
    assert "subjects_per_domain" not in message and "points_to_evaluate" not in message, message


# --- overrides: named as the source of their errors, under the same YAML guards ---------------------------------

BOMB = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x, x]"] + [
    f"&{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdef", "bcdefg", strict=True)]) + "]"
OVERRIDE_MISTAKES: list[tuple[str, str, list[str]]] = [
    ("a type error", "fixed.epochs=three", ["command-line override 'fixed.epochs=three'", "integer"]),
    ("a bound", "budget.trials=0", ["command-line override 'budget.trials=0'", "greater than or equal"]),
    ("a nested bound", "data.size=2", ["command-line override 'data.size=2'"]),
    ("a seven-level alias bomb", f"fixed.class_weights={BOMB}", ["more than 100000 values"]),
    ("a duplicate key in the value", "fixed={epochs: 1, epochs: 2}", ["given twice"]),
    ("a recursive alias", "fixed.class_weights=&x [*x]", ["refers to the value that contains it"]),
    ("a huge value", "name=" + "x" * 20_000, ["too long"]),
    ("a bad choice value", "search.discriminator.choice=[dcgan, 3]", ["command-line override", "3"]),
]


@pytest.mark.parametrize(("case", "override", "fragments"), OVERRIDE_MISTAKES, ids=[c[0] for c in OVERRIDE_MISTAKES])
def test_override_mistakes_name_the_override(tmp_path: Path, case: str, override: str, fragments: list[str]) -> None:
    path = write(tmp_path, spec_with())
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_spec(path, [override])
    message = str(info.value)
    assert time.monotonic() - started < 5, "the guard answers at once"
    assert len(message) < 1000, f"messages quote an excerpt, not the input ({len(message)} characters)"
    assert f"{path}, line" not in message, f"an override's error is not blamed on a line of the file: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


# --- the CLI: exit 2, one paragraph, the same under --dry-run and a real run --------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "platform.sweep", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout, env={**os.environ, "RAY_DISABLE_USAGE_STATS": "1",
                                                               **(env or {})})


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in: {result.stderr}"


CLI_STORAGE = [
    ("an empty --storage", ["--storage", ""], ["empty"]),
    ("a --storage with a newline", ["--storage", "a\nb"], ["control character '\\n'"]),
    ("a seed outside [0, 2^32)", ["repeats.seeds=[99999999999999999999999]"], ["repeats.seeds", "[0, 2^32)"]),
    ("epochs: true", ["fixed.epochs=true"], ["fixed.epochs", "boolean true"]),
    ("an http URI", ["--storage", "http://127.0.0.1:9/runs"], ["'http://'"]),
    ("an unknown scheme", ["--storage", "foo://bar"], ["'foo://'"]),
]


@pytest.mark.parametrize(("case", "args", "fragments"), CLI_STORAGE, ids=[c[0] for c in CLI_STORAGE])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_cli_refuses_bad_storage(tmp_path: Path, case: str, args: list[str], fragments: list[str],
                                 dry_run: bool) -> None:
    path = write(tmp_path, spec_with())
    result = run_cli(str(path), *args, *(["--dry-run"] if dry_run else []))
    assert_refused(result, *fragments)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_cli_storage_that_never_answers_is_bounded(tmp_path: Path, cache_dir: Path, dry_run: bool) -> None:
    path = write(tmp_path, spec_with())
    started = time.monotonic()
    result = run_cli(str(path), "--storage", "gs://bucket-that-does-not-exist/x", *(["--dry-run"] if dry_run else []),
                     env={"SEGSWEEP_STORAGE_TIMEOUT_S": "3", "SEGSWEEP_CACHE": str(cache_dir)}, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    # Either the client answers with an error, or the probe gives up after the bound: never a hang.
    assert "gs://bucket-that-does-not-exist/x" in result.stderr and "credentials" in result.stderr, result.stderr
    assert elapsed < 60, f"took {elapsed:.0f} s"


def _preflight_cases(tmp_path: Path) -> dict[str, tuple[dict, list[str], list[str]]]:
    manifest_dir = tmp_path / "manifest-dir"
    manifest_dir.mkdir()
    return {
        "64 CPUs per trial on this machine": (spec_with(resources={"cpus_per_worker": 64}), [], ["resources", "64"]),
        "folds without data.folds": (spec_with(repeats={"seeds": [0], "folds": [0, 1]}), [], ["data.folds"]),
        "a missing manifest": (spec_with(data={"dataset": "manifest", "manifest": str(tmp_path / "none.csv"),
                                               "domains": ["a", "b", "c"]}), [], ["manifest not found"]),
        "a directory as the manifest": (spec_with(data={"dataset": "manifest", "manifest": str(manifest_dir),
                                                        "domains": []}), [], ["is a directory"]),
    }


PREFLIGHT = ["64 CPUs per trial on this machine", "folds without data.folds", "a missing manifest",
             "a directory as the manifest"]


@pytest.mark.parametrize("case", PREFLIGHT)
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_dry_run_refuses_what_a_run_refuses(tmp_path: Path, cache_dir: Path, case: str, dry_run: bool) -> None:
    doc, extra, fragments = _preflight_cases(tmp_path)[case]
    doc["storage"] = str(tmp_path / "runs")
    result = run_cli(str(write(tmp_path, doc)), *extra, *(["--dry-run"] if dry_run else []),
                     env={"SEGSWEEP_CACHE": str(cache_dir)})
    assert_refused(result, *fragments)
    assert result.stderr.count("\n\n") == 0, "one paragraph"
    assert not (tmp_path / "runs" / "t").exists(), "nothing of the experiment is written"
    if case == "a missing manifest":
        assert "has no subjects" not in result.stderr, "the missing file alone, not one line per domain"


def test_dry_run_refuses_an_existing_experiment(tmp_path: Path) -> None:
    (tmp_path / "runs" / "t").mkdir(parents=True)
    (tmp_path / "runs" / "t" / "tuner.pkl").write_bytes(b"")  # what Tune's can_restore looks for
    result = run_cli(str(write(tmp_path, spec_with(storage=str(tmp_path / "runs")))), "--dry-run")
    assert_refused(result, "already exists", "--resume")


def test_ray_that_does_not_start_is_one_paragraph(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import ray

    from platform import sweep

    def slow_start(*args: object, **kwargs: object) -> None:
        raise TimeoutError("Timed out after 60 seconds waiting for the raylet to start")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", slow_start)
    doc = spec_with(storage=str(tmp_path / "runs"), data={**BASE["data"], "cache_dir": str(cache_dir)})
    code = sweep.main([str(write(tmp_path, doc))])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the local Ray did not start") and "TimeoutError" in err, err
    assert "try again" in err and "Traceback" not in err
    code = sweep.main([str(write(tmp_path, doc)), "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and "could not join the Ray cluster at '127.0.0.1:1'" in err, err


# --- renamed trainer fields: the old names still work, with a message that names the file and line ----------------

RENAMES = [("dualnorm", "base_channels", "s_channels", 8), ("dualnorm", "lr", "lr_s", 0.002),
           ("glua", "seg_lr", "lr_s", 0.02), ("glua", "disc_lr", "lr_d", 0.001),
           ("glua", "seg_momentum", "momentum_s", 0.8), ("glua", "seg_weight_decay", "weight_decay_s", 0.001)]


@pytest.mark.parametrize(("trainer", "old", "new", "value"), RENAMES, ids=[f"{r[0]}.{r[1]}" for r in RENAMES])
def test_old_field_names_still_work_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str], trainer: str,
                                                   old: str, new: str, value: float) -> None:
    from platform.trainers import TRAINERS

    roles = {"domains": ["mr", "ct"], "train_domains": ["mr"], "eval_domains": ["ct"]} if trainer == "glua" else {
        "domains": ["infant", "adult"]}
    doc = {"name": "t", "trainer": trainer, "data": {**roles, "subjects_per_domain": 3, "size": 24},
           "fixed": {old: value}, "search": {"epochs": {"choice": [40, 50]}},
           "searcher": {"points_to_evaluate": [{"epochs": 40}]}}
    spec = load_spec(write(tmp_path, doc))
    assert spec.fixed == {new: value}
    err = capsys.readouterr().err
    assert f"{old!r} is now {new!r}" in err and f"{tmp_path / 'spec.yaml'}, line" in err, err
    config_cls = TRAINERS.get(trainer).Config
    assert getattr(config_cls.model_validate({old: value}), new) == value  # direct construction too
    with pytest.raises(ValueError, match="old name"):
        config_cls.model_validate({old: value, new: value})
