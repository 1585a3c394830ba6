"""Pieces the ONNX Runtime quantization methods share: node naming and calibration data."""

from __future__ import annotations

from pathlib import Path

from registry.errors import missing_dependency

QUANTIZABLE_OPS = ("MatMul", "Gemm", "Conv", "Gather", "ConvTranspose")


def quantization_api():
    """The `onnxruntime.quantization` module, or an install hint."""
    import logging

    try:
        import onnxruntime.quantization as q
    except ImportError:
        raise missing_dependency("onnxruntime") from None
    # it logs a pre-processing suggestion on the root logger for every call; the report says what matters
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    return q


def named_copy(src: Path, dest: Path) -> list[tuple[str, str]]:
    """Copy a model giving every node a unique name (quantization selects nodes by name).

    Returns (name, op_type) of the nodes that carry a float weight quantization can encode.
    """
    import onnx

    model = onnx.load(str(src))
    inits = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    seen: set[str] = set()
    weighted = []
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
        if node.op_type in QUANTIZABLE_OPS and any(x in inits for x in node.input):
            weighted.append((node.name, node.op_type))
    onnx.save(model, str(dest))
    return weighted


class CalibrationReader:
    """Feeds the calibration set to `quantize_static`, a few samples per batch."""

    def __init__(self, data, limit: int, batch: int = 16):
        self._feeds = list(data.head(limit).batches(batch))
        self._i = 0

    def get_next(self):
        if self._i >= len(self._feeds):
            return None
        self._i += 1
        return self._feeds[self._i - 1]

    def rewind(self) -> None:
        self._i = 0


def int8_floor(job) -> int:
    """Smallest size an int8 encoding of the job's model can have: one byte per float weight."""
    n, other = job.float_params()
    return other + n
