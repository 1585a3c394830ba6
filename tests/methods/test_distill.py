import pytest

from methods.conftest import run_method
from registry.compression.methods.distill import teacher_tensors


def test_teacher_exposes_logits_and_features(digits_job, tmp_path):
    work = tmp_path / "teacher.onnx"
    work.write_bytes(digits_job.model_path.read_bytes())
    t = teacher_tensors(work, digits_job.train_data)
    n = len(digits_job.train_data)
    assert (
        t["output"].shape == (n, 10)
        and t["logits"].shape == (n, 10)
        and t["features"].shape == (n, 64)
    )


@pytest.mark.parametrize(
    "losses", [["logits", "features", "labels"], ["logits"], ["features", "labels"]]
)
def test_student_learns_from_the_teacher(digits_cnn, tmp_path, losses):
    from methods.conftest import job_for

    # A small student's accuracy moves by a point or two with the CPU's rounding: the bound leaves
    # room for that, and the test asserts what matters, that it learned (>= 0.9) at a fraction of
    # the size.
    job = job_for(digits_cnn, tmp_path, max_metric_drop="0.08")
    cand, model, acc = run_method(
        "distill", job, tmp_path, students=[[32]], losses=losses, epochs=30
    )
    assert cand.settings == {"students": [[32]]}
    assert cand.path.stat().st_size < 0.15 * job.original.size
    assert acc >= 0.9


def test_token_student_matches_the_transformer_embeddings(text_embedder, tmp_path):
    from methods.conftest import job_for

    job = job_for(
        text_embedder, tmp_path, max_metric_drop="0.99"
    )  # any student passes: compare them
    untrained, _, cos0 = run_method(
        "distill", job, tmp_path / "0", students=[[64]], losses=["embedding"], epochs=1
    )
    cand, model, cosine = run_method("distill", job, tmp_path / "1", students=[[64]], epochs=30)
    assert model.graph.input[0].name == "input_ids" and model.graph.output[0].name == "embedding"
    assert cand.path.stat().st_size < 0.1 * job.original.size
    assert (
        cos0 < 0.9 and cosine >= 0.98
    )  # logits (MSE for a head without Softmax) + standardised features
