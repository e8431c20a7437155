"""Trainers, one module per method: adding a trainer is adding a file. Each module registers itself in ``TRAINERS``
under its file's name (``base`` and modules named ``_*`` are helpers); this package lists the modules (``pkgutil``)
without importing them, and
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
    if _module.name != "base" and not _module.name.startswith("_"):  # ``_name``: a helper module, not a trainer
        TRAINERS.add_lazy(_module.name, f"{__name__}.{_module.name}")

PLUGIN_ERRORS: list[str] = []  # the SEGSWEEP_PLUGINS modules that could not be imported, with why
for _plugin in filter(None, (name.strip() for name in os.environ.get("SEGSWEEP_PLUGINS", "").split(","))):
    try:
        importlib.import_module(_plugin)
    except Exception as exc:  # reported by the command lines as one paragraph (plugin_problem), not at import
        PLUGIN_ERRORS.append(f"{_plugin!r} ({type(exc).__name__}: {exc})")


def plugin_problem() -> str | None:
    """What is wrong with ``SEGSWEEP_PLUGINS``, as one paragraph, or None."""
    if not PLUGIN_ERRORS:
        return None
    return ("SEGSWEEP_PLUGINS names modules that cannot be imported: " + "; ".join(PLUGIN_ERRORS) + ". Each "
            "must be a module name importable from the repository root or PYTHONPATH (e.g. tests.fault_trainer); "
            "fix the variable or unset it.")


__all__ = ["PLUGIN_ERRORS", "TRAINERS", "Trainer", "TrainerConfig", "plugin_problem"]
