"""android-arm64: ExecuTorch (.pte) from the card's .pt2, and ORT format for ONNX Runtime Mobile
(int8 at about a quarter of the fp32 size)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from factories import FAST, mlp_onnx, write_package_source
from registry.core.errors import ConversionError
from registry.packaging.archive import open_package
from registry.packaging.build import build_package
from registry.packaging.source import source_from_files


def test_ort_format_fp32_and_int8(tmp_path):
    weights = mlp_onnx(inputs=256, hidden=512, classes=10)
    model, card = write_package_source(tmp_path / "src", weights, "  - android-arm64\n")
    source = source_from_files(model, card)
    fp32 = build_package(source, "android-arm64", tmp_path / "fp32", overrides=FAST)
    int8 = build_package(
        source, "android-arm64", tmp_path / "int8", overrides={**FAST, "quantize": "dynamic"}
    )
    assert fp32.manifest.model_file == "model/model.ort"
    assert fp32.manifest.description.runtime == "onnxruntime-mobile"
    assert "not run by the mobile runtime" in fp32.manifest.verification_note
    size32 = len(open_package(fp32.path).model_bytes)
    size8 = len(open_package(int8.path).model_bytes)
    assert size8 <= 0.3 * size32, (size8, size32)
    v = int8.manifest.verification[0]
    assert v.precision == "int8" and v.passed and v.outputs[0].cosine >= 0.99


def lgamma_sources() -> tuple[bytes, bytes]:
    """An ONNX model and a .pt2 whose graph uses aten.lgamma, which ExecuTorch has no kernel for."""
    import torch

    from factories import torch_sources

    class Lgamma(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 3)

        def forward(self, x):
            return torch.lgamma(self.linear(x).abs() + 1)

    buf = io.BytesIO()
    torch.export.save(torch.export.export(Lgamma().eval(), (torch.randn(1, 8),)), buf)
    return torch_sources()[0], buf.getvalue()


def test_executorch_package_from_the_pt2_is_verified_against_the_onnx(tmp_path, monkeypatch):
    import onnxruntime as ort

    import registry.formats.pt2 as pt2_format
    from factories import torch_sources
    from registry.packaging.run import run_package, verify_package

    reads = []
    load = pt2_format.load_exported_program
    monkeypatch.setattr(
        pt2_format,
        "load_exported_program",
        lambda path, shown=None: reads.append(path) or load(path, shown),
    )
    onnx_bytes, pt2 = torch_sources()
    model, card = write_package_source(
        tmp_path / "src", onnx_bytes, "  - android-arm64\n", pytorch=pt2
    )
    logs: list[str] = []
    result = build_package(
        source_from_files(model, card),
        "android-arm64",
        tmp_path / "dist",
        overrides=FAST,
        log=logs.append,
    )
    assert len(reads) == 1  # the input check, the conversion and the input shapes share one read
    # the .pt2 fixes the batch the ONNX leaves free: said while packaging, recorded in the manifest
    warning = next(line for line in logs if line.startswith("warning: "))
    assert "model.pt2 takes a fixed batch of 1" in warning and "takes any batch" in warning
    assert "dynamic_shapes=" in warning and "Dim('batch')" in warning
    assert result.manifest.batch == 1
    m = result.manifest
    assert m.model_file == "model/model.pte" and m.verified and not m.verified_on_device
    assert m.inputs == [
        {"name": "input", "shape": [1, 8], "dtype": "float32"}
    ]  # the program's fixed batch
    assert "ExecuTorch's Python runtime" in m.verification_note
    pte, ort_check = m.verification
    assert (pte.converter, pte.status, ort_check.converter, ort_check.status) == (
        "executorch",
        "passed",
        "ort-format",
        "passed",
    )
    assert pte.outputs[0].max_abs < 1e-5 and pte.thresholds.max_abs == 1e-4  # the fp32 gate
    block = m.description
    assert (block.runtime, block.format, block.converter, block.quantized) == (
        "executorch",
        "pte",
        "executorch",
        False,
    )
    assert block.source_sha256 == hashlib.sha256(pt2).hexdigest() and "executorch" in block.tools
    # cross-built: not timed; the target's order decides (ExecuTorch first)
    assert not m.benchmark.measured and m.benchmark.timings == []
    assert "not measured on device" in m.benchmark.reason
    x = np.random.default_rng(1).standard_normal((1, 8)).astype(np.float32)
    want = ort.InferenceSession(str(model)).run(None, {"input": x})[0]
    np.testing.assert_allclose(
        run_package(result.path, {"input": x})["probabilities"], want, atol=1e-6
    )
    assert verify_package(result.path).passed
    # the package's own loader runs the .pte too
    with tarfile.open(result.path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [sys.executable, "loader.py", str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path / "x" / "mlp-1.0.0-android-arm64",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("probabilities (1, 3) float32")


def test_executorch_package_is_byte_identical_on_rebuild_and_carries_its_block(tmp_path):
    from executorch.runtime import Runtime

    from factories import torch_sources
    from registry.packaging.encryption import PackageIntegrityError
    from registry.packaging.run import run_package

    onnx_bytes, pt2 = torch_sources(seed=3)
    model, card = write_package_source(
        tmp_path / "src",
        onnx_bytes,
        "  - name: android-arm64\n    converter: executorch\n",
        pytorch=pt2,
    )
    source = source_from_files(model, card)
    a = build_package(source, "android-arm64", tmp_path / "a", overrides=FAST, benchmark=False)
    b = build_package(source, "android-arm64", tmp_path / "b", overrides=FAST, benchmark=False)
    assert a.path.read_bytes() == b.path.read_bytes()
    pkg = open_package(a.path)
    inner = (
        Runtime.get()
        .load_program(pkg.model_bytes)
        .load_method("registry_description")
        .execute([])[0]
    )
    assert json.loads(inner) == a.manifest.description.model_dump(mode="json")
    # a .pte whose block was changed is refused, as an ONNX one is
    forged = a.manifest.description.model_copy(update={"min_runtime_version": "0.1"})
    pkg.manifest = pkg.manifest.model_copy(update={"description": forged})
    with pytest.raises(PackageIntegrityError, match="description block differs"):
        run_package(pkg, {"input": np.ones((1, 8), np.float32)})


def test_an_op_executorch_cannot_lower_is_named(tmp_path):
    onnx_bytes, pt2 = lgamma_sources()
    explicit = "  - name: android-arm64\n    converter: executorch\n"
    model, card = write_package_source(tmp_path / "src", onnx_bytes, explicit, pytorch=pt2)
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "android-arm64", tmp_path / "dist", overrides=FAST
        )
    assert e.value.message == (
        "model.pt2: target android-arm64 cannot convert op aten.lgamma.default "
        "(node 'lgamma'): ExecuTorch has no kernel for it (not in the Core ATen opset)"
    )
    assert "ort-format" in e.value.hint
    # among the target's candidates, the ORT-format file ships and the table says why ExecuTorch did
    # not
    model, card = write_package_source(
        tmp_path / "src2", onnx_bytes, "  - android-arm64\n", pytorch=pt2
    )
    result = build_package(
        source_from_files(model, card), "android-arm64", tmp_path / "dist", overrides=FAST
    )
    assert result.manifest.model_file == "model/model.ort"
    failed = next(v for v in result.manifest.verification if v.converter == "executorch")
    assert failed.status == "error" and "cannot convert op aten.lgamma.default" in failed.message
