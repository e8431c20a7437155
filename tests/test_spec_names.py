"""One name per hyperparameter: a field's name and its alias (advnorm's ``lambda_`` / ``lambda``) load as the
field's public name (the alias), so every results column, ``where:`` filter and override spelled either way meets
the same ``config/lambda`` column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from platform.papertables import row_values
from platform.spec import SpecError, load_spec
from platform.trainers.advnorm import AdvNormTrainer
from platform.tuning import declared_columns

SPEC = """\
name: t
trainer: advnorm
data: {{domains: [infant, adult], subjects_per_domain: 3, size: 24, patch_size: 16}}
fixed: {{epochs: 3, n_steps: 2}}
search:
  {search}: {{grid: [0.1, 1.5]}}
  discriminator: {{grid: [dcgan, resnet]}}
searcher: {{sampler: grid}}
explore: {{baseline: {{{baseline}: 0.1}}}}
paper:
  title: a table
  rows:
    - {{label: low, where: {{{where}: 0.1}}}}
    - {{label: high, where: [{{{where}: 1.5, discriminator: dcgan}}]}}
"""

SPELLINGS = ["lambda", "lambda_"]


def load(tmp_path: Path, search: str, baseline: str, where: str, overrides: tuple[str, ...] = ()) -> object:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC.format(search=search, baseline=baseline, where=where)))
    return load_spec(path, list(overrides))


def test_public_names_map_every_spelling_to_the_alias() -> None:
    from platform.spec_checks import public_names

    names = public_names(AdvNormTrainer.Config)
    assert names["lambda_"] == "lambda" and names["lambda"] == "lambda"
    assert names["epochs"] == "epochs"


@pytest.mark.parametrize("search", SPELLINGS)
@pytest.mark.parametrize("where", SPELLINGS)
def test_either_spelling_writes_one_column_and_where_matches(tmp_path: Path, search: str, where: str) -> None:
    spec = load(tmp_path, search, search, where)
    assert list(spec.search) == ["lambda", "discriminator"]
    assert set(declared_columns(spec)["trials"]) == {"config/lambda", "config/discriminator"}
    assert spec.explore.baseline == {"lambda": 0.1}
    assert [row.where for row in spec.paper.rows] == [{"lambda": 0.1}, [{"lambda": 1.5, "discriminator": "dcgan"}]]
    trials = [{"status": "TERMINATED", "seed": seed, "fold": None, "config/lambda": value,
               "config/discriminator": "dcgan", "test/best/dice": score}
              for seed, value, score in [(0, 0.1, 0.8), (1, 0.1, 0.9), (0, 1.5, 0.5)]]
    assert row_values(trials, spec.paper.rows[0].where, "test/best/dice") == {(0, None): 0.8, (1, None): 0.9}
    assert row_values(trials, spec.paper.rows[1].where, "test/best/dice") == {(0, None): 0.5}


@pytest.mark.parametrize("override", ["lambda_=0.3", "lambda=0.3", "fixed.lambda_=0.3"])
def test_a_fixed_override_in_either_spelling_is_the_public_name(tmp_path: Path, override: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: t\ntrainer: advnorm\nfixed: {epochs: 3}\n")
    assert load_spec(path, [override]).fixed == {"epochs": 3, "lambda": 0.3}


def test_both_spellings_at_once_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: t\ntrainer: advnorm\nsearch:\n  lambda: {choice: [0.1]}\n  lambda_: {choice: [1.5]}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "spec.yaml, line 5" in str(err.value) and "'lambda_' and 'lambda' name the same field" in str(err.value)
