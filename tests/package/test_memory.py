"""A build handles the model file to file: the staged model's block, the archive, encryption."""

from __future__ import annotations

import hashlib
import io
import os

import onnx
import pytest

from factories import mlp_onnx
from registry.formats.onnx_wire import WireError, copy_with_metadata, read_header, read_metadata
from registry.packaging.archive import deterministic_tar, member_sha256
from registry.packaging.encryption import decrypt, encrypt, encrypt_file


def test_block_written_file_to_file_replaces_the_old_one_and_keeps_the_rest(tmp_path):
    model = onnx.load_from_string(mlp_onnx(0))
    model.metadata_props.add(key="registry.description", value="old")
    model.metadata_props.add(key="author", value="someone")
    src, dest = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(model, str(src))

    copy_with_metadata(src, dest, "registry.description", '{"new": true}')

    out = onnx.load(str(dest))
    onnx.checker.check_model(out)
    assert [(p.key, p.value) for p in out.metadata_props] == [
        ("author", "someone"),
        ("registry.description", '{"new": true}'),
    ]
    assert out.graph == model.graph
    data = dest.read_bytes()
    assert read_metadata(data)["registry.description"] == '{"new": true}'
    header = read_header(data)
    assert (header.ir_version, header.opsets) == (model.ir_version, [("", 17)])


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\xff\xff\xff\x0f not a model")
    with pytest.raises(WireError):
        copy_with_metadata(bad, tmp_path / "out.onnx", "k", "v")


def test_archive_from_files_is_the_archive_from_bytes(tmp_path):
    weights = os.urandom(3 << 20) + bytes(1 << 20)
    (tmp_path / "model.onnx").write_bytes(weights)
    from_bytes = deterministic_tar("p", {"model/model.onnx": weights, "loader.py": b"x = 1\n"})
    from_file = deterministic_tar(
        "p", {"model/model.onnx": tmp_path / "model.onnx", "loader.py": b"x = 1\n"}
    )
    assert from_file == from_bytes
    assert member_sha256(tmp_path / "model.onnx") == hashlib.sha256(weights).hexdigest()


def test_encrypting_a_file_gives_the_bytes_encrypting_in_memory_gives():
    key = bytes(range(32))
    plain = os.urandom((2 << 20) + 5)
    out = io.BytesIO()
    digest = encrypt_file(io.BytesIO(plain), out, key)
    assert out.getvalue() == encrypt(plain, key)
    assert digest == hashlib.sha256(out.getvalue()).hexdigest()
    assert decrypt(out.getvalue(), key, "x") == plain
