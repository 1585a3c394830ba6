"""linux-aarch64: ONNX for ONNX Runtime CPU, cross-built here and marked not measured on device."""

from __future__ import annotations

import platform

from factories import FAST, mlp_onnx, write_package_source
from registry.packaging.build import build_package
from registry.packaging.source import source_from_files


def test_cross_built_package_is_verified_and_not_timed(tmp_path):
    model, card = write_package_source(
        tmp_path / "src", mlp_onnx(), "  - name: linux-aarch64\n    optimize: true\n"
    )
    result = build_package(
        source_from_files(model, card), "linux-aarch64", tmp_path / "dist", overrides=FAST
    )
    m = result.manifest
    assert m.verified and m.verification[0].passed and m.description.format == "onnx"
    if platform.machine().lower() not in ("aarch64", "arm64"):
        assert not m.benchmark.measured and not m.verified_on_device
        # not timed: the build machine says nothing about the device
        assert m.benchmark.timings == [] and m.engine.threads == 0
        assert (
            "not measured on device" in m.benchmark.reason
            and "not measured on device" in m.verification_note
        )
        assert m.description.optimized == "basic"  # portable level only for another CPU
