"""Pieces the ONNX Runtime quantization methods share: node naming and calibration data."""

from __future__ import annotations

from pathlib import Path

from registry.core.errors import missing_dependency

QUANTIZABLE_OPS = ("MatMul", "Gemm", "Conv", "Gather", "ConvTranspose")


def quantization_api():
    """The `onnxruntime.quantization` module (its quantize functions quiet), or an install hint."""
    try:
        import onnxruntime.quantization as q
    except ImportError:
        raise missing_dependency("onnxruntime") from None
    return _QuietQuantization(q)


class _QuietQuantization:
    """`onnxruntime.quantization` whose `quantize*` functions hold back the pre-processing
    suggestion they log on the root logger at every call (the report says what matters): the root
    logger's level is raised to ERROR while one runs, and put back afterwards."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if not (name.startswith("quantize") and callable(value)):
            return value

        def quiet(*args, **kwargs):
            import logging

            root = logging.getLogger()
            level = root.level
            root.setLevel(max(level, logging.ERROR))
            try:
                return value(*args, **kwargs)
            finally:
                root.setLevel(level)

        return quiet


def named_copy(src: Path, dest: Path) -> list[tuple[str, str]]:
    """Copy a model giving every node a unique name (quantization selects nodes by name).

    Returns (name, op_type) of the nodes that carry a float weight quantization can encode.
    """
    import onnx

    model = onnx.load(str(src))
    _gemm_to_matmul(model)
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


def _gemm_to_matmul(model) -> None:
    """Rewrite plain Gemm nodes (constant B, no transA, alpha = beta = 1) as MatMul + Add, in place.

    The quantizers rewrite Gemm themselves under new node names, which would make node selection
    (`nodes_to_quantize` / `nodes_to_exclude`) silently miss them; rewriting first keeps the names.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes = []
    for i, node in enumerate(g.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (
            node.op_type != "Gemm"
            or node.input[1] not in inits
            or attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
        ):
            new_nodes.append(node)
            continue
        name = node.name or f"Gemm_{i}"
        w = numpy_helper.to_array(inits[node.input[1]])
        b_name = node.input[1]
        if attrs.get("transB", 0):
            b_name = f"{node.input[1]}_t"
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), b_name))
        if len(node.input) > 2 and node.input[2]:
            mid = f"{node.output[0]}_mm"
            new_nodes.append(helper.make_node("MatMul", [node.input[0], b_name], [mid], name=name))
            new_nodes.append(
                helper.make_node("Add", [mid, node.input[2]], [node.output[0]], name=f"{name}_bias")
            )
        else:
            new_nodes.append(
                helper.make_node("MatMul", [node.input[0], b_name], [node.output[0]], name=name)
            )
    del g.node[:]
    g.node.extend(new_nodes)
    used = {x for n in g.node for x in n.input}
    unused = [t for t in g.initializer if t.name not in used]
    for t in unused:
        g.initializer.remove(t)
    onnx.checker.check_model(model)


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
    from registry.compression.onnx_files import ONNX_OVERHEAD

    n, _ = job.float_params()
    return ONNX_OVERHEAD + n
