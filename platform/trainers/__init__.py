"""Trainers, one module per method: adding a trainer is adding a file. Each module registers itself in ``TRAINERS``
under its file's name; this package lists the modules (``pkgutil``) without importing them, and
``TRAINERS.get(name)`` imports the one asked for, so a Ray worker imports only the trainer it runs (a method's
own dependencies, e.g. MONAI's losses, load in the processes that use them).

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
        TRAINERS.add_lazy(_module.name, f"{__name__}.{_module.name}")

for _plugin in filter(None, (name.strip() for name in os.environ.get("SEGSWEEP_PLUGINS", "").split(","))):
    importlib.import_module(_plugin)

__all__ = ["TRAINERS", "Trainer", "TrainerConfig"]
