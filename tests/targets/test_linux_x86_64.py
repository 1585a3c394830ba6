"""linux-x86_64: ONNX Runtime and OpenVINO candidates, verified and timed on this machine."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from factories import FAST, conv_onnx, write_package_source
from registry.packaging.archive import open_package
from registry.packaging.build import build_package
from registry.packaging.run import run_package
from registry.packaging.source import source_from_files

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="native timings of linux-x86_64 need an x86-64 build machine",
)


def test_onnxruntime_and_openvino_candidates_are_verified_and_timed(tmp_path):
    model, card = write_package_source(
        tmp_path / "src", conv_onnx(), "  - linux-x86_64\n", name="cnn"
    )
    result = build_package(
        source_from_files(model, card), "linux-x86_64", tmp_path / "dist", overrides=FAST
    )
    m = result.manifest
    assert [v.converter for v in m.verification] == ["onnx", "openvino-ir"]
    assert all(v.passed for v in m.verification) and m.verified_on_device
    assert m.benchmark.measured and {t.converter for t in result.benchmark.timings} == {
        "onnx",
        "openvino-ir",
    }
    assert m.description.format == ("onnx" if m.engine.engine == "onnxruntime" else "openvino-ir")


def test_openvino_ir_package_carries_the_block_in_rt_info(tmp_path):
    import openvino as ov

    model, card = write_package_source(
        tmp_path / "src", conv_onnx(), "  - linux-x86_64\n", name="cnn"
    )
    result = build_package(
        source_from_files(model, card),
        "linux-x86_64",
        tmp_path / "dist",
        overrides={**FAST, "converter": "openvino-ir"},
    )
    assert result.manifest.description.runtime == "openvino"
    pkg = open_package(result.path)
    xml = tmp_path / "model.xml"
    xml.write_bytes(pkg.files["model/model.xml"])
    xml.with_suffix(".bin").write_bytes(pkg.files["model/model.bin"])
    info = ov.Core().read_model(str(xml)).get_rt_info(["registry.description"]).astype(str)
    assert '"source_model": "cnn@1.0.0"' in info or '"source_model":"cnn@1.0.0"' in info
    out = run_package(result.path, {"image": np.zeros((1, 3, 16, 16), np.float32)})
    assert out["logits"].shape == (1, 5)


def test_dynamic_int8_with_offline_optimisation(tmp_path):
    targets = (
        "  - name: linux-x86_64\n    quantize: dynamic\n    optimize: true\n"
        "    options: {openvino: false}\n"
    )
    model, card = write_package_source(tmp_path / "src", conv_onnx(), targets, name="cnn")
    result = build_package(
        source_from_files(model, card), "linux-x86_64", tmp_path / "dist", overrides=FAST
    )
    block = result.manifest.description
    assert (
        block.quantized and block.quantization.scheme == "dynamic" and block.optimized == "extended"
    )
    assert [v.converter for v in result.manifest.verification] == ["onnx"]
