"""windows-x64: ONNX for ONNX Runtime CPU on Windows."""

from __future__ import annotations

from factories import FAST, conv_onnx, write_package_source
from registry.packaging.build import build_package
from registry.packaging.source import source_from_files


def test_windows_package_is_onnx_for_the_cpu_provider(tmp_path):
    model, card = write_package_source(
        tmp_path / "src", conv_onnx(), "  - windows-x64\n", name="cnn"
    )
    result = build_package(
        source_from_files(model, card), "windows-x64", tmp_path / "dist", overrides=FAST
    )
    m = result.manifest
    assert m.description.execution_providers == ["CPUExecutionProvider"]
    assert m.model_file == "model/model.onnx" and m.verification[0].passed
    assert result.path.name == "cnn-1.0.0-windows-x64.tar.gz"
