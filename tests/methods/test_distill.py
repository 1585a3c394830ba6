import pytest

from methods.conftest import run_method
from registry.methods.distill import teacher_tensors


def test_teacher_exposes_logits_and_features(digits_job, tmp_path):
    work = tmp_path / "teacher.onnx"
    work.write_bytes(digits_job.model_path.read_bytes())
    t = teacher_tensors(work, digits_job.train_data)
    n = len(digits_job.train_data)
    assert t["output"].shape == (n, 10) and t["logits"].shape == (n, 10) and t["features"].shape == (n, 64)


@pytest.mark.parametrize("losses", [["logits", "features", "labels"], ["logits"], ["features", "labels"]])
def test_student_learns_from_the_teacher(digits_job, tmp_path, losses):
    cand, model, acc = run_method("distill", digits_job, tmp_path, students=[[32]], losses=losses, epochs=30)
    assert cand.settings == {"students": [[32]]}
    assert cand.path.stat().st_size < 0.15 * digits_job.original.size
    assert acc >= 0.9
