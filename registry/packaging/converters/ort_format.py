"""ort-format: ONNX Runtime Mobile's ORT format (.ort), saved by ONNX Runtime itself.

ONNX Runtime writes the file's kernel type string resolver (the table that maps each operator to
the inputs and outputs its type constraints name) while iterating a hash map whose order changes
from process to process and from session to session (absl's hash seed and per-table salt), so the
same model saved twice gives files with the same content in a different byte layout.
`canonical_ort` rewrites that one table in a fixed order, which makes the file a function of the
model and the ONNX Runtime version alone (docs/packaging.md#the-package).
"""

from __future__ import annotations

import struct
from pathlib import Path

from registry.core.errors import ConversionError
from registry.packaging.converters import Candidate, Converter, onnx_facts, register
from registry.packaging.protocol import ModelFacts, min_onnxruntime_for, version_tuple

LAYOUT_CANONICAL = "canonical"
_IDENTIFIER = b"ORTM"
# InferenceSession's fields, by vtable slot (onnxruntime/core/flatbuffers/schema/ort.fbs)
_SLOT_VERSION, _SLOT_MODEL, _SLOT_RESOLVER = 0, 1, 3
_ALIGN = 8  # the largest alignment any ORT-format object needs (int64/double vectors)


@register
class OrtFormatConverter(Converter):
    """Delegates to ONNX Runtime's own serializer (as tools/convert_onnx_models_to_ort does)."""

    name = "ort-format"
    summary = "ORT format (.ort) for ONNX Runtime Mobile, optimised for the generic CPU EP"

    def model_facts(
        self, model: bytes, files: dict[str, bytes], model_file: str, block_text: str
    ) -> ModelFacts | None:
        """The quantized operators the ORT file names (its weight types are not read)."""
        from registry.packaging.quantization import ort_weight_facts

        return ort_weight_facts(model, block_text) if model else None

    def convert(
        self, source: Path, out_dir: Path, *, precision: str, runtime: str, options
    ) -> Candidate:
        """Save the model in ORT format; layout optimisations that tie it to x86 are excluded.

        The saved file is rewritten in canonical layout (`canonical_ort`), so converting the same
        model with the same ONNX Runtime gives a byte-identical file.

        Raises:
            ConversionError: ONNX Runtime cannot load the model (names the op it reports).
        """
        import onnxruntime as ort

        dest = out_dir / "model.ort"
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(dest)
        so.add_session_config_entry("session.save_model_format", "ORT")
        # This session only writes the file: packing the weights for this machine's kernels would
        # hold a second copy of them and change nothing in what is saved.
        so.add_session_config_entry("session.disable_prepacking", "1")
        so.enable_cpu_mem_arena = False
        style = getattr(options, "optimization_style", "Fixed")
        if style == "Runtime":
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            so.add_session_config_entry("optimization.minimal_build_optimizations", "save")
        else:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        try:
            # NchwcTransformer output is x86-specific; mobile devices are ARM.
            ort.InferenceSession(
                str(source),
                sess_options=so,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=["NchwcTransformer"],
            )
        except Exception as e:
            raise ConversionError(
                f"{source.name}: ONNX Runtime cannot save it in ORT format: {e}",
                "the mobile runtime supports the ops of the full CPU build; "
                "replace the op named above or pick another target",
            ) from e
        layout = LAYOUT_CANONICAL
        try:
            canonical_ort_file(dest)
        except UnknownOrtLayout as e:
            # another ONNX Runtime may lay the file out otherwise: keep its bytes, and say so
            layout = f"as written by onnxruntime, not canonical ({e})"
        opset, ir = onnx_facts(source)
        # An ORT-format file loads in the runtime that wrote it and later ones, not older ones.
        writer = ".".join(str(p) for p in version_tuple(ort.__version__)[:2])
        need = max(min_onnxruntime_for(opset, ir), writer, key=version_tuple)
        return Candidate(
            converter=self.name,
            path=dest,
            files=[dest],
            format="ort",
            engine="onnxruntime",
            precision=precision,
            weight_dtype="int8" if precision == "int8" else "float32",
            runtime=runtime,
            min_runtime_version=need,
            tools={
                "onnxruntime": ort.__version__,
                "optimization_style": style,
                "ort_layout": layout,
            },
        )


# --------------------------------------------------------------------------- canonical layout


class UnknownOrtLayout(ValueError):
    """An ORT-format file laid out otherwise than the ONNX Runtime versions this module knows."""


def canonical_ort(data: bytes) -> bytes:
    """The same ORT-format model with its kernel type string resolver in a fixed byte layout.

    ONNX Runtime's builder writes, from the end of the buffer backwards: the version string, the
    model (graph, tensors, runtime optimisations: deterministic), the kernel type string resolver
    (each entry's strings and tables created in hash-map order, then sorted offset vectors), and
    the root table. Everything is addressed by relative offsets, so the model's bytes (the tail of
    the file, from its lowest object to the end) are kept verbatim at the same distance from the
    end, which keeps their alignment, and the resolver and the root are rebuilt in front of them,
    entry by entry in the order of the (sorted) vectors. The result reads back to the same
    content; canonicalising a canonical file changes nothing.

    Raises:
        UnknownOrtLayout: not an ORT-format file, or one laid out otherwise (nothing rewritten).
    """
    view = memoryview(data)

    def read_tail(start: int, into: memoryview) -> None:
        into[:] = view[start : start + len(into)]

    rebuilt = _rebuild(data, read_tail)
    if rebuilt is None:
        return data
    buf, head = rebuilt
    return bytes(memoryview(buf)[head:])


def canonical_ort_file(path: Path) -> None:
    """`canonical_ort` on a file, in place, holding one copy of the model in memory.

    The file is parsed through a memory map (only its first objects and the version string are
    touched), the model's bytes are read from the file straight into the rebuilt buffer, and the
    result is written from that buffer under a temporary name, then moved over the file: the
    largest model is held once, not three times (read, rebuilt, and the rebuilt bytes' copy).

    Raises:
        UnknownOrtLayout: as `canonical_ort` (the file is left as it is).
    """
    import mmap
    import os

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 16:
            raise UnknownOrtLayout("no ORTM file identifier")

        def read_tail(start: int, into: memoryview) -> None:
            done = 0
            while done < len(into):
                n = os.preadv(f.fileno(), [into[done:]], start + done)
                if n <= 0:
                    raise UnknownOrtLayout(f"{path.name} changed while it was rewritten")
                done += n

        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            rebuilt = _rebuild(data, read_tail)
    if rebuilt is None:
        return
    buf, head = rebuilt
    tmp = path.with_name(f".{path.name}.{os.getpid()}.canonical")
    try:
        with open(tmp, "wb") as out:
            out.write(memoryview(buf)[head:])
        del buf
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _rebuild(data, read_tail) -> tuple[bytearray, int] | None:
    """The canonical layout of the ORT-format file `data` (any buffer): (buffer, start) whose
    `buffer[start:]` is the file, or None when nothing was written in hash-map order. The model's
    bytes are put in place by `read_tail(start, into)`, which fills `into` with the source's bytes
    from `start` on (so that they need not be held twice).

    Raises:
        UnknownOrtLayout: see `canonical_ort`.
    """
    import flatbuffers

    fbs = _bindings()
    if len(data) < 16 or data[4:8] != _IDENTIFIER:
        raise UnknownOrtLayout("no ORTM file identifier")
    if len(data) % _ALIGN:
        raise UnknownOrtLayout(f"size {len(data)} is not a multiple of {_ALIGN}")
    root = _u32(data, 0)
    fields = _table_fields(data, root)
    if set(fields) - {_SLOT_VERSION, _SLOT_MODEL, _SLOT_RESOLVER} or _SLOT_MODEL not in fields:
        raise UnknownOrtLayout(
            f"the root table has fields {sorted(fields)}; expected ort_version, model "
            "and kernel_type_str_resolver"
        )
    if _SLOT_RESOLVER not in fields:
        return None  # nothing was written in hash-map order
    session = fbs.InferenceSession.InferenceSession.GetRootAs(data, 0)
    version = session.OrtVersion()
    model = fields[_SLOT_MODEL]
    tail = min(model, model - _i32(data, model))  # the model table and its vtable, written last
    version_pos = fields.get(_SLOT_VERSION, len(data))
    if not (root < fields[_SLOT_RESOLVER] < tail <= version_pos) or tail % 4:
        raise UnknownOrtLayout("the resolver does not lie between the root table and the model")
    entries = _resolver_entries(session.KernelTypeStrResolver())
    del session

    b = flatbuffers.Builder(len(data) + 1024)
    b.head = len(b.Bytes) - (len(data) - tail)
    read_tail(tail, memoryview(b.Bytes)[b.head :])  # no intermediate copy of the model's bytes
    b.minalign = _ALIGN
    resolver_off = _build_resolver(b, fbs, entries)
    S = fbs.InferenceSession
    S.InferenceSessionStart(b)
    if (
        _SLOT_VERSION in fields
    ):  # builder offsets count from the end of the buffer, as the tail does
        S.InferenceSessionAddOrtVersion(b, len(data) - version_pos)
    S.InferenceSessionAddModel(b, len(data) - model)
    S.InferenceSessionAddKernelTypeStrResolver(b, resolver_off)
    b.Finish(S.InferenceSessionEnd(b), file_identifier=_IDENTIFIER)
    buf, head = b.Bytes, b.Head()
    del b
    out = memoryview(buf)[head:]
    kept = len(data) - tail
    again = fbs.InferenceSession.InferenceSession.GetRootAs(out, 0)
    if (
        again.OrtVersion() != version
        or _resolver_entries(again.KernelTypeStrResolver()) != entries
        or _table_fields(out, _u32(out, 0)).get(_SLOT_MODEL) != model + len(out) - len(data)
        or not _same_tail(out[len(out) - kept :], tail, read_tail)
    ):
        raise UnknownOrtLayout("the rewritten file does not read back to the same content")
    del again, out
    return buf, head


def _same_tail(rebuilt: memoryview, start: int, read_tail, chunk: int = 1 << 22) -> bool:
    """The rebuilt file's model bytes equal the source's from `start` on (compared a chunk at a
    time: the source is not held a second time)."""
    scratch = bytearray(min(chunk, len(rebuilt)))
    for off in range(0, len(rebuilt), chunk):
        part = rebuilt[off : off + chunk]
        view = memoryview(scratch)[: len(part)]
        read_tail(start + off, view)
        if view != part:
            return False
    return True


def _bindings():
    """ONNX Runtime's generated flatbuffer classes (shipped in its `tools/ort_format_model`)."""
    import importlib
    import importlib.util
    import os
    import sys
    from types import SimpleNamespace

    # Put their folder on sys.path as `onnxruntime.tools.ort_format_model` does, without importing
    # `onnxruntime.tools`, which imports PyTorch when it is installed (some 200 MB for nothing).
    spec = importlib.util.find_spec("onnxruntime")
    folder = os.path.join(os.path.dirname(spec.origin), "tools", "ort_format_model")
    if os.path.isdir(os.path.join(folder, "ort_flatbuffers_py")):
        if folder not in sys.path:
            sys.path.append(folder)
    else:  # another layout: let the package find them
        import onnxruntime.tools.ort_format_model  # noqa: F401

    names = (
        "InferenceSession",
        "KernelTypeStrResolver",
        "OpIdKernelTypeStrArgsEntry",
        "KernelTypeStrArgsEntry",
        "ArgTypeAndIndex",
    )
    return SimpleNamespace(
        **{n: importlib.import_module(f"ort_flatbuffers_py.fbs.{n}") for n in names}
    )


def _u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def _i32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<i", buf, pos)[0]


def _table_fields(buf: bytes, table: int) -> dict[int, int]:
    """{slot: absolute position of the object it points to} for a table of offset fields."""
    vtable = table - _i32(buf, table)
    if not 0 <= vtable < len(buf) - 4:
        raise UnknownOrtLayout("a vtable lies outside the file")
    size = struct.unpack_from("<H", buf, vtable)[0]
    out = {}
    for slot in range((size - 4) // 2):
        rel = struct.unpack_from("<H", buf, vtable + 4 + 2 * slot)[0]
        if rel:
            out[slot] = table + rel + _u32(buf, table + rel)
    return out


def _resolver_entries(resolver) -> list | None:
    """The resolver's content, in file order: [(op id, [(kernel type string, [(arg type,
    index)])])].

    An absent vector reads as None and an empty one as [], so a rebuild can tell them apart.
    """
    if resolver is None or resolver.OpKernelTypeStrArgsIsNone():
        return None
    entries = []
    for i in range(resolver.OpKernelTypeStrArgsLength()):
        op = resolver.OpKernelTypeStrArgs(i)
        kinds = None if op.KernelTypeStrArgsIsNone() else []
        for j in range(op.KernelTypeStrArgsLength()):
            kind = op.KernelTypeStrArgs(j)
            args = (
                None
                if kind.ArgsIsNone()
                else [
                    (kind.Args(k).ArgType(), kind.Args(k).Index()) for k in range(kind.ArgsLength())
                ]
            )
            kinds.append((kind.KernelTypeStr(), args))
        entries.append((op.OpId(), kinds))
    return entries


def _build_resolver(b, fbs, entries) -> int:
    """Write the resolver depth first, entry by entry, keeping absent fields absent; return its
    offset."""
    R, E, K, A = (
        fbs.KernelTypeStrResolver,
        fbs.OpIdKernelTypeStrArgsEntry,
        fbs.KernelTypeStrArgsEntry,
        fbs.ArgTypeAndIndex,
    )

    def vector(start, offsets: list[int] | None) -> int | None:
        if offsets is None:
            return None
        start(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def string(text: bytes | None) -> int | None:
        return None if text is None else b.CreateString(text)

    op_offsets = []
    for op_id, kinds in entries or ():
        kind_offsets = []
        for kind_str, args in kinds or ():
            arg_offsets = []
            for arg_type, index in args or ():
                A.ArgTypeAndIndexStart(b)
                A.ArgTypeAndIndexAddArgType(b, arg_type)
                A.ArgTypeAndIndexAddIndex(b, index)
                arg_offsets.append(A.ArgTypeAndIndexEnd(b))
            args_vec = vector(
                K.KernelTypeStrArgsEntryStartArgsVector, None if args is None else arg_offsets
            )
            name = string(kind_str)
            K.KernelTypeStrArgsEntryStart(b)
            if name is not None:
                K.KernelTypeStrArgsEntryAddKernelTypeStr(b, name)
            if args_vec is not None:
                K.KernelTypeStrArgsEntryAddArgs(b, args_vec)
            kind_offsets.append(K.KernelTypeStrArgsEntryEnd(b))
        kinds_vec = vector(
            E.OpIdKernelTypeStrArgsEntryStartKernelTypeStrArgsVector,
            None if kinds is None else kind_offsets,
        )
        op_name = string(op_id)
        E.OpIdKernelTypeStrArgsEntryStart(b)
        if op_name is not None:
            E.OpIdKernelTypeStrArgsEntryAddOpId(b, op_name)
        if kinds_vec is not None:
            E.OpIdKernelTypeStrArgsEntryAddKernelTypeStrArgs(b, kinds_vec)
        op_offsets.append(E.OpIdKernelTypeStrArgsEntryEnd(b))
    ops_vec = vector(
        R.KernelTypeStrResolverStartOpKernelTypeStrArgsVector,
        None if entries is None else op_offsets,
    )
    R.KernelTypeStrResolverStart(b)
    if ops_vec is not None:
        R.KernelTypeStrResolverAddOpKernelTypeStrArgs(b, ops_vec)
    return R.KernelTypeStrResolverEnd(b)
