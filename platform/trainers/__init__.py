"""Trainers, one module per method. Importing this package imports every module in it (``pkgutil``), and each
registers itself in ``TRAINERS``: adding a trainer is adding a file.

``SEGSWEEP_PLUGINS`` (comma-separated module names, importable from the repository root) registers trainers that
live outside this package, e.g. the test-only fault trainer ``tests.fault_trainer``. Ray workers inherit the
variable from a local driver; on a cluster pass it in the job's runtime_env ``env_vars``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from platform.trainers.base import TRAINERS, Trainer, TrainerConfig

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

for _plugin in filter(None, (name.strip() for name in os.environ.get("SEGSWEEP_PLUGINS", "").split(","))):
    importlib.import_module(_plugin)

__all__ = ["TRAINERS", "Trainer", "TrainerConfig"]
