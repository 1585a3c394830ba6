"""Dynamic int8 quantization with ONNX Runtime: weights int8 ahead of time, activations at run
time."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from registry.compression.methods import Method, MethodConfig, MethodResult, register
from registry.compression.methods._quant import int8_floor, named_copy, quantization_api


class DynamicInt8Config(MethodConfig):
    per_channel: bool = Field(
        True,
        description="one scale per output channel instead of per tensor (as packaging's int8)",
    )
    reduce_range: bool = Field(
        False, description="7-bit weights, for CPUs without VNNI where int8 can saturate"
    )
    op_types: list[str] | None = Field(
        None, description="operator types to quantize (default: all ORT supports)"
    )


@register
class DynamicInt8(Method):
    """Dynamic int8: no calibration data, about 4x smaller weights; the cheapest method."""

    name = "dynamic-int8"
    summary = "ONNX Runtime dynamic quantization: int8 weights, activations quantized on the fly"
    cost = 10
    Config = DynamicInt8Config

    def run(self, job, workdir: Path, progress) -> MethodResult:
        q = quantization_api()
        src = workdir / "named.onnx"
        named_copy(job.model_path, src)
        out = workdir / "model.onnx"
        progress(0.2, "quantizing")
        q.quantize_dynamic(
            str(src),
            str(out),
            per_channel=self.config.per_channel,
            reduce_range=self.config.reduce_range,
            weight_type=q.QuantType.QInt8,
            op_types_to_quantize=self.config.op_types,
        )
        return MethodResult(out)

    def size_floor(self, job) -> int:
        return int8_floor(job)
