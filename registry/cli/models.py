"""The commands about models and their cards: `schema`, `check`, `new`, `list`, `show`, `pull`,
`sync-artifacts` and `codeowners`; each parses its flags into a request of `registry.api.models`
and prints the result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from registry.cli.options import (
    Invocation,
    TaskChoice,
    file_path,
    folder_path,
    format_option,
    pass_invocation,
)
from registry.core.errors import UsageError

# --------------------------------------------------------------------------- schema


@click.command()
@click.option(
    "-o",
    "--output",
    type=file_path(),
    help="Write the schema to this file instead of standard output.",
)
@format_option("json", help="json: the schema is JSON (the only format), for scripts alike.")
def schema(output: Path | None, fmt: str) -> None:
    """Print the JSON Schema of the model card (models/<name>/model.yaml).

    \b
    Example:
      registry schema -o docs/model-card.schema.json
      registry schema --format json | jq '.properties | keys'
    """
    from registry.api.models import card_json_schema

    text = json.dumps(card_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- check


@click.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Check every model folder in the registry.")
@click.option(
    "--base", help="Base revision of a pull request: check only the models the diff touches."
)
@click.option("--head", help="Head revision of a pull request (default: the working tree).")
@click.option(
    "--offline",
    is_flag=True,
    help="Do not contact source repositories; reachability becomes a warning.",
)
@click.option(
    "--no-content", is_flag=True, help="Skip the checks that read weights (storage, graph)."
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="CHECK",
    help="Run only this check (repeatable); names as in docs/checks.md.",
)
@click.option(
    "--forbid-local-urls/--allow-local-urls",
    default=True,
    show_default=True,
    help="Refuse file:// URLs, local paths and loopback, link-local or private hosts as "
    "source.repo "
    "(the default); --allow-local-urls accepts them, e.g. for a registry on one machine.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds allowed for each network operation, such as git ls-remote on source.repo.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes that share the models when the content checks are off "
    "(default: one per core from 1,000 models on).",
)
@format_option(
    "text",
    "json",
    "markdown",
    "github",
    help="text for people, json for machines, markdown for a report, github for workflow "
    "annotations, the step summary and step outputs.",
)
@click.option(
    "--comment-file",
    type=file_path(),
    help="Also write the pull-request comment body (Markdown) to this file.",
)
@click.option(
    "--artifacts-dir",
    type=folder_path(),
    help="Write each model's graph picture as <model>.svg here (for upload as a run artifact).",
)
@pass_invocation
def check(
    invocation: Invocation,
    names: tuple[str, ...],
    all_models: bool,
    base: str | None,
    head: str | None,
    offline: bool,
    no_content: bool,
    only: tuple[str, ...],
    forbid_local_urls: bool,
    timeout: float,
    jobs: int | None,
    fmt: str,
    comment_file: Path | None,
    artifacts_dir: Path | None,
) -> None:
    """Validate models against the registry's standards (the pull-request bot).

    \b
    Examples:
      registry check digits-cnn              # one model in the working tree
      registry check --all --no-content      # every card, fast
      registry check --base origin/main --head HEAD --format github --comment-file comment.md
    Exit codes: 0 pass (warnings alone pass), 1 findings, 2 usage, 4 git, 5 storage.
    """
    from registry.api.models import CheckRequest
    from registry.api.models import check as run_check
    from registry.checks import CheckOptions
    from registry.checks import report as render

    options = CheckOptions(
        offline=offline,
        content=not no_content,
        allow_local_urls=not forbid_local_urls,
        timeout=timeout,
        only=list(only) or None,
        raise_unexpected=invocation.traceback,
        jobs=jobs,
    )
    report = run_check(
        CheckRequest(
            root=invocation.root,
            names=names,
            all_models=all_models,
            base=base,
            head=head,
            options=options,
        )
    )
    if fmt == "json":
        click.echo(render.render_json(report), nl=False)
    elif fmt == "markdown":
        click.echo(render.render_markdown(report), nl=False)
    elif fmt == "github":
        from registry.checks import github

        click.echo(github.publish(report, comment_file, artifacts_dir), nl=False)
        click.echo(github.inert_block(render.render_text(report)), nl=False)
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(render.render_text(report, color=color), nl=False, color=color)
    if comment_file and fmt != "github":
        from registry.checks import github

        github.write_comment(report, comment_file, artifacts_dir)
    elif artifacts_dir and not comment_file:
        render.write_pictures(report, artifacts_dir)
    sys.exit(0 if report.passed else 1)


# --------------------------------------------------------------------------- new


def stdin_is_terminal() -> bool:
    """Whether `registry new` may ask questions (standard input is a terminal)."""
    return sys.stdin.isatty()


_NEW_REQUIRED = {
    "weights": "--weights",
    "config": "--config",
    "task": "--task",
    "project": "--project",
    "source_repo": "--source-repo",
}


@click.command("new")
@click.argument("name")
@click.option(
    "--weights",
    type=file_path(),
    help="Weights/structure file (ONNX) to copy in and track with DVC.",
)
@click.option(
    "--config", "config_file", type=file_path(), help="Training config (yaml or json) to copy in."
)
@click.option("--task", type=TaskChoice(), help="Training task category.")
@click.option("--project", help="Business project the model belongs to.")
@click.option("--source-repo", help="Git URL of the training code.")
@click.option("--source-commit", help="Commit of the training code (optional).")
@click.option("--version", "model_version", help="SemVer version (optional until publishing).")
@click.option("--description", help="What the model does (optional).")
@click.option("--license", "license_id", help="SPDX license id (optional), e.g. Apache-2.0.")
@click.option(
    "--owner", "owners", multiple=True, help="Code owner (@user or @org/team); repeatable."
)
@click.option("--tag", "tags", multiple=True, help="Free label; repeatable.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME=VALUE@DATASET",
    help="Evaluation metric, e.g. accuracy=0.93@digits-test; repeatable.",
)
@click.option(
    "--pytorch",
    type=file_path(),
    help="PyTorch source of the same model (.pt2 from torch.export.save) for the native mobile "
    "runtimes; copied in and tracked with DVC (optional).",
)
@click.option(
    "--push", is_flag=True, help="Push the weights to the staging remote (dvc push -r staging)."
)
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Ask for missing fields (default: when standard input is a terminal).",
)
@format_option("text", "json")
@pass_invocation
def new(
    invocation: Invocation,
    name: str,
    weights: Path | None,
    config_file: Path | None,
    task: str | None,
    project: str | None,
    source_repo: str | None,
    source_commit: str | None,
    model_version: str | None,
    description: str | None,
    license_id: str | None,
    owners: tuple[str, ...],
    tags: tuple[str, ...],
    metrics: tuple[str, ...],
    pytorch: Path | None,
    push: bool,
    interactive: bool | None,
    fmt: str,
) -> None:
    """Scaffold models/NAME: the card (model.yaml), the config and the DVC-tracked weights.

    In a terminal it asks for what the options did not give; otherwise every required option
    (--weights, --config, --task, --project, --source-repo) must be given. The card's size is
    filled in from what DVC recorded. Nothing is written if any step fails.

    \b
    Example:
      registry new digits-mlp --weights out/model.onnx --config out/train.yaml \\
        --task classification --project demo --source-repo https://github.com/org/train.git \\
        --metric accuracy=0.95@digits-test --push
    """
    from registry.api.models import NewRequest
    from registry.api.models import new as run_new
    from registry.cards.artifacts import DVC_YAML
    from registry.cards.scaffold import NewModel, check_new_folder, parse_metric

    root = invocation.root
    check_new_folder(root, name)  # fail before asking anything
    values = {
        "weights": weights,
        "config": config_file,
        "task": task,
        "project": project,
        "source_repo": source_repo,
    }
    parsed_metrics = [parse_metric(m) for m in metrics]
    if interactive is None:
        interactive = stdin_is_terminal() and fmt == "text"
    if interactive:
        existing = file_path(exists=True)
        if values["weights"] is None:
            values["weights"] = click.prompt("weights file (ONNX)", type=existing)
        if values["config"] is None:
            values["config"] = click.prompt("config file (yaml/json)", type=existing)
        if values["task"] is None:
            values["task"] = click.prompt("task", type=TaskChoice(), default="classification")
        if values["project"] is None:
            values["project"] = click.prompt("project")
        if values["source_repo"] is None:
            values["source_repo"] = click.prompt("source repo (git URL of the training code)")
        if model_version is None:
            model_version = (
                click.prompt(
                    "version (empty: set it when publishing)", default="", show_default=False
                )
                or None
            )
        if description is None:
            description = (
                click.prompt("description (optional)", default="", show_default=False) or None
            )
        if license_id is None:
            license_id = (
                click.prompt("license, SPDX id (optional)", default="", show_default=False) or None
            )
        if not parsed_metrics:
            while text := click.prompt(
                "metric NAME=VALUE@DATASET (empty to finish)", default="", show_default=False
            ):
                try:
                    parsed_metrics.append(parse_metric(text))
                except UsageError as e:
                    click.echo(f"  {e.message}; {e.hint}", err=True)
    missing = [flag for key, flag in _NEW_REQUIRED.items() if not values[key]]
    if missing:
        raise UsageError(
            f"missing required option{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
            "give them as options, or run `registry new` in a terminal to be asked",
        )
    model = NewModel(
        name=name,
        version=model_version,
        description=description,
        license=license_id,
        source_commit=source_commit,
        owners=list(owners),
        tags=list(tags),
        metrics=parsed_metrics,
        pytorch=pytorch,
        **{k: v for k, v in values.items()},
    )
    result = run_new(NewRequest(root=root, model=model, push=push))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    rel = result.folder.relative_to(root)
    to_add = f"git add {rel} {DVC_YAML}"
    if fmt == "json":
        push_cmd = None if result.pushed else f"dvc push -r staging {rel}/{result.pointer.name}"
        data = {
            "name": name,
            "folder": str(rel),
            "card": result.card.model_dump(mode="json", exclude_none=True),
            "weights": result.card.weights,
            "size": result.card.size,
            "md5": result.md5,
            "pointer": str(result.pointer.relative_to(root)),
            "pushed": result.pushed,
            "warnings": result.warnings,
            "next": [c for c in (push_cmd, f"registry check {name}", to_add) if c],
        }
        click.echo(json.dumps(data, indent=2))
        return
    from registry.cards.schema import format_size

    click.echo(
        f"created {rel}/ ({result.card.weights}: {format_size(result.card.size_bytes or 0)}, "
        f"md5 {result.md5})"
    )
    click.echo(
        "  pushed the weights to the staging remote"
        if result.pushed
        else f"  push the weights: dvc push -r staging {rel}/{result.pointer.name}"
    )
    # every file the pull request needs: the folder (card, config, pointer, DVC's .gitignore) and
    # the model's entry in dvc.yaml
    click.echo(f"  next: registry check {name} && {to_add} && git commit, then open a pull request")


# --------------------------------------------------------------------------- list, show, pull


@click.command("list")
@click.option("--task", help="Only models of this task (classification, detection, …).")
@click.option("--project", help="Only models of this business project.")
@click.option(
    "--state", help="Only models in this state: unpublished, published, updated, offline, invalid."
)
@click.option("--rev", help="Read the cards at this git revision instead of the working tree.")
@format_option("text", "json")
@pass_invocation
def list_cmd(
    invocation: Invocation,
    task: str | None,
    project: str | None,
    state: str | None,
    rev: str | None,
    fmt: str,
) -> None:
    """List models with their state, latest version and task.

    \b
    Examples:
      registry list
      registry list --task detection --state published --format json
    """
    from registry.api.models import ListRequest, list_models

    rows = list_models(
        ListRequest(root=invocation.root, task=task, project=project, state=state, rev=rev)
    )
    click.echo(rows.to_json() if fmt == "json" else rows.render())


@click.command()
@click.argument("spec", metavar="NAME[@VERSION]")
@format_option("text", "json")
@pass_invocation
def show(invocation: Invocation, spec: str, fmt: str) -> None:
    """Show a model: card, state, versions with dates (withdrawn marked), release notes, how to
    get it.

    \b
    Examples:
      registry show digits-cnn
      registry show digits-cnn@1.0.0 --format json
    """
    from registry.api.models import ShowRequest, show_text

    request = ShowRequest(root=invocation.root, spec=spec)
    text = show_text(request) if fmt == "text" else None
    if text is not None:
        click.echo(text)
        return
    from registry.api.models import show as show_model
    from registry.versions.details import render_details

    details = show_model(request)
    click.echo(details.model_dump_json(indent=2) if fmt == "json" else render_details(details))


@click.command()
@click.argument("spec", metavar="NAME@VERSION|NAME@latest")
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    metavar="TARGET",
    help="Fetch the version's device package for this target instead of its weights (repeatable).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=folder_path(),
    help="Folder to write the model into (default: ./NAME-VERSION).",
)
@click.option(
    "--repo",
    "repo_url",
    metavar="URL",
    help="The registry's git URL: pull from any directory, without a clone.",
)
@format_option("text", "json")
@pass_invocation
def pull(
    invocation: Invocation,
    spec: str,
    targets: tuple[str, ...],
    out_dir: Path | None,
    repo_url: str | None,
    fmt: str,
) -> None:
    """Fetch a published version (weights from the public remote, verified; card and config
    from git).

    With --target, fetch the device package the release built for that target instead (verified
    against the md5, size and SHA-256 its index on the public remote records).

    \b
    Examples:
      registry pull digits-cnn@1.0.0 -o models-in-use/digits
      registry pull digits-cnn@latest --repo https://github.com/acme/model-registry.git
      registry pull digits-cnn@1.0.0 --target android-arm64 -o app/src/main/assets
    A withdrawn (unpublished) version is still fetched, with a warning.
    Exit codes: 0 fetched, 1 card, 2 usage (unknown version or target), 4 git, 5 storage.
    """
    from registry.api.models import PullVersionRequest
    from registry.api.models import pull as pull_version

    result = pull_version(
        PullVersionRequest(
            spec=spec,
            root=None if repo_url else invocation.root,
            repo_url=repo_url,
            out_dir=out_dir,
            targets=targets,
        )
    )
    if result.warning:
        click.echo(f"warning: {result.warning}", err=True)
    if fmt == "json":
        click.echo(result.model_dump_json(indent=2))
    else:
        from registry.cards.schema import format_size

        click.echo(
            f"pulled {result.name} {result.version} ({result.tag}, {result.commit[:8]}) "
            f"into {result.out_dir}"
        )
        for f in result.files:
            digest = f"sha256 {f.sha256}" if f.sha256 else f"md5 {f.md5}"
            where = (
                f"already there, verified ({f.source} not contacted)"
                if f.kept
                else f"from {f.source}"
            )
            click.echo(f"  {f.path}  {format_size(f.size)}  {digest}  {where}")


# --------------------------------------------------------------------------- dvc.yaml, CODEOWNERS


@click.command("sync-artifacts")
@click.option("--check", is_flag=True, help="Only compare; exit 1 when dvc.yaml is out of date.")
@format_option("text", "json")
@pass_invocation
def sync_artifacts_cmd(invocation: Invocation, check: bool, fmt: str) -> None:
    """Declare every model as a DVC artifact in dvc.yaml (for dvc artifacts get and GTO).

    \b
    Examples:
      registry sync-artifacts
      registry sync-artifacts --check     # in CI
    """
    from registry.api.models import SyncArtifactsRequest, sync_artifacts

    result = sync_artifacts(SyncArtifactsRequest(root=invocation.root, check=check))
    if fmt == "json":
        click.echo(
            json.dumps({**result.model_dump(mode="json"), "in_sync": result.in_sync}, indent=2)
        )
        if check and not result.in_sync:
            sys.exit(1)
        return
    for label, names in (
        ("added", result.added),
        ("changed", result.changed),
        ("removed", result.removed),
    ):
        if names:
            click.echo(f"{label}: {', '.join(names)}")
    if result.in_sync:
        click.echo("dvc.yaml declares every model")
    elif check:
        click.echo(
            "dvc.yaml is out of date: run `registry sync-artifacts` and commit dvc.yaml", err=True
        )
        sys.exit(1)
    else:
        click.echo(f"wrote {result.path}")


@click.command("codeowners")
@click.option(
    "--maintainer",
    "maintainers",
    multiple=True,
    metavar="OWNER",
    help="A maintainer (@user, @org/team or e-mail; repeatable). Default: those the current "
    "file names.",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Write nothing; exit 1 when the file is out of date.",
)
@pass_invocation
def codeowners(invocation: Invocation, maintainers: tuple[str, ...], check_only: bool) -> None:
    """Write .github/CODEOWNERS from the cards' owners; maintainers own everything else.

    \b
    Examples:
      registry codeowners --maintainer @org/registry-maintainers   # first time
      registry codeowners                                          # after a card's owners changed
    """
    from registry.api.models import CodeownersRequest
    from registry.api.models import codeowners as keep_codeowners

    result = keep_codeowners(
        CodeownersRequest(root=invocation.root, maintainers=maintainers, check=check_only)
    )
    if check_only:
        click.echo(f"{result.path} is up to date")
    else:
        click.echo(f"{'wrote' if result.changed else 'unchanged:'} {result.path}")


@click.group("index")
def index_group() -> None:
    """The registry index: the compact record of every published version that `list`, `show`
    and `pull` read (refs/registry/index; `registry publish` keeps it). The tags stay the truth.

    \b
    Examples:
      registry index verify
      registry index rebuild --push
    """


@index_group.command("verify")
@click.option("--head", help="The default branch's commit to compare with (default: its tip).")
@format_option("text", "json")
@pass_invocation
def index_verify_cmd(invocation: Invocation, head: str | None, fmt: str) -> None:
    """Compare the index with the tags and cards; name every model and version that differs.
    Exits 1 when they disagree.

    \b
    Examples:
      registry index verify
      registry index verify --format json
    """
    from registry.api.models import IndexRequest, index_verify

    found = index_verify(IndexRequest(root=invocation.root, head=head))
    if fmt == "json":
        click.echo(json.dumps(found.to_dict(), indent=2))
    else:
        where = f"registry index {found.commit[:10]}" if found.commit else "registry index"
        if found.ok:
            click.echo(f"{where} agrees with the tags and cards at {found.head[:10]}")
        else:
            click.echo(f"{where} disagrees with the tags and cards at {found.head[:10]}:")
            click.echo("\n".join(f"  {p}" for p in found.problems))
            click.echo("fix: registry index rebuild --push")
        if found.cards_changed:
            click.echo(
                f"{len(found.cards_changed)} card(s) changed since the index was written "
                "(publish updates it on merge)"
            )
    if not found.ok:
        sys.exit(1)


@index_group.command("rebuild")
@click.option("--head", help="The default branch's commit to describe (default: its tip).")
@click.option("--push", "push_ref", is_flag=True, help="Push refs/registry/index to the remote.")
@click.option("--remote", default="origin", show_default=True, help="Git remote to push to.")
@pass_invocation
def index_rebuild_cmd(
    invocation: Invocation, head: str | None, push_ref: bool, remote: str
) -> None:
    """Write the index anew from the tags and the cards (one command, whatever went wrong).

    \b
    Examples:
      registry index rebuild
      registry index rebuild --push --remote origin
    """
    from registry.api.models import IndexRequest, index_rebuild

    done = index_rebuild(
        IndexRequest(root=invocation.root, head=head, remote=remote, push=push_ref)
    )
    click.echo(
        f"registry index {done.commit[:10]} written: {len(done.changed)} model(s)"
        + (f", pushed to {remote}" if push_ref else "")
    )


@index_group.command("fetch")
@click.option("--remote", default="origin", show_default=True, help="Git remote to fetch from.")
@pass_invocation
def index_fetch_cmd(invocation: Invocation, remote: str) -> None:
    """Fetch the published index (cold clones and CI checkouts do not fetch it) and add it to the
    remote's fetch refspecs, so that every later `git fetch` keeps it current.

    \b
    Examples:
      registry index fetch
    """
    from registry.api.models import IndexRequest, index_fetch

    commit = index_fetch(IndexRequest(root=invocation.root, remote=remote))
    click.echo(
        f"registry index {commit[:10]} fetched from {remote}"
        if commit
        else f"{remote} has no registry index yet: `registry index rebuild --push` makes one"
    )


COMMANDS = (
    schema,
    check,
    new,
    list_cmd,
    show,
    pull,
    sync_artifacts_cmd,
    codeowners,
    index_group,
)
