"""The description block: what a converted model needs to run, carried inside the model itself.

Protocol version 1 is documented in docs/protocol.md. The block is a JSON object stored under the
key `registry.description` in an ONNX model's `metadata_props` (and an OpenVINO model's `rt_info`),
and always copied into the package's `manifest.json`. Anyone holding the converted model can read
what runtime it needs, how it was quantized and where it came from, without separate records.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.core.errors import ConversionError, ModelFormatError

PROTOCOL_VERSION = 1
METADATA_KEY = "registry.description"


class QuantizedWeight(BaseModel):
    """Where one quantized weight's scale and zero point live."""

    model_config = ConfigDict(extra="forbid")

    weight: str = Field(description="the int8 weight tensor")
    scale: str | None = Field(None, description="the tensor of its scale(s)")
    zero_point: str | None = Field(None, description="the tensor of its zero point(s)")
    scales: int = Field(1, description="how many scales: 1 per tensor, or one per channel")


class ModelFacts(BaseModel):
    """What a model file itself shows about its numbers, to hold its description block to."""

    weight_dtypes: list[str] = Field(
        description="data types of its weight tensors (more than one element)"
    )
    quantized_operators: list[str] = Field(description="quantized operator types it runs")

    def contradicts(self, block: DescriptionBlock) -> str | None:
        """What in the block the model contradicts (None when nothing does)."""
        ops = ", ".join(self.quantized_operators[:4])
        int8 = bool(self.quantized_operators) or bool({"int8", "uint8"} & set(self.weight_dtypes))
        if block.quantized and not int8:
            return (
                f"the description block says int8 ({block.weight_dtype} weights, quantized), but "
                f"the model runs no quantized operator and its weights are "
                f"{', '.join(self.weight_dtypes) or 'none'}"
            )
        # (a float model may hold quantize/dequantize pairs of its own: only int8 weights count)
        if not block.quantized and {"int8", "uint8"} & set(self.weight_dtypes):
            return (
                f"the description block says not quantized ({block.weight_dtype} weights), but the "
                f"model stores int8 weights"
                + (f" and runs quantized operators ({ops})" if ops else "")
            )
        wants = {"float16": "float16", "float32": "float32"}.get(block.weight_dtype)
        if wants and self.weight_dtypes and wants not in self.weight_dtypes:
            return (
                f"the description block says {block.weight_dtype} weights, but the model's "
                f"weights are {', '.join(self.weight_dtypes)}"
            )
        return None


class Quantization(BaseModel):
    """How a model's weights were quantized (absent for float models)."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["dynamic", "static"] = Field(
        description="dynamic: activations quantized at run "
        "time; static: activation ranges from calibration data"
    )
    weight_type: str = Field("int8", description="quantized weight type (int8, uint8)")
    activation_type: str | None = Field(
        None, description="quantized activation type for static (uint8, int8)"
    )
    granularity: Literal["per-channel", "per-tensor"] = Field(
        description="one scale per output channel or per tensor"
    )
    calibration_sha256: str | None = Field(
        None, description="SHA-256 of the calibration data file (static only)"
    )
    calibration_samples: int | None = Field(
        None, description="number of calibration samples used (static only)"
    )
    operators: list[str] = Field(
        default_factory=list,
        description="the quantized operator types in the model (MatMulInteger, DequantizeLinear…)",
    )
    parameters: list[QuantizedWeight] = Field(
        default_factory=list,
        description="each quantized weight with the tensors holding its scale and zero point "
        "(ONNX initializers, as named in the quantized ONNX model)",
    )


class DescriptionBlock(BaseModel):
    """Protocol v1 description block (docs/protocol.md)."""

    model_config = ConfigDict(extra="forbid")

    protocol: int = Field(PROTOCOL_VERSION, description="version of this protocol")
    runtime: str = Field(
        description="kind of inference stack: onnxruntime, onnxruntime-mobile, openvino"
    )
    min_runtime_version: str = Field(description="oldest runtime version that can run the model")
    execution_providers: list[str] = Field(
        default_factory=list, description="ONNX Runtime execution providers the model is meant for"
    )
    format: str = Field(description="file format: onnx, ort, openvino-ir")
    opset: int | None = Field(None, description="default-domain ONNX opset of the converted model")
    ir_version: int | None = Field(None, description="ONNX IR version of the converted model")
    weight_dtype: str = Field(description="data type of the weights: float32, float16, int8")
    quantized: bool = Field(description="whether the weights are quantized")
    quantization: Quantization | None = Field(
        None, description="quantization parameters when quantized"
    )
    optimized: str | None = Field(
        None, description="offline graph-optimisation level applied, if any"
    )
    processing: list[str] = Field(
        default_factory=list, description="pre/post-processing merged into the graph"
    )
    source_model: str = Field(description="'<name>@<version>' of the published model")
    source_sha256: str = Field(description="SHA-256 of the source ONNX file")
    target: str = Field(description="target the model was converted for")
    converter: str = Field(description="converter that produced the model")
    tools: dict[str, str] = Field(
        default_factory=dict, description="versions of the converter and its tools"
    )


def write_onnx_block(model, block: DescriptionBlock) -> None:
    """Store the block in an ONNX ModelProto's `metadata_props` (replacing an older one)."""
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = block.model_dump_json(exclude_none=False)


def read_onnx_block(path: Path) -> DescriptionBlock | None:
    """Read the block from an ONNX file's `metadata_props` (None when it has none).

    Raises:
        ModelFormatError: the file is not ONNX or its block is not protocol-conforming JSON.
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends
        raise ModelFormatError(f"{path}: not a readable ONNX model ({e})") from e
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            return parse_block(p.value, str(path))
    return None


def parse_block(text: str, where: str) -> DescriptionBlock:
    """Validate a block's JSON text.

    Raises:
        ModelFormatError: not JSON, or a newer protocol than this registry understands.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFormatError(f"{where}: the description block is not JSON ({e})") from e
    if (
        isinstance(data, dict)
        and isinstance(data.get("protocol"), int)
        and data["protocol"] > PROTOCOL_VERSION
    ):
        raise ModelFormatError(
            f"{where}: description block protocol {data['protocol']} is newer than "
            f"this registry understands ({PROTOCOL_VERSION})",
            "upgrade git-model-registry",
        )
    try:
        return DescriptionBlock.model_validate(data)
    except Exception as e:
        raise ModelFormatError(
            f"{where}: the description block does not follow protocol {PROTOCOL_VERSION}: {e}"
        ) from e


def version_tuple(version: str) -> tuple[int, ...]:
    """'1.18.0' → (1, 18, 0); suffixes such as '+cpu' or 'rc1' are ignored."""
    parts = []
    for piece in version.split("+")[0].split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


class RuntimeTooOldError(ConversionError):
    """The installed inference runtime is older than the description block's minimum."""


def check_runtime(block: DescriptionBlock, runtime: str, installed: str) -> None:
    """Refuse a runtime of the wrong kind or older than the block's minimum.

    Args:
        block: the model's description block.
        runtime: the kind of runtime at hand (onnxruntime, openvino).
        installed: its version.
    Raises:
        RuntimeTooOldError: with the versions and the upgrade command.
    """
    wanted = "onnxruntime" if block.runtime.startswith("onnxruntime") else block.runtime
    if runtime != wanted:
        raise RuntimeTooOldError(
            f"the model needs {block.runtime}, not {runtime}",
            f"pip install '{wanted}>={block.min_runtime_version}'",
        )
    if version_tuple(installed) < version_tuple(block.min_runtime_version):
        raise RuntimeTooOldError(
            f"the model ({block.source_model}, target {block.target}) needs {block.runtime} >= "
            f"{block.min_runtime_version}; this machine has {runtime} {installed}",
            f"pip install -U '{wanted}>={block.min_runtime_version}'",
        )


# Oldest ONNX Runtime release that implements each default-domain opset (ORT's compatibility table).
ORT_FOR_OPSET = {
    7: "1.0",
    8: "1.0",
    9: "1.0",
    10: "1.0",
    11: "1.0",
    12: "1.3",
    13: "1.6",
    14: "1.7",
    15: "1.10",
    16: "1.11",
    17: "1.12",
    18: "1.14",
    19: "1.16",
    20: "1.17",
    21: "1.18",
    22: "1.20",
    23: "1.22",
}


def min_onnxruntime_for(opset: int, ir_version: int) -> str:
    """The oldest ONNX Runtime that runs a model of this opset and IR version."""
    by_ir = {9: "1.15", 10: "1.17", 11: "1.20"}.get(ir_version, "1.0")
    by_opset = ORT_FOR_OPSET.get(opset, max(ORT_FOR_OPSET.values(), key=version_tuple))
    return max(by_ir, by_opset, key=version_tuple)
