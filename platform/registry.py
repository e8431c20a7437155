"""A small, explicit name -> class registry (``@TRAINERS.register("advnorm")``), whose entries may live in
modules imported only when their name is first asked for (``add_lazy``): a process imports only what it runs."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes; unknown names get an error that suggests the closest name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, str] = {}  # name -> the module that registers it when imported

    def add_lazy(self, name: str, module: str) -> None:
        """Declare that importing ``module`` registers ``name`` (it is imported on the first ``get(name)``)."""
        if name not in self._entries:
            self._lazy[name] = module

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries and name in self._lazy:
            module = self._lazy.pop(name)
            importlib.import_module(module)
            if name not in self._entries:
                raise KeyError(f"module {module} registers no {self.kind} named {name!r}: a {self.kind} module "
                               f"registers itself under its file's name")
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())}."

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._lazy})
