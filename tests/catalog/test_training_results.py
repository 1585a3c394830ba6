"""The catalog shows a training task's instance results from the committed
`training/<task>/results.json` when the clone holds no results folders (as the publish workflow's
clone does: `registry train` writes them outside git)."""

from __future__ import annotations

import json
import shutil


def test_a_task_page_shows_the_committed_results_without_a_results_folder(
    published_registry, tmp_path
):
    from catalog.training_files import TASK, add_training
    from registry.api.catalog import CatalogBuildRequest, build

    reg, site = published_registry, tmp_path / "site"
    add_training(reg)
    shutil.rmtree(reg.root / "training" / TASK / "results")  # a fresh clone has none
    summary = {
        "format": 1,
        "task": TASK,
        "commit": reg.git("rev-parse", "HEAD"),
        "metric": "accuracy",
        "instances": [
            {"name": "base", "state": "done", "metrics": {"accuracy": 0.9651}, "epochs_run": 15},
            {
                "name": "wide-c1-16",
                "state": "done",
                "metrics": {"accuracy": 0.9823},
                "epochs_run": 15,
                "registered": {"model": "digits-cnn"},
            },
        ],
    }
    reg.commit(
        {f"training/{TASK}/results.json": json.dumps(summary, indent=2)},
        message="the results of digits-cnn",
    )

    build(CatalogBuildRequest(root=reg.root, output=site))

    task = (site / "training/digits-cnn/index.html").read_text()
    assert "0.9823 (done, best)" in task and "0.9651 (done)" in task
    assert "no results here" in task  # wide-c1-4 is in neither
    record = json.loads((site / "training/digits-cnn/task.json").read_text())
    results = {i["name"]: i["result"] for i in record["instances"]}
    assert results["wide-c1-16"]["best"] and results["base"]["epochs_run"] == 15
    assert results["wide-c1-4"] is None
