"""executorch: ExecuTorch's runtime (Python bindings: portable kernels + XNNPACK) for .pte
programs."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from registry.core.errors import missing_dependency
from registry.packaging.engines import Engine, EngineSetting, Runner, register

_DEFAULT_THREADS: int | None = None  # the XNNPACK thread pool's size before any setting changed it


@register
class ExecuTorchEngine(Engine):
    """ExecuTorch's `Runtime`, method `forward`, with a thread count for the XNNPACK thread pool.

    On the build machine this is the same .pte and the same delegate as on the device, compiled
    for the build machine's CPU.
    """

    name = "executorch"
    formats = ("pte",)

    def version(self) -> str | None:
        """The installed ExecuTorch version, or None."""
        from registry.packaging.converters.executorch_pte import executorch_version

        return executorch_version()

    def settings(self, threads: list[int], providers: list[str]) -> list[EngineSetting]:
        """One setting per thread count (0: the thread pool's default size)."""
        return [EngineSetting(engine=self.name, threads=t, providers=[]) for t in threads]

    def open(self, path: Path, setting: EngineSetting) -> Runner:
        """Load the program from its file; returns its run function."""
        return self._load(Path(path).read_bytes(), setting)

    def open_bytes(
        self, files: dict[str, bytes], model_file: str, setting: EngineSetting
    ) -> Runner:
        """Load the program from its bytes held in memory."""
        return self._load(files[model_file], setting)

    def _load(self, data: bytes, setting: EngineSetting) -> Runner:
        global _DEFAULT_THREADS
        try:
            import numpy as np
            import torch
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError as e:
            raise missing_dependency("executorch", "mobile") from e
        # The bindings print the thread pool's CPU probing ("[cpuinfo_utils.cpp:71] Reading file …")
        # through Python's standard error: nothing a user of the registry can act on.
        with contextlib.redirect_stderr(io.StringIO()):
            if _DEFAULT_THREADS is None:
                _DEFAULT_THREADS = (
                    portable_lib._threadpool_get_thread_count() or os.cpu_count() or 1
                )
            # One thread pool per process; resetting it between runs is safe (nothing else runs).
            wanted = setting.threads or _DEFAULT_THREADS
            if portable_lib._threadpool_get_thread_count() != wanted:
                portable_lib._unsafe_reset_threadpool(wanted)
            # The program owns the method's memory arenas: it must live as long as the method.
            program = Runtime.get().load_program(data)
            method = program.load_method("forward")

        def run(feeds, program=program):
            """Outputs for one set of inputs, passed in the model's input order."""
            args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
            return [
                o.detach().numpy().copy() if isinstance(o, torch.Tensor) else np.asarray(o)
                for o in method.execute(args)
            ]

        return run
