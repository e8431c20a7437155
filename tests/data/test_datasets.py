"""Every registered dataset (``DATASETS``), one test over the registry: its spec-time check accepts a good config,
and it loads cases that split into training, validation and test subjects of every domain."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform.data.config import DataConfig
from platform.data.datasets import DATASETS, check_data, load_cases, split_cases
from platform.data.phantom import build_phantom


def config_for(name: str, tiny_data: DataConfig) -> DataConfig:
    if name == "manifest":  # the phantom written to disk is a manifest of real NIfTI files
        return DataConfig(dataset="manifest", manifest=str(build_phantom(tiny_data)), domains=list(tiny_data.domains))
    if name == "abdomen":  # its own domains and organs
        return tiny_data.model_copy(update={"dataset": name, "domains": ["btcv", "tcia"], "num_classes": 9})
    return tiny_data.model_copy(update={"dataset": name})


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_checks_loads_and_splits(name: str, tiny_data: DataConfig, tmp_path: Path) -> None:
    data = config_for(name, tiny_data)
    assert check_data(data) == []
    cases = load_cases(data)
    assert {case.domain for case in cases} == set(data.domains)
    for part in split_cases(cases, data):  # train, val, test
        assert {c.domain for c in part} == set(data.domains)
