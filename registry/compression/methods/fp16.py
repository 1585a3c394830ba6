"""fp16: every float weight and activation in half precision (inputs and outputs stay fp32)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from registry.compression.methods import Method, MethodConfig, MethodResult, register
from registry.core.errors import missing_dependency


class Fp16Config(MethodConfig):
    keep_io_types: bool = Field(True, description="keep the model's inputs and outputs in fp32")
    op_block_list: list[str] = Field(
        default_factory=list, description="operator types to keep in fp32"
    )


@register
class Fp16(Method):
    """Half precision: 2x smaller, accuracy nearly always kept."""

    name = "fp16"
    summary = "convert float weights and activations to fp16 (ONNX Runtime's float16 converter)"
    cost = 30
    Config = Fp16Config

    def run(self, job, workdir: Path, progress) -> MethodResult:
        import onnx

        try:
            from onnxruntime.transformers.float16 import convert_float_to_float16
        except ImportError:
            raise missing_dependency("onnxruntime") from None
        model = onnx.load(str(job.model_path))
        progress(0.3, "converting")
        kwargs = {"keep_io_types": self.config.keep_io_types}
        if self.config.op_block_list:
            kwargs["op_block_list"] = self.config.op_block_list
        half = convert_float_to_float16(model, **kwargs)
        out = workdir / "model.onnx"
        onnx.save(half, str(out))
        return MethodResult(out)

    def size_floor(self, job) -> int:
        from registry.compression.onnx_files import ONNX_OVERHEAD

        n, _ = job.float_params()
        return ONNX_OVERHEAD + 2 * n
