"""What a weights file holds, as plain data: `GraphSummary`, and the text the bot's report shows.

`GraphSummary` is plain data (the release notes diff two of them): inputs, outputs, opsets, op
counts, parameters, size and md5. `summarize` reads any readable weights file (by its magic
bytes, see `registry.formats.weights`); an ONNX file is memory-mapped and read by
`registry.formats.onnx_wire`, which skips the tensors' values. `summary_text` is what the bot's
report shows.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from registry.core.storage import file_md5
from registry.formats import onnx_wire
from registry.formats.weights import (
    WeightsFormat,
    detect_format,
    read_safetensors_header,
    require_complete,
    require_onnx_format,
    unparsable_error,
)


class TensorInfo(BaseModel):
    """A graph input or output: name, shape (ints, symbolic names, or None when unknown), dtype."""

    name: str
    shape: list[int | str | None] | None = Field(None, description="None when the rank is unknown")
    dtype: str


class GraphSummary(BaseModel):
    """What a model's weights file holds, as plain, stable data (sorted keys, no objects).

    The release notes compare two of these, so fields are only added, never renamed.
    """

    format: WeightsFormat
    inputs: list[TensorInfo] = Field(default_factory=list)
    outputs: list[TensorInfo] = Field(default_factory=list)
    opsets: dict[str, int] = Field(
        default_factory=dict, description="domain ('ai.onnx' for the default) -> version"
    )
    ir_version: int | None = None
    producer: str | None = Field(
        None, description="producer name and version, as the file records them"
    )
    op_counts: dict[str, int] = Field(
        default_factory=dict, description="op type -> number of nodes, subgraphs included"
    )
    node_count: int = 0
    parameter_count: int = Field(
        0, description="elements in all initializers (ONNX) or tensors (safetensors)"
    )
    tensor_count: int = Field(0, description="number of initializers or tensors")
    external_data: list[str] = Field(
        default_factory=list, description="external data files, relative to the model file"
    )
    file_size: int
    md5: str


class _mapped:
    """A file's bytes as a read-only buffer: memory-mapped (pages never touched are never read)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> memoryview:
        import mmap

        self._file = open(self.path, "rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            self._map = None
            self._view = memoryview(b"")
        else:
            self._view = memoryview(self._map)
        return self._view

    def __exit__(self, *exc) -> None:
        self._view.release()
        if self._map is not None:
            self._map.close()
        self._file.close()


def _elements(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def tensor_info(v: onnx_wire.ValueInfo) -> TensorInfo:
    """A graph input or output as the summary keeps it (non-tensor values: their kind as dtype)."""
    if v.kind == "tensor":
        return TensorInfo(
            name=v.name,
            shape=v.shape,
            dtype=onnx_wire.DTYPE_NAMES.get(v.elem_type, f"type{v.elem_type}"),
        )
    return TensorInfo(name=v.name, shape=None, dtype=v.kind)


def summarize_onnx(path: str | os.PathLike, md5: str | None = None) -> GraphSummary:
    """Summarise an ONNX file: inputs, outputs, opsets, op counts, parameters, size and md5.

    The file is memory-mapped and read by `registry.formats.onnx_wire`, which skips the tensors'
    values:
    a summary costs about the same for a 1 GB model as for a 1 MB one.

    Args:
        path: the .onnx file.
        md5: the file's md5 when the caller already verified it (a content-addressed object),
            to avoid hashing the file again.

    Raises:
        ModelFormatError: when the file is not a readable ONNX model.
    """
    path = Path(path)
    require_onnx_format(path)
    with _mapped(path) as data:
        try:
            model = onnx_wire.read_model(data)
        except onnx_wire.WireError as e:
            raise unparsable_error(path, data, e) from None
        g = model.graph
        require_complete(path, data, model.ir_version, len(g.outputs))
    counts: dict[str, int] = {}
    for domain, op in g.nodes:
        key = op if domain in ("", "ai.onnx") else f"{domain}.{op}"
        counts[key] = counts.get(key, 0) + 1
    producer = " ".join(x for x in (model.producer_name, model.producer_version) if x) or None
    return GraphSummary(
        format=WeightsFormat.onnx,
        inputs=[tensor_info(v) for v in g.inputs if v.name not in g.initializer_names],
        outputs=[tensor_info(v) for v in g.outputs],
        opsets=dict(sorted((domain or "ai.onnx", version) for domain, version in model.opsets)),
        ir_version=model.ir_version,
        producer=producer,
        op_counts=dict(sorted(counts.items())),
        node_count=len(g.nodes),
        parameter_count=sum(_elements(t.dims) for t in g.initializers)
        + sum(_elements(d) for d in g.sparse_dims),
        tensor_count=len(g.initializers) + len(g.sparse_dims),
        external_data=model.external_locations,
        file_size=path.stat().st_size,
        md5=md5 or file_md5(path),
    )


def summarize_safetensors(path: str | os.PathLike) -> GraphSummary:
    """Summarise a safetensors file: tensor count, parameter count, size and md5 (no graph in
    it)."""
    path = Path(path)
    header = read_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    producer = meta.get("producer") or meta.get("format") if isinstance(meta, dict) else None
    return GraphSummary(
        format=WeightsFormat.safetensors,
        producer=str(producer) if producer else None,
        parameter_count=sum(_elements(t["shape"]) for t in tensors.values()),
        tensor_count=len(tensors),
        file_size=path.stat().st_size,
        md5=file_md5(path),
    )


def summarize(path: str | os.PathLike, md5: str | None = None) -> GraphSummary:
    """Summarise a weights file of any readable format (by its magic bytes).

    `md5`, when given, is the file's already verified hash (it is not computed again).

    Raises:
        ModelFormatError: pickle-based, unsupported, truncated, or not what it claims to be.
    """
    fmt = detect_format(path)
    if fmt is WeightsFormat.safetensors:
        return summarize_safetensors(path)
    return summarize_onnx(path, md5=md5)


# --------------------------------------------------------------------------- text summary


def shape_text(t: TensorInfo) -> str:
    """'[1, 3, ?]': a shape for people ('?' for an unknown dimension or rank)."""
    if t.shape is None:
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in t.shape) + "]"


def summary_text(summary: GraphSummary) -> str:
    """The plain-text summary the bot's report shows: inputs, outputs, op counts, parameters,
    opset."""
    lines = [
        f"format: {summary.format.value}   size: {summary.file_size:,} bytes   md5: {summary.md5}"
    ]
    if summary.producer:
        lines.append(f"producer: {summary.producer}")
    if summary.format is WeightsFormat.onnx:
        opsets = ", ".join(f"{d} {v}" for d, v in summary.opsets.items()) or "none"
        lines.append(f"ir_version: {summary.ir_version}   opset: {opsets}")
        lines.append("inputs:")
        lines += [f"  {t.name}: {t.dtype} {shape_text(t)}" for t in summary.inputs] or ["  (none)"]
        lines.append("outputs:")
        lines += [f"  {t.name}: {t.dtype} {shape_text(t)}" for t in summary.outputs] or ["  (none)"]
        ops = ", ".join(
            f"{op} x{n}"
            for op, n in sorted(summary.op_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        lines.append(f"ops ({summary.node_count} nodes): {ops or 'none'}")
        if summary.external_data:
            lines.append("external data: " + ", ".join(summary.external_data))
    lines.append(f"parameters: {summary.parameter_count:,} in {summary.tensor_count} tensors")
    return "\n".join(lines) + "\n"
