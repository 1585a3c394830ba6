from collections import Counter

import pytest

from methods.conftest import run_method
from registry.compression.methods import build_method
from registry.core.errors import CompressionError


def test_static_int8_writes_calibrated_qdq(digits_job, tmp_path):
    cand, model, acc = run_method(
        "static-int8", digits_job, tmp_path, calibration="percentile", samples=64
    )
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] >= 4 and ops["DequantizeLinear"] >= 8
    assert cand.path.stat().st_size < 0.35 * digits_job.original.size
    assert digits_job.drop_of(acc) <= 0.02


def test_static_int8_refuses_unknown_calibration():
    with pytest.raises(CompressionError, match="invalid settings for method 'static-int8'"):
        build_method("static-int8", {"calibration": "kl"})
