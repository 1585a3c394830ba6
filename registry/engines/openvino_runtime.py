"""openvino: OpenVINO's CPU plugin for OpenVINO IR (.xml/.bin) files."""

from __future__ import annotations

from pathlib import Path

from registry.engines import Engine, EngineSetting, Runner, register
from registry.errors import missing_dependency


@register
class OpenVinoEngine(Engine):
    """OpenVINO runtime, CPU device, latency hint, with an inference thread count."""

    name = "openvino"
    formats = ("openvino-ir",)

    def version(self) -> str | None:
        """The installed openvino version, or None."""
        try:
            import openvino
        except ImportError:
            return None
        return openvino.__version__.split("-")[0]

    def settings(self, threads: list[int], providers: list[str]) -> list[EngineSetting]:
        """One setting per thread count."""
        return [EngineSetting(engine=self.name, threads=t, providers=[]) for t in threads]

    def open(self, path: Path, setting: EngineSetting) -> Runner:
        """Compile the IR for the CPU; returns its run function (outputs in model order)."""
        try:
            import openvino as ov
        except ImportError as e:
            raise missing_dependency("openvino", "package") from e
        core = ov.Core()
        # f32: on CPUs with bf16/AMX units OpenVINO would otherwise compute in bf16 by default,
        # which the fp32 verification rightly rejects.
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": setting.threads,
                                                         "PERFORMANCE_HINT": "LATENCY",
                                                         "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        outputs = list(compiled.outputs)

        def run(feeds):
            result = request.infer(feeds)
            return [result[o].copy() for o in outputs]

        return run
