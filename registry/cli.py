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


# --------------------------------------------------------------------------- publish

@cli.command(context_settings=CONTEXT)
@click.option("--base", required=True, help="Revision before the merge (the push event's 'before').")
@click.option("--head", default="HEAD", show_default=True, help="Revision after the merge; tags go on this commit.")
@click.option("--push/--no-push", default=True, show_default=True, help="Push the tags to the git remote.")
@click.option("--remote-name", default="origin", show_default=True, help="Git remote that receives the tags.")
@click.option("--changelog/--no-changelog", default=True, show_default=True,
              help="Add the notes to models/<name>/CHANGELOG.md in the working tree.")
@click.option("--notes-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each published version's notes to DIR/<tag>.md (for release pages).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for workflows.")
def publish(base: str, head: str, push: bool, remote_name: str, changelog: bool, notes_dir: Path | None,
            fmt: str) -> None:
    """Publish what a merge asks for: copy weights staging → public, verify, tag, push, changelog.

    Safe to run again: a re-run completes an interrupted run and changes nothing after a complete one.

    \b
    Example (the publish workflow, on push to main):
      registry publish --base "$BEFORE" --head "$AFTER" --format json
    Exit codes: 0 done, 1 invalid card, 4 git (tag conflict, push), 5 storage.
    """
    from registry.publish import PublishOptions, publish as run_publish, render_report
    from registry.repo import RegistryRepo

    report = run_publish(RegistryRepo(), PublishOptions(base=base, head=head, push=push, remote_name=remote_name,
                                                        changelog=changelog, notes_dir=notes_dir))
    click.echo(report.model_dump_json(indent=2) if fmt == "json" else render_report(report), nl=fmt == "json")
    if report.failed:
        first = report.failed[0].error
        error = RegistryError(f"{len(report.failed)} model(s) not published: "
                              + "; ".join(f"{m.name}: {m.error.message}" for m in report.failed), first.hint)
        error.exit_code = first.exit_code  # the first failure's class decides the exit code
        raise error


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--from", "from_", metavar="VERSION", help="Older version (default: the one before --to).")
@click.option("--to", metavar="VERSION", help="Newer version (default: the latest published).")
@click.option("--no-content", is_flag=True, help="Leave out the model diff (do not read weights).")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="md for people and release pages, json for machines.")
def notes(name: str, from_: str | None, to: str | None, no_content: bool, fmt: str) -> None:
    """Print the release notes between two published versions of a model.

    \b
    Example:
      registry notes digits-cnn --from 1.0.0 --to 1.1.0
    """
    from registry.notes import notes_between, render_notes
    from registry.repo import RegistryRepo
    from registry.storage import Storage

    repo = RegistryRepo()
    storage = None if no_content else Storage(repo.root)
    click.echo(render_notes(notes_between(repo, storage, name, to, from_), fmt), nl=False)


@cli.command(context_settings=CONTEXT)
@click.option("--remote", "remote_name", type=click.Choice(["public", "staging"]), default="public",
              show_default=True, help="The DVC remote to clean.")
@click.option("--apply", is_flag=True, help="Remove the unreferenced objects (default: only list them).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for machines.")
def gc(remote_name: str, apply: bool, fmt: str) -> None:
    """List (or with --apply remove) remote objects that no version tag refers to.

    Never removes an object any version tag refers to (withdrawn versions included); on staging,
    objects of every branch head are kept too.

    \b
    Examples:
      registry gc                      # dry run on public
      registry gc --remote staging --apply
    """
    from registry.card import format_size
    from registry.gc import collect_garbage
    from registry.repo import RegistryRepo
    from registry.storage import Storage

    repo = RegistryRepo()
    report = collect_garbage(repo, Storage(repo.root), remote_name, apply)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
        return
    verb = "removed" if apply else "would remove"
    for o in report.unreferenced:
        click.echo(f"{verb} {o.md5} ({format_size(o.size or 0)})")
    click.echo(f"{report.remote}: {report.objects} objects, {len(report.unreferenced)} unreferenced "
               f"({format_size(report.unreferenced_bytes)}); {verb} {len(report.unreferenced)}"
               + ("" if apply or not report.unreferenced else "; run with --apply to remove them"))


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
