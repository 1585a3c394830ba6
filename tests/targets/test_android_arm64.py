"""android-arm64: ORT format for ONNX Runtime Mobile, int8 at about a quarter of the fp32 size."""

from __future__ import annotations

from factories import FAST, mlp_onnx, write_package_source

from registry.package import build_package, open_package, source_from_files


def test_ort_format_fp32_and_int8(tmp_path):
    weights = mlp_onnx(inputs=256, hidden=512, classes=10)
    model, card = write_package_source(tmp_path / "src", weights, "  - android-arm64\n")
    source = source_from_files(model, card)
    fp32 = build_package(source, "android-arm64", tmp_path / "fp32", overrides=FAST)
    int8 = build_package(source, "android-arm64", tmp_path / "int8", overrides={**FAST, "quantize": "dynamic"})
    assert fp32.manifest.model_file == "model/model.ort"
    assert fp32.manifest.description.runtime == "onnxruntime-mobile"
    assert "not run by the mobile runtime" in fp32.manifest.verification_note
    size32 = len(open_package(fp32.path).model_bytes)
    size8 = len(open_package(int8.path).model_bytes)
    assert size8 <= 0.3 * size32, (size8, size32)
    v = int8.manifest.verification[0]
    assert v.precision == "int8" and v.passed and v.outputs[0].cosine >= 0.99
