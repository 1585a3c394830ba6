from collections import Counter

from methods.conftest import run_method


def test_dynamic_int8_quarter_size_same_accuracy(digits_job, tmp_path):
    cand, model, acc = run_method("dynamic-int8", digits_job, tmp_path, per_channel=True)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["ConvInteger"] == 2 and ops["MatMulInteger"] == 2
    assert cand.path.stat().st_size < 0.3 * digits_job.original.size
    assert digits_job.drop_of(acc) <= 0.01
    # per-channel: one weight scale per output channel of the first conv
    scales = [
        i
        for i in model.graph.initializer
        if len(i.dims) == 1 and i.dims[0] == 16 and i.data_type == 1
    ]
    assert scales
