"""int8 quantization of ONNX models with ONNX Runtime's quantization tools.

Dynamic: weights int8, activations quantized at run time (no data needed). Static: weights and
activations int8 (QDQ format), activation ranges from calibration data the card names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from registry.core.errors import ConversionError
from registry.packaging.protocol import Quantization


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
