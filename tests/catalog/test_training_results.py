"""The catalog shows a training task's instance results from the committed
`training/<task>/results.json` when the clone holds no results folders (as the publish workflow's
clone does: `registry train` writes them outside git)."""

from __future__ import annotations

import json
import shutil


def results_summary(reg, *instances: dict) -> dict:
    """A `results.json` of the digits task, trained at the clone's HEAD, holding `instances`."""
    from catalog.training_files import TASK

    return {
        "format": 1,
        "task": TASK,
        "commit": reg.git("rev-parse", "HEAD"),
        "metric": "accuracy",
        "instances": list(instances),
    }


def test_a_task_page_shows_the_committed_results_without_a_results_folder(
    published_registry, tmp_path
):
    from catalog.training_files import TASK, add_training
    from registry.api.catalog import CatalogBuildRequest, build

    reg, site = published_registry, tmp_path / "site"
    add_training(reg)
    shutil.rmtree(reg.root / "training" / TASK / "results")  # a fresh clone has none
    summary = results_summary(
        reg,
        {"name": "base", "state": "done", "metrics": {"accuracy": 0.9651}, "epochs_run": 15},
        {
            "name": "wide-c1-16",
            "state": "done",
            "metrics": {"accuracy": 0.9823},
            "epochs_run": 15,
            "registered": {"model": "digits-cnn"},
        },
    )
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


def test_the_catalog_reads_no_training_file_through_a_link(published_registry, tmp_path):
    """A results summary, an instance's status and a dataset folder that are links to files
    outside the clone show nothing on the public site, and the build still succeeds."""
    from catalog.training_files import TASK, add_training
    from registry.api.catalog import CatalogBuildRequest, build
    from registry.training.results import list_results

    reg, site, outside = published_registry, tmp_path / "site", tmp_path / "outside"
    add_training(reg)
    outside.mkdir()
    summary = results_summary(
        reg, {"name": "wide-c1-16", "state": "done", "metrics": {"accuracy": 0.1234}}
    )
    (outside / "results.json").write_text(json.dumps(summary))
    (reg.root / "training" / TASK / "results.json").symlink_to(outside / "results.json")
    status = reg.root / "training" / TASK / "results" / "base" / "status.json"
    (outside / "status.json").write_text(
        json.dumps({"state": "done", "metrics": {"accuracy": 0.4321}})
    )
    status.unlink()
    status.symlink_to(outside / "status.json")
    secret = outside / "secret-data"
    secret.mkdir()
    dataset = (reg.root / "datasets" / "digits" / "dataset.yaml").read_text()
    (secret / "dataset.yaml").write_text(dataset.replace("name: digits", "name: secret-data"))
    (reg.root / "datasets" / "secret-data").symlink_to(secret)

    build(CatalogBuildRequest(root=reg.root, output=site))

    task = (site / "training/digits-cnn/index.html").read_text()
    assert "0.1234" not in task and "0.4321" not in task
    assert "no results here" in task
    assert not (site / "datasets" / "secret-data").exists()
    assert "secret-data" not in (site / "index.html").read_text()
    # the command line names the link instead of reading through it
    import pytest

    from registry.core.errors import UsageError

    with pytest.raises(UsageError, match="status.json: not a results file"):
        list_results(reg.root, TASK)
