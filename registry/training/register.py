"""The best instance of a task becomes a model entry, through `registry new`'s own code path.

`register_best` picks the finished instance with the best value of the task's metric, and calls
`registry.cards.scaffold.new_model` with its ONNX weights (and its `.pt2` as the card's `pytorch:`,
when the instance has one), its config snapshot as the model's config, the measured held-out
metrics, and as its training code this repository's task folder at the commit the instance was
trained from (`source.repo: self`, `source.path: training/<task>`, `source.commit`), which the bot
confirms without the network. The weights are pushed to the staging remote, and the new folder is
committed on a branch of its own with the task's results summary (`training/<task>/results.json`:
every instance's held-out metrics, and which one became the model), ready for its pull request
(which the bot then checks like any other).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from registry.cards.schema import SELF_REPO, Metric
from registry.core.errors import UsageError
from registry.core.git import run_git
from registry.training.files import RegisteredAs, read_task, results_summary_path
from registry.training.results import best_result, write_summary
from registry.training.runner import results_dir


@dataclass
class Registered:
    """What `register_best` made."""

    model: str
    instance: str
    branch: str | None
    commit: str | None
    folder: Path
    metrics: list[Metric]
    pushed: bool
    summary: Path  # training/<task>/results.json, committed with the model


def _git(root: Path, *args: str, check: bool = True) -> str:
    return run_git(root, *args, check=check).strip()


def register_best(
    root: Path, task: str, *, push: bool = True, branch: str | None = None, commit: bool = True
) -> Registered:
    """Make the best instance of `task` the model entry `models/<task.model>/` on a new branch.

    Args:
        push: push the weights to the staging remote (as `registry new --push`).
        branch: the branch to commit on (default `train/<model>`); None with `commit=False` leaves
            the new folder uncommitted in the working tree.

    Raises:
        UsageError: nothing finished, the model or the branch exists already.
        StorageError: the push failed. GitError: the branch or commit failed.
    """
    from registry.cards.scaffold import NewModel, check_new_folder, new_model

    root = Path(root).resolve()
    spec = read_task(root, task)
    best = best_result(root, task)
    folder = results_dir(root, task, best.instance)
    check_new_folder(root, spec.model)
    branch = branch or f"train/{spec.model}"
    if commit and _git(
        root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
    ):
        raise UsageError(f"branch '{branch}' exists already", "delete it, or pass another --branch")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    # the fixed name, not one the results name: they may come from a workflow's artifacts, which
    # pull-request code wrote (new_model inspects the file like any .pt2)
    pytorch = folder / "model.pt2" if (folder / "model.pt2").is_file() else None
    summary = yaml.safe_load((folder / "metrics.json").read_text())
    metrics = [
        Metric(
            name=k,
            value=v,
            dataset=summary["dataset"],
            higher_is_better=(summary["higher_is_better"] if k == summary["metric"] else None),
        )
        for k, v in summary["metrics"].items()
    ]
    trained = config.get("source_commit") or _git(root, "rev-parse", "HEAD")
    with tempfile.TemporaryDirectory(prefix="registry-register-") as tmp:
        config_file = Path(tmp) / "config.yaml"
        config_file.write_text(
            "# what `registry train` trained (training/"
            + task
            + "/task.yaml, instance "
            + best.instance
            + ")\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
        result = new_model(
            root,
            NewModel(
                name=spec.model,
                weights=folder / "model.onnx",
                config=config_file,
                task=spec.task,
                project=spec.project,
                source_repo=SELF_REPO,
                source_path=f"training/{task}",
                source_commit=trained,
                description=spec.description,
                license=spec.license,
                owners=spec.owners,
                tags=spec.tags,
                metrics=metrics,
                pytorch=pytorch,
            ),
            push=push,
        )
    summary = write_summary(
        root,
        task,
        commit=trained,
        registered=(best.instance, RegisteredAs(model=spec.model, version=result.card.version)),
    )
    made = None
    if commit:
        _git(root, "switch", "-q", "-c", branch)
        _git(
            root,
            "add",
            "--",
            str(result.folder.relative_to(root)),
            "dvc.yaml",
            results_summary_path(task),
        )
        _git(
            root,
            "commit",
            "-q",
            "-m",
            f"Add {spec.model}: instance {best.instance} of training task {task}",
        )
        made = _git(root, "rev-parse", "HEAD")
    return Registered(
        spec.model,
        best.instance,
        branch if commit else None,
        made,
        result.folder,
        metrics,
        push,
        summary,
    )
