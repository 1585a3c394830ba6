"""train.yml, run by the real act against a real registry repository.

On a pull request, the check job fails a broken structure with an annotation on its line, and
passes and draws a new task. When a maintainer labels the pull request `train`, one matrix job per
instance trains it and uploads its results as an artifact, and the final job registers the best
instance on a branch of its own (weights on the staging remote) and opens its pull request; the
branch then passes the bot's `registry check`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry.core.storage import parse_pointer  # noqa: E402
from workflow_runs import REPO_ROOT, Act, make_project_clone, pull_request_event, tool  # noqa: E402

pytestmark = pytest.mark.slow
STRUCTURE = "training/structures/wine-mlp.yaml"
TASK = """\
name: wine-small
task: classification
description: A small wine classifier, trained by the train workflow.
project: examples
model: wine-small
metric: accuracy
dataset: wine
algorithm: classification
structure: wine-mlp
instances:
  - {name: base, hyperparameters: {epochs: 3}}
"""
GRID = """\
hyperparameters: {epochs: 4, batch_size: 32, learning_rate: 0.02}
grid:
  prefix: mlp
  hyperparameters:
    hidden: [8, 16]
"""
INSTANCES = ("mlp-hidden-8", "mlp-hidden-16")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    clone = make_project_clone(tmp)
    # the wine data on the staging remote, as its publisher pushed it; the digits data is not
    # there, so a train job that pulled every dataset instead of its instance's would fail
    for pointer in sorted((clone.root / "datasets").glob("wine/*.dvc")):
        md5 = parse_pointer(pointer.read_text()).md5
        rel = Path("files", "md5", md5[:2], md5[2:])
        (clone.storage / "staging" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "examples" / "store" / rel, clone.storage / "staging" / rel)
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


def test_the_train_label_trains_each_instance_in_a_job_and_opens_the_best_ones_pull_request(
    project,
):
    clone, act = project
    base = clone.git("rev-parse", "main")
    task = TASK.split("instances:")[0] + GRID
    head = clone.branch(
        "grid-wine-small", {"training/wine-small/task.yaml": task}, message="a grid of wine-small"
    )
    event = pull_request_event(13, base, head, "grid-wine-small")
    event["action"] = "labeled"
    event["label"] = {"name": "train"}

    result = act.run("train.yml", "pull_request", event, sha=head, timeout=900)

    assert result.returncode == 0, result.output
    assert result.job_status("registry train check") is None  # a label starts no check
    assert result.job_status("plan the instances") == "succeeded", result.output
    assert result.job_status("register the best instance") == "succeeded", result.output
    # one job per instance, each uploading its results as an artifact
    accuracy = {}
    for instance in INSTANCES:
        assert f"train wine-small/{instance}" in result.output, result.output
        uploaded = act.artifacts / f"train-wine-small-{instance}"
        assert (uploaded / "model.onnx").stat().st_size > 0, sorted(uploaded.iterdir())
        metrics = json.loads((uploaded / "metrics.json").read_text())
        accuracy[instance] = metrics["metrics"]["accuracy"]
        assert 0.0 <= accuracy[instance] <= 1.0
    # the best instance is registered on a branch of its own, pushed, with its pull request open
    branches = clone.git("for-each-ref", "--format=%(refname:short)", "refs/heads/train/")
    assert len(branches.split()) == 1 and branches.startswith("train/wine-small-"), branches
    branch = branches
    pull = (act.releases / "pulls" / f"{branch}.md").read_text()
    assert pull.startswith("Register the result of training task wine-small\nbase: main\n"), pull
    card = yaml.safe_load(clone.git("show", f"{branch}:models/wine-small/model.yaml"))
    assert card["source"]["repo"] == "self" and card["source"]["commit"] == head
    # the best instance by the task's metric, with the accuracy its job measured
    registered = re.search(
        r"instance (\S+) of training task wine-small", clone.git("log", "-1", branch)
    )
    assert registered and accuracy[registered.group(1)] == max(accuracy.values()), accuracy
    [measured] = [m for m in card["metrics"] if m["name"] == "accuracy"]
    assert measured["value"] == pytest.approx(accuracy[registered.group(1)])
    # the task's results summary is committed with the model: both instances, the best one
    # registered
    summary = json.loads(clone.git("show", f"{branch}:training/wine-small/results.json"))
    assert summary["commit"] == head
    assert {i["name"]: i["metrics"]["accuracy"] for i in summary["instances"]} == pytest.approx(
        accuracy
    )
    assert [i["name"] for i in summary["instances"] if i.get("registered")] == [registered.group(1)]
    # the weights the card's pointer names are on the staging remote
    pointer = parse_pointer(clone.git("show", f"{branch}:models/wine-small/model.onnx.dvc"))
    staged = clone.storage / "staging" / "files" / "md5" / pointer.md5[:2] / pointer.md5[2:]
    assert staged.stat().st_size == pointer.size
    # and the new model passes the bot's checks, as the pull request's validation runs them
    check = subprocess.run(
        [str(tool("registry")), "check", "--base", "main", "--head", branch],
        cwd=clone.root,
        env=clone.env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "wine-small" in check.stdout
