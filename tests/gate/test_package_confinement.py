"""Packages are confined: a model reads nothing outside its package, and only listed, hashed members
of a package archive are read, each within a size cap."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from factories import FAST, mlp_onnx, run_bounded, write_package_source
from registry.packaging.archive import deterministic_tar, open_package
from registry.packaging.build import build_package
from registry.packaging.encryption import PackageIntegrityError
from registry.packaging.run import run_package
from registry.packaging.source import source_from_files

SECRET = b'[remote "public"]\n    secret_access_key = AKIA-DO-NOT-LEAK\n'


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("confined")
    model, card = write_package_source(tmp / "src", mlp_onnx(), "  - linux-x86_64\n")
    return build_package(
        source_from_files(model, card), "linux-x86_64", tmp / "dist", overrides=FAST
    )


def unpack(path) -> tuple[str, dict[str, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    root = next(iter(files)).split("/")[0]
    return root, {k.split("/", 1)[1]: v for k, v in files.items()}


def repack(root: str, files: dict[str, bytes], manifest_edit=None) -> bytes:
    manifest = json.loads(files["manifest.json"])
    for name in list(manifest["files"]):
        if name in files:
            manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
    if manifest_edit:
        manifest_edit(manifest)
    files = {**files, "manifest.json": json.dumps(manifest).encode()}
    return deterministic_tar(root, files)


def with_external(model_bytes: bytes, location: str) -> bytes:
    """The model with its first initializer moved to external data at `location`."""
    model = onnx.load_from_string(model_bytes)
    init = model.graph.initializer[0]
    init.ClearField("raw_data")
    del init.float_data[:]
    init.data_location = TensorProto.EXTERNAL
    for k, v in (
        ("location", location),
        ("offset", "0"),
        ("length", str(4 * int(np.prod(init.dims)))),
    ):
        e = init.external_data.add()
        e.key, e.value = k, v
    return model.SerializeToString()


@pytest.mark.parametrize(
    "location", [".dvc/config.local", "../../.dvc/config.local", "/etc/passwd"]
)
def test_external_data_outside_the_package_is_refused(package, tmp_path, location):
    root, files = unpack(package.path)
    model_file = json.loads(files["manifest.json"])["model_file"]
    files[model_file] = with_external(files[model_file], location)
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(repack(root, files))
    # a user's clone with credentials, where `registry run` is started
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config.local").write_bytes(SECRET.ljust(4096, b" "))
    np.save(tmp_path / "x.npy", np.zeros((1, 8), np.float32))
    code, out, err, seconds, rss = run_bounded(
        [sys.executable, "-m", "registry", "run", str(evil), "-i", "x.npy", "--format", "json"],
        tmp_path,
    )
    assert code == 6, out + err
    assert "not a listed member of the package" in err and str(evil) in err
    assert "AKIA" not in out + err


def test_external_data_in_a_listed_member_runs_from_the_package_only(package, tmp_path):
    root, files = unpack(package.path)
    manifest = json.loads(files["manifest.json"])
    model_file = manifest["model_file"]
    original = onnx.load_from_string(files[model_file])
    first = original.graph.initializer[0]
    weights_member = (
        f"{model_file.rsplit('/', 1)[0]}/weights.bin" if "/" in model_file else "weights.bin"
    )
    files[weights_member] = onnx.numpy_helper.to_array(first).astype(np.float32).tobytes()
    files[model_file] = with_external(files[model_file], weights_member.rsplit("/", 1)[-1])
    good = tmp_path / "good.tar.gz"
    good.write_bytes(
        repack(
            root,
            files,
            lambda m: m["files"].update(
                {weights_member: hashlib.sha256(files[weights_member]).hexdigest()}
            ),
        )
    )
    opened = open_package(good)
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    out = run_package(opened, {"input": x})
    ref = run_package(open_package(package.path), {"input": x})
    np.testing.assert_allclose(list(out.values())[0], list(ref.values())[0], rtol=1e-6)


def test_unlisted_members_are_never_read(package, tmp_path):
    root, files = unpack(package.path)
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, mode="w:gz", compresslevel=1) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        bomb = tarfile.TarInfo(f"{root}/padding.bin")  # 1 GiB of zeros: about a megabyte compressed
        bomb.size = 1 << 30

        class Zeros(io.RawIOBase):
            def __init__(self, n):
                self.left = n

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tar.addfile(bomb, io.BufferedReader(Zeros(bomb.size), 1 << 20))
    code, out, err, seconds, rss = run_bounded(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from "
            "registry.packaging.archive import open_package; "
            "p = open_package(Path(sys.argv[1])); "
            "print(sorted(p.files))",
            str(path),
        ],
        tmp_path,
        timeout=120,
    )
    assert code == 0, err
    assert "padding.bin" not in out
    assert path.stat().st_size < 16 << 20 and rss < 700 << 20  # never decompressed into memory


def test_too_many_members_is_a_clear_error(tmp_path, monkeypatch):
    import registry.packaging.archive as pkg

    monkeypatch.setattr(pkg, "MAX_MEMBERS", 5)
    path = tmp_path / "many.tar.gz"
    path.write_bytes(deterministic_tar("x", {f"f{i}": b"" for i in range(10)}))
    with pytest.raises(PackageIntegrityError, match="more than 5 members"):
        open_package(path)
