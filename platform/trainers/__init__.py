"""Trainers, one module per method; importing this package registers them all in ``TRAINERS``.

``SEGSWEEP_PLUGINS`` (comma-separated module names, importable from the repository root) registers extra
trainers, e.g. the test-only fault trainer ``tests.fault_trainer``. Ray workers inherit the variable from a local
driver; on a cluster pass it in the job's runtime_env ``env_vars``.
"""

from __future__ import annotations

import importlib
import os

from platform.trainers import advnorm, dualnorm, glua
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig

for _plugin in filter(None, (name.strip() for name in os.environ.get("SEGSWEEP_PLUGINS", "").split(","))):
    importlib.import_module(_plugin)

__all__ = ["TRAINERS", "Trainer", "TrainerConfig", "advnorm", "dualnorm", "glua"]
