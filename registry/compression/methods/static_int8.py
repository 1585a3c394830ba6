"""Static int8 quantization (QDQ) with calibration: weights and activations int8, scales fixed
ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from registry.compression.methods import Method, MethodConfig, MethodResult, register
from registry.compression.methods._quant import (
    CalibrationReader,
    int8_floor,
    named_copy,
    quantization_api,
)


class StaticInt8Config(MethodConfig):
    per_channel: bool = Field(
        True, description="one weight scale per output channel (usually more accurate)"
    )
    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="how activation ranges are chosen from the calibration set"
    )
    samples: int = Field(
        256,
        ge=1,
        description="calibration samples used (from compress.calibration_data, "
        "else the evaluation set)",
    )
    activation_type: Literal["int8", "uint8"] = Field(
        "int8", description="integer type of the activations"
    )


@register
class StaticInt8(Method):
    """Static int8 in QDQ format, calibrated on sample inputs."""

    name = "static-int8"
    summary = (
        "ONNX Runtime static quantization (QDQ) calibrated on sample inputs, per-channel option"
    )
    cost = 20
    Config = StaticInt8Config

    def run(self, job, workdir: Path, progress) -> MethodResult:
        q = quantization_api()
        src = workdir / "named.onnx"
        named_copy(job.model_path, src)
        out = workdir / "model.onnx"
        progress(0.2, "calibrating")
        quantize_static_file(q, src, out, job, self.config)
        return MethodResult(out)

    def size_floor(self, job) -> int:
        return int8_floor(job)


def quantize_static_file(
    q,
    src: Path,
    out: Path,
    job,
    config: StaticInt8Config,
    nodes_to_exclude: list[str] | None = None,
) -> None:
    """Run `quantize_static` on `src` with the job's calibration set."""
    method = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }[config.calibration]
    act = q.QuantType.QInt8 if config.activation_type == "int8" else q.QuantType.QUInt8
    q.quantize_static(
        str(src),
        str(out),
        CalibrationReader(job.calibration_data, config.samples),
        quant_format=q.QuantFormat.QDQ,
        per_channel=config.per_channel,
        activation_type=act,
        weight_type=q.QuantType.QInt8,
        calibrate_method=method,
        nodes_to_exclude=nodes_to_exclude or [],
    )
