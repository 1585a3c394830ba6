"""ios-arm64: ORT format for the ONNX Runtime Mobile pods, built on the macOS runner."""

from __future__ import annotations

from factories import FAST, mlp_onnx, write_package_source

from registry.package import build_package, source_from_files
from registry.protocol import version_tuple


def test_ios_package_with_runtime_optimisation_style(tmp_path):
    targets = "  - name: ios-arm64\n    options: {optimization_style: Runtime}\n"
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), targets)
    result = build_package(source_from_files(model, card), "ios-arm64", tmp_path / "dist", overrides=FAST)
    block = result.manifest.description
    assert block.format == "ort" and block.tools["optimization_style"] == "Runtime"
    import onnxruntime

    # an ORT-format file needs the runtime that wrote it, or later
    assert version_tuple(block.min_runtime_version) == version_tuple(onnxruntime.__version__)[:2]
