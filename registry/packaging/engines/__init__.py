"""Inference engines: one module per engine, each a registered `Engine` subclass.

An engine opens a candidate with one setting (graph-optimisation level, threads…) and runs it.
Verification and the benchmark (`registry.packaging.verify`, `registry.packaging.benchmark`) go
through engines only.
A runner takes the inputs by name in the model's input order; engines whose models name their
inputs differently (ExecuTorch, Core ML) pass them by position.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, Field

from registry.core.plugins import Plugins


class EngineSetting(BaseModel):
    """One way to run a candidate: the engine and its knobs."""

    engine: str = Field(description="engine name: onnxruntime, openvino, executorch or coreml")
    graph_optimization: str | None = Field(
        None, description="ONNX Runtime level: disable, basic, extended, all"
    )
    threads: int = Field(
        1, description="intra-op threads; 0: the runtime's default (all cores of the device)"
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="ONNX Runtime execution providers, in order (empty for the other engines)",
    )

    def label(self) -> str:
        """Short human name, e.g. 'onnxruntime opt=all threads=2'."""
        opt = f" opt={self.graph_optimization}" if self.graph_optimization else ""
        return f"{self.engine}{opt} threads={self.threads or 'default'}"


Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


class Engine:
    """Runs one kind of model file."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]

    def version(self) -> str | None:
        """Installed version, or None when the engine is not installed."""
        raise NotImplementedError

    def runs_here(self) -> tuple[bool, str]:
        """Whether this machine can run the engine, and why not (an install hint, or the
        platform)."""
        if self.version() is None:
            return False, f"{self.name} is not installed"
        return True, ""

    def settings(self, threads: list[int], providers: list[str]) -> list[EngineSetting]:
        """Settings the benchmark tries."""
        raise NotImplementedError

    def default_setting(self, providers: list[str]) -> EngineSetting:
        """The setting a package ships with when nothing was measured: the runtime's defaults."""
        return EngineSetting(engine=self.name, threads=0, providers=[])

    def open(self, path: Path, setting: EngineSetting) -> Runner:
        """Load the model and return a function from named inputs to the outputs, in order."""
        raise NotImplementedError

    def open_bytes(
        self, files: dict[str, bytes], model_file: str, setting: EngineSetting
    ) -> Runner:
        """Like `open`, from files held in memory (a decrypted package never touches the disk).

        Args:
            files: the package's files by their path in the package.
            model_file: the path of the main model file among them.
        """
        raise NotImplementedError


ENGINES: Plugins[Engine] = Plugins("engine", __name__)
register = ENGINES.register


def get_engine(name: str) -> Engine:
    """The engine registered as `name`.

    Raises:
        UsageError: no such engine; the hint names the nearest one.
    """
    return ENGINES.lookup(name)()
