"""The model's structure: safe loading of a weights file, its summary, one test run, and a picture.

Loading never runs code from the file. The format is told by its first bytes, not its name:
pickle-based formats (PyTorch `.pt`/`.pth`/`.bin`/`.ckpt`, joblib, raw pickles) are refused,
because unpickling executes whatever the file says. ONNX is parsed as protobuf (data only), with
its external-data files held inside the model folder; safetensors is read from its JSON header.

`GraphSummary` is plain data (the release notes diff two of them), `summary_text` is what the
bot's report shows, `render_svg` draws the graph as an SVG with a small layered layout of its own
(no graphviz needed), and `run_once` runs the model in onnxruntime on generated inputs.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from pydantic import BaseModel, Field

from registry.formats import onnx_wire
from registry.core.errors import ModelFormatError, missing_dependency
from registry.core.storage import file_md5

if TYPE_CHECKING:  # pragma: no cover
    import onnx

EXPORT_HINT = ("export the model to ONNX (torch.onnx.export) or save the tensors with safetensors "
               "(safetensors.torch.save_file), then dvc add the new file")
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own limit
PICKLE_EXTENSIONS = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".joblib", ".sav", ".npy", ".npz"}


class WeightsFormat(str, Enum):
    """Weights formats the registry can read without running code."""

    onnx = "onnx"
    safetensors = "safetensors"


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
    opsets: dict[str, int] = Field(default_factory=dict, description="domain ('ai.onnx' for the default) -> version")
    ir_version: int | None = None
    producer: str | None = Field(None, description="producer name and version, as the file records them")
    op_counts: dict[str, int] = Field(default_factory=dict, description="op type -> number of nodes, subgraphs included")
    node_count: int = 0
    parameter_count: int = Field(0, description="elements in all initializers (ONNX) or tensors (safetensors)")
    tensor_count: int = Field(0, description="number of initializers or tensors")
    external_data: list[str] = Field(default_factory=list, description="external data files, relative to the model file")
    file_size: int
    md5: str


# --------------------------------------------------------------------------- format detection

def detect_format(path: str | os.PathLike) -> WeightsFormat:
    """Tell a weights file's format from its first bytes (the file name is only used in messages).

    Raises:
        ModelFormatError: a pickle-based or otherwise unsupported format, or an empty file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
        f.seek(max(size - 1, 0))
        tail = f.read(1)
    if not head:
        raise ModelFormatError(f"{path.name} is empty", "push the real weights file: dvc add, then dvc push")
    if head.startswith(b"PK\x03\x04"):
        _refuse_zip(path)
    if _is_pickle(head, tail):
        raise _pickle_error(path, "a Python pickle")
    for magic, what in ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"),
                        (b"\x04\x22\x4d\x18", "lz4"), (b"ZF", "zlib")):
        if head.startswith(magic):
            raise ModelFormatError(
                f"{path.name} is {what}-compressed data (as joblib and compressed pickles write); "
                "the registry does not unpack and unpickle weights, because unpickling runs arbitrary code",
                EXPORT_HINT)
    if head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        raise ModelFormatError(f"{path.name} is zlib-compressed data (as joblib writes); "
                               "unpickling it would run arbitrary code", EXPORT_HINT)
    if head.startswith(b"\x89HDF"):
        raise ModelFormatError(f"{path.name} is an HDF5 (Keras .h5) file, which the registry does not read",
                               "export the model to ONNX (tf2onnx), then dvc add the new file")
    if head[4:8] == b"TFL3":
        raise ModelFormatError(f"{path.name} is a TensorFlow Lite model, which the registry does not read",
                               "register the ONNX model it was made from; device formats are built on release")
    if size >= 8 and _looks_like_safetensors(head, size):
        return WeightsFormat.safetensors
    return WeightsFormat.onnx


def _is_pickle(head: bytes, tail: bytes) -> bool:
    # Protocols 2-5 start with PROTO (0x80) and the protocol number; torch's legacy (non-zip)
    # format is a pickle stream too. Protocol 0/1 pickles open with a mark, a global, an empty
    # dict or list, and every pickle ends with STOP ('.').
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    return head[:1] in (b"(", b"c", b"}", b"]", b")", b"N") and tail == b"."


def _refuse_zip(path: Path) -> None:
    """A zip archive: PyTorch's checkpoint format (data.pkl inside), TorchScript, numpy npz…"""
    try:
        with zipfile.ZipFile(path) as z:  # reads the directory only; nothing is extracted or run
            names = z.namelist()
    except zipfile.BadZipFile:
        names = []
    if any(n.rsplit("/", 1)[-1] == "archive_format" for n in names):
        raise ModelFormatError(f"{path.name} is a PyTorch ExportedProgram (.pt2), which is not the weights "
                               "format: the registry checks, publishes and verifies against ONNX",
                               "set 'weights' to the ONNX export of the model and name the .pt2 under "
                               "'pytorch:' (see docs/model-card.md#pytorch-source)")
    if any(n.endswith(".pkl") for n in names):
        kind = ("a TorchScript archive" if any("/code/" in n or n.startswith("code/") for n in names)
                else "a PyTorch checkpoint (torch.save zip with data.pkl)")
        raise _pickle_error(path, kind)
    raise ModelFormatError(f"{path.name} is a zip archive, not a weights format the registry reads",
                           EXPORT_HINT)


def _pickle_error(path: Path, kind: str) -> ModelFormatError:
    return ModelFormatError(
        f"{path.name} is {kind}: the registry refuses pickle-based weights, because unpickling "
        "runs arbitrary code from the file", EXPORT_HINT)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    n = struct.unpack("<Q", head[:8])[0]
    return 2 <= n <= MAX_SAFETENSORS_HEADER and 8 + n <= size and head[8:9] == b"{"


# --------------------------------------------------------------------------- ONNX

def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - a core dependency
        raise missing_dependency("onnx") from None
    return onnx


def load_onnx(path: str | os.PathLike, root: str | os.PathLike | None = None,
              load_external: bool = True) -> onnx.ModelProto:
    """Parse an ONNX file safely; external data must lie inside `root` (default: the file's folder).

    Args:
        path: the .onnx file.
        root: the folder that external data may not leave (the model's folder).
        load_external: check and read the external tensors into the returned model (without it,
            the graph and the tensors' names, shapes and locations are there, not their values).

    Raises:
        ModelFormatError: not ONNX, truncated, pickle-based, or external data outside `root`/missing.
    """
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    path = Path(path)
    _require_onnx_format(path)
    data = path.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise _unparsable(path, data, e) from None
    _require_complete(path, data, model.ir_version, len(model.graph.output))
    locations = external_data_locations(model)
    if locations and load_external:
        root = Path(root) if root is not None else path.parent
        check_external_data(locations, path.parent, root, path.name)
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as e:
            raise ModelFormatError(f"{path.name}: cannot read its external data: {e}",
                                   "dvc add / dvc push the external data files with the model") from None
    return model


def _require_onnx_format(path: Path) -> None:
    """Refuse a file whose first bytes say it is another format (pickles included)."""
    fmt = detect_format(path)
    if fmt is not WeightsFormat.onnx:
        raise ModelFormatError(f"{path.name} is a {fmt.value} file, not an ONNX model",
                               "point 'weights' at the .onnx file")


def _looks_onnx(data) -> bool:
    return data[:1] == b"\x08"  # field 1 (ir_version), as every exporter writes it first


def _unparsable(path: Path, data, error: Exception) -> ModelFormatError:
    if _looks_onnx(data):
        return ModelFormatError(f"{path.name} starts like an ONNX model but cannot be parsed: "
                                f"it is truncated or corrupt ({error})",
                                "export it again and dvc add / dvc push the complete file")
    return _not_onnx(path)


def _require_complete(path: Path, data, ir_version: int, outputs: int) -> None:
    if ir_version <= 0 or not outputs:
        if _looks_onnx(data) and ir_version > 0:
            raise ModelFormatError(f"{path.name} is an incomplete ONNX model (its graph has no outputs): "
                                   "it is truncated or corrupt",
                                   "export it again and dvc add / dvc push the complete file")
        raise _not_onnx(path)


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


def _not_onnx(path: Path) -> ModelFormatError:
    suffix = path.suffix.lower()
    extra = (f" (files named {suffix} are usually pickle-based, which the registry refuses)"
             if suffix in PICKLE_EXTENSIONS else "")
    return ModelFormatError(f"{path.name} is not an ONNX model (it does not parse as one){extra}",
                            EXPORT_HINT)


def external_data_locations(model: onnx.ModelProto) -> list[str]:
    """The distinct `location`s of every tensor stored outside the model file (subgraphs included)."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    found: list[str] = []
    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            loc = next((e.value for e in tensor.external_data if e.key == "location"), "")
            if loc not in found:
                found.append(loc)
    return found


def check_external_data(locations: list[str], model_dir: Path, root: Path, model_name: str = "the model") -> None:
    """Refuse external-data locations that are absolute, climb out of `root`, escape by symlink,
    or are missing.

    Args:
        locations: as the model records them (relative to `model_dir`).
        model_dir: the folder of the .onnx file.
        root: the model folder the files must stay inside.

    Raises:
        ModelFormatError: naming the offending location.
    """
    real_root = os.path.realpath(root)
    for loc in locations:
        hint = "save the external data next to the model (onnx.save_model(..., location='name.data'))"
        if not loc or loc.startswith(("/", "\\")) or (len(loc) > 1 and loc[1] == ":"):
            raise ModelFormatError(f"{model_name}: external data location '{loc}' is absolute; "
                                   "it must be a file inside the model folder", hint)
        rel = relative_inside(PurePosixPath(model_dir.relative_to(root).as_posix()) / loc.replace("\\", "/"))
        if rel is None:
            raise ModelFormatError(f"{model_name}: external data location '{loc}' points outside "
                                   "the model folder", hint)
        target = root / rel
        if not os.path.realpath(target).startswith(real_root + os.sep):
            raise ModelFormatError(f"{model_name}: external data location '{loc}' is a symlink that "
                                   "leaves the model folder", hint)
        if not target.is_file():
            raise ModelFormatError(f"{model_name}: external data file '{loc}' is missing",
                                   "dvc add / dvc push it next to the model file")


def relative_inside(p: PurePosixPath) -> str | None:
    """Normalise a relative path ('a/./b/../c' -> 'a/c'); None when it climbs above its start."""
    parts: list[str] = []
    for part in p.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) if parts else None


def _elements(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _tensor_info(v: onnx_wire.ValueInfo) -> TensorInfo:
    if v.kind == "tensor":
        return TensorInfo(name=v.name, shape=v.shape, dtype=onnx_wire.DTYPE_NAMES.get(v.elem_type, f"type{v.elem_type}"))
    return TensorInfo(name=v.name, shape=None, dtype=v.kind)


def summarize_onnx(path: str | os.PathLike, md5: str | None = None) -> GraphSummary:
    """Summarise an ONNX file: inputs, outputs, opsets, op counts, parameters, size and md5.

    The file is memory-mapped and read by `registry.formats.onnx_wire`, which skips the tensors' values:
    a summary costs about the same for a 1 GB model as for a 1 MB one.

    Args:
        path: the .onnx file.
        md5: the file's md5 when the caller already verified it (a content-addressed object),
            to avoid hashing the file again.

    Raises:
        ModelFormatError: when the file is not a readable ONNX model.
    """
    path = Path(path)
    _require_onnx_format(path)
    with _mapped(path) as data:
        try:
            model = onnx_wire.read_model(data)
        except onnx_wire.WireError as e:
            raise _unparsable(path, data, e) from None
        g = model.graph
        _require_complete(path, data, model.ir_version, len(g.outputs))
    counts: dict[str, int] = {}
    for domain, op in g.nodes:
        key = op if domain in ("", "ai.onnx") else f"{domain}.{op}"
        counts[key] = counts.get(key, 0) + 1
    producer = " ".join(x for x in (model.producer_name, model.producer_version) if x) or None
    return GraphSummary(
        format=WeightsFormat.onnx,
        inputs=[_tensor_info(v) for v in g.inputs if v.name not in g.initializer_names],
        outputs=[_tensor_info(v) for v in g.outputs],
        opsets=dict(sorted((domain or "ai.onnx", version) for domain, version in model.opsets)),
        ir_version=model.ir_version,
        producer=producer,
        op_counts=dict(sorted(counts.items())),
        node_count=len(g.nodes),
        parameter_count=sum(_elements(t.dims) for t in g.initializers) + sum(_elements(d) for d in g.sparse_dims),
        tensor_count=len(g.initializers) + len(g.sparse_dims),
        external_data=model.external_locations,
        file_size=path.stat().st_size,
        md5=md5 or file_md5(path),
    )


# --------------------------------------------------------------------------- safetensors

_SAFETENSORS_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8",
                       "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "I4", "U4"}


def read_safetensors_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype/shape/offsets), without torch.

    Raises:
        ModelFormatError: a header length or JSON that does not fit the file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ModelFormatError(f"{path.name} is too short to be a safetensors file", EXPORT_HINT)
        n = struct.unpack("<Q", raw)[0]
        if n > MAX_SAFETENSORS_HEADER or 8 + n > size:
            raise ModelFormatError(f"{path.name}: safetensors header length {n} does not fit the "
                                   f"{size}-byte file (truncated?)", "save and push the file again")
        text = f.read(n)
    from registry.core.bounded import BoundedParseError, parse_json

    try:  # bounded: a 100k-deep header would overflow the recursive JSON parser
        header = parse_json(text, what="safetensors header", max_bytes=MAX_SAFETENSORS_HEADER, max_depth=16,
                            max_nodes=10_000_000)
    except BoundedParseError as e:
        raise ModelFormatError(f"{path.name}: safetensors header is not usable JSON ({e.message})",
                               "save and push the file again") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path.name}: safetensors header is not a JSON object", "save the file again")
    data_len = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(info, dict) and info.get("dtype") in _SAFETENSORS_DTYPES
              and isinstance(info.get("shape"), list) and all(isinstance(d, int) and d >= 0 for d in info["shape"])
              and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
              and all(isinstance(o, int) for o in info["data_offsets"])
              and 0 <= info["data_offsets"][0] <= info["data_offsets"][1] <= data_len)
        if not ok:
            raise ModelFormatError(f"{path.name}: safetensors entry '{name}' is malformed or points "
                                   "past the end of the file (truncated?)", "save and push the file again")
    return header


def summarize_safetensors(path: str | os.PathLike) -> GraphSummary:
    """Summarise a safetensors file: tensor count, parameter count, size and md5 (no graph in it)."""
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


# --------------------------------------------------------------------------- one run

_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
    "tensor(uint64)": "uint64", "tensor(uint32)": "uint32", "tensor(uint16)": "uint16",
    "tensor(uint8)": "uint8", "tensor(bool)": "bool", "tensor(string)": "str",
}


RUN_TIMEOUT = 120.0  # seconds the one run of the graph check may take
RUN_MEMORY = 4 << 30  # bytes of address space it may add on top of the process's own


def run_once(path: str | os.PathLike, seed: int = 0, *, timeout: float = RUN_TIMEOUT,
             memory: int = RUN_MEMORY) -> dict[str, list[int]]:
    """Run an ONNX model once in onnxruntime (CPU) on generated inputs; return each output's shape.

    Symbolic or unknown dimensions become 1; inputs are seeded random values of the right dtype
    (small non-negative integers, so index-like inputs stay valid).

    The model comes from an untrusted pull request, so where the OS can fork the run happens in a
    child process that may use at most `memory` more bytes of address space (Linux) and is killed
    after `timeout` seconds: a graph built to exhaust the bot's machine fails the check instead.

    Raises:
        ModelFormatError: onnxruntime cannot load or run the model, or it went past a limit (the
            message says which).
    """
    path = Path(path)
    try:
        import numpy  # noqa: F401 - imported once here, not in every child
        import onnxruntime  # noqa: F401
    except ImportError:  # pragma: no cover - core dependencies
        raise missing_dependency("onnxruntime") from None
    if not hasattr(os, "fork"):  # Windows: no cheap child process; run here
        return _run_once(path, seed)
    return _run_in_child(path, seed, timeout, memory)


def _run_in_child(path: Path, seed: int, timeout: float, memory: int) -> dict[str, list[int]]:
    import select
    import signal
    import time

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: limit itself, run, report as JSON, leave without cleanup
        code = 0
        try:
            os.close(read_end)
            _limit_memory(memory)
            try:
                report: dict[str, Any] = {"outputs": _run_once(path, seed)}
            except ModelFormatError as e:
                report = ({"memory": True} if "Failed to allocate memory" in e.message
                          else {"error": e.message, "hint": e.hint})
            except MemoryError:
                report = {"memory": True}
            data = json.dumps(report).encode()
            while data:
                data = data[os.write(write_end, data):]
        except BaseException:  # noqa: BLE001 - the parent reports a child that says nothing
            code = 70
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline, timed_out = [], time.monotonic() + timeout, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    limits_hint = ("a model the registry accepts must run once on generated inputs within "
                   f"{timeout:g} s and {memory / (1 << 30):g} GiB; check its shapes and loops")
    if timed_out:
        raise ModelFormatError(f"{path.name}: running the model once on generated inputs took longer "
                               f"than {timeout:g} s, so it was stopped", limits_hint)
    try:
        report = json.loads(b"".join(chunks))
    except ValueError:
        how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit code {os.WEXITSTATUS(status)}")
        raise ModelFormatError(f"{path.name}: onnxruntime stopped while running the model once ({how}); "
                               "it may need more memory than allowed", limits_hint) from None
    if report.get("memory"):
        raise ModelFormatError(f"{path.name}: running the model once needed more than "
                               f"{memory / (1 << 30):g} GiB of memory", limits_hint)
    if "error" in report:
        raise ModelFormatError(report["error"], report.get("hint"))
    return report["outputs"]


def _limit_memory(extra: int) -> None:
    """Cap this process's address space at its current size plus `extra` bytes (Linux)."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (ImportError, OSError, ValueError, IndexError):
        return  # no /proc: the time limit still holds
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run_once(path: Path, seed: int) -> dict[str, list[int]]:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # errors come back as exceptions, reported once below
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad models
        raise ModelFormatError(f"{path.name}: onnxruntime cannot load the model: {_first_line(e)}",
                               "export the model again with a supported opset; try it with onnxruntime locally") from None
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else 1 for d in (inp.shape or [])]
        dtype = _ORT_DTYPES.get(inp.type)
        if dtype is None:
            raise ModelFormatError(f"{path.name}: input '{inp.name}' has type {inp.type}, which the "
                                   "registry cannot generate test data for",
                                   "give the model plain tensor inputs")
        if dtype.startswith("float"):
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype == "bool":
            value = rng.integers(0, 2, shape).astype(bool)
        elif dtype == "str":
            value = np.full(shape, "a", dtype=object)
        else:
            value = rng.integers(0, 2, shape).astype(dtype)
        feeds[inp.name] = value
    try:
        results = session.run(None, feeds)
    except Exception as e:
        raise ModelFormatError(f"{path.name}: running the model once on generated inputs failed: "
                               f"{_first_line(e)}", "check that the model runs in onnxruntime on "
                               "inputs of the declared shapes") from None
    names = [o.name for o in session.get_outputs()]
    return {n: [int(d) for d in getattr(r, "shape", ())] for n, r in zip(names, results)}


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:400] if text else type(e).__name__


# --------------------------------------------------------------------------- text summary

def _shape_text(t: TensorInfo) -> str:
    if t.shape is None:
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in t.shape) + "]"


def summary_text(summary: GraphSummary) -> str:
    """The plain-text summary the bot's report shows: inputs, outputs, op counts, parameters, opset."""
    lines = [f"format: {summary.format.value}   size: {summary.file_size:,} bytes   md5: {summary.md5}"]
    if summary.producer:
        lines.append(f"producer: {summary.producer}")
    if summary.format is WeightsFormat.onnx:
        opsets = ", ".join(f"{d} {v}" for d, v in summary.opsets.items()) or "none"
        lines.append(f"ir_version: {summary.ir_version}   opset: {opsets}")
        lines.append("inputs:")
        lines += [f"  {t.name}: {t.dtype} {_shape_text(t)}" for t in summary.inputs] or ["  (none)"]
        lines.append("outputs:")
        lines += [f"  {t.name}: {t.dtype} {_shape_text(t)}" for t in summary.outputs] or ["  (none)"]
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(summary.op_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"ops ({summary.node_count} nodes): {ops or 'none'}")
        if summary.external_data:
            lines.append("external data: " + ", ".join(summary.external_data))
    lines.append(f"parameters: {summary.parameter_count:,} in {summary.tensor_count} tensors")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- SVG picture

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 40, 24, 36, 20


class _Box:
    __slots__ = ("key", "kind", "label", "sub", "title", "layer", "x", "y", "preds", "ops")

    def __init__(self, key: str, kind: str, label: str, sub: str = "", title: str = "", ops: int = 0):
        self.key, self.kind, self.label, self.sub, self.title, self.ops = key, kind, label, sub, title, ops
        self.layer, self.x, self.y = 0, 0.0, 0.0
        self.preds: list[_Box] = []


def render_svg(model: onnx.ModelProto, max_boxes: int = 150, max_layers: int = 60) -> str:
    """Draw the model's main graph as an SVG: a box per op (its type), arrows along the data flow.

    Layers run top to bottom (a node sits one layer below its deepest input). Long straight chains
    are merged into one box when the graph has more than `max_boxes` nodes, and when more than
    `max_layers` layers remain the middle ones are replaced by a box saying what was left out.

    Args:
        model: a loaded ONNX model (external data not needed).
    """
    g = model.graph
    inits = {i.name for i in g.initializer}
    boxes: list[_Box] = []
    producer: dict[str, _Box] = {}
    for v in g.input:
        if v.name not in inits:
            b = _Box(f"in:{v.name}", "io", v.name, _shape_text(_tensor_info(onnx_wire.read_value_info(v.SerializeToString()))), f"input {v.name}")
            boxes.append(b)
            producer[v.name] = b
    node_boxes: list[_Box] = []
    for i, node in enumerate(g.node):
        b = _Box(f"n:{i}", "op", node.op_type, node.name if node.name != node.op_type else "",
                 f"{node.op_type} {node.name}".strip(), ops=1)
        b.preds = list(dict.fromkeys(producer[t] for t in node.input if t in producer))
        for t in node.output:
            producer[t] = b
        node_boxes.append(b)
    out_boxes = []
    for v in g.output:
        b = _Box(f"out:{v.name}", "io", v.name, _shape_text(_tensor_info(onnx_wire.read_value_info(v.SerializeToString()))), f"output {v.name}")
        if v.name in producer:
            b.preds = [producer[v.name]]
        out_boxes.append(b)
    if len(node_boxes) > max_boxes:
        node_boxes = _merge_chains(node_boxes, out_boxes)
    boxes += node_boxes + out_boxes
    for b in boxes:  # ONNX nodes are in topological order, so one pass settles the layers
        b.layer = 1 + max((p.layer for p in b.preds), default=-1)
    last = max((b.layer for b in node_boxes), default=0)
    for b in out_boxes:
        b.layer = last + 1
    boxes = _elide_layers(boxes, max_layers)
    return _draw(boxes, g.name or "model")


def _merge_chains(nodes: list[_Box], outs: list[_Box]) -> list[_Box]:
    """Merge runs of nodes where each feeds only the next and the next is fed only by it."""
    consumers: dict[str, list[_Box]] = {}
    for b in nodes + outs:
        for p in b.preds:
            consumers.setdefault(p.key, []).append(b)
    merged_into: dict[str, _Box] = {}
    result: list[_Box] = []
    for b in nodes:
        head = merged_into.get(b.key)
        if head is not None:
            continue
        chain = [b]
        while True:
            nxt = consumers.get(chain[-1].key, [])
            if len(nxt) == 1 and nxt[0].kind == "op" and nxt[0].preds == [chain[-1]]:
                chain.append(nxt[0])
            else:
                break
        if len(chain) == 1:
            result.append(b)
            continue
        ops = [c.label for c in chain]
        label = f"{ops[0]} … {ops[-1]}" if len(ops) > 2 else f"{ops[0]} → {ops[1]}"
        box = _Box(b.key, "group", label, f"{len(ops)} ops", " → ".join(ops), ops=len(ops))
        box.preds = b.preds
        for c in chain:
            merged_into[c.key] = box
        result.append(box)
    for b in result + outs:  # point edges at the merged boxes
        b.preds = list(dict.fromkeys(merged_into.get(p.key, p) if p.kind == "op" else p for p in b.preds))
        b.preds = [p for p in b.preds if p is not b]
    return result


def _elide_layers(boxes: list[_Box], max_layers: int) -> list[_Box]:
    top = max((b.layer for b in boxes), default=0)
    if top + 1 <= max_layers:
        return boxes
    keep = max_layers // 2
    cut_from, cut_to = keep, top - keep  # layers [cut_from, cut_to] are left out
    hidden = [b for b in boxes if cut_from <= b.layer <= cut_to]
    n_ops = sum(b.ops for b in hidden)
    gap = _Box("elided", "gap", f"… {n_ops} ops …", f"{cut_to - cut_from + 1} layers not drawn",
               f"{n_ops} ops in {cut_to - cut_from + 1} layers are left out of the picture", ops=n_ops)
    gap.layer = cut_from
    gap.preds = list(dict.fromkeys(p for b in hidden for p in b.preds if p.layer < cut_from))
    hidden_keys = {b.key for b in hidden}
    shown = []
    for b in boxes:
        if b.key in hidden_keys:
            continue
        if b.layer > cut_to:
            b.layer -= cut_to - cut_from
            if any(p.key in hidden_keys for p in b.preds):
                b.preds = [p for p in b.preds if p.key not in hidden_keys] + [gap]
        shown.append(b)
    return shown + [gap]


def _draw(boxes: list[_Box], title: str) -> str:
    layers: dict[int, list[_Box]] = {}
    for b in boxes:
        layers.setdefault(b.layer, []).append(b)
    order: dict[str, float] = {}
    for depth in sorted(layers):  # order each layer by where its inputs sit (fewer crossings)
        row = layers[depth]
        row.sort(key=lambda b: (sum(order.get(p.key, 0) for p in b.preds) / len(b.preds)) if b.preds else 0)
        for i, b in enumerate(row):
            order[b.key] = i
    width = max(len(r) for r in layers.values()) * (BOX_W + GAP_X) - GAP_X + 2 * MARGIN
    height = len(layers) * (BOX_H + GAP_Y) - GAP_Y + 2 * MARGIN + 20
    for depth, row in layers.items():
        row_w = len(row) * (BOX_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for i, b in enumerate(row):
            b.x, b.y = x0 + i * (BOX_W + GAP_X), MARGIN + 20 + depth * (BOX_H + GAP_Y)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
           'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
           "</marker></defs>",
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{MARGIN}" y="{MARGIN + 4}" font-weight="bold">{escape(title)}</text>',
           '<g class="edges" fill="none" stroke="#555" stroke-width="1.2">']
    for b in boxes:
        for p in b.preds:
            x1, y1 = p.x + BOX_W / 2, p.y + BOX_H
            x2, y2 = b.x + BOX_W / 2, b.y
            my = (y1 + y2) / 2
            out.append(f'<path d="M{x1:.1f},{y1:.1f} C{x1:.1f},{my:.1f} {x2:.1f},{my:.1f} {x2:.1f},{y2:.1f}" '
                       'marker-end="url(#arrow)"/>')
    out.append("</g>")
    styles = {"io": ("#e8f0fe", "#3b6fd8", 16), "op": ("#f4f4f4", "#444", 4),
              "group": ("#fff4e0", "#b07000", 4), "gap": ("#ffffff", "#999", 4)}
    out.append('<g class="nodes">')
    for b in boxes:
        fill, stroke, rx = styles[b.kind]
        dash = ' stroke-dasharray="4 3"' if b.kind == "gap" else ""
        cx = b.x + BOX_W / 2
        out.append(f'<g class="node {b.kind}"><title>{escape(b.title)}</title>'
                   f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="{rx}" '
                   f'fill="{fill}" stroke="{stroke}"{dash}/>')
        if b.sub:
            out.append(f'<text x="{cx:.1f}" y="{b.y + 17:.1f}" text-anchor="middle" font-weight="bold">'
                       f"{escape(_clip(b.label))}</text>"
                       f'<text x="{cx:.1f}" y="{b.y + 32:.1f}" text-anchor="middle" fill="#666" font-size="10">'
                       f"{escape(_clip(b.sub, 26))}</text></g>")
        else:
            out.append(f'<text x="{cx:.1f}" y="{b.y + 25:.1f}" text-anchor="middle" font-weight="bold">'
                       f"{escape(_clip(b.label))}</text></g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _clip(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
