"""The package archive: its layout, its manifest, and writing, opening and reading it safely.

A package is a deterministic gzip'd tar (sorted names, fixed times and owners) of one folder,
`NAME-VERSION-TARGET/`, holding the model's files under `model/`, `manifest.json` (the
`Manifest`: every other file's SHA-256, the description block, the engine setting, the
verification record), a minimal `loader.py`, and `verification/reference.npz` (the verification
inputs and the source model's outputs, for `registry verify`); optionally encrypted as a whole
(`registry.packaging.encryption`).

Owns writing it (`package_files`, `write_package`), opening it (`open_package`: decrypts in memory,
reads only listed members within size caps, checks every hash, keeps an ONNX model from reading
anything outside the package) and the reference data (`reference_npz`, `read_reference`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import BaseModel, Field

from registry.core.errors import UsageError
from registry.packaging.benchmark import BenchmarkReport
from registry.packaging.encryption import (
    PackageIntegrityError,
    decrypt,
    encrypt_file,
    is_encrypted,
)
from registry.packaging.engines import EngineSetting
from registry.packaging.protocol import DescriptionBlock
from registry.packaging.verify import Verification

MANIFEST = "manifest.json"
LOADER = "loader.py"
REFERENCE = "verification/reference.npz"
MODEL_DIR = "model"
PACKAGE_FORMAT = 1
_BLOCK = 1 << 20
# the loader shipped in every package (package data of the registry)
LOADER_SOURCE = Path(__file__).resolve().parents[1] / "templates" / "package_loader.py"


# --------------------------------------------------------------------------- manifest


class Manifest(BaseModel):
    """`manifest.json` of a package."""

    package_format: int = PACKAGE_FORMAT
    model: str = Field(description="'<name>@<version>'")
    target: str
    model_file: str = Field(
        description="path of the model inside the package (a folder for .mlpackage)"
    )
    files: dict[str, str] = Field(
        description="SHA-256 of every file of the package but the manifest"
    )
    description: DescriptionBlock
    engine: EngineSetting = Field(
        description="the engine setting the package runs with (the engine's default, or the "
        "card's `engine:`)"
    )
    inputs: list[dict] = Field(description="name, shape and dtype of each input")
    batch: int | str | None = Field(
        None,
        description="the batch the model accepts: a number when fixed (a .pt2 exported with "
        "fixed shapes), 'any' when its first axis is free",
    )
    outputs: list[str] = Field(description="output names, in order")
    verified: bool = Field(
        description="whether the chosen model was verified numerically on the build machine "
        "(false only for a model this machine cannot run, packaged because it was asked "
        "for explicitly: `registry verify` on its platform checks it)"
    )
    verified_on_device: bool = Field(
        description="whether that verification ran on the target's own kind of "
        "device and runtime (false for cross-built targets)"
    )
    verification_note: str = Field(
        description="what ran the verification and what could not run here"
    )
    verification: list[Verification]
    engine_verification: Verification = Field(
        description="the chosen candidate re-verified with the chosen engine setting"
    )
    benchmark: BenchmarkReport
    reference: str | None = Field(
        None,
        description="npz in the package with the verification inputs "
        "('input/<name>') and the source model's outputs ('output/<name>'), first "
        "axis = sample, for `registry verify`",
    )
    built_with: str = Field(description="registry version that built the package")


class PackageResult(BaseModel):
    """What `build_package` made."""

    path: Path
    manifest: Manifest
    sha256: str
    benchmark: BenchmarkReport | None = Field(
        None, description="the full benchmark report (timings, advice), when timings were taken"
    )
    benchmark_file: Path | None = Field(
        None, description="where that report was written, beside the package"
    )


# --------------------------------------------------------------------------- write


# A member of a package: its bytes, or the file that holds them (streamed, never read whole).
Member = bytes | Path


def package_files(model_files: dict[str, Member], reference: bytes) -> dict[str, Member]:
    """Every file of a package but its manifest, by its path in the package.

    Args:
        model_files: the model's files (bytes, or the path of the file), by their path relative to
            the model file's folder.
        reference: the verification reference (`reference_npz`).
    """
    files: dict[str, Member] = {f"{MODEL_DIR}/{name}": data for name, data in model_files.items()}
    files[LOADER] = LOADER_SOURCE.read_bytes()
    files[REFERENCE] = reference
    return files


def member_sha256(member: Member) -> str:
    """SHA-256 of a package member, read a block at a time when it is a file."""
    if isinstance(member, bytes):
        return hashlib.sha256(member).hexdigest()
    h = hashlib.sha256()
    with open(member, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def write_package(
    root: str, files: dict[str, Member], manifest: Manifest, out_dir: Path, key: bytes | None
) -> PackageResult:
    """Write the archive (encrypted when a key is given), whole or not at all.

    The archive is streamed to its file: a model file is read a block at a time, so a build holds
    no copy of the model, of the tar or of the gzip in memory.

    Args:
        root: the archive's top folder, also its file name ('NAME-VERSION-TARGET').
        files: `package_files`; the manifest is added to them.
        key: 32-byte AES key (None: not encrypted).
    """
    from registry.core.files import atomic_path

    files = {
        **files,
        MANIFEST: (
            json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        ).encode(),
    }
    dest = out_dir / f"{root}.tar.gz{'.enc' if key is not None else ''}"
    with atomic_path(dest) as tmp:
        if key is None:
            with open(tmp, "xb") as f:
                digest = _write_tar_gz(root, files, f)
        else:
            plain = tmp.with_name(tmp.name + ".plain")  # never renamed: removed below
            try:
                with open(plain, "xb") as f:
                    _write_tar_gz(root, files, f)
                with open(plain, "rb") as src, open(tmp, "xb") as f:
                    digest = encrypt_file(src, f, key)
            finally:
                plain.unlink(missing_ok=True)
    return PackageResult(path=dest, manifest=manifest, sha256=digest)


def deterministic_tar(root: str, files: dict[str, Member]) -> bytes:
    """A gzip'd tar of `files` under `root/`: sorted names, fixed times, owners and modes, gzip
    mtime 0."""
    out = io.BytesIO()
    _write_tar_gz(root, files, out)
    return out.getvalue()


class _Hashing(io.RawIOBase):
    """A write-only file that hashes what goes through it to `out`."""

    def __init__(self, out):
        self.out, self.sha256 = out, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha256.update(data)
        return self.out.write(data)


def _write_tar_gz(root: str, files: dict[str, Member], out) -> str:
    """Stream the deterministic gzip'd tar of `files` to the file `out`; return its SHA-256."""
    sink = _Hashing(out)
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        dirs = sorted({str(PurePosixPath(root, n).parent) for n in files} | {root})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            _fix(info)
            tar.addfile(info)
        for name in sorted(files):
            member = files[name]
            info = tarfile.TarInfo(f"{root}/{name}")
            info.mode = 0o644
            _fix(info)
            if isinstance(member, bytes):
                info.size = len(member)
                tar.addfile(info, io.BytesIO(member))
                continue
            with open(member, "rb") as f:
                info.size = os.fstat(f.fileno()).st_size
                tar.addfile(info, f)
    return sink.sha256.hexdigest()


def _fix(info: tarfile.TarInfo) -> None:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def reference_npz(
    inputs: list[dict[str, np.ndarray]], names: list[str], outputs: list[list[np.ndarray]]
) -> bytes:
    """The verification inputs and the source's outputs as one deterministic .npz: arrays
    'input/<name>' and 'output/<name>', first axis = sample (fixed zip times, stored, sorted)."""
    arrays = {f"input/{k}": np.stack([feed[k] for feed in inputs]) for k in inputs[0]}
    arrays.update(
        {f"output/{n}": np.stack([np.asarray(o[i]) for o in outputs]) for i, n in enumerate(names)}
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for key in sorted(arrays):
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data.getvalue())
    return buf.getvalue()


def read_reference(
    data: bytes, inputs: list[str], outputs: list[str], where: str
) -> tuple[list[dict[str, np.ndarray]], list[list[np.ndarray]]]:
    """The samples of a package's reference file: inputs per sample, the source's outputs per
    sample.

    Raises:
        PackageIntegrityError: the file lacks an input or output of the manifest.
    """
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    missing = [f"input/{n}" for n in inputs if f"input/{n}" not in arrays] + [
        f"output/{n}" for n in outputs if f"output/{n}" not in arrays
    ]
    if missing:
        raise PackageIntegrityError(f"{where}: the reference data lacks {', '.join(missing)}")
    count = len(arrays[f"input/{inputs[0]}"]) if inputs else 0
    feeds = [{n: arrays[f"input/{n}"][i] for n in inputs} for i in range(count)]
    expected = [[arrays[f"output/{n}"][i] for n in outputs] for i in range(count)]
    return feeds, expected


# --------------------------------------------------------------------------- open


class OpenedPackage(BaseModel):
    """A package read into memory and checked."""

    manifest: Manifest
    model_bytes: bytes = Field(
        description="the model file (empty for a folder format such as .mlpackage)"
    )
    files: dict[str, bytes]


def open_package(path: Path, key: bytes | None = None) -> OpenedPackage:
    """Read a package (decrypting in memory), check every file against the manifest's hashes.

    Raises:
        PackageKeyError / PackageIntegrityError: wrong key, altered or truncated file.
        ConversionError: not a package, or a file whose hash does not match the manifest.
    """
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    data = path.read_bytes()
    if is_encrypted(data):
        data = decrypt(data, key, str(path))
    members = _read_members(data, path)
    manifest_bytes = members.pop(MANIFEST)
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except Exception as e:
        raise PackageIntegrityError(
            f"{path}: {MANIFEST} is not valid ({str(e).splitlines()[0]})"
        ) from e
    for name, digest in manifest.files.items():
        got = members.get(name)
        if got is None:
            raise PackageIntegrityError(f"{path}: {name} is listed in the manifest but missing")
        if hashlib.sha256(got).hexdigest() != digest:
            raise PackageIntegrityError(
                f"{path}: {name} does not match the manifest's hash "
                f"(sha256 {hashlib.sha256(got).hexdigest()[:16]}…, manifest "
                f"{digest[:16]}…)",
                "the package was altered; rebuild or download it again",
            )
    members = {
        n: b for n, b in members.items() if n in manifest.files
    }  # nothing unlisted is ever used
    members[MANIFEST] = manifest_bytes
    if manifest.model_file in members and manifest.model_file.endswith(".onnx"):
        members[manifest.model_file] = confine_onnx(
            members[manifest.model_file], manifest.model_file, members, path
        )
    # a folder format (.mlpackage) has no single model file
    return OpenedPackage(
        manifest=manifest, model_bytes=members.get(manifest.model_file, b""), files=members
    )


MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 4 * 1024**3
MAX_PACKAGE_BYTES = 8 * 1024**3
MAX_MANIFEST_BYTES = 4 * 1024**2


def _members(data: bytes, path: Path):
    """The regular-file members of a package archive as (name inside the package, TarInfo, tar),
    within `MAX_MEMBERS`, with safe names only.

    Raises:
        PackageIntegrityError: not a gzip'd tar, too many members, an unsafe name.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            count = 0
            while (m := tar.next()) is not None:
                count += 1
                if count > MAX_MEMBERS:
                    raise PackageIntegrityError(
                        f"{path}: more than {MAX_MEMBERS:,} members in the archive",
                        "a package holds a model and a few files; rebuild it",
                    )
                if not m.isfile():
                    continue
                parts = PurePosixPath(m.name).parts
                if ".." in parts or m.name.startswith("/"):
                    raise PackageIntegrityError(f"{path}: unsafe path {m.name} in the archive")
                yield "/".join(parts[1:]), m, tar
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise PackageIntegrityError(
            f"{path}: not a readable package archive ({e})", "download the package again"
        ) from e


def _manifest_bytes(data: bytes, path: Path) -> bytes:
    for name, m, tar in _members(data, path):
        if name == MANIFEST:
            if m.size > MAX_MANIFEST_BYTES:
                raise PackageIntegrityError(
                    f"{path}: {MANIFEST} is {m.size:,} bytes, over {MAX_MANIFEST_BYTES:,}",
                    "rebuild the package",
                )
            return tar.extractfile(m).read(MAX_MANIFEST_BYTES + 1)
    raise PackageIntegrityError(f"{path}: no {MANIFEST} in the archive")


def _read_members(data: bytes, path: Path) -> dict[str, bytes]:
    """The manifest and the members it lists, each read only when listed and within its size cap
    (`MAX_MEMBER_BYTES`, `MAX_PACKAGE_BYTES` in all): a member the manifest does not list is never
    decompressed into memory.

    Raises:
        PackageIntegrityError: as `_members`, or a member over its cap.
    """
    manifest = _manifest_bytes(data, path)
    try:
        listed = set(json.loads(manifest).get("files", {}))
    except (ValueError, AttributeError) as e:
        raise PackageIntegrityError(f"{path}: {MANIFEST} is not valid ({e})") from e
    members, total = {MANIFEST: manifest}, 0
    for name, m, tar in _members(data, path):
        if name not in listed:
            continue
        total += m.size
        if m.size > MAX_MEMBER_BYTES or total > MAX_PACKAGE_BYTES:
            raise PackageIntegrityError(
                f"{path}: {name} makes the package bigger than this registry reads "
                f"({m.size:,} bytes; caps {MAX_MEMBER_BYTES:,} per file, "
                f"{MAX_PACKAGE_BYTES:,} in all)",
                "rebuild the package",
            )
        members[name] = tar.extractfile(m).read(m.size)
    return members


def confine_onnx(
    model: bytes, model_file: str, members: dict[str, bytes], path: Path | str
) -> bytes:
    """An ONNX model whose external data comes only from the package: every tensor stored outside
    the
    model must name a listed (hashed) member of the package, relative to the model file; its bytes
    are then put inside the model, so the runtime never opens a file of its own accord (from a
    bytes model it would read `location` relative to the current directory: a user's clone and its
    credentials).

    Raises:
        PackageIntegrityError: external data that is not a listed member, or out of its bounds.
    """
    import onnx
    from onnx import TensorProto

    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(model)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise PackageIntegrityError(f"{path}: {model_file} is not an ONNX model ({e})") from e
    folder = PurePosixPath(model_file).parent
    changed = False
    for tensor in _all_tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        rel = PurePosixPath(location)
        member = (folder / rel).as_posix() if str(folder) != "." else rel.as_posix()
        if (
            not location
            or rel.is_absolute()
            or ".." in rel.parts
            or "\\" in location
            or member not in members
        ):
            raise PackageIntegrityError(
                f"{path}: {model_file} reads tensor '{tensor.name}' from '{location}', which is "
                f"not a listed "
                "member of the package; a package's model reads nothing outside it",
                "rebuild the package with `registry package` (external data is packed and hashed)",
            )
        data = members[member]
        offset, length = int(info.get("offset", 0) or 0), info.get("length")
        end = len(data) if length in (None, "") else offset + int(length)
        if offset < 0 or end > len(data):
            raise PackageIntegrityError(
                f"{path}: tensor '{tensor.name}' reads past the end of {member}"
            )
        tensor.raw_data = data[offset:end]
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
        changed = True
    return proto.SerializeToString() if changed else model


def _all_tensors(proto):
    """Every tensor of a model: initializers, constants and attributes, subgraphs included."""
    graphs = [proto.graph]
    while graphs:
        g = graphs.pop()
        yield from g.initializer
        yield from (s.values for s in g.sparse_initializer)
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("g"):
                    graphs.append(a.g)
                graphs.extend(a.graphs)
