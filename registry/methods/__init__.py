"""Lightweighting methods: one module and one class each, registered by name.

A method turns the original ONNX model into one candidate (a new ONNX file) for `registry compress`
to measure against the target. Each method declares a pydantic `Config` whose field descriptions
are what `registry compress --list-methods` and docs/compress.md print, and a `cost` that sets the
default order (cheapest first). Heavy imports (onnxruntime.quantization, torch) happen inside `run`.

Two kinds of failure are kept apart, as the fallback chain needs:
- `MethodMiss`: the method ran but cannot meet the target, or does not apply to this model (a
  graph it cannot rebuild, no training data). Expected; the chain tries the next method.
- `CompressionError` (or any other error): bad input or a bug. The run stops.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from registry.errors import CompressionError

if TYPE_CHECKING:
    from registry.compress import CompressJob


class MethodMiss(Exception):
    """A method could not produce a candidate that meets the target (an expected outcome)."""

    def __init__(self, reason: str, candidate: Candidate | None = None):
        super().__init__(reason)
        self.reason = reason
        self.candidate = candidate


class MethodConfig(BaseModel):
    """Base of every method's settings; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Candidate:
    """What a method produced: an ONNX file and the settings that made it."""

    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Method:
    """A lightweighting method. Subclasses set `name`, `summary`, `cost`, `Config`, and implement `run`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    cost: ClassVar[int]  # default order: lower runs first
    Config: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, config: MethodConfig):
        self.config = config

    def run(self, job: CompressJob, workdir: Path, progress) -> Candidate:
        """Produce a candidate in `workdir`.

        Args:
            job: the model, data, target and evaluator of this run.
            workdir: a private folder for this attempt's files.
            progress: callable(fraction 0..1, text) to report progress.

        Raises:
            MethodMiss: the method cannot meet the target or does not apply.
            CompressionError: bad input.
        """
        raise NotImplementedError

    def size_floor(self, job: CompressJob) -> int | None:
        """The smallest file this method could produce for the job's model (None: no useful bound)."""
        return None


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available under `cls.name`."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise RuntimeError(f"two methods named {cls.name!r}")
    METHODS[cls.name] = cls
    return cls


def load_methods() -> dict[str, type[Method]]:
    """Import every module of this package (which registers its method) and return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(METHODS.items(), key=lambda kv: (kv[1].cost, kv[0])))


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """A method instance by name with validated settings.

    Raises:
        CompressionError: unknown method name (with the nearest), or invalid settings.
    """
    methods = load_methods()
    if name not in methods:
        import difflib

        near = difflib.get_close_matches(name, list(methods), n=1, cutoff=0.5)
        raise CompressionError(f"unknown compression method '{name}'",
                               (f"did you mean '{near[0]}'? " if near else "")
                               + "known methods: " + ", ".join(methods))
    cls = methods[name]
    try:
        config = cls.Config.model_validate(options or {})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or name}: {err['msg']}" for err in e.errors())
        raise CompressionError(f"invalid settings for method '{name}': {problems}",
                               f"see `registry compress --list-methods` for the settings of '{name}'") from None
    return cls(config)
