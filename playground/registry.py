"""A tiny name -> builder table, as torchvision's ``_api.py`` and fvcore's op tables do.

Config files, URLs and the UI store names only; a :class:`Registry` turns a name into an object.
Registering a name twice is a programming error and raises at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from playground.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping of names to entries (usually builder callables)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, entry: T, help: str = "") -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        self._help[name] = help
        return entry

    def add(self, name: str, help: str = "") -> Callable[[T], T]:
        """Decorator form of :meth:`register`."""

        def deco(entry: T) -> T:
            return self.register(name, entry, help)

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose one of: {known}"
            ) from None

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
