"""Device targets: one module per target, each a registered `Target` subclass.

A target says what it produces for a kind of device (the candidate converters it tries, in order of
preference), which engines can run the result, which CI runner builds and verifies it, and whether
this machine can verify and time it. Converters that start from the card's PyTorch source
(`pytorch:`, a `.pt2`) are candidates only when the card has one. The packaging pipeline
(`registry.packaging.build`) does the rest.

Adding a target: a module in this folder with one class decorated with `@register`, a pydantic
`Options` class whose fields carry descriptions, and heavy imports inside methods.
"""

from __future__ import annotations

import difflib
import math
import platform
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from registry.core.errors import UsageError
from registry.core.plugins import Plugins


class Thresholds(BaseModel):
    """Verification limits for one precision (see docs/packaging.md#verification).

    The rule: every float output passes when `max_abs` (its worst element) and `rel_l2` (the whole
    output) are within their limits. `rel_l2 <= r` already guarantees a cosine similarity of at
    least sqrt(1 - r^2) (`implied_cosine`), so a cosine limit is optional: set `min_cosine` only to
    demand more than that (a card's limit looser than the guarantee could never decide, and
    `TargetOptions` refuses it).
    """

    model_config = ConfigDict(extra="forbid")

    max_abs: float = Field(
        gt=0, description="largest |candidate - source| allowed, scaled by max(1, max |source|)"
    )
    rel_l2: float = Field(gt=0, description="largest ||candidate - source|| / ||source|| allowed")
    min_cosine: float | None = Field(
        None,
        le=1,
        description="smallest cosine similarity allowed; only when stricter than the cosine "
        "rel_l2 already guarantees, sqrt(1 - rel_l2^2)",
    )

    @property
    def implied_cosine(self) -> float:
        """The least cosine similarity an output within `rel_l2` can have."""
        return math.sqrt(1 - self.rel_l2**2) if self.rel_l2 < 1 else 0.0

    def cosine_problem(self) -> str | None:
        """Why `min_cosine` could never decide (at or below what `rel_l2` guarantees), or None.
        Checked where a card sets limits; packages built before this rule keep theirs."""
        if self.min_cosine is None or self.min_cosine > self.implied_cosine:
            return None
        loose = math.sqrt(max(0.0, 1 - self.min_cosine**2))
        return (
            f"min_cosine {self.min_cosine:g} never decides: rel_l2 <= {self.rel_l2:g} already "
            f"guarantees cosine >= {self.implied_cosine:.4f}; to accept outputs down to "
            f"cosine {self.min_cosine:g}, raise rel_l2 to {loose:.3g} instead (and drop "
            "min_cosine)"
        )


class ThresholdOverride(BaseModel):
    """A card's (or `--option`'s) change to one precision's limits: the fields given replace the
    defaults, the others stay."""

    model_config = ConfigDict(extra="forbid")

    max_abs: float | None = Field(None, gt=0, description="see Thresholds.max_abs")
    rel_l2: float | None = Field(None, gt=0, description="see Thresholds.rel_l2")
    min_cosine: float | None = Field(None, le=1, description="see Thresholds.min_cosine")


# int8's rel_l2 of 0.14 guarantees cosine >= 0.990; fp16's 1e-2, cosine >= 0.99995.
DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "fp32": Thresholds(max_abs=1e-4, rel_l2=1e-4),
    "fp16": Thresholds(max_abs=1e-2, rel_l2=1e-2),
    "int8": Thresholds(max_abs=0.1, rel_l2=0.14),
}


class EnginePin(BaseModel):
    """The engine setting a package ships with, when the card asks for one instead of the engine's
    default (the benchmark's advice says which setting was faster on the build machine)."""

    model_config = ConfigDict(extra="forbid")

    threads: int | None = Field(
        None, ge=0, description="intra-op threads (0: the runtime's default, all cores)"
    )
    graph_optimization: Literal["disable", "basic", "extended", "all"] | None = Field(
        None, description="ONNX Runtime's graph optimisation level"
    )


class TargetOptions(BaseModel):
    """Options every target accepts (from the card's `targets:` entry or the command line)."""

    model_config = ConfigDict(extra="forbid")

    quantize: Literal["dynamic", "static"] | None = Field(
        None, description="quantize weights to int8: dynamic, or static with `calibration` data"
    )
    per_channel: bool = Field(
        True, description="int8: one scale per output channel (else per tensor)"
    )
    calibration: str | None = Field(
        None, description="static int8: .npz/.npy file in the model folder with calibration inputs"
    )
    optimize: bool = Field(False, description="apply ONNX Runtime's offline graph optimisation")
    converter: str | None = Field(
        None, description="use only this converter instead of the target's candidates"
    )
    threads: list[int] = Field(
        default_factory=lambda: default_threads(),
        description="intra-op thread counts tried by the engine benchmark "
        "(default: 1, 2, 4, 8 up to the machine's cores)",
    )
    engine: EnginePin | None = Field(
        None,
        description="ship this engine setting instead of the engine's default: {threads: 1, "
        "graph_optimization: extended} (the benchmark's advice names a faster one)",
    )
    warmup: int = Field(3, ge=0, description="benchmark: untimed runs before timing")
    repeats: int = Field(20, ge=1, description="benchmark: timed runs per engine setting")
    samples: int = Field(4, ge=1, description="verification: number of generated input samples")
    seed: int = Field(0, description="verification: seed of the generated inputs")
    thresholds: dict[Literal["fp32", "fp16", "int8"], ThresholdOverride] = Field(
        default_factory=dict,
        description="change the verification limits per precision: {int8: {rel_l2: 0.2}} "
        "(max_abs, rel_l2, min_cosine; docs/packaging.md#verification)",
    )

    @model_validator(mode="after")
    def _limits_coherent(self) -> TargetOptions:
        for precision in self.thresholds:
            problem = self.limits(precision).cosine_problem()
            if problem:
                raise ValueError(f"thresholds.{precision}: {problem}")
        return self

    def limits(self, precision: str) -> Thresholds:
        """The verification thresholds for a precision: the defaults, changed by the overrides."""
        base = DEFAULT_THRESHOLDS[precision]
        change = self.thresholds.get(precision)
        if change is None:
            return base
        return Thresholds(**{**base.model_dump(), **change.model_dump(exclude_unset=True)})


def default_threads() -> list[int]:
    """Powers of two up to this machine's core count, at most 8."""
    import os

    cores = os.cpu_count() or 1
    return [t for t in (1, 2, 4, 8) if t <= cores] or [1]


class Target:
    """A kind of device a model is packaged for.

    Class attributes describe it (they are what `registry package --list-targets` prints).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    produces: ClassVar[str]
    converters: ClassVar[tuple[str, ...]]
    engines: ClassVar[tuple[str, ...]]
    runtime: ClassVar[str] = "onnxruntime"
    runner: ClassVar[str]
    os: ClassVar[str]
    arch: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    Options: ClassVar[type[TargetOptions]] = TargetOptions

    def native_here(self) -> tuple[bool, str]:
        """Whether this machine is the target's device (so timings mean something), and why not."""
        here_os = platform.system().lower()
        here_arch = _normal_arch(platform.machine())
        if here_os == self.os and here_arch == self.arch:
            return True, f"built on {here_os}-{here_arch}"
        return False, (
            f"cross-built on {here_os}-{here_arch} for {self.os}-{self.arch}: "
            "not measured on device"
        )

    def verification_scope(
        self, providers: list[str], engine: str = "onnxruntime"
    ) -> tuple[bool, str]:
        """(whether verification here counts as on the device, what the manifest says about it).

        Args:
            providers: ONNX Runtime providers that ran the check.
            engine: the engine that ran the chosen candidate.
        """
        native, why = self.native_here()
        return (True, "on the target's own kind of machine") if native else (False, why)

    def providers(self) -> list[str]:
        """ONNX Runtime execution providers the converted model is meant for."""
        return ["CPUExecutionProvider"]

    def verify_providers(self) -> list[str]:
        """ONNX Runtime execution providers that run the verification on this machine."""
        return ["CPUExecutionProvider"]

    def candidate_converters(self, options: TargetOptions, pytorch: bool = False) -> list[str]:
        """Converter names to try, in order of preference (an explicit converter wins).

        Args:
            options: the target's options.
            pytorch: whether the card has a PyTorch source (`pytorch:`); without one, converters
                that start from it are left out.
        Raises:
            UsageError: an unknown explicit converter, one that is not this target's, or one that
                needs a `.pt2` the card lacks.
        """
        from registry.packaging.converters import get_converter

        if options.converter:
            converter = get_converter(options.converter)  # unknown → UsageError with a suggestion
            if options.converter not in self.converters:
                raise UsageError(
                    f"converter '{options.converter}' does not build packages for {self.name}",
                    f"the converters of {self.name}: {', '.join(self.converters)} "
                    "(registry package --list-targets)",
                )
            if converter.source_format == "pt2" and not pytorch:
                raise UsageError(
                    f"converter '{options.converter}' converts the card's PyTorch source, and "
                    "the card has no 'pytorch:' field",
                    "add 'pytorch: model.pt2' (a torch.export.save file, dvc add it), or pick "
                    "another converter: " + ", ".join(self.converters),
                )
            return [options.converter]
        return [n for n in self.converters if pytorch or get_converter(n).source_format != "pt2"]

    def parse_options(self, data: dict, where: str = "target options") -> TargetOptions:
        """Validate options for this target.

        Raises:
            UsageError: an unknown option (with the nearest known one) or a bad value.
        """
        try:
            return self.Options.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                near = difflib.get_close_matches(
                    str(err["loc"][-1]), list(self.Options.model_fields), 1, 0.6
                )
                hint = (
                    f"did you mean '{near[0]}'?"
                    if near
                    else ("known options: " + ", ".join(self.Options.model_fields))
                )
                raise UsageError(
                    f"{where}: unknown option '{loc}' for target {self.name}", hint
                ) from e
            msg = err["msg"].removeprefix("Value error, ")
            hint = (
                "the limits and what each guarantees: docs/packaging.md#verification"
                if loc.startswith("thresholds") or msg.startswith("thresholds")
                else f"see `registry package --list-targets` for {self.name}'s options"
            )
            raise UsageError(f"{where}: " + (f"'{loc}': " if loc else "") + msg, hint) from e


def _normal_arch(machine: str) -> str:
    m = machine.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


TARGETS: Plugins[Target] = Plugins("target", __name__)
register = TARGETS.register


def load_all() -> dict[str, type[Target]]:
    """Every registered target, by name."""
    return TARGETS.load()


def get_target(name: str) -> Target:
    """The target registered as `name`.

    Raises:
        UsageError: no such target; the hint names the nearest one.
    """
    return TARGETS.lookup(name)()
