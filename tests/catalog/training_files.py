"""A registry's training files for the catalog's tests: the example digits dataset, structure and
task copied from this repository, a model registered from the task, and an instance's results."""

from __future__ import annotations

import json

from factories import REPO_ROOT, Registry, example_card, mlp_onnx, publish_version

TASK = "digits-cnn"


def add_training(
    reg: Registry, *, dataset_description: str | None = None, model: str | None = "digits-cnn"
) -> None:
    """Commit datasets/digits, training/structures/digits-cnn.yaml and training/digits-cnn, write
    the results of its `base` instance, and publish `model` as registered from the task."""
    dataset = (REPO_ROOT / "datasets" / "digits" / "dataset.yaml").read_text()
    if dataset_description is not None:
        dataset = dataset.replace(
            dataset.split("description: ", 1)[1].split("\n", 1)[0],
            json.dumps(dataset_description),
        )
    reg.commit(
        {
            "datasets/digits/dataset.yaml": dataset,
            "training/structures/digits-cnn.yaml": (
                REPO_ROOT / "training" / "structures" / "digits-cnn.yaml"
            ).read_text(),
            f"training/{TASK}/task.yaml": (REPO_ROOT / "training" / TASK / "task.yaml").read_text(),
        },
        message="add the digits training task",
    )
    results = reg.root / "training" / TASK / "results" / "base"
    results.mkdir(parents=True)
    (results / "status.json").write_text(
        json.dumps({"state": "done", "metrics": {"accuracy": 0.9712}, "epochs_run": 15})
    )
    if model is None:
        return
    commit = reg.git("rev-parse", "HEAD")
    card = example_card(model, size=len(mlp_onnx(11))).replace(
        "  repo: https://github.com/example/train.git",
        f"  repo: self\n  path: training/{TASK}\n  commit: {commit}",
    )
    reg.add_model(model, mlp_onnx(11), card=card)
    publish_version(reg, model, "1.0.0", notes="trained", date="2026-03-05T10:00:00+00:00")
