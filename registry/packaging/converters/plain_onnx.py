"""onnx: the prepared ONNX model as it is, for ONNX Runtime (CPU or GPU builds)."""

from __future__ import annotations

import shutil
from pathlib import Path

from registry.packaging.converters import Candidate, OnnxFileConverter, onnx_facts, register
from registry.packaging.protocol import min_onnxruntime_for


@register
class OnnxConverter(OnnxFileConverter):
    """Keeps the ONNX graph (float32, or int8 when quantized before conversion)."""

    name = "onnx"
    summary = "ONNX file for ONNX Runtime, unchanged apart from the preparation steps"

    def convert(
        self, source: Path, out_dir: Path, *, precision: str, runtime: str, options
    ) -> Candidate:
        """Copy the prepared model: it already carries its description block."""
        import onnxruntime

        dest = out_dir / "model.onnx"
        shutil.copyfile(source, dest)
        opset, ir = onnx_facts(dest)
        return Candidate(
            converter=self.name,
            path=dest,
            files=[dest],
            format="onnx",
            engine="onnxruntime",
            precision=precision,
            weight_dtype="int8" if precision == "int8" else "float32",
            runtime=runtime,
            min_runtime_version=min_onnxruntime_for(opset, ir),
            tools={"onnxruntime": onnxruntime.__version__},
        )
