from collections import Counter

import pytest

from methods.conftest import job_for, run_method
from registry.compression.methods import MethodMiss


def test_structured_pruning_removes_channels_and_recovers(digits_job, tmp_path):
    cand, model, acc = run_method(
        "prune", digits_job, tmp_path, amounts=[0.5], epochs=10, quantize=False
    )
    assert cand.settings == {"amounts": [0.5]}
    convs = {t.name: list(t.dims) for t in model.graph.initializer if len(t.dims) == 4}
    assert sorted(d[0] for d in convs.values()) == [8, 16]  # 16 -> 8 and 32 -> 16 output channels
    assert cand.path.stat().st_size < 0.4 * digits_job.original.size
    assert digits_job.drop_of(acc) <= 0.03
    assert Counter(n.op_type for n in model.graph.node)["Conv"] == 2


def test_prune_does_not_apply_to_a_transformer(text_embedder, tmp_path):
    job = job_for(text_embedder, tmp_path, max_metric_drop="0.01")
    with pytest.raises(MethodMiss, match="takes token ids"):
        run_method("prune", job, tmp_path)
