"""Name -> object registries.

Search spaces, algorithms, datasets and indicators register here by name; the launch form's
choices, the CLI's allowed values and the parametrized tests all read these registries, so
adding a method is one module plus one registration line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> item mapping with a human description per entry."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, item: T, help: str = "") -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        self._help[name] = help
        return item

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a toy plug-in take it out again)."""
        self.get(name)
        del self._items[name], self._help[name]

    def decorator(self, name: str, help: str = "") -> Callable[[T], T]:
        def wrap(item: T) -> T:
            return self.register(name, item, help)

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._items)}"
            ) from None

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
