"""The description block: written into the model and the manifest, read back, enforced by the
loader."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import onnx
import pytest

from factories import FAST, conv_onnx, mlp_onnx, write_package_source
from registry.core.errors import ConversionError, ModelFormatError
from registry.packaging.archive import deterministic_tar, open_package
from registry.packaging.build import build_package
from registry.packaging.encryption import PackageIntegrityError
from registry.packaging.protocol import (
    METADATA_KEY,
    DescriptionBlock,
    RuntimeTooOldError,
    check_runtime,
    parse_block,
    read_onnx_block,
)
from registry.packaging.run import run_package
from registry.packaging.source import source_from_files


@pytest.fixture(scope="module")
def static_int8(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("static")
    calib = io.BytesIO()
    np.savez(
        calib, image=np.random.default_rng(1).standard_normal((8, 3, 16, 16)).astype(np.float32)
    )
    targets = "  - name: linux-aarch64\n    quantize: static\n    calibration: calib.npz\n"
    model, card = write_package_source(
        tmp / "src", conv_onnx(), targets, name="cnn", files={"calib.npz": calib.getvalue()}
    )
    result = build_package(
        source_from_files(model, card), "linux-aarch64", tmp / "dist", overrides=FAST
    )
    return result, calib.getvalue(), model


def _inner_block(result, tmp_path) -> DescriptionBlock:
    pkg = open_package(result.path)
    path = tmp_path / "inner.onnx"
    path.write_bytes(pkg.model_bytes)
    return read_onnx_block(path)


def test_block_is_in_the_model_and_the_manifest(static_int8, tmp_path):
    result, calib, model = static_int8
    block = result.manifest.description
    assert _inner_block(result, tmp_path) == block
    assert block.quantized and block.weight_dtype == "int8"
    q = block.quantization
    assert q.scheme == "static" and q.granularity == "per-channel" and q.calibration_samples == 8
    assert q.calibration_sha256 == hashlib.sha256(calib).hexdigest()
    assert block.source_sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert block.source_model == "cnn@1.0.0" and block.target == "linux-aarch64"
    assert block.opset == 17 and block.ir_version >= 7 and block.runtime == "onnxruntime"
    assert {"onnxruntime", "onnx", "registry"} <= set(block.tools)
    # where the scales and zero points live: tensors of the model, one scale per output channel
    inner = onnx.load_from_string(open_package(result.path).model_bytes)
    names = {i.name for i in inner.graph.initializer}
    assert "DequantizeLinear" in q.operators and "QuantizeLinear" in q.operators
    conv = next(p for p in q.parameters if p.scales > 1)
    assert {conv.weight, conv.scale, conv.zero_point} <= names and conv.scales == 8


def test_ort_format_block_is_readable_by_the_runtime(tmp_path):
    import onnxruntime as ort

    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - ios-arm64\n")
    result = build_package(
        source_from_files(model, card), "ios-arm64", tmp_path / "dist", overrides=FAST
    )
    pkg = open_package(result.path)
    session = ort.InferenceSession(pkg.model_bytes)
    inner = parse_block(session.get_modelmeta().custom_metadata_map[METADATA_KEY], "model.ort")
    assert inner == result.manifest.description and inner.format == "ort"


def test_runtime_older_than_the_minimum_is_refused():
    block = DescriptionBlock(
        runtime="onnxruntime",
        min_runtime_version="1.20",
        format="onnx",
        weight_dtype="float32",
        quantized=False,
        source_model="m@1.0.0",
        source_sha256="0" * 64,
        target="cuda",
        converter="onnx",
    )
    check_runtime(block, "onnxruntime", "1.20.1")
    with pytest.raises(RuntimeTooOldError) as e:
        check_runtime(block, "onnxruntime", "1.18.0")
    assert "needs onnxruntime >= 1.20" in e.value.message and "1.18.0" in e.value.message
    assert "pip install -U 'onnxruntime>=1.20'" in e.value.hint
    with pytest.raises(RuntimeTooOldError, match="not openvino"):
        check_runtime(block, "openvino", "2026.0")


def _repack(result, tmp_path, edit) -> object:
    """Rewrite one package with `edit(files)` applied, keeping the archive layout."""
    with tarfile.open(result.path) as tar:
        root = tar.getnames()[0]
        files = {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }
    edit(files)
    out = tmp_path / result.path.name
    out.write_bytes(deterministic_tar(root, files))
    return out


def test_package_needing_a_newer_runtime_is_refused_by_run(static_int8, tmp_path):
    result, _, _ = static_int8

    def bump(files):
        manifest = json.loads(files["manifest.json"])
        manifest["description"]["min_runtime_version"] = "99.0"
        files["manifest.json"] = json.dumps(manifest).encode()

    path = _repack(result, tmp_path, bump)
    with pytest.raises(RuntimeTooOldError, match="needs onnxruntime >= 99.0"):
        run_package(path, {"image": np.zeros((1, 3, 16, 16), np.float32)})


def test_model_not_matching_the_manifest_hash_is_refused(static_int8, tmp_path):
    result, _, _ = static_int8
    model_file = result.manifest.model_file

    def swap(files):
        files[model_file] = conv_onnx(seed=9)

    path = _repack(result, tmp_path, swap)
    with pytest.raises(
        PackageIntegrityError, match=f"{model_file} does not match the manifest's hash"
    ):
        open_package(path)


def test_model_whose_block_was_removed_is_refused(static_int8, tmp_path):
    import hashlib

    result, _, _ = static_int8
    model_file = result.manifest.model_file

    def strip(files):  # the block removed, and the manifest's hash made to match: still refused
        model = onnx.load_from_string(files[model_file])
        del model.metadata_props[:]
        files[model_file] = model.SerializeToString()
        manifest = json.loads(files["manifest.json"])
        manifest["files"][model_file] = hashlib.sha256(files[model_file]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()

    path = _repack(result, tmp_path, strip)
    with pytest.raises(PackageIntegrityError, match="its description block is missing"):
        run_package(path, {"image": np.zeros((1, 3, 16, 16), np.float32)})


def _relabel(files, model_file, change) -> None:
    """Give the model's block and the manifest's the same edited block, hashes kept right: the
    package then agrees with itself, and only the model can contradict it."""
    model = onnx.load_from_string(files[model_file])
    prop = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    block = json.loads(prop.value)
    block.update(change)
    prop.value = json.dumps(block)
    files[model_file] = model.SerializeToString()
    manifest = json.loads(files["manifest.json"])
    manifest["description"] = block
    manifest["files"][model_file] = hashlib.sha256(files[model_file]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()


@pytest.fixture(scope="module")
def fp32_package(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fp32")
    model, card = write_package_source(tmp / "src", conv_onnx(), "  - linux-aarch64\n", name="cnn")
    return build_package(source_from_files(model, card), "linux-aarch64", tmp / "dist")


INT8_CLAIM = {
    "weight_dtype": "int8",
    "quantized": True,
    "quantization": {"scheme": "dynamic", "weight_type": "int8", "granularity": "per-channel"},
}


def test_a_block_claiming_int8_on_a_float_model_is_refused(fp32_package, tmp_path):
    from registry.packaging.run import verify_package

    model_file = fp32_package.manifest.model_file
    path = _repack(fp32_package, tmp_path, lambda f: _relabel(f, model_file, INT8_CLAIM))
    words = "says int8 .* but the model runs no quantized operator and its weights are float32"
    with pytest.raises(PackageIntegrityError, match=words) as e:
        run_package(path, {"image": np.zeros((1, 3, 16, 16), np.float32)})
    assert "model/model.onnx" in e.value.message and "rebuild it" in e.value.hint
    with pytest.raises(PackageIntegrityError, match=words):
        verify_package(path)


def test_a_block_calling_an_int8_model_float_is_refused(static_int8, tmp_path):
    result, _, _ = static_int8
    model_file = result.manifest.model_file
    claim = {"weight_dtype": "float32", "quantized": False, "quantization": None}
    path = _repack(result, tmp_path, lambda f: _relabel(f, model_file, claim))
    with pytest.raises(PackageIntegrityError, match="says not quantized .* stores int8 weights"):
        run_package(path, {"image": np.zeros((1, 3, 16, 16), np.float32)})


def test_a_block_claiming_float16_on_float32_weights_is_refused(fp32_package, tmp_path):
    model_file = fp32_package.manifest.model_file
    path = _repack(
        fp32_package, tmp_path, lambda f: _relabel(f, model_file, {"weight_dtype": "float16"})
    )
    with pytest.raises(PackageIntegrityError, match="says float16 weights, but .* float32"):
        run_package(path, {"image": np.zeros((1, 3, 16, 16), np.float32)})


def test_missing_calibration_data_for_static_int8(tmp_path):
    model, card = write_package_source(
        tmp_path / "a", conv_onnx(), "  - name: linux-aarch64\n    quantize: static\n"
    )
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "linux-aarch64", tmp_path / "dist", overrides=FAST
        )
    assert "needs calibration data" in e.value.message and "calibration:" in e.value.hint
    targets = "  - name: linux-aarch64\n    quantize: static\n    calibration: nowhere.npz\n"
    model, card = write_package_source(tmp_path / "b", conv_onnx(), targets)
    with pytest.raises(ConversionError, match="nowhere.npz does not exist"):
        build_package(
            source_from_files(model, card), "linux-aarch64", tmp_path / "dist", overrides=FAST
        )


def test_block_from_a_newer_protocol_is_refused():
    with pytest.raises(ModelFormatError, match="newer than this registry understands"):
        parse_block(json.dumps({"protocol": 99}), "model.onnx")


def test_block_replaces_an_older_one(tmp_path):
    from registry.packaging.protocol import write_onnx_block

    model = onnx.load_from_string(mlp_onnx())
    base = dict(
        runtime="onnxruntime",
        min_runtime_version="1.12",
        format="onnx",
        weight_dtype="float32",
        quantized=False,
        source_model="m@1.0.0",
        source_sha256="0" * 64,
        target="linux-x86_64",
        converter="onnx",
    )
    write_onnx_block(model, DescriptionBlock(**base))
    write_onnx_block(model, DescriptionBlock(**{**base, "min_runtime_version": "1.16"}))
    assert [p.key for p in model.metadata_props].count(METADATA_KEY) == 1
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert read_onnx_block(tmp_path / "m.onnx").min_runtime_version == "1.16"
