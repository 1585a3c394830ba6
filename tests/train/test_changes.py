"""What a pull request's diff changes in training: the tasks it affects, and a registered model's
pull request (results.json only) getting the summary check alone, in a real git repository."""

from __future__ import annotations

import json

import pytest

from factories import registry_cli
from registry.core.errors import GitError
from registry.core.repo import WorkTree
from registry.training.changes import affected_tasks, changed_paths

SUMMARY = {
    "$schema": "../../docs/training-results.schema.json",
    "format": 1,
    "task": "wine-mlp",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "metric": "accuracy",
    "instances": [
        {
            "name": "mlp-hidden-16",
            "state": "done",
            "metrics": {"accuracy": 0.97},
            "epochs_run": 60,
            "registered": {"model": "wine-mlp"},
        }
    ],
}


def _model_pull_request(reg, summary: dict) -> None:
    """What `registry train wine-mlp --register` commits on its branch: the model's folder and the
    task's results summary."""
    reg.git("switch", "-q", "-c", "train/wine-mlp")
    reg.commit(
        {
            "models/wine-mlp/model.yaml": "name: wine-mlp\n",
            "training/wine-mlp/results.json": json.dumps(summary, indent=2) + "\n",
        },
        message="register wine-mlp",
    )


def test_a_registered_models_pull_request_gets_the_summary_check_alone(training_registry, capsys):
    reg = training_registry
    _model_pull_request(reg, SUMMARY)

    changed = changed_paths(reg.root, "main", "HEAD")
    assert changed == ["training/wine-mlp/results.json"]
    assert affected_tasks(WorkTree(reg.root), changed) == []  # no instance to build or retrain

    code, out, err = registry_cli(
        reg.root, "train", "check", "--base", "main", "--head", "HEAD", "--dynamic", capsys=capsys
    )
    assert code == 0, out + err
    # one file checked, nothing built or run, no structure traced
    assert out.splitlines() == ["PASS  training files (1 checked)"]

    code, out, _ = registry_cli(
        reg.root, "train", "plan", "--base", "main", "--head", "HEAD", "--format", "json",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0 and out.strip() == '{"include": []}'  # the train workflow then skips training


def test_the_summary_check_alone_still_finds_a_bad_summary(training_registry, capsys):
    reg = training_registry
    stale = {**SUMMARY, "instances": [{**SUMMARY["instances"][0], "name": "mlp-hidden-64"}]}
    _model_pull_request(reg, stale)
    code, out, _ = registry_cli(
        reg.root, "train", "check", "--base", "main", "--head", "HEAD", "--format", "json",
        capsys=capsys,
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0 and report["files"] == ["training/wine-mlp/results.json"]
    [warning] = report["findings"]
    assert warning["severity"] == "warning" and warning["path"] == "training/wine-mlp/results.json"
    assert "instance 'mlp-hidden-64' is not an instance of task 'wine-mlp'" in warning["message"]

    (reg.root / "training/wine-mlp/results.json").write_text('{"format": 1,\n  "task": }\n')
    reg.commit(message="break the summary")
    code, out, _ = registry_cli(
        reg.root, "train", "check", "--base", "main", "--head", "HEAD", capsys=capsys
    )
    assert code == 1 and "training/wine-mlp/results.json:2: not valid JSON" in out


def test_a_summary_beside_a_changed_input_builds_only_the_task_that_input_affects(
    training_registry,
):
    reg = training_registry
    _model_pull_request(reg, SUMMARY)
    path = reg.root / "training/structures/digits-autoencoder.yaml"
    path.write_text(path.read_text().replace("hidden: 32", "hidden: 24"))
    reg.commit(message="smaller autoencoder")

    changed = changed_paths(reg.root, "main", "HEAD")
    assert sorted(changed) == [
        "training/structures/digits-autoencoder.yaml",
        "training/wine-mlp/results.json",
    ]
    assert affected_tasks(WorkTree(reg.root), changed) == ["digits-embedding"]
    # the task's own files still affect it
    assert affected_tasks(WorkTree(reg.root), ["training/wine-mlp/task.yaml"]) == ["wine-mlp"]


def test_an_unknown_base_is_a_git_error_that_says_to_fetch_it(training_registry):
    with pytest.raises(GitError) as e:
        changed_paths(training_registry.root, "no-such-base", "HEAD")
    assert e.value.message.startswith("git diff no-such-base failed: ")
    assert e.value.hint == "fetch the base revision first"


def test_what_main_changed_after_the_branch_point_is_not_the_pull_requests(training_registry):
    """The diff starts at the merge base, as the model check's does: a structure edited on main
    after the pull request branched off neither shows as changed nor makes its task train."""
    reg = training_registry
    _model_pull_request(reg, SUMMARY)
    reg.git("switch", "-q", "main")
    path = reg.root / "training/structures/digits-autoencoder.yaml"
    path.write_text(path.read_text().replace("hidden: 32", "hidden: 24"))
    reg.commit(message="smaller autoencoder, on main")
    reg.git("switch", "-q", "train/wine-mlp")

    changed = changed_paths(reg.root, "main", "HEAD")
    assert changed == ["training/wine-mlp/results.json"]
    assert affected_tasks(WorkTree(reg.root), changed) == []
