"""Read an ONNX model's structure straight from its protobuf bytes, without its tensors' values.

Summarising a model (the release notes, `registry publish`) needs its inputs, outputs, opsets,
op counts and tensor shapes — not the megabytes of weights. This reader walks the protobuf wire
format of the fields it needs (numbers from onnx.proto) and skips every other field by its
length, so the weights' pages of a memory-mapped file are never even read, and neither `onnx`
nor numpy is imported. `registry.formats.summary.summarize_onnx` uses it; a test keeps its answers
equal to a full parse by the `onnx` package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# TensorProto.DataType, by number (onnx.proto)
DTYPE_NAMES = dict(
    enumerate(
        (
            "undefined",
            "float",
            "uint8",
            "int8",
            "uint16",
            "int16",
            "int32",
            "int64",
            "string",
            "bool",
            "float16",
            "double",
            "uint32",
            "uint64",
            "complex64",
            "complex128",
            "bfloat16",
            "float8e4m3fn",
            "float8e4m3fnuz",
            "float8e5m2",
            "float8e5m2fnuz",
            "uint4",
            "int4",
            "float4e2m1",
            "float8e8m0",
            "uint2",
            "int2",
            "float6e2m3",
            "float6e3m2",
        )
    )
)

# TypeProto's `value` oneof: field number -> name without "_type"
_TYPE_KINDS = {1: "tensor", 4: "sequence", 5: "map", 7: "opaque", 8: "sparse_tensor", 9: "optional"}

_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message (truncated or not ONNX)."""


@dataclass
class ValueInfo:
    name: str = ""
    kind: str = "unknown"
    elem_type: int = 0
    shape: list[int | str | None] | None = None


@dataclass
class Tensor:
    dims: list[int] = field(default_factory=list)
    external: bool = False
    location: str = ""


@dataclass
class Graph:
    nodes: list[tuple[str, str]] = field(
        default_factory=list
    )  # (domain, op_type), subgraphs included
    initializers: list[Tensor] = field(default_factory=list)
    initializer_names: set[str] = field(default_factory=set)
    sparse_dims: list[list[int]] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)


@dataclass
class Model:
    ir_version: int = 0
    producer_name: str = ""
    producer_version: str = ""
    opsets: list[tuple[str, int]] = field(default_factory=list)
    graph: Graph = field(default_factory=Graph)
    external_locations: list[str] = field(default_factory=list)


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise WireError(f"a number at byte {pos} runs past the end of its message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise WireError(f"malformed number at byte {pos}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(buf, start: int, end: int):
    """(field number, wire type, value) of each field of the message in buf[start:end]: the value
    is the number for varints, and (start, stop) of the payload for the other wire types."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
            continue
        if wire == 2:
            length, pos = _varint(buf, pos, end)
        elif wire == 1:
            length = 8
        elif wire == 5:
            length = 4
        else:
            raise WireError(f"unsupported wire type {wire} at byte {pos}")
        if pos + length > end:
            raise WireError(
                f"a field at byte {pos} runs past the end of its message (truncated file?)"
            )
        yield number, wire, (pos, pos + length)
        pos += length


def _text(buf, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", errors="replace")


def _span(wire: int, value, what: str) -> tuple[int, int]:
    if wire != 2:
        raise WireError(f"{what} is not a length-delimited field")
    return value


def _ints(buf, wire: int, value) -> list[int]:
    """A repeated int64 field's values from one occurrence (packed or not)."""
    if wire == 0:
        return [_signed(value)]
    start, stop = _span(wire, value, "a packed number list")
    out, pos = [], start
    while pos < stop:
        n, pos = _varint(buf, pos, stop)
        out.append(_signed(n))
    return out


def _tensor(buf, start: int, end: int) -> tuple[str, Tensor]:
    name, t = "", Tensor()
    for number, wire, value in fields(buf, start, end):
        if number == 1:
            t.dims += _ints(buf, wire, value)
        elif number == 8:
            name = _text(buf, _span(wire, value, "TensorProto.name"))
        elif number == 14 and wire == 0:
            t.external = value == _EXTERNAL
        elif number == 13:
            key = val = ""
            for n, w, v in fields(buf, *_span(wire, value, "TensorProto.external_data")):
                if n == 1:
                    key = _text(buf, _span(w, v, "key"))
                elif n == 2:
                    val = _text(buf, _span(w, v, "value"))
            if key == "location":
                t.location = val
    return name, t


def _value_info(buf, start: int, end: int) -> ValueInfo:
    info = ValueInfo()
    for number, wire, value in fields(buf, start, end):
        if number == 1:
            info.name = _text(buf, _span(wire, value, "ValueInfoProto.name"))
        elif number == 2:
            for n, w, v in fields(buf, *_span(wire, value, "ValueInfoProto.type")):
                if n not in _TYPE_KINDS:
                    continue
                info.kind, info.elem_type, info.shape = _TYPE_KINDS[n], 0, None
                if n == 1:
                    _tensor_type(buf, *_span(w, v, "TypeProto.tensor_type"), info)
    return info


def _tensor_type(buf, start: int, end: int, info: ValueInfo) -> None:
    for number, wire, value in fields(buf, start, end):
        if number == 1 and wire == 0:
            info.elem_type = value
        elif number == 2:
            shape: list[int | str | None] = []
            for n, w, v in fields(buf, *_span(wire, value, "TypeProto.Tensor.shape")):
                if n != 1:
                    continue
                dim: int | str | None = None
                for dn, dw, dv in fields(buf, *_span(w, v, "TensorShapeProto.dim")):
                    if dn == 1 and dw == 0:
                        dim = _signed(dv)
                    elif dn == 2:
                        dim = _text(buf, _span(dw, dv, "dim_param")) or None
                shape.append(dim)
            info.shape = shape


def read_value_info(data: bytes) -> ValueInfo:
    """A serialised ValueInfoProto's name, type kind, element type and shape."""
    return _value_info(data, 0, len(data))


class _Reader:
    """Walks a ModelProto's graphs, counting nodes and collecting tensors in the order onnx's
    external-data helper visits them (initializers first, then node attributes, depth first)."""

    def __init__(self, buf):
        self.buf = buf
        self.nodes: list[tuple[str, str]] = []

    def graph(
        self, start: int, end: int, top: Graph | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """(initializer tensors, attribute tensors) of a graph and its subgraphs."""
        buf = self.buf
        inits: list[Tensor] = []
        node_parts: list[tuple[list[Tensor], list[Tensor]]] = []
        for number, wire, value in fields(buf, start, end):
            if number == 1:
                node_parts.append(self.node(*_span(wire, value, "GraphProto.node")))
            elif number == 5:
                name, t = _tensor(buf, *_span(wire, value, "GraphProto.initializer"))
                inits.append(t)
                if top is not None:
                    top.initializers.append(t)
                    top.initializer_names.add(name)
            elif top is None:
                continue
            elif number == 11:
                top.inputs.append(_value_info(buf, *_span(wire, value, "GraphProto.input")))
            elif number == 12:
                top.outputs.append(_value_info(buf, *_span(wire, value, "GraphProto.output")))
            elif number == 15:
                dims: list[int] = []
                for n, w, v in fields(buf, *_span(wire, value, "GraphProto.sparse_initializer")):
                    if n == 3:
                        dims += _ints(buf, w, v)
                top.sparse_dims.append(dims)
        attrs: list[Tensor] = []
        for sub_inits, sub_attrs in node_parts:
            inits += sub_inits
            attrs += sub_attrs
        return inits, attrs

    def node(self, start: int, end: int) -> tuple[list[Tensor], list[Tensor]]:
        op = domain = ""
        inits: list[Tensor] = []
        attrs: list[Tensor] = []
        for number, wire, value in fields(self.buf, start, end):
            if number == 4:
                op = _text(self.buf, _span(wire, value, "NodeProto.op_type"))
            elif number == 7:
                domain = _text(self.buf, _span(wire, value, "NodeProto.domain"))
            elif number == 5:
                own: list[Tensor] = []
                sub: list[Tensor] = []
                for n, w, v in fields(self.buf, *_span(wire, value, "NodeProto.attribute")):
                    if n in (6, 11):  # g, graphs
                        g_inits, g_attrs = self.graph(*_span(w, v, "AttributeProto.g"))
                        inits += g_inits
                        sub += g_attrs
                    elif n in (5, 10):  # t, tensors
                        own.append(_tensor(self.buf, *_span(w, v, "AttributeProto.t"))[1])
                attrs += own + sub
        self.nodes.append((domain, op))
        return inits, attrs


def read_model(buf) -> Model:
    """The structure of the ONNX ModelProto in `buf` (bytes, or a memoryview of a mapped file).

    Raises:
        WireError: the bytes are not a well-formed protobuf message.
    """
    model, reader = Model(), _Reader(buf)
    tensors: tuple[list[Tensor], list[Tensor]] = ([], [])
    for number, wire, value in fields(buf, 0, len(buf)):
        if number == 1 and wire == 0:
            model.ir_version = _signed(value)
        elif number == 2:
            model.producer_name = _text(buf, _span(wire, value, "ModelProto.producer_name"))
        elif number == 3:
            model.producer_version = _text(buf, _span(wire, value, "ModelProto.producer_version"))
        elif number == 7:
            model.graph, reader.nodes = Graph(), []
            tensors = reader.graph(*_span(wire, value, "ModelProto.graph"), top=model.graph)
        elif number == 8:
            model.opsets.append(_opset(buf, wire, value))
    model.graph.nodes = reader.nodes
    for t in tensors[0] + tensors[1]:
        if t.external and t.location not in model.external_locations:
            model.external_locations.append(t.location)
    return model


def _opset(buf, wire: int, value) -> tuple[str, int]:
    """One `ModelProto.opset_import` entry: (domain, version)."""
    domain, version = "", 0
    for n, w, v in fields(buf, *_span(wire, value, "ModelProto.opset_import")):
        if n == 1:
            domain = _text(buf, _span(w, v, "OperatorSetIdProto.domain"))
        elif n == 2 and w == 0:
            version = _signed(v)
    return domain, version


def read_header(buf) -> Model:
    """A model's IR version and opsets only: the top-level fields, never the graph's bytes (cheap
    on a mapped file of any size).

    Raises:
        WireError: the bytes are not a well-formed protobuf message.
    """
    model = Model()
    for number, wire, value in fields(buf, 0, len(buf)):
        if number == 1 and wire == 0:
            model.ir_version = _signed(value)
        elif number == 8:
            model.opsets.append(_opset(buf, wire, value))
    return model


_METADATA_PROPS = 14  # ModelProto.metadata_props (StringStringEntryProto: key 1, value 2)


def _length_delimited(number: int, payload: bytes) -> bytes:
    size, out = len(payload), bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            break
    return bytes([number << 3 | 2]) + bytes(out) + payload


def copy_with_metadata(src, dest, key: str, value: str) -> None:
    """Copy the ONNX model file `src` to the new file `dest` with its `metadata_props` entry `key`
    set to `value` (entries of that key dropped, the new one appended), the other fields' bytes
    copied file to file: the model is never loaded, so its size costs no memory.

    Raises:
        WireError: `src` is not a well-formed protobuf message.
    """
    import mmap
    import os

    with open(src, "rb") as fin, open(dest, "xb") as fout:
        size = os.fstat(fin.fileno()).st_size
        keep: list[tuple[int, int]] = []
        if size:
            with mmap.mmap(fin.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                pos = 0
                while pos < size:
                    start = pos
                    tag, pos = _varint(buf, pos, size)
                    number, wire = tag >> 3, tag & 7
                    if wire == 0:
                        _, pos = _varint(buf, pos, size)
                    elif wire == 2:
                        length, pos = _varint(buf, pos, size)
                        if number == _METADATA_PROPS and any(
                            n == 1 and _text(buf, _span(w, v, "metadata key")) == key
                            for n, w, v in fields(buf, pos, pos + length)
                        ):
                            pos += length
                            continue  # the entry being replaced
                        pos += length
                    elif wire in (1, 5):
                        pos += 8 if wire == 1 else 4
                    else:
                        raise WireError(f"unsupported wire type {wire} at byte {start}")
                    if pos > size:
                        raise WireError(f"a field at byte {start} runs past the end of the file")
                    if keep and keep[-1][1] == start:
                        keep[-1] = (keep[-1][0], pos)
                    else:
                        keep.append((start, pos))
        for start, end in keep:
            fin.seek(start)
            left = end - start
            while left:
                block = fin.read(min(left, 1 << 20))
                if not block:
                    raise WireError(f"{src} changed while it was copied")
                fout.write(block)
                left -= len(block)
        entry = _length_delimited(1, key.encode()) + _length_delimited(2, value.encode())
        fout.write(_length_delimited(_METADATA_PROPS, entry))


def read_metadata(buf) -> dict[str, str]:
    """A model's `metadata_props` (the first value of each key), from the top-level fields only.

    Raises:
        WireError: the bytes are not a well-formed protobuf message.
    """
    found: dict[str, str] = {}
    for number, wire, value in fields(buf, 0, len(buf)):
        if number != _METADATA_PROPS:
            continue
        key = text = ""
        for n, w, v in fields(buf, *_span(wire, value, "ModelProto.metadata_props")):
            if n == 1:
                key = _text(buf, _span(w, v, "StringStringEntryProto.key"))
            elif n == 2:
                text = _text(buf, _span(w, v, "StringStringEntryProto.value"))
        found.setdefault(key, text)
    return found
