"""`registry train`: run a task (the default subcommand), `register`, `results`, `check`, `plan`
and `datasets`; each parses its flags into a request of `registry.api.train` and prints the result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from registry.cli.options import Invocation, folder_path, format_option, pass_invocation


class _TrainGroup(click.Group):
    """`registry train TASK …` runs a task; `registry train results|check|plan|datasets …` are
    subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        elif args and args[0] in self.commands:
            _note_shadowed_task(ctx, args[0])
        return super().parse_args(ctx, args)


def _note_shadowed_task(ctx: click.Context, name: str) -> None:
    """Say so on stderr when the repository has a task named like the subcommand that runs in its
    place (the bot refuses such a task; `registry train run NAME` does too)."""
    from registry.api.train import shadowed_task
    from registry.core.errors import RegistryError

    invocation = ctx.find_object(Invocation)
    try:
        error = shadowed_task(invocation.root, name) if invocation is not None else None
    except RegistryError:  # not in a clone: the subcommand says so itself
        return
    if error is not None:
        click.echo(f"note: {error.message}\n  hint: {error.hint}", err=True)


@click.group("train", cls=_TrainGroup)
def train() -> None:
    """Train the tasks declared in training/<task>/task.yaml (datasets, structures, algorithms
    in git).

    \b
    Examples:
      registry train digits-cnn --workers 2            # every instance, two worker processes
      registry train digits-cnn --instance base --register
      registry train results digits-cnn                 # compare the instances
      registry train datasets digits-cnn --pull         # fetch only the data its instances use
      registry train check --base origin/main --head HEAD --dynamic   # the pull-request bot
    """


def _print_registered(made, err: bool = False) -> None:
    click.echo(
        f"registered models/{made.model} from instance {made.instance} on branch {made.branch}"
        + (" (weights pushed to staging)" if made.pushed else ""),
        err=err,
    )
    click.echo(f"  next: git push -u origin {made.branch}, then open its pull request", err=err)


@train.command("run")
@click.argument("task")
@click.option(
    "--instance",
    "instances",
    multiple=True,
    metavar="NAME",
    help="Train only this instance; repeatable.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Instances trained at once, each in its own process.",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where to train.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch threads per worker (default: the CPUs shared out among the workers).",
)
@click.option(
    "--register",
    is_flag=True,
    help="Then make the best instance models/<model> on branch train/<model>.",
)
@click.option(
    "--push/--no-push",
    default=True,
    show_default=True,
    help="With --register: push the weights to staging.",
)
@click.option(
    "--branch",
    help="With --register: the branch to commit the new model on (default train/<model>).",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "plain", "jsonl"]),
    default="auto",
    show_default=True,
    help="auto: a live table in a terminal, plain lines otherwise; jsonl: events as JSON lines "
    "on stdout.",
)
@pass_invocation
def train_run(
    invocation: Invocation,
    task: str,
    instances: tuple[str, ...],
    workers: int,
    device: str,
    threads: int | None,
    register: bool,
    push: bool,
    branch: str | None,
    progress: str,
) -> None:
    """Train a task's instances (re-running resumes from the last checkpoint).

    \b
    Example:
      registry train digits-cnn --workers 2 --register
    Exit codes: 0 every instance trained, 1 an instance failed, 130 stopped by Ctrl-C.
    """
    from registry.api.train import RegisterRequest, TrainRequest, train
    from registry.api.train import register as register_best
    from registry.training.results import render_results
    from registry.training.workers import ProgressView

    jsonl = progress == "jsonl"
    view = ProgressView(
        sys.stdout if jsonl else sys.stderr,
        jsonl=jsonl,
        plain=progress == "plain" or not sys.stderr.isatty(),
    )
    outcome = train(
        TrainRequest(
            root=invocation.root,
            task=task,
            instances=instances,
            workers=workers,
            device=device,
            threads=threads,
        ),
        view=view,
    )
    if not jsonl:
        click.echo(render_results(task, outcome.results), nl=False)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(render_results(task, outcome.results, markdown=True))
    if outcome.run.interrupted:
        sys.exit(130)
    if register:
        made = register_best(
            RegisterRequest(root=invocation.root, task=task, push=push, branch=branch)
        )
        _print_registered(made, err=jsonl)
    sys.exit(1 if outcome.run.failed else 0)


@train.command("register")
@click.argument("task")
@click.option(
    "--push/--no-push",
    default=True,
    show_default=True,
    help="Push the weights to the staging remote.",
)
@click.option("--branch", help="The branch to commit the new model on (default train/<model>).")
@pass_invocation
def train_register(invocation: Invocation, task: str, push: bool, branch: str | None) -> None:
    """Make the best finished instance of TASK the model entry models/<model> (trains nothing).

    \b
    Example:
      registry train register digits-cnn --branch train/digits-cnn-2
    """
    from registry.api.train import RegisterRequest
    from registry.api.train import register as register_best

    _print_registered(
        register_best(RegisterRequest(root=invocation.root, task=task, push=push, branch=branch))
    )


@train.command("results")
@click.argument("task")
@format_option(
    "text",
    "json",
    "markdown",
    help="text for people, json for machines, markdown for a step summary.",
)
@click.option(
    "--download",
    type=folder_path(),
    help="Copy the results (weights, metrics, config, plots, log) of --instance (default: the "
    "best) here.",
)
@click.option("--instance", help="With --download: the instance to copy.")
@pass_invocation
def train_results(
    invocation: Invocation, task: str, fmt: str, download: Path | None, instance: str | None
) -> None:
    """List and compare a task's instances (the best by the task's metric is marked).

    \b
    Example:
      registry train results digits-cnn --download out/
    """
    from registry.api.train import ResultsRequest, results
    from registry.training.results import render_results, results_json

    found = results(
        ResultsRequest(root=invocation.root, task=task, download=download, instance=instance)
    )
    click.echo(
        results_json(task, found.rows)
        if fmt == "json"
        else render_results(task, found.rows, markdown=fmt == "markdown"),
        nl=False,
    )
    if found.downloaded is not None:
        click.echo(f"copied to {found.downloaded}", err=True)


@train.command("check")
@click.option(
    "--head", help="Revision to check, read from git objects (default: the working tree)."
)
@click.option(
    "--base",
    help="Base of a pull request: check when the diff touches datasets/ or training/, and "
    "build only the tasks it affects.",
)
@click.option(
    "--dynamic",
    is_flag=True,
    help="Also build, step and export each structure in the sandboxed child.",
)
@click.option("--task", "tasks", multiple=True, help="Only these tasks' instances; repeatable.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds the sandboxed step may take.",
)
@format_option(
    "text",
    "json",
    "markdown",
    "github",
    help="Output: text, json, markdown, or github (annotations + step summary).",
)
@click.option(
    "--artifacts-dir", type=folder_path(), help="Write the structure pictures (SVG) here."
)
@pass_invocation
def train_check(
    invocation: Invocation,
    head: str | None,
    base: str | None,
    dynamic: bool,
    tasks: tuple[str, ...],
    timeout: float,
    fmt: str,
    artifacts_dir: Path | None,
) -> None:
    """Validate datasets, layers, structures, algorithms and tasks (the pull-request bot).

    \b
    Example:
      registry train check --base origin/main --head HEAD --dynamic --format github \\
        --artifacts-dir pictures
    Exit codes: 0 pass, 1 findings, 2 usage, 4 git.
    """
    from registry.api.train import TrainCheckRequest, check

    report = check(
        TrainCheckRequest(
            root=invocation.root,
            head=head,
            base=base,
            dynamic=dynamic,
            tasks=tasks,
            timeout=timeout,
        )
    )
    if report is None:
        click.echo("no training files changed", err=True)
        sys.exit(0)
    from registry.training import validate  # after the check, whose sandbox starts before it

    if fmt == "github":
        click.echo(validate.publish_github(report, artifacts_dir), nl=False)
    else:
        pictures = validate.write_pictures(report, artifacts_dir) if artifacts_dir else {}
        click.echo(
            json.dumps(report.to_json(), indent=2)
            if fmt == "json"
            else validate.render_markdown(report, pictures)
            if fmt == "markdown"
            else validate.render_text(report),
            nl=fmt != "text",
        )
    sys.exit(0 if report.passed else 1)


@train.command("datasets")
@click.argument("task")
@click.option(
    "--instance",
    "instances",
    multiple=True,
    metavar="NAME",
    help="Only the datasets of this instance; repeatable.",
)
@click.option(
    "--pull",
    is_flag=True,
    help="dvc pull their data (and no other dataset's) from --remote.",
)
@click.option("--remote", default="staging", show_default=True, help="With --pull: the DVC remote.")
@format_option("text", "json", help="text: one line per dataset; json: a list of objects.")
@pass_invocation
def train_datasets(
    invocation: Invocation,
    task: str,
    instances: tuple[str, ...],
    pull: bool,
    remote: str,
    fmt: str,
) -> None:
    """List the datasets a task's instances train on; with --pull, fetch their data.

    \b
    Example:
      registry train datasets digits-cnn --instance base --pull   # the train workflow's step
    """
    from dataclasses import asdict

    from registry.api.train import DatasetsRequest, datasets

    found = datasets(
        DatasetsRequest(
            root=invocation.root, task=task, instances=instances, pull=pull, remote=remote
        )
    )
    if fmt == "json":
        click.echo(json.dumps([asdict(d) for d in found], indent=2))
        return
    for d in found:
        state = f"pulled from {remote}" if pull else "present" if d.present else "not pulled"
        click.echo(f"{d.name}: {d.pointer} ({state}; instances {', '.join(d.instances)})")


@train.command("plan")
@click.argument("tasks", nargs=-1)
@click.option("--base", help="With --head: plan the tasks whose files the diff BASE..HEAD touches.")
@click.option("--head", help="Head revision for --base (default: the working tree).")
@click.option(
    "--instance",
    "instances",
    multiple=True,
    metavar="NAME",
    help="Only these instances; repeatable.",
)
@format_option(
    "text",
    "json",
    help='json: {"include": [{"task", "instance"}, …]}, the matrix of the train workflow.',
)
@pass_invocation
def train_plan(
    invocation: Invocation,
    tasks: tuple[str, ...],
    base: str | None,
    head: str | None,
    instances: tuple[str, ...],
    fmt: str,
) -> None:
    """List the instances to train (grids expanded): one job each in the train workflow's matrix.

    \b
    Examples:
      registry train plan digits-cnn --format json
      registry train plan --base origin/main --head HEAD --format json
    """
    from registry.api.train import TrainPlanRequest
    from registry.api.train import plan as plan_instances

    plan = plan_instances(
        TrainPlanRequest(
            root=invocation.root, tasks=tasks, base=base, head=head, instances=instances
        )
    )
    if fmt == "json":
        click.echo(json.dumps({"include": [{"task": t, "instance": i.name} for t, i in plan]}))
    else:
        for t, i in plan:
            click.echo(
                f"{t}/{i.name}: dataset {i.dataset}, structure {i.structure}, "
                f"algorithm {i.algorithm}"
                + (f", {json.dumps(i.hyperparameters)}" if i.hyperparameters else "")
            )


COMMANDS = (train,)
