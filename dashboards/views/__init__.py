"""The explorer's views: one module each, found by discovery. ``dashboards.app`` only assembles what they declare.

The contract of a view module (every name optional; a module declaring none of them, like ``common``, is a helper):

- ``ORDER`` (a number) and ``controls() -> component`` (or a list of components; ``controls(explorer)`` when it
  needs the explorer's state): the module's section of the
  page. ``app.layout`` places the sections of every discovered module by ``ORDER`` (ties by module name); a
  section with ``className="section half"`` shares its row with the next half section.
- ``VIEWS``: a list of :class:`View`, for what follows the shared filters (status boxes, grid column filters,
  parallel-coordinate brushes). The app wires each through one generic callback that reads the filtered trials
  and answers the view's ``empty`` value when there is nothing to show, so no view repeats that block.
- ``CALLBACKS``: a list of :class:`Callback`, for everything else (pickers' options, downloads, clicks). Its
  function takes the explorer first, then one argument per input and state, in order.

The module whose ``controls()`` holds a callback's first output component declares that callback, so the answer
to "who sets ``x``?" is the module that draws ``x`` (``tests/dashboards/test_views.py`` checks it). Figures
follow optuna's split: a pure function from the filtered table to the figure's data, then a renderer.

Tests call a view or a named callback as a method of ``Explorer``: ``explorer.<name>(version, statuses, brushes,
grid_model, *inputs)`` for a ``View``, ``explorer.<name>(*inputs, *states)`` for a ``Callback``.

Extension (a view that lives outside this package, no edit here): name its module in ``SEGSWEEP_VIEWS``
(comma-separated importable names), pass it as ``Explorer(..., extra_views=[module])``, or call
:func:`register` before the app is built.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pandas as pd

ENV_VIEWS = "SEGSWEEP_VIEWS"  # comma-separated module names of views defined outside the package
_REGISTERED: list[ModuleType] = []  # modules added by register()


@dataclass(frozen=True)
class Context:
    """What a render function gets: the explorer, the experiment, its filtered trials and the filters."""

    explorer: Any
    experiment: Any
    trials: pd.DataFrame
    version: dict[str, Any]
    filters: tuple[Any, ...]  # (statuses, brushes, grid filter model), for caches keyed on them


@dataclass(frozen=True)
class View:
    """A view that follows the shared filters."""

    name: str
    outputs: list[tuple[str, str]]  # (component id, property)
    inputs: list[tuple[str, str]]  # beyond the shared filters, in the render function's argument order
    render: Callable[..., Any]  # render(context, *inputs) -> one value per output
    empty: Callable[[], Any]  # the answer when no experiment is shown (or the view's inputs are unset)
    ready: Callable[..., bool] = lambda *inputs: True  # whether the inputs allow a render
    states: list[tuple[str, str]] = field(default_factory=list)  # inputs that do not trigger the view


Dependency = Any  # a (component id, property) pair, or a dash Output/Input/State (pattern ids, allow_duplicate)


@dataclass(frozen=True)
class Callback:
    """A callback that does not follow the shared filters: ``function(explorer, *inputs, *states)``.

    ``states`` may be a function of the page's graph ids (the figure export reads every graph).
    ``clientside``: JavaScript run in the browser instead (``function`` is then unused and may be None)."""

    name: str
    outputs: list[Dependency]
    inputs: list[Dependency]
    function: Callable[..., Any] | None
    states: list[Dependency] | Callable[[list[str]], list[Dependency]] = field(default_factory=list)
    prevent_initial_call: bool | str | None = None
    clientside: str | None = None


def register(module: ModuleType) -> ModuleType:
    """Add a view module defined outside the package (kept for the life of the process); returns it."""
    if module not in _REGISTERED:
        _REGISTERED.append(module)
    return module


def view_modules(extra: Iterable[ModuleType] = ()) -> list[ModuleType]:
    """Every view module: this package's (by name), ``SEGSWEEP_VIEWS``, :func:`register`-ed, then ``extra``."""
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    named = [name.strip() for name in os.environ.get(ENV_VIEWS, "").split(",") if name.strip()]
    modules += [importlib.import_module(name) for name in named]
    return list(dict.fromkeys([*modules, *_REGISTERED, *extra]))


def sections(modules: Iterable[ModuleType], explorer: Any) -> list[Any]:
    """The page sections of ``modules`` in ``ORDER`` (modules without ``controls`` or ``ORDER`` draw none);
    ``controls`` may take the explorer (e.g. to list the experiments that exist now)."""
    drawn = sorted((m for m in modules if hasattr(m, "ORDER") and hasattr(m, "controls")),
                   key=lambda m: (m.ORDER, m.__name__))
    parts: list[Any] = []
    for module in drawn:
        takes = len(inspect.signature(module.controls).parameters)
        section = module.controls(explorer) if takes else module.controls()
        parts.extend(section if isinstance(section, list) else [section])
    return parts


def registered(extra: Iterable[ModuleType] = ()) -> dict[str, View]:
    """Every filtered view by name."""
    return {view.name: view for module in view_modules(extra) for view in getattr(module, "VIEWS", ())}


def callbacks(extra: Iterable[ModuleType] = ()) -> dict[str, Callback]:
    """Every declared callback by name."""
    return {callback.name: callback for module in view_modules(extra) for callback in getattr(module, "CALLBACKS", ())}
