"""ios-arm64: Core ML (.mlpackage) from the card's .pt2, and ORT format for the ONNX Runtime Mobile
pods; built on the macOS runner, where Core ML also runs.

Off macOS Core ML converts but cannot run: the .mlpackage is built and reported as not verified,
never passed; `registry verify` on a Mac checks the packaged model against the stored reference.
"""

from __future__ import annotations

import io
import json
import platform
import tarfile

import numpy as np
import pytest

from factories import FAST, mlp_onnx, torch_sources, write_package_source
from registry.core.errors import ConversionError, UsageError
from registry.packaging.archive import open_package
from registry.packaging.build import build_package
from registry.packaging.protocol import RuntimeTooOldError, version_tuple
from registry.packaging.run import run_package, verify_package
from registry.packaging.source import source_from_files

off_macos = pytest.mark.skipif(
    platform.system() == "Darwin", reason="checks what happens where Core ML cannot run"
)


@pytest.fixture(scope="module")
def sources():
    return torch_sources(seed=7)


def test_ios_package_with_runtime_optimisation_style(tmp_path):
    targets = "  - name: ios-arm64\n    options: {optimization_style: Runtime}\n"
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), targets)
    result = build_package(
        source_from_files(model, card), "ios-arm64", tmp_path / "dist", overrides=FAST
    )
    block = result.manifest.description
    assert block.format == "ort" and block.tools["optimization_style"] == "Runtime"
    import onnxruntime

    # an ORT-format file needs the runtime that wrote it, or later
    assert version_tuple(block.min_runtime_version) == version_tuple(onnxruntime.__version__)[:2]


@off_macos
def test_core_ml_is_built_but_not_passed_off_macos(tmp_path, sources):
    onnx_bytes, pt2 = sources
    model, card = write_package_source(tmp_path / "src", onnx_bytes, "  - ios-arm64\n", pytorch=pt2)
    result = build_package(
        source_from_files(model, card), "ios-arm64", tmp_path / "dist", overrides=FAST
    )
    m = result.manifest
    # nothing unverified ships by default: the verified .ort does
    assert m.model_file == "model/model.ort" and m.verified
    coreml = next(v for v in m.verification if v.converter == "coreml")
    assert coreml.status == "not-run" and not coreml.passed and coreml.outputs == []
    assert "Core ML runs only on macOS" in coreml.message and "registry verify" in coreml.message


@off_macos
def test_core_ml_asked_for_is_packaged_unverified_and_byte_identical(tmp_path, sources):
    import coremltools as ct
    from coremltools.proto import Model_pb2

    onnx_bytes, pt2 = sources
    explicit = "  - name: ios-arm64\n    converter: coreml\n"
    model, card = write_package_source(tmp_path / "src", onnx_bytes, explicit, pytorch=pt2)
    source = source_from_files(model, card)
    a = build_package(source, "ios-arm64", tmp_path / "a", overrides=FAST)
    b = build_package(source, "ios-arm64", tmp_path / "b", overrides=FAST)
    assert (
        a.path.read_bytes() == b.path.read_bytes()
    )  # conversion date dropped, ids and maps made stable
    m = a.manifest
    assert m.model_file == "model/model.mlpackage" and not m.verified and not m.verified_on_device
    assert m.verification_note.startswith("NOT VERIFIED: Core ML runs only on macOS")
    assert not m.benchmark.measured and m.benchmark.timings == []
    assert sorted(m.files) == [
        "loader.py",
        "model/model.mlpackage/Data/com.apple.CoreML/model.mlmodel",
        "model/model.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
        "model/model.mlpackage/Manifest.json",
        "verification/reference.npz",
    ]
    block = m.description
    assert (block.runtime, block.format, block.min_runtime_version, block.weight_dtype) == (
        "coreml",
        "mlpackage",
        "16",
        "float32",
    )
    pkg = open_package(a.path)
    spec = Model_pb2.Model()
    spec.ParseFromString(pkg.files["model/model.mlpackage/Data/com.apple.CoreML/model.mlmodel"])
    assert json.loads(
        spec.description.metadata.userDefined["registry.description"]
    ) == block.model_dump(mode="json")
    # the rewritten Manifest.json is still a package coremltools opens
    with tarfile.open(a.path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    opened = ct.models.MLModel(
        str(tmp_path / "x" / "mlp-1.0.0-ios-arm64" / m.model_file), skip_model_load=True
    )
    assert opened.user_defined_metadata["registry.description"] == block.model_dump_json()
    with pytest.raises(
        UsageError, match="cannot be verified on this machine: Core ML runs only on macOS"
    ):
        verify_package(a.path)
    with pytest.raises(RuntimeTooOldError, match="needs coreml >= 16, which is not available here"):
        run_package(a.path, {"input": np.ones((1, 8), np.float32)})


def test_core_ml_fp16_and_deployment_target(tmp_path, sources):
    onnx_bytes, pt2 = sources
    targets = (
        "  - name: ios-arm64\n    converter: coreml\n"
        "    options: {coreml_precision: fp16, coreml_min_ios: 17}\n"
    )
    model, card = write_package_source(tmp_path / "src", onnx_bytes, targets, pytorch=pt2)
    result = build_package(
        source_from_files(model, card), "ios-arm64", tmp_path / "dist", overrides=FAST
    )
    check = result.manifest.engine_verification
    assert (
        check.precision == "fp16" and check.thresholds.max_abs == 1e-2
    )  # judged by the fp16 limits
    block = result.manifest.description
    assert (block.weight_dtype, block.min_runtime_version) == ("float16", "17")
    if platform.system() == "Darwin":
        assert result.manifest.verified and verify_package(result.path).passed


def test_an_op_core_ml_cannot_convert_is_named(tmp_path):
    import torch

    class Lgamma(torch.nn.Module):
        def forward(self, x):
            return torch.lgamma(x.abs() + 1)

    buf = io.BytesIO()
    torch.export.save(torch.export.export(Lgamma(), (torch.randn(1, 8),)), buf)
    model, card = write_package_source(
        tmp_path / "src",
        mlp_onnx(classes=8),
        "  - name: ios-arm64\n    converter: coreml\n",
        pytorch=buf.getvalue(),
    )
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "ios-arm64", tmp_path / "dist", overrides=FAST
        )
    assert e.value.message == (
        "model.pt2: target ios-arm64 cannot convert op lgamma (node 'lgamma'): "
        "coremltools has no conversion for it"
    )
