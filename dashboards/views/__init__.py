"""The explorer's views, one module each: its controls (the page section) and one render function.

A view that follows the shared filters (status boxes, grid column filters, parallel-coordinate brushes) is a
``View``: ``dashboards.app`` wires every one through one generic callback, which reads the filtered trials and
answers the view's ``empty`` value when there is nothing to show, so no view repeats that block. Tests call a
view as ``explorer.<name>(version, statuses, brushes, grid_model, *inputs)``, like the page does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


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


def registered() -> dict[str, View]:
    """Every filtered view by name (imported here so the package needs no list to be edited elsewhere)."""
    import importlib
    import pkgutil

    views: dict[str, View] = {}
    for module in pkgutil.iter_modules(__path__):
        for view in getattr(importlib.import_module(f"{__name__}.{module.name}"), "VIEWS", ()):
            views[view.name] = view
    return views
