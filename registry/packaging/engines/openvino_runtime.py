"""openvino: OpenVINO's CPU plugin for OpenVINO IR (.xml/.bin) files."""

from __future__ import annotations

from pathlib import Path

from registry.core.errors import missing_dependency
from registry.packaging.engines import Engine, EngineSetting, Runner, register


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
        return self._compile(self._ov().Core().read_model(str(path)), setting)

    def open_bytes(
        self, files: dict[str, bytes], model_file: str, setting: EngineSetting
    ) -> Runner:
        """Compile the IR from its .xml text and .bin weights held in memory."""
        import numpy as np

        ov = self._ov()
        weights = files.get(model_file.rsplit(".", 1)[0] + ".bin", b"")
        model = ov.Core().read_model(
            model=files[model_file].decode(),
            weights=ov.Tensor(np.frombuffer(weights, np.uint8).copy()),
        )
        return self._compile(model, setting)

    @staticmethod
    def _ov():
        try:
            import openvino as ov
        except ImportError as e:
            raise missing_dependency("openvino", "package") from e
        return ov

    def _compile(self, model, setting: EngineSetting) -> Runner:
        core = self._ov().Core()
        # f32: on CPUs with bf16/AMX units OpenVINO would otherwise compute in bf16 by default,
        # which the fp32 verification rightly rejects.
        compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_NUM_THREADS": setting.threads,
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        request = compiled.create_infer_request()
        outputs = list(compiled.outputs)

        def run(feeds):
            """Outputs for one set of named inputs."""
            result = request.infer(feeds)
            return [result[o].copy() for o in outputs]

        return run
