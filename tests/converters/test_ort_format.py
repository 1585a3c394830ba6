"""ort-format: the saved .ort file is byte-identical from conversion to conversion, and runs."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from factories import conv_onnx
from registry.packaging.converters import get_converter
from registry.packaging.converters.ort_format import (
    UnknownOrtLayout,
    canonical_ort,
    canonical_ort_file,
)
from registry.packaging.quantization import quantize
from registry.packaging.targets import get_target


@pytest.fixture(scope="module")
def int8_cnn(tmp_path_factory):
    """An int8 CNN: its many kernels make ONNX Runtime's own layout differ on nearly every save."""
    tmp = tmp_path_factory.mktemp("src")
    (tmp / "fp32.onnx").write_bytes(conv_onnx())
    quantize(tmp / "fp32.onnx", tmp / "int8.onnx", "dynamic", per_channel=True)
    return tmp / "int8.onnx"


def convert(source, out, style="Fixed"):
    options = get_target("android-arm64").parse_options({"optimization_style": style}, "test")
    out.mkdir(parents=True)
    return get_converter("ort-format").convert(
        source, out, precision="int8", runtime="onnxruntime-mobile", options=options
    )


@pytest.mark.parametrize("style", ["Fixed", "Runtime"])
def test_converting_again_gives_the_same_bytes(int8_cnn, tmp_path, style):
    results = [convert(int8_cnn, tmp_path / str(i), style) for i in range(5)]
    files = {r.path.read_bytes() for r in results}
    assert len(files) == 1
    assert results[0].tools["ort_layout"] == "canonical"
    # the canonical file runs and computes what the ONNX model computes
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    want = ort.InferenceSession(str(int8_cnn), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )[0]
    got = ort.InferenceSession(str(results[0].path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_canonical_layout_is_a_fixed_point(int8_cnn, tmp_path):
    data = convert(int8_cnn, tmp_path / "a").path.read_bytes()
    assert canonical_ort(data) == data


def test_what_is_not_an_ort_file_is_left_alone(int8_cnn):
    with pytest.raises(UnknownOrtLayout, match="ORTM"):
        canonical_ort(int8_cnn.read_bytes())


def test_the_file_rewrite_gives_the_bytes_of_the_in_memory_one(int8_cnn, tmp_path):
    """The build rewrites the saved file in place (one copy of the model in memory); it must give
    exactly what the in-memory rewrite gives, for ONNX Runtime's own layout as for a canonical
    one."""
    import onnxruntime as ort

    raw = tmp_path / "raw.ort"
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(raw)
    so.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(int8_cnn), sess_options=so, providers=["CPUExecutionProvider"])
    data = raw.read_bytes()
    canonical_ort_file(raw)
    assert raw.read_bytes() == canonical_ort(data)
    canonical_ort_file(raw)  # a fixed point on disk too
    assert raw.read_bytes() == canonical_ort(data)
    assert [p.name for p in tmp_path.iterdir()] == ["raw.ort"]  # no temporary left


def test_a_file_that_is_not_ort_is_left_as_it_is(int8_cnn, tmp_path):
    copy = tmp_path / "model.onnx"
    copy.write_bytes(int8_cnn.read_bytes())
    with pytest.raises(UnknownOrtLayout, match="ORTM"):
        canonical_ort_file(copy)
    assert copy.read_bytes() == int8_cnn.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
