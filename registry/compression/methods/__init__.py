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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from registry.core.errors import CompressionError
from registry.core.plugins import Plugins

if TYPE_CHECKING:
    from registry.compression.job import CompressJob


class MethodMiss(Exception):
    """A method could not produce a candidate that meets the target (an expected outcome)."""

    def __init__(self, reason: str, candidate: MethodResult | None = None):
        super().__init__(reason)
        self.reason = reason
        self.candidate = candidate


class MethodConfig(BaseModel):
    """Base of every method's settings; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class MethodResult:
    """What a method produced: an ONNX file and the settings that made it.

    `method` names what the candidate really is when that is another method's result (a
    mixed-precision search that keeps no node in float gives plain int8): the report and the
    derived card then name that method, with `settings` as that method's full settings.
    """

    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    method: str | None = None


class Method:
    """A lightweighting method. Subclasses set `name`, `summary`, `cost`, `Config`, and implement
    `run`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    cost: ClassVar[int]  # default order: lower runs first
    Config: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, config: MethodConfig):
        self.config = config

    def run(self, job: CompressJob, workdir: Path, progress) -> MethodResult:
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
        """The smallest file this method could produce for the job's model (None: no useful
        bound)."""
        return None


METHODS: Plugins[Method] = Plugins(
    "compression method", __name__, CompressionError, order_by="cost"
)
register = METHODS.register


def load_methods() -> dict[str, type[Method]]:
    """Every registered method, in the default order (cheapest first)."""
    return METHODS.load()


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """A method instance by name with validated settings.

    Raises:
        CompressionError: unknown method name (with the nearest), or invalid settings.
    """
    cls = METHODS.lookup(name)
    try:
        config = cls.Config.model_validate(options or {})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or name}: {err['msg']}" for err in e.errors()
        )
        raise CompressionError(
            f"invalid settings for method '{name}': {problems}",
            f"see `registry compress --list-methods` for the settings of '{name}'",
        ) from None
    return cls(config)
