"""The API of `registry train`: run a task's instances, register the best, list and fetch results,
check the training files of a pull request, and plan the train workflow's matrix.

Owns their requests and the pull-request selection of `check` (only when the diff touches
datasets/ or training/, only the tasks it affects, the summary check alone when it changes only
results summaries). The work is done by `registry.training`.

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.core.errors import RegistryError
    from registry.training.data import DatasetData
    from registry.training.files import Instance
    from registry.training.register import Registered
    from registry.training.results import ResultRow
    from registry.training.validate import TrainingReport
    from registry.training.workers import ProgressView, TaskRun

__all__ = [
    "DatasetsRequest",
    "RegisterRequest",
    "Results",
    "ResultsRequest",
    "TrainCheckRequest",
    "TrainOutcome",
    "TrainPlanRequest",
    "TrainRequest",
    "check",
    "datasets",
    "plan",
    "register",
    "results",
    "shadowed_task",
    "train",
]


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    """A task's instances to train.

    Args:
        root: the registry clone.
        task: the task (training/<task>/task.yaml).
        instances: only these instances (empty: every one).
        workers: instances trained at once, each in its own process.
        device: `cpu` or `cuda`.
        threads: torch threads per worker (None: the CPUs shared out among the workers).
    """

    root: Path
    task: str
    instances: tuple[str, ...] = ()
    workers: int = 1
    device: str = "cpu"
    threads: int | None = None


@dataclass(frozen=True)
class TrainOutcome:
    """How each instance ended, and the task's results afterwards (every instance trained so
    far)."""

    run: TaskRun
    results: list[ResultRow]


def train(request: TrainRequest, *, view: ProgressView | None = None) -> TrainOutcome:
    """Train a task's instances; re-running resumes from the last checkpoint (`registry train`).

    Args:
        view: shows the run's events as they come.

    Raises:
        UsageError: an unknown task or instance. RegistryError: the `train` extra is not
            installed.
    """
    from registry.core.dependencies import require
    from registry.training.results import list_results
    from registry.training.workers import train_task

    require(("torch", "PIL"), "train")  # before any worker starts, not in each of them
    run = train_task(
        request.root,
        request.task,
        instances=list(request.instances) or None,
        workers=request.workers,
        device=request.device,
        threads=request.threads,
        view=view,
    )
    rows = list_results(request.root, request.task)
    # an instance that failed in this run left no results: say so, not "not run"
    failed = {o.name for o in run.outcomes if o.state == "failed"}
    for row in rows:
        if row.instance in failed and row.state != "done":
            row.state = "failed"
    return TrainOutcome(run=run, results=rows)


@dataclass(frozen=True, kw_only=True)
class RegisterRequest:
    """Make the best finished instance of `task` the model entry models/<model>.

    Args:
        push: push the weights to the staging remote.
        branch: the branch to commit the new model on (default train/<model>).
    """

    root: Path
    task: str
    push: bool = True
    branch: str | None = None


def register(request: RegisterRequest) -> Registered:
    """Register the best instance through `registry new`'s code path (`registry train register`).

    Raises:
        UsageError: no finished instance. GitError: the branch or commit failed.
    """
    from registry.training.register import register_best

    return register_best(request.root, request.task, push=request.push, branch=request.branch)


@dataclass(frozen=True, kw_only=True)
class ResultsRequest:
    """A task's results, and optionally one instance's files to copy.

    Args:
        download: copy the results (weights, metrics, config, plots, log) of `instance` here.
        instance: the instance to copy (default: the best).
    """

    root: Path
    task: str
    download: Path | None = None
    instance: str | None = None


@dataclass(frozen=True)
class Results:
    """Every instance's results (the best by the task's metric marked), and where the downloaded
    one was copied."""

    rows: list[ResultRow]
    downloaded: Path | None = None


def results(request: ResultsRequest) -> Results:
    """List and compare a task's instances; copy one's files (`registry train results`).

    Raises:
        UsageError: an unknown task, no finished instance to download.
    """
    from registry.training.results import best_result, fetch_result, list_results

    rows = list_results(request.root, request.task)
    downloaded = None
    if request.download:
        instance = request.instance or best_result(request.root, request.task).instance
        downloaded = fetch_result(request.root, request.task, instance, request.download)
    return Results(rows=rows, downloaded=downloaded)


def shadowed_task(root: Path, name: str) -> RegistryError | None:
    """The error of a task `training/<name>/task.yaml` named like one of `registry train`'s
    subcommands (which runs in its place), for the command line to show; None when there is none.
    """
    from registry.training import TASK_FILE, TRAIN_SUBCOMMANDS, TRAINING_DIR

    if name not in TRAIN_SUBCOMMANDS or not Path(root, TRAINING_DIR, name, TASK_FILE).is_file():
        return None  # the common case, answered before the training files' models are imported
    from registry.training.files import shadowed_task as shadowed

    return shadowed(root, name)


@dataclass(frozen=True, kw_only=True)
class TrainCheckRequest:
    """The training files to validate.

    Args:
        head: the revision to check, read from git objects (None: the working tree).
        base: the base of a pull request: check only when the diff touches datasets/ or
            training/, and build only the tasks it affects.
        dynamic: also build, step and export each structure in the sandboxed child.
        tasks: only these tasks' instances.
        timeout: seconds the sandboxed step may take.
    """

    root: Path
    head: str | None = None
    base: str | None = None
    dynamic: bool = False
    tasks: tuple[str, ...] = ()
    timeout: float = 60.0


def check(request: TrainCheckRequest) -> TrainingReport | None:
    """Validate datasets, layers, structures, algorithms and tasks (`registry train check`);
    None when `base` is given and the diff touches no training file. A diff that changes only
    results summaries (a registered model's pull request) gets the summary check alone.

    Raises:
        GitError: an unknown revision.
    """
    import contextlib

    from registry.training.changes import changed_paths, summaries_only, summary_task
    from registry.training.sandbox import Sandbox

    changed = changed_paths(request.root, request.base, request.head) if request.base else None
    if changed is not None and not changed:
        return None
    summaries = changed is not None and summaries_only(changed)
    # the sandbox's child starts before the checker's own imports, which its own overlap
    with Sandbox() if request.dynamic and not summaries else contextlib.nullcontext() as sandbox:
        from registry.core.repo import RegistryRepo
        from registry.training import validate
        from registry.training.changes import affected_tasks

        snapshot = RegistryRepo(request.root).snapshot(request.head)
        if summaries:
            return validate.check_summaries(snapshot, sorted({summary_task(p) for p in changed}))
        tasks = list(request.tasks)
        if changed is not None:
            # "-" names no task: the files are checked, no instance is built
            tasks = tasks or affected_tasks(snapshot, changed) or ["-"]
        return validate.check_training(
            snapshot,
            dynamic=request.dynamic,
            tasks=tasks or None,
            timeout=request.timeout,
            sandbox=sandbox,
        )


@dataclass(frozen=True, kw_only=True)
class TrainPlanRequest:
    """The instances to train: of `tasks`, and with `base` of every task the diff base..head
    touches (head None: the working tree); only `instances` when given."""

    root: Path
    tasks: tuple[str, ...] = ()
    base: str | None = None
    head: str | None = None
    instances: tuple[str, ...] = ()


def plan(request: TrainPlanRequest) -> list[tuple[str, Instance]]:
    """(task, instance) pairs, grids expanded: one job each in the train workflow's matrix
    (`registry train plan`).

    Raises:
        UsageError: neither tasks nor base, an unknown task or instance.
    """
    from registry.training.workers import plan_instances

    return plan_instances(
        request.root,
        list(request.tasks),
        base=request.base,
        head=request.head,
        instances=list(request.instances),
    )


@dataclass(frozen=True, kw_only=True)
class DatasetsRequest:
    """The datasets a task's instances train on, and whether to pull their data.

    Args:
        instances: only these instances (empty: every one).
        pull: `dvc pull` their data (and no other dataset's) from `remote`.
    """

    root: Path
    task: str
    instances: tuple[str, ...] = ()
    pull: bool = False
    remote: str = "staging"


def datasets(request: DatasetsRequest) -> list[DatasetData]:
    """The datasets of a task's instances; their data pulled with `pull` (`registry train
    datasets`).

    Raises:
        UsageError: an unknown task or instance, a dataset.yaml that does not load.
        StorageError: the pull failed.
    """
    from registry.training.data import instance_datasets, pull_datasets
    from registry.training.workers import select_instances

    chosen = select_instances(request.root, request.task, list(request.instances) or None)
    found = instance_datasets(request.root, chosen)
    if request.pull:
        pull_datasets(request.root, found, request.remote)
    return found
