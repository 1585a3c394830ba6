"""The `registry` command line: flags mapped to calls of the Python API, nothing more.

Every command is a thin layer over a function of a domain module. Errors come through one funnel
(`main`): a `RegistryError` prints one clear message and exits with its class's code; anything
else prints a short message and how to see the traceback (`--traceback` or REGISTRY_TRACEBACK=1).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from registry import __version__
from registry.errors import RegistryError, UsageError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="registry")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback of unexpected errors.")
@click.option("-C", "--repo-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run as if started in this folder (a clone of the registry).")
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool, repo_dir: Path | None) -> None:
    """A Git-native model registry: model cards in git, weights in DVC remotes, change through pull requests.

    \b
    Example:
      registry check --base origin/main --head HEAD
    """
    if show_traceback:
        os.environ["REGISTRY_TRACEBACK"] = "1"
    if repo_dir is not None:
        os.chdir(repo_dir)


# --------------------------------------------------------------------------- schema

@cli.command(context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file instead of standard output.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the model card (models/<name>/model.yaml).

    \b
    Example:
      registry schema -o docs/model-card.schema.json
    """
    from registry.card import card_json_schema

    text = json.dumps(card_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- check

@cli.command(context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Check every model in the registry.")
@click.option("--base", help="Base revision of a pull request: check only the models the diff touches.")
@click.option("--head", help="Head revision of a pull request (default: the working tree).")
@click.option("--offline", is_flag=True, help="Do not contact source repositories; reachability becomes a warning.")
@click.option("--no-content", is_flag=True, help="Skip the checks that read weights (storage, graph).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
              help="text for people, json for machines, github for workflow annotations and summaries.")
def check(names: tuple[str, ...], all_models: bool, base: str | None, head: str | None, offline: bool,
          no_content: bool, fmt: str) -> None:
    """Validate models against the registry's standards (the pull-request bot).

    \b
    Examples:
      registry check digits-cnn              # one model in the working tree
      registry check --all --no-content      # every card, fast
      registry check --base origin/main --head HEAD --format github
    Exit codes: 0 pass, 1 findings, 2 usage, 4 git, 5 storage.
    """
    from registry.checks import CheckOptions, run_checks
    from registry.repo import RegistryRepo

    repo = RegistryRepo()
    if sum(bool(x) for x in (names, all_models, base)) != 1:
        raise UsageError("say which models to check: NAME…, --all, or --base REV [--head REV]")
    head_snap = repo.snapshot(head)
    base_snap = repo.snapshot(base) if base else None
    if base:
        selected = repo.changed_models(base, head or "HEAD") if head else _changed_vs_worktree(repo, base)
    elif all_models:
        selected = head_snap.model_names()
    else:
        selected = list(names)
        known = set(head_snap.model_names())
        unknown = [n for n in selected if n not in known]
        if unknown:
            raise UsageError(f"no model named {', '.join(unknown)} in {head_snap.label}",
                             "see `registry list`, or models/ for the folder names")
    options = CheckOptions(offline=offline, content=not no_content)
    report = run_checks(selected, head_snap, base_snap, repo, options)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
    else:
        for model in report.models:
            mark = "PASS" if model.passed else "FAIL"
            click.echo(f"{mark} {model.name}")
            for f in model.findings:
                where = f"{f.path}:{f.line}" if f.path and f.line else (f.path or model.name)
                click.echo(f"  {f.severity.value}: {where}: {f.message} [{f.check}]")
                if f.hint:
                    click.echo(f"    fix: {f.hint}")
        if not report.models:
            click.echo("no models to check")
    sys.exit(0 if report.passed else 1)


def _changed_vs_worktree(repo, base: str) -> list[str]:
    """Models whose folders differ between `base` and the working tree (committed or not)."""
    from registry.repo import run_git

    out = run_git(repo.root, "diff", "--name-only", "-z", base, "--", "models")
    out += run_git(repo.root, "ls-files", "--others", "--exclude-standard", "-z", "models")
    return sorted({p.split("/")[1] for p in out.split("\0") if p.count("/") >= 2})


# --------------------------------------------------------------------------- consume

def _root() -> Path:
    from registry.versions import clone_root

    return clone_root()


@cli.command("list", context_settings=CONTEXT)
@click.option("--task", help="Only models of this task (classification, detection, …).")
@click.option("--project", help="Only models of this business project.")
@click.option("--state", help="Only models in this state: unpublished, published, updated, offline, invalid.")
@click.option("--rev", help="Read the cards at this git revision instead of the working tree.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts.")
def list_cmd(task: str | None, project: str | None, state: str | None, rev: str | None, fmt: str) -> None:
    """List models with their state, latest version and task.

    \b
    Examples:
      registry list
      registry list --task detection --state published --format json
    """
    from registry.listing import list_models, render_list

    rows = list_models(_root(), task=task, project=project, state=state, rev=rev)
    if fmt == "json":
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    else:
        click.echo(render_list(rows))


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts.")
def show(spec: str, fmt: str) -> None:
    """Show a model: card, state, versions with dates (withdrawn marked), release notes, how to get it.

    \b
    Examples:
      registry show digits-cnn
      registry show digits-cnn@1.0.0 --format json
    """
    from registry.listing import render_details, show_model
    from registry.versions import LATEST, parse_version_spec

    name, version = parse_version_spec(spec)
    details = show_model(_root(), name, None if version == LATEST else version)
    click.echo(details.model_dump_json(indent=2) if fmt == "json" else render_details(details))


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="NAME@VERSION|NAME@latest")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the model into (default: ./NAME-VERSION).")
@click.option("--repo", "repo_url", metavar="URL",
              help="The registry's git URL: pull from any directory, without a clone.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts.")
def pull(spec: str, out_dir: Path | None, repo_url: str | None, fmt: str) -> None:
    """Fetch a published version (weights from the public remote, verified; card and config from git).

    \b
    Examples:
      registry pull digits-cnn@1.0.0 -o models-in-use/digits
      registry pull digits-cnn@latest --repo https://github.com/acme/model-registry.git
    A withdrawn (unpublished) version is still fetched, with a warning.
    """
    from registry.pull import pull as pull_version

    result = pull_version(spec, out_dir, repo_url=repo_url)
    if result.warning:
        click.echo(f"warning: {result.warning}", err=True)
    if fmt == "json":
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(f"pulled {result.name} {result.version} ({result.tag}, {result.commit[:8]}) into {result.out_dir}")
        for f in result.files:
            click.echo(f"  {f.path}  {f.size} bytes  md5 {f.md5}  from {f.source}")


def _print_request(request, fmt: str) -> None:
    from registry.lifecycle_ops import render_request

    if fmt == "json":
        click.echo(json.dumps({**request.model_dump(), "push_command": request.push_command,
                               "pr_command": request.pr_command}, indent=2))
    else:
        click.echo(render_request(request))


_FMT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                    help="text for people, json for scripts.")
_BASE = click.option("--base", default="HEAD", show_default=True, help="Revision whose card is changed.")
_BRANCH = click.option("--branch", help="Name of the new branch (default: registry/<operation>-<name>-<version>).")


@cli.command("publish-request", context_settings=CONTEXT)
@click.argument("name")
@click.option("--version", "version", required=True, help="The version to publish (SemVer, above the last one).")
@_BASE
@_BRANCH
@_FMT
def publish_request(name: str, version: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to publish a version: set version and status on a new branch, for a pull request.

    \b
    Example:
      registry publish-request digits-cnn --version 1.1.0
    The merge of that pull request publishes (copy to public, tag, release notes).
    """
    from registry.lifecycle_ops import request_publish

    _print_request(request_publish(_root(), name, version, base=base, branch=branch), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@_BASE
@_BRANCH
@_FMT
def unpublish(name: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to unpublish a model (status: offline) on a new branch, for a pull request.

    \b
    Example:
      registry unpublish digits-cnn
    Its versions stay fetchable for pinned consumers, with a warning.
    """
    from registry.lifecycle_ops import request_unpublish

    _print_request(request_unpublish(_root(), name, base=base, branch=branch), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@_BASE
@_BRANCH
@_FMT
def delete(name: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to delete an unpublished or offline model on a new branch, for a pull request.

    \b
    Example:
      registry delete old-detector
    Storage and version tags are kept; `registry gc` reclaims storage explicitly.
    """
    from registry.lifecycle_ops import request_delete

    _print_request(request_delete(_root(), name, base=base, branch=branch), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", required=True,
              help="A field to change (dotted paths: source.commit=…, metrics.0.value=0.95). Repeatable.")
@_BASE
@_BRANCH
@_FMT
def edit(name: str, assignments: tuple[str, ...], base: str, branch: str | None, fmt: str) -> None:
    """Ask to change card fields that do not identify a version, on a new branch, for a pull request.

    \b
    Example:
      registry edit digits-cnn --set description="Handwritten digits, 8x8" --set license=MIT
    source.repo, config and weights of a published version need a new version instead.
    """
    from registry.lifecycle_ops import request_edit

    _print_request(request_edit(_root(), name, list(assignments), base=base, branch=branch), fmt)


@cli.command("sync-artifacts", context_settings=CONTEXT)
@click.option("--check", is_flag=True, help="Only compare; exit 1 when dvc.yaml is out of date.")
def sync_artifacts_cmd(check: bool) -> None:
    """Declare every model as a DVC artifact in dvc.yaml (for dvc artifacts get and GTO).

    \b
    Examples:
      registry sync-artifacts
      registry sync-artifacts --check     # in CI
    """
    from registry.artifacts import sync_artifacts

    result = sync_artifacts(_root(), check=check)
    for label, names in (("added", result.added), ("changed", result.changed), ("removed", result.removed)):
        if names:
            click.echo(f"{label}: {', '.join(names)}")
    if result.in_sync:
        click.echo("dvc.yaml declares every model")
    elif check:
        click.echo("dvc.yaml is out of date: run `registry sync-artifacts` and commit dvc.yaml", err=True)
        sys.exit(1)
    else:
        click.echo(f"wrote {result.path}")


# --------------------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI through the error funnel."""
    try:
        cli.main(args=argv, prog_name="registry", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except RegistryError as e:
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"  hint: {e.hint}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # the funnel: never a bare traceback unless asked for
        if os.environ.get("REGISTRY_TRACEBACK"):
            traceback.print_exc()
        else:
            click.echo(f"error: unexpected {type(e).__name__}: {e}", err=True)
            click.echo("  hint: re-run with --traceback (or REGISTRY_TRACEBACK=1) and report it", err=True)
        sys.exit(70)
