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


def test_stops_before_the_sensitivity_search_when_plain_int8_meets_the_target(digits_job, tmp_path):
    cand, model, accuracy = run_method("mixed-precision", digits_job, tmp_path)
    # no node needed float: the result is plain per-channel dynamic int8 and says so
    assert cand.method == "dynamic-int8"
    assert cand.settings["per_channel"] is True and "float_nodes" not in cand.settings
    assert "no sensitivity was measured" in cand.notes[0]
    assert not (tmp_path / "probe.onnx").exists()  # not one sensitivity run
    assert digits_job.drop_ok(accuracy)


def test_the_chain_reports_a_plain_int8_result_by_its_own_name(digits_cnn, tmp_path):
    from registry.cards.schema import load_card
    from registry.compression.chain import CompressRequest, compress

    card = load_card((digits_cnn / "model.yaml").read_bytes()).card
    report = compress(
        CompressRequest(
            card=card,
            model_path=digits_cnn / "model.onnx",
            model_dir=digits_cnn,
            max_metric_drop="0.03",
            methods=["mixed-precision"],
            output_root=tmp_path / "models",
            report_dir=tmp_path / "report",
        )
    )
    assert report.met and report.attempts[0].method == "dynamic-int8"
    written = load_card((tmp_path / "models" / "digits-cnn-lite" / "model.yaml").read_bytes()).card
    assert written.compress.methods == ["dynamic-int8"]
    assert written.compress.options["dynamic-int8"]["per_channel"] is True
    assert "mixed-precision" not in written.tags
