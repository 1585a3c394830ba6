"""Weights files read without running code: telling their format, and loading an ONNX model safely.

Loading never runs code from the file. The format is told by its first bytes, not its name:
pickle-based formats (PyTorch `.pt`/`.pth`/`.bin`/`.ckpt`, joblib, raw pickles) are refused,
because unpickling executes whatever the file says. ONNX is parsed as protobuf (data only), with
its external-data files held inside the model folder; safetensors is read from its JSON header.

Owns `detect_format`, `load_onnx` (with `check_external_data`), `read_safetensors_header` and the
errors that say why a file is not a readable ONNX model. What a file holds is
`registry.formats.summary`; one run of a model is `registry.formats.onnx_run`; its picture is
`registry.formats.svg`.
"""

from __future__ import annotations

import os
import struct
import zipfile
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from registry.core.errors import ModelFormatError, missing_dependency

if TYPE_CHECKING:  # pragma: no cover
    import onnx

EXPORT_HINT = (
    "export the model to ONNX (torch.onnx.export) or save the tensors with safetensors "
    "(safetensors.torch.save_file), then dvc add the new file"
)
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own limit
PICKLE_EXTENSIONS = {
    ".pt",
    ".pth",
    ".bin",
    ".ckpt",
    ".pkl",
    ".pickle",
    ".joblib",
    ".sav",
    ".npy",
    ".npz",
}


class WeightsFormat(str, Enum):
    """Weights formats the registry can read without running code."""

    onnx = "onnx"
    safetensors = "safetensors"


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
        raise ModelFormatError(
            f"{path.name} is empty", "push the real weights file: dvc add, then dvc push"
        )
    if head.startswith(b"PK\x03\x04"):
        _refuse_zip(path)
    if _is_pickle(head, tail):
        raise _pickle_error(path, "a Python pickle")
    for magic, what in (
        (b"\x1f\x8b", "gzip"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ", "xz"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"ZF", "zlib"),
    ):
        if head.startswith(magic):
            raise ModelFormatError(
                f"{path.name} is {what}-compressed data (as joblib and compressed pickles write); "
                "the registry does not unpack and unpickle weights, because unpickling runs "
                "arbitrary code",
                EXPORT_HINT,
            )
    if head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        raise ModelFormatError(
            f"{path.name} is zlib-compressed data (as joblib writes); "
            "unpickling it would run arbitrary code",
            EXPORT_HINT,
        )
    if head.startswith(b"\x89HDF"):
        raise ModelFormatError(
            f"{path.name} is an HDF5 (Keras .h5) file, which the registry does not read",
            "export the model to ONNX (tf2onnx), then dvc add the new file",
        )
    if head[4:8] == b"TFL3":
        raise ModelFormatError(
            f"{path.name} is a TensorFlow Lite model, which the registry does not read",
            "register the ONNX model it was made from; device formats are built on release",
        )
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
        raise ModelFormatError(
            f"{path.name} is a PyTorch ExportedProgram (.pt2), which is not the weights "
            "format: the registry checks, publishes and verifies against ONNX",
            "set 'weights' to the ONNX export of the model and name the .pt2 under "
            "'pytorch:' (see docs/model-card.md#pytorch-source)",
        )
    if any(n.endswith(".pkl") for n in names):
        kind = (
            "a TorchScript archive"
            if any("/code/" in n or n.startswith("code/") for n in names)
            else "a PyTorch checkpoint (torch.save zip with data.pkl)"
        )
        raise _pickle_error(path, kind)
    raise ModelFormatError(
        f"{path.name} is a zip archive, not a weights format the registry reads", EXPORT_HINT
    )


def _pickle_error(path: Path, kind: str) -> ModelFormatError:
    return ModelFormatError(
        f"{path.name} is {kind}: the registry refuses pickle-based weights, because unpickling "
        "runs arbitrary code from the file",
        EXPORT_HINT,
    )


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


def load_onnx(
    path: str | os.PathLike, root: str | os.PathLike | None = None, load_external: bool = True
) -> onnx.ModelProto:
    """Parse an ONNX file safely; external data must lie inside `root` (default: the file's folder).

    Args:
        path: the .onnx file.
        root: the folder that external data may not leave (the model's folder).
        load_external: check and read the external tensors into the returned model (without it,
            the graph and the tensors' names, shapes and locations are there, not their values).

    Raises:
        ModelFormatError: not ONNX, truncated, pickle-based, or external data outside
        `root`/missing.
    """
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    path = Path(path)
    require_onnx_format(path)
    data = path.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise unparsable_error(path, data, e) from None
    require_complete(path, data, model.ir_version, len(model.graph.output))
    locations = external_data_locations(model)
    if locations and load_external:
        root = Path(root) if root is not None else path.parent
        check_external_data(locations, path.parent, root, path.name)
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as e:
            raise ModelFormatError(
                f"{path.name}: cannot read its external data: {e}",
                "dvc add / dvc push the external data files with the model",
            ) from None
    return model


def require_onnx_format(path: Path) -> None:
    """Refuse a file whose first bytes say it is another format (pickles included)."""
    fmt = detect_format(path)
    if fmt is not WeightsFormat.onnx:
        raise ModelFormatError(
            f"{path.name} is a {fmt.value} file, not an ONNX model",
            "point 'weights' at the .onnx file",
        )


def _looks_onnx(data) -> bool:
    return data[:1] == b"\x08"  # field 1 (ir_version), as every exporter writes it first


def unparsable_error(path: Path, data, error: Exception) -> ModelFormatError:
    """The error for a file protobuf cannot parse: a truncated ONNX model, or not ONNX at all."""
    if _looks_onnx(data):
        return ModelFormatError(
            f"{path.name} starts like an ONNX model but cannot be parsed: "
            f"it is truncated or corrupt ({error})",
            "export it again and dvc add / dvc push the complete file",
        )
    return _not_onnx(path)


def require_complete(path: Path, data, ir_version: int, outputs: int) -> None:
    """Refuse a parsed model without an IR version or graph outputs (truncated, or not ONNX).

    Raises:
        ModelFormatError: saying which.
    """
    if ir_version <= 0 or not outputs:
        if _looks_onnx(data) and ir_version > 0:
            raise ModelFormatError(
                f"{path.name} is an incomplete ONNX model (its graph has no outputs): "
                "it is truncated or corrupt",
                "export it again and dvc add / dvc push the complete file",
            )
        raise _not_onnx(path)


def _not_onnx(path: Path) -> ModelFormatError:
    suffix = path.suffix.lower()
    extra = (
        f" (files named {suffix} are usually pickle-based, which the registry refuses)"
        if suffix in PICKLE_EXTENSIONS
        else ""
    )
    return ModelFormatError(
        f"{path.name} is not an ONNX model (it does not parse as one){extra}", EXPORT_HINT
    )


def external_data_locations(model: onnx.ModelProto) -> list[str]:
    """The distinct `location`s of every tensor stored outside the model file (subgraphs
    included)."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    found: list[str] = []
    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            loc = next((e.value for e in tensor.external_data if e.key == "location"), "")
            if loc not in found:
                found.append(loc)
    return found


def check_external_data(
    locations: list[str], model_dir: Path, root: Path, model_name: str = "the model"
) -> None:
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
        hint = (
            "save the external data next to the model (onnx.save_model(..., location='name.data'))"
        )
        if not loc or loc.startswith(("/", "\\")) or (len(loc) > 1 and loc[1] == ":"):
            raise ModelFormatError(
                f"{model_name}: external data location '{loc}' is absolute; "
                "it must be a file inside the model folder",
                hint,
            )
        rel = relative_inside(
            PurePosixPath(model_dir.relative_to(root).as_posix()) / loc.replace("\\", "/")
        )
        if rel is None:
            raise ModelFormatError(
                f"{model_name}: external data location '{loc}' points outside the model folder",
                hint,
            )
        target = root / rel
        if not os.path.realpath(target).startswith(real_root + os.sep):
            raise ModelFormatError(
                f"{model_name}: external data location '{loc}' is a symlink that "
                "leaves the model folder",
                hint,
            )
        if not target.is_file():
            raise ModelFormatError(
                f"{model_name}: external data file '{loc}' is missing",
                "dvc add / dvc push it next to the model file",
            )


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


# --------------------------------------------------------------------------- safetensors

_SAFETENSORS_DTYPES = {
    "F64",
    "F32",
    "F16",
    "BF16",
    "I64",
    "I32",
    "I16",
    "I8",
    "U64",
    "U32",
    "U16",
    "U8",
    "BOOL",
    "F8_E4M3",
    "F8_E5M2",
    "F8_E8M0",
    "F4",
    "F6_E2M3",
    "F6_E3M2",
    "C64",
    "I4",
    "U4",
}


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
            raise ModelFormatError(
                f"{path.name} is too short to be a safetensors file", EXPORT_HINT
            )
        n = struct.unpack("<Q", raw)[0]
        if n > MAX_SAFETENSORS_HEADER or 8 + n > size:
            raise ModelFormatError(
                f"{path.name}: safetensors header length {n} does not fit the "
                f"{size}-byte file (truncated?)",
                "save and push the file again",
            )
        text = f.read(n)
    from registry.core.bounded import BoundedParseError, parse_json

    try:  # bounded: a 100k-deep header would overflow the recursive JSON parser
        header = parse_json(
            text,
            what="safetensors header",
            max_bytes=MAX_SAFETENSORS_HEADER,
            max_depth=16,
            max_nodes=10_000_000,
        )
    except BoundedParseError as e:
        raise ModelFormatError(
            f"{path.name}: safetensors header is not usable JSON ({e.message})",
            "save and push the file again",
        ) from None
    if not isinstance(header, dict):
        raise ModelFormatError(
            f"{path.name}: safetensors header is not a JSON object", "save the file again"
        )
    data_len = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        ok = (
            isinstance(info, dict)
            and info.get("dtype") in _SAFETENSORS_DTYPES
            and isinstance(info.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in info["shape"])
            and isinstance(info.get("data_offsets"), list)
            and len(info["data_offsets"]) == 2
            and all(isinstance(o, int) for o in info["data_offsets"])
            and 0 <= info["data_offsets"][0] <= info["data_offsets"][1] <= data_len
        )
        if not ok:
            raise ModelFormatError(
                f"{path.name}: safetensors entry '{name}' is malformed or points "
                "past the end of the file (truncated?)",
                "save and push the file again",
            )
    return header
