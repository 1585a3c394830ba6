import pytest

from methods.conftest import job_for, run_method
from registry.compression.methods import MethodMiss


def test_small_mlp_trained_on_the_original_data(digits_job, tmp_path):
    cand, model, acc = run_method("train-small", digits_job, tmp_path, models=[[32]], epochs=40)
    assert cand.settings == {"models": [[32]]}
    assert digits_job.drop_of(acc) <= 0.03
    assert cand.path.stat().st_size < 0.15 * digits_job.original.size


def test_needs_labels_and_a_label_metric(text_embedder, tmp_path):
    job = job_for(text_embedder, tmp_path, max_metric_drop="0.01")
    with pytest.raises(MethodMiss):
        run_method("train-small", job, tmp_path)
