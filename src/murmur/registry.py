"""Named, versioned plugins, registered explicitly.

Built-in sources, normalizers and enrichment components register exactly as a third-party plugin
would: by calling ``Registry.register`` from an explicit ``register_builtins()`` function, never
from a decorator at import time.

Names are dotted and carry a version, e.g. ``murmur.sentiment.lexical@1``; lookups by the bare
name (``murmur.sentiment.lexical``) return the highest registered version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from murmur.errors import MurmurError

T = TypeVar("T")


class RegistryError(MurmurError):
    """A plugin name is unknown or registered twice."""


def _split(name: str) -> tuple[str, int]:
    base, _, version = name.partition("@")
    if not version:
        return base, 0
    try:
        return base, int(version)
    except ValueError:
        msg = f"plugin name {name!r}: the part after '@' must be a whole-number version"
        raise RegistryError(msg) from None


class Registry(Generic[T]):
    """A named collection of plugins of one kind (sources, normalizers, components, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> None:
        _split(name)
        if name in self._items:
            msg = f"{self.kind} {name!r} is already registered"
            raise RegistryError(msg)
        self._items[name] = item

    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        base, version = _split(name)
        if version == 0:
            candidates = [(_split(n)[1], n) for n in self._items if _split(n)[0] == base]
            if candidates:
                return self._items[max(candidates)[1]]
        known = ", ".join(sorted(self._items)) or "none"
        msg = f"unknown {self.kind} {name!r}; registered: {known}"
        raise RegistryError(msg)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except RegistryError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return sorted(self._items)
