"""int8 quantization of ONNX models with ONNX Runtime's quantization tools.

Dynamic: weights int8, activations quantized at run time (no data needed). Static: weights and
activations int8 (QDQ format), activation ranges from calibration data the card names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from registry.core.errors import ConversionError
from registry.packaging.protocol import ModelFacts, Quantization, QuantizedWeight


def load_calibration(path: Path, input_names: list[str]) -> list[dict[str, np.ndarray]]:
    """Read calibration samples: an .npz keyed by input name, or an .npy for a one-input model.

    The first axis of each array indexes samples; each sample keeps a batch axis of 1.

    Raises:
        ConversionError: the file is missing, unreadable, or does not match the model's inputs.
    """
    if not path.is_file():
        raise ConversionError(
            f"calibration data {path} does not exist",
            "static int8 needs the calibration file the card names "
            "(targets[].calibration, a .npz keyed by input name)",
        )
    arrays = load_arrays(path, input_names)
    missing = [n for n in input_names if n not in arrays]
    if missing:
        raise ConversionError(
            f"calibration data {path} lacks the model input(s) {', '.join(missing)}",
            f"store one array per input, named {', '.join(input_names)}",
        )
    counts = {len(arrays[n]) for n in input_names}
    if len(counts) != 1 or 0 in counts:
        raise ConversionError(
            f"calibration data {path}: the inputs hold different or zero sample counts",
            "give every input the same number of samples (first axis)",
        )
    n = counts.pop()
    return [{k: arrays[k][i : i + 1] for k in input_names} for i in range(n)]


def load_arrays(path: Path, input_names: list[str]) -> dict[str, np.ndarray]:
    """Arrays of an .npz (by name) or an .npy (for the only input); never unpickles.

    Raises:
        ConversionError: the file cannot be read as numpy data.
    """
    try:
        data = np.load(path, allow_pickle=False)  # never unpickle untrusted files
        if isinstance(data, np.ndarray):
            return {input_names[0]: data} if len(input_names) == 1 else {}
        with data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError) as e:
        raise ConversionError(
            f"{path} is not a readable .npz/.npy file ({e})",
            "save it with numpy.savez(path, **{input_name: array})",
        ) from e


def quantize(
    source: Path, dest: Path, scheme: str, *, per_channel: bool, calibration: Path | None = None
) -> Quantization:
    """Quantize `source` to int8 into `dest` and return the parameters for the description block.

    Raises:
        ConversionError: static without calibration data, or ONNX Runtime's tool fails.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Shape inference and folding first, as ONNX Runtime's quantizer asks: more nodes get quantized.
    pre = dest.with_name(dest.stem + ".pre.onnx")
    try:
        try:
            # auto_merge: a transformer exported with dynamic batch and sequence has symbolic
            # dimensions that only merge this way (ONNX Runtime's own advice for BERT)
            quant_pre_process(str(source), str(pre), auto_merge=True)
        except Exception:
            # what symbolic inference cannot follow, ONNX's own shape inference still annotates
            quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
    except Exception as e:  # the tool raises whatever its passes raise
        raise ConversionError(
            f"{source.name}: preparing for int8 quantization failed: {e}",
            "drop 'quantize' from the target",
        ) from e
    source = pre
    if scheme == "dynamic":
        try:
            quantize_dynamic(
                str(source), str(dest), weight_type=QuantType.QInt8, per_channel=per_channel
            )
        except Exception as e:
            raise ConversionError(
                f"{source.name}: dynamic int8 quantization failed: {e}",
                "drop 'quantize' from the target",
            ) from e
        return Quantization(
            scheme="dynamic",
            weight_type="int8",
            granularity="per-channel" if per_channel else "per-tensor",
        )
    if calibration is None:
        raise ConversionError(
            "static int8 quantization needs calibration data, and the target names none",
            "add 'calibration: calib.npz' (inputs keyed by name) to the card's target entry, "
            "or use 'quantize: dynamic'",
        )
    model = onnx.load(str(source), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    samples = load_calibration(calibration, names)

    class Reader(CalibrationDataReader):
        """Feeds the calibration samples to ONNX Runtime's calibrator, one at a time."""

        def __init__(self) -> None:
            self._it = iter(samples)

        def get_next(self):
            """The next sample, or None at the end."""
            return next(self._it, None)

    try:
        quantize_static(
            str(source),
            str(dest),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
    except Exception as e:
        raise ConversionError(
            f"{source.name}: static int8 quantization failed: {e}",
            "check that the calibration inputs match the model's input shapes",
        ) from e
    return Quantization(
        scheme="static",
        weight_type="int8",
        activation_type="uint8",
        granularity="per-channel" if per_channel else "per-tensor",
        calibration_sha256=hashlib.sha256(calibration.read_bytes()).hexdigest(),
        calibration_samples=len(samples),
    )


# Operator types that compute on quantized numbers (ONNX and ONNX Runtime's contrib domain).
QUANTIZED_OPERATORS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "DynamicQuantizeLSTM",
        "QAttention",
        "QGemm",
        "QEmbedLayerNormalization",
    }
)
_INT8 = {2: "uint8", 3: "int8"}


def _is_quantized_op(op_type: str) -> bool:
    return op_type in QUANTIZED_OPERATORS or op_type.startswith("QLinear")


def weight_facts(model) -> ModelFacts:
    """The weight data types and quantized operators of an ONNX ModelProto (subgraphs included).

    Weights are initializers of more than one element: scales, zero points and shape constants
    are single numbers or short, and say nothing about how the weights are stored.
    """
    from onnx import helper

    dtypes: set[str] = set()
    ops: set[str] = set()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for init in graph.initializer:
            count = 1
            for d in init.dims:
                count *= d
            if count > 1 and not init.name.endswith(("_scale", "_zero_point")):
                dtypes.add(
                    _INT8.get(init.data_type)
                    or helper.tensor_dtype_to_np_dtype(init.data_type).name
                )
        for node in graph.node:
            if _is_quantized_op(node.op_type):
                ops.add(node.op_type)
            graphs.extend(a.g for a in node.attribute if a.HasField("g"))
    return ModelFacts(weight_dtypes=sorted(dtypes), quantized_operators=sorted(ops))


def ort_weight_facts(data: bytes, block_text: str) -> ModelFacts:
    """The quantized operators an ORT-format file names (its flatbuffer keeps operator types as
    plain strings); its weight types are not read. `block_text`, the description block stored in
    the file, is left out of the search."""
    body = data.replace(block_text.encode(), b"") if block_text else data
    names = sorted(op for op in QUANTIZED_OPERATORS if op.encode() in body)
    if b"QLinear" in body:
        names.append("QLinear*")
    return ModelFacts(weight_dtypes=[], quantized_operators=names)


def quantization_parameters(model) -> tuple[list[str], list[QuantizedWeight]]:
    """The quantized operator types of a quantized ONNX ModelProto, and each quantized weight with
    the initializers of its scale and zero point.

    ONNX Runtime's quantizer stores weight `W` as `W_quantized` with `W_scale` and `W_zero_point`
    (dynamic), or feeds an int8 initializer to a `DequantizeLinear` with its scale and zero point
    as inputs 1 and 2 (static QDQ).
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}

    def count(name: str | None) -> int:
        if name is None or name not in inits:
            return 1
        n = 1
        for d in inits[name].dims:
            n *= d
        return n

    found: dict[str, QuantizedWeight] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input and node.input[0] in inits:
            scale = node.input[1] if len(node.input) > 1 else None
            zero = node.input[2] if len(node.input) > 2 else None
            found[node.input[0]] = QuantizedWeight(
                weight=node.input[0], scale=scale, zero_point=zero, scales=count(scale)
            )
    for name, init in inits.items():
        if init.data_type in _INT8 and name.endswith("_quantized") and name not in found:
            base = name.removesuffix("_quantized")
            scale = f"{base}_scale" if f"{base}_scale" in inits else None
            zero = f"{base}_zero_point" if f"{base}_zero_point" in inits else None
            found[name] = QuantizedWeight(
                weight=name, scale=scale, zero_point=zero, scales=count(scale)
            )
    return weight_facts(model).quantized_operators, [found[k] for k in sorted(found)]
