"""cuda: float16 ONNX for the CUDA / TensorRT execution providers."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from factories import FAST, conv_onnx, write_package_source
from registry.packaging.archive import open_package
from registry.packaging.build import build_package
from registry.packaging.source import source_from_files


def test_fp16_model_is_verified_on_the_cpu_provider_and_says_so(tmp_path):
    model, card = write_package_source(tmp_path / "src", conv_onnx(), "  - cuda\n", name="cnn")
    result = build_package(
        source_from_files(model, card), "cuda", tmp_path / "dist", overrides=FAST
    )
    m = result.manifest
    assert (
        m.description.weight_dtype == "float16"
        and m.description.execution_providers[0] == "TensorrtExecutionProvider"
    )
    inner = onnx.load_from_string(open_package(result.path).model_bytes)
    dtypes = {numpy_helper.to_array(i).dtype for i in inner.graph.initializer}
    assert np.dtype(np.float16) in dtypes and np.dtype(np.float32) not in dtypes
    assert (
        inner.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    )  # io kept float32
    v = m.verification[0]
    assert v.precision == "fp16" and v.passed and v.thresholds.rel_l2 == 0.01
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert "not run on CUDA/TensorRT" in m.verification_note and not m.benchmark.measured
        assert not m.verified_on_device
