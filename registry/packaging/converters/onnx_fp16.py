"""onnx-fp16: float16 weights and compute for ONNX Runtime's CUDA / TensorRT execution providers."""

from __future__ import annotations

from pathlib import Path

from registry.core.errors import ConversionError
from registry.packaging.converters import Candidate, OnnxFileConverter, onnx_facts, register
from registry.packaging.protocol import min_onnxruntime_for


@register
class OnnxFp16Converter(OnnxFileConverter):
    """Converts float32 tensors to float16 with ONNX Runtime's float16 tool."""

    name = "onnx-fp16"
    summary = "float16 ONNX (onnxruntime.transformers.float16), float32 inputs/outputs kept"

    def convert(
        self, source: Path, out_dir: Path, *, precision: str, runtime: str, options
    ) -> Candidate:
        """Convert every float32 initializer and op to float16.

        Raises:
            ConversionError: the model is int8 already (nothing to halve), or the tool fails.
        """
        import onnx
        import onnxruntime
        from onnxruntime.transformers.float16 import convert_float_to_float16

        if precision == "int8":
            raise ConversionError(
                f"{source.name}: onnx-fp16 cannot convert an int8-quantized model",
                "drop 'quantize' from this target, or pick the 'onnx' converter",
            )
        model = onnx.load(str(source))
        try:
            half = convert_float_to_float16(
                model, keep_io_types=getattr(options, "keep_io_types", True)
            )
        except Exception as e:
            raise ConversionError(
                f"{source.name}: float16 conversion failed: {e}",
                "set 'fp32_fallback: true' in the target's options",
            ) from e
        dest = out_dir / "model.onnx"
        onnx.save(half, str(dest))
        opset, ir = onnx_facts(dest)
        return Candidate(
            converter=self.name,
            path=dest,
            files=[dest],
            format="onnx",
            engine="onnxruntime",
            precision="fp16",
            weight_dtype="float16",
            runtime=runtime,
            min_runtime_version=min_onnxruntime_for(opset, ir),
            tools={"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
        )
