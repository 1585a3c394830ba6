"""The committed summary of a task's results (`training/<task>/results.json`): what
`registry train --register` writes, and what the bot accepts and refuses in it."""

from __future__ import annotations

import json

import pytest

from registry.core.repo import WorkTree
from registry.training.files import RegisteredAs, TaskResults, json_schema
from registry.training.results import list_results, read_summary, write_summary
from registry.training.validate import check_training

SUMMARY = "training/digits-cnn/results.json"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef0123456789abcdef"


def _trained(root, instance: str, accuracy: float, epochs: int, commit: str = COMMIT) -> None:
    """An instance's results folder as `registry train` leaves it (status and config)."""
    folder = root / "training/digits-cnn/results" / instance
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(
        json.dumps(
            {"state": "done", "metrics": {"accuracy": accuracy, "loss": 0.1}, "epochs_run": epochs}
        )
    )
    (folder / "config.yaml").write_text(f"task: digits-cnn\nsource_commit: {commit}\n")


def _summary(**changes) -> dict:
    data = {
        "$schema": "../../docs/training-results.schema.json",
        "format": 1,
        "task": "digits-cnn",
        "commit": COMMIT,
        "metric": "accuracy",
        "instances": [
            {
                "name": "base",
                "state": "done",
                "metrics": {"accuracy": 0.97},
                "epochs_run": 15,
                "registered": {"model": "digits-cnn", "version": "1.0.0"},
            }
        ],
    }
    data.update(changes)
    return data


def test_the_summary_records_every_instance_and_the_one_registered(training_tree):
    root = training_tree
    _trained(root, "base", 0.95, 15)
    _trained(root, "wide-c1-16", 0.97, 12, commit=OTHER)

    path = write_summary(
        root,
        "digits-cnn",
        commit=COMMIT,
        registered=("wide-c1-16", RegisteredAs(model="digits-cnn", version=None)),
    )

    data = json.loads(path.read_text())
    assert path == root / SUMMARY
    assert data["$schema"] == "../../docs/training-results.schema.json"
    assert (data["format"], data["task"], data["commit"], data["metric"]) == (
        1,
        "digits-cnn",
        COMMIT,
        "accuracy",
    )
    base, wide = data["instances"]  # the grid's wide-c1-4 has no results: not listed
    assert base == {
        "name": "base",
        "state": "done",
        "metrics": {"accuracy": 0.95, "loss": 0.1},
        "epochs_run": 15,
    }
    assert wide["registered"] == {"model": "digits-cnn"} and wide["commit"] == OTHER
    assert check_training(WorkTree(root)).passed

    # registering again where only base was re-trained keeps wide-c1-16 as it was recorded
    import shutil

    shutil.rmtree(root / "training/digits-cnn/results/wide-c1-16")
    write_summary(root, "digits-cnn", commit=OTHER)
    again = json.loads((root / SUMMARY).read_text())
    assert again["commit"] == OTHER
    assert [i["name"] for i in again["instances"]] == ["base", "wide-c1-16"]
    assert again["instances"][0]["commit"] == COMMIT  # base's results were trained from COMMIT
    assert again["instances"][1]["registered"] == {"model": "digits-cnn"}


def test_without_results_folders_the_rows_come_from_the_summary(training_tree):
    root = training_tree
    (root / SUMMARY).write_text(json.dumps(_summary()))
    rows = {r.instance: r for r in list_results(root, "digits-cnn", summary=True)}
    assert rows["base"].state == "done" and rows["base"].value == 0.97 and rows["base"].best
    assert rows["wide-c1-4"].state == "not run"
    # `registry train results` shows what this clone trained, not the summary
    assert list_results(root, "digits-cnn")[0].state == "not run"
    # a local results folder wins over the summary
    _trained(root, "base", 0.5, 2)
    rows = {r.instance: r for r in list_results(root, "digits-cnn", summary=True)}
    assert rows["base"].value == 0.5 and rows["base"].epochs_run == 2


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ('{"format": 1,\n "task": "digits-cnn",,\n}', "not valid JSON", 2),
        (json.dumps(_summary(commit="HEAD"), indent=2), "'commit'", 5),
        (json.dumps(_summary(format=2), indent=2), "'format'", 3),
        (json.dumps(_summary(task="wine-mlp"), indent=2), "does not match its folder", 4),
        (
            json.dumps(_summary(instances=[{"name": "base", "state": "finished"}]), indent=2),
            "'instances.0.state'",
            10,
        ),
        (json.dumps(_summary(accuracy=0.9), indent=2), "unknown field 'accuracy'", 21),
    ],
)
def test_a_malformed_summary_is_a_finding_naming_the_file_and_line(
    training_tree, text, message, line
):
    (training_tree / SUMMARY).write_text(text + "\n")
    report = check_training(WorkTree(training_tree))
    assert not report.passed
    [f] = [f for f in report.findings if f.path == SUMMARY]
    assert message in f.message and f.line == line, (f.message, f.line)
    assert f.hint
    assert SUMMARY in report.files
    assert read_summary(training_tree, "digits-cnn") is None  # the catalog shows none of it


def test_an_instance_the_task_no_longer_has_is_a_warning(training_tree):
    data = _summary()
    data["instances"].append({"name": "gone", "state": "done", "metrics": {"accuracy": 0.5}})
    (training_tree / SUMMARY).write_text(json.dumps(data, indent=2))
    report = check_training(WorkTree(training_tree))
    assert report.passed
    [f] = [f for f in report.findings if f.path == SUMMARY]
    assert f.severity.value == "warning" and "'gone' is not an instance" in f.message


def test_the_schema_in_docs_is_current():
    from factories import REPO_ROOT

    on_disk = json.loads((REPO_ROOT / "docs/training-results.schema.json").read_text())
    assert on_disk == json.loads(
        json.dumps(
            json_schema(TaskResults, "Training results summary (training/<task>/results.json)")
        )
    )


def test_a_deeply_nested_summary_is_a_finding_not_a_crash(training_tree):
    (training_tree / SUMMARY).write_text("[" * 100_000 + "]" * 100_000)
    report = check_training(WorkTree(training_tree))
    assert not report.passed
    [f] = [f for f in report.findings if f.path == SUMMARY]
    assert "nested too deeply" in f.message and f.hint
    assert read_summary(training_tree, "digits-cnn") is None
