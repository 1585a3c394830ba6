import pytest

from methods.conftest import job_for, run_method
from registry.compression.methods import MethodMiss


def test_keeps_the_measured_most_sensitive_node_in_float(text_embedder, tmp_path):
    job = job_for(text_embedder, tmp_path, max_metric_drop="0.01")
    cand, model, cosine = run_method("mixed-precision", job, tmp_path)
    assert cand.settings["float_nodes"] == ["/head/Gemm"]  # the node behind the outlier channels
    assert cosine >= 0.99
    assert "sensitivity" in cand.notes[0] and cand.notes[0].index("/head/Gemm") < cand.notes[
        0
    ].index("/tok/Gather")


def test_misses_when_float_nodes_would_break_the_size_bound(text_embedder, tmp_path):
    size = (text_embedder / "model.onnx").stat().st_size
    job = job_for(
        text_embedder, tmp_path, max_metric_drop="0.00001", max_size=str(int(size * 0.29))
    )
    with pytest.raises(MethodMiss, match="over max_size") as e:
        run_method("mixed-precision", job, tmp_path)
    assert e.value.candidate is not None  # the best so far is kept for the report


def test_recorded_float_nodes_reproduce_the_result(text_embedder, tmp_path):
    job = job_for(text_embedder, tmp_path, max_metric_drop="0.01")
    cand, model, cosine = run_method("mixed-precision", job, tmp_path, float_nodes=["/head/Gemm"])
    assert cosine >= 0.99 and cand.settings == {"float_nodes": ["/head/Gemm"]}
