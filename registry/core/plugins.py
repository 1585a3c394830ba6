"""Families of interchangeable parts (checks, targets, converters, engines, lightweighting methods):
one registry by name, the only plug-in mechanism of the package.

Each family keeps one `Plugins` table. A module of the family's package registers its class with
`@TABLE.register`; `TABLE.load()` imports the package's modules once per process and returns the
parts in the family's declared order; `TABLE.lookup(name)` returns a class or raises the family's
error with the nearest known name.

A family declares its order by naming a class attribute of its base class (`order_by`: a check's
`order`, a method's `cost`); every part must set it, and parts are sorted by it, then by name.
Without `order_by` parts are sorted by name. Modules whose name starts with '_' and the modules a
family lists as `helpers` hold no part and are never imported by `load`; any other module of the
package that registers nothing is a mistake `load` reports.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Generic, TypeVar

from registry.core.errors import RegistryError, UsageError

T = TypeVar("T")


class Plugins(Generic[T]):
    """Classes of one family, by their `name` attribute.

    Args:
        kind: what one part is called in messages ("check", "target", "compression method").
        package: the package whose modules define the parts.
        error: the exception class raised for an unknown name.
        order_by: the class attribute, declared on the family's base class, that orders the
            parts (lowest first, ties by name); None: by name.
        helpers: modules of the package that define no part (shared code): never imported by `load`.
    """

    def __init__(
        self,
        kind: str,
        package: str,
        error: type[RegistryError] = UsageError,
        *,
        order_by: str | None = None,
        helpers: tuple[str, ...] = (),
    ):
        self.kind, self.package, self.error = kind, package, error
        self.order_by, self.helpers = order_by, helpers
        self._parts: dict[str, type[T]] = {}
        self._sorted: dict[str, type[T]] | None = None
        self._loaded = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make `cls` available under `cls.name`.

        Raises:
            RuntimeError: another class already has that name, or `cls` lacks the family's
                `order_by` attribute (both are mistakes in the registry's own code).
        """
        name = cls.name  # type: ignore[attr-defined]
        if name in self._parts and self._parts[name] is not cls:
            other = self._parts[name]
            raise RuntimeError(
                f"two {self.kind}s named {name!r}: "
                f"{other.__module__}.{other.__qualname__} and "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        if self.order_by and not isinstance(getattr(cls, self.order_by, None), (int, float)):
            raise RuntimeError(
                f"{self.kind} {name!r} ({cls.__module__}) sets no number "
                f"'{self.order_by}', which orders the {self.kind}s"
            )
        self._parts[name] = cls
        self._sorted = None
        return cls

    def load(self) -> dict[str, type[T]]:
        """Import the package's modules (once per process) and return the parts in declared order.

        Raises:
            RuntimeError: a module of the package registers no part and is not listed in `helpers`.
        """
        if not self._loaded:
            path = importlib.import_module(self.package).__path__
            names = [
                m.name
                for m in pkgutil.iter_modules(path)
                if not m.name.startswith("_") and m.name not in self.helpers
            ]
            for name in sorted(names):
                importlib.import_module(f"{self.package}.{name}")
            defining = {cls.__module__ for cls in self._parts.values()}
            empty = [n for n in sorted(names) if f"{self.package}.{n}" not in defining]
            if empty:
                raise RuntimeError(
                    f"{self.package}.{empty[0]} registers no {self.kind}: start "
                    "its name with '_', or list it in the family's helpers"
                )
            self._loaded = True
        if self._sorted is None:
            self._sorted = dict(sorted(self._parts.items(), key=self._key))
        return self._sorted

    def _key(self, item: tuple[str, type[T]]) -> tuple:
        name, cls = item
        return (getattr(cls, self.order_by), name) if self.order_by else (name,)

    def lookup(self, name: str) -> type[T]:
        """The class registered as `name`.

        Raises:
            RegistryError: (the family's class) no such part; the hint names the nearest one.
        """
        parts = self.load()
        if name not in parts:
            near = difflib.get_close_matches(name, list(parts), n=1, cutoff=0.5)
            hint = (
                (f"did you mean '{near[0]}'? " if near else "")
                + f"known {self.kind}s: "
                + ", ".join(parts)
            )
            raise self.error(f"no {self.kind} named '{name}'", hint)
        return parts[name]
