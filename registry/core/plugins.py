"""Families of interchangeable parts (converters, targets, lightweighting methods): a registry by name.

Each family keeps one `Plugins` table. A module of the family's package registers its class with
`@TABLE.register`; `TABLE.load()` imports every module of the package once and returns the table;
`TABLE.lookup(name)` returns a class or raises the family's error with the nearest known name.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, TypeVar

from registry.core.errors import RegistryError, UsageError

T = TypeVar("T")


class Plugins(dict, Generic[T]):
    """Classes of one family, by their `name` attribute.

    Args:
        kind: what one part is called in messages ("target", "converter", "method").
        package: the package whose modules define the parts (modules starting with '_' are skipped).
        error: the exception class raised for an unknown name.
    """

    def __init__(self, kind: str, package: str, error: type[RegistryError] = UsageError):
        super().__init__()
        self.kind, self.package, self.error = kind, package, error
        self._loaded = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make `cls` available under `cls.name`."""
        name = cls.name  # type: ignore[attr-defined]
        if name in self and self[name] is not cls:
            raise RuntimeError(f"two {self.kind}s named {name!r}")
        self[name] = cls
        return cls

    def load(self, order: Callable[[tuple[str, type[T]]], object] | None = None) -> dict[str, type[T]]:
        """Import every module of the package (once) and return the parts, sorted by name or `order`."""
        if not self._loaded:
            path = importlib.import_module(self.package).__path__
            for info in pkgutil.iter_modules(path):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
            self._loaded = True
        return dict(sorted(self.items(), key=order or (lambda kv: kv[0])))

    def lookup(self, name: str) -> type[T]:
        """The class registered as `name`.

        Raises:
            RegistryError: (the family's class) no such part; the hint names the nearest one.
        """
        parts = self.load()
        if name not in parts:
            near = difflib.get_close_matches(name, list(parts), n=1, cutoff=0.5)
            hint = (f"did you mean '{near[0]}'? " if near else "") + f"known {self.kind}s: " + ", ".join(parts)
            raise self.error(f"no {self.kind} named '{name}'", hint)
        return parts[name]
