"""ONNX model structure: a safe, typed summary of a model's graph (inputs, outputs, ops, parameters).

Loading never runs code: ONNX is protobuf. External data is not followed here (only the graph and
the shapes of initializers are read), so a summary cannot be tricked into reading outside files.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from registry.errors import ModelFormatError, missing_dependency


class TensorInfo(BaseModel):
    """One graph input or output."""

    name: str
    dtype: str = Field(description="element type, e.g. float32")
    shape: list[int | str | None] = Field(description="dimensions; a name for symbolic ones, None when unknown")


class GraphSummary(BaseModel):
    """What a reader of the model needs to know about its structure."""

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int | None = Field(description="version of the default ('ai.onnx') operator set")
    op_counts: dict[str, int] = Field(description="number of nodes of each op type")
    parameters: int = Field(description="number of elements in all initializers")
    nodes: int
    file_size: int = Field(description="size of the model file in bytes")


def summarize_onnx(path: str | os.PathLike) -> GraphSummary:
    """Summarise an ONNX file.

    Raises:
        ModelFormatError: when the file is not a readable ONNX model.
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:  # pragma: no cover - onnx is a core dependency
        raise missing_dependency("onnx") from None
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises several unrelated types for bad bytes
        raise ModelFormatError(f"{path.name} is not a readable ONNX model: {e}",
                               "export the model again with torch.onnx.export or onnx.save") from None
    graph = model.graph
    init_names = {t.name for t in graph.initializer}

    def tensor(vi) -> TensorInfo:
        t = vi.type.tensor_type
        dims: list[int | str | None] = []
        for d in t.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        try:
            dtype = helper.tensor_dtype_to_np_dtype(t.elem_type).name
        except Exception:
            dtype = TensorProto.DataType.Name(t.elem_type).lower()
        return TensorInfo(name=vi.name, dtype=dtype, shape=dims)

    params = 0
    for init in graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        params += n
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return GraphSummary(
        inputs=[tensor(i) for i in graph.input if i.name not in init_names],
        outputs=[tensor(o) for o in graph.output],
        opset=opset,
        op_counts=dict(sorted(Counter(n.op_type for n in graph.node).items())),
        parameters=params,
        nodes=len(graph.node),
        file_size=path.stat().st_size,
    )
