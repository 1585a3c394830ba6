"""train.yml's pull-request check, run by the real act against a real registry repository: a
broken structure fails with an annotation on its line, a new task passes and its structure is
drawn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_runs import Act, make_project_clone, pull_request_event  # noqa: E402

pytestmark = pytest.mark.slow
STRUCTURE = "training/structures/wine-mlp.yaml"
TASK = """\
name: wine-small
task: classification
project: examples
model: wine-small
metric: accuracy
dataset: wine
algorithm: classification
structure: wine-mlp
instances:
  - {name: base, hyperparameters: {epochs: 3}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    clone = make_project_clone(tmp)
    return clone, Act(clone, tmp)


def test_the_training_check_fails_a_broken_structure_and_passes_and_draws_a_new_task(project):
    clone, act = project
    base = clone.git("rev-parse", "main")
    text = (clone.root / STRUCTURE).read_text()
    broken = text.replace("in_features: $hidden", "in_features: 12")
    bad = clone.branch("break-wine", {STRUCTURE: broken}, message="break the wine structure")

    first = act.run("train.yml", "pull_request", pull_request_event(11, base, bad, "break-wine"))

    assert first.returncode != 0, first.output
    assert first.job_status("registry train check") == "failed", first.output
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "name: classifier" in ln)
    assert any(
        a.startswith(f"::error file={STRUCTURE},line={line},") and "expects [N, 12]" in a
        for a in first.annotations()
    ), first.output

    good = clone.branch(
        "add-wine-small", {"training/wine-small/task.yaml": TASK}, message="add a task"
    )
    second = act.run(
        "train.yml", "pull_request", pull_request_event(12, base, good, "add-wine-small")
    )

    assert second.returncode == 0, second.output
    assert second.job_status("registry train check") == "succeeded", second.output
    assert second.annotations() == []
    svg = (second.artifacts / "registry-train-check" / "pictures" / "wine-mlp.svg").read_text()
    assert svg.startswith("<svg") and "classifier: Linear" in svg
