from onnx import TensorProto

from methods.conftest import run_method


def test_fp16_halves_the_weights_and_keeps_fp32_io(digits_job, tmp_path):
    cand, model, acc = run_method("fp16", digits_job, tmp_path)
    weights = [t for t in model.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == TensorProto.FLOAT16 for t in weights)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert 0.45 < cand.path.stat().st_size / digits_job.original.size < 0.6
    assert digits_job.drop_of(acc) <= 0.005
