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
import platform
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.core.errors import UsageError
from registry.core.plugins import Plugins


class Thresholds(BaseModel):
    """Verification limits for one precision (see docs/packaging.md)."""

    model_config = ConfigDict(extra="forbid")

    max_abs: float = Field(
        description="largest |candidate - source| allowed, scaled by max(1, max |source|)"
    )
    rel_l2: float = Field(description="largest ||candidate - source|| / ||source|| allowed")
    min_cosine: float = Field(
        description="smallest cosine similarity between candidate and source allowed"
    )


DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "fp32": Thresholds(max_abs=1e-4, rel_l2=1e-4, min_cosine=0.99999),
    "fp16": Thresholds(max_abs=1e-2, rel_l2=1e-2, min_cosine=0.999),
    "int8": Thresholds(max_abs=0.1, rel_l2=0.1, min_cosine=0.99),
}


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
    warmup: int = Field(3, ge=0, description="benchmark: untimed runs before timing")
    repeats: int = Field(20, ge=1, description="benchmark: timed runs per engine setting")
    samples: int = Field(4, ge=1, description="verification: number of generated input samples")
    seed: int = Field(0, description="verification: seed of the generated inputs")
    thresholds: dict[Literal["fp32", "fp16", "int8"], Thresholds] = Field(
        default_factory=dict, description="override the verification limits per precision"
    )

    def limits(self, precision: str) -> Thresholds:
        """The verification thresholds for a precision, overrides first."""
        return self.thresholds.get(precision) or DEFAULT_THRESHOLDS[precision]


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
            raise UsageError(
                f"{where}: '{loc}': {err['msg']}",
                f"see `registry package --list-targets` for {self.name}'s options",
            ) from e


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
