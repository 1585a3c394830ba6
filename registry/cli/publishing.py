"""What a merge and a release run: `publish`, `notes`, `verify-tag` and `gc`; each parses its flags
into a request of `registry.api.publishing` and prints the result.
"""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.options import Invocation, folder_path, format_option, pass_invocation


@click.command()
@click.option(
    "--base", required=True, help="Revision before the merge (the push event's 'before')."
)
@click.option(
    "--head",
    default="HEAD",
    show_default=True,
    help="Revision after the merge; tags go on this commit.",
)
@click.option(
    "--push/--no-push", default=True, show_default=True, help="Push the tags to the git remote."
)
@click.option(
    "--remote-name", default="origin", show_default=True, help="Git remote that receives the tags."
)
@click.option(
    "--changelog/--no-changelog",
    default=True,
    show_default=True,
    help="Add the notes to models/<name>/CHANGELOG.md in the working tree.",
)
@click.option(
    "--notes-dir",
    type=folder_path(),
    help="Also write each published version's notes to DIR/<tag>.md (for release pages).",
)
@format_option("text", "json", help="text for people, json for workflows.")
@pass_invocation
def publish(
    invocation: Invocation,
    base: str,
    head: str,
    push: bool,
    remote_name: str,
    changelog: bool,
    notes_dir: Path | None,
    fmt: str,
) -> None:
    """Publish what a merge asks for: copy weights staging → public, verify, tag, push, changelog.

    Safe to run again: a re-run completes an interrupted run and changes nothing after a
    complete one.

    \b
    Example (the publish workflow, on push to main):
      registry publish --base "$BEFORE" --head "$AFTER" --format json
    Exit codes: 0 done, 1 invalid card, 4 git (tag conflict, push), 5 storage.
    """
    from registry.api.publishing import PublishRequest, failure_of
    from registry.api.publishing import publish as run_publish
    from registry.publishing.publish import PublishOptions, render_report

    options = PublishOptions(
        base=base,
        head=head,
        push=push,
        remote_name=remote_name,
        changelog=changelog,
        notes_dir=notes_dir,
    )
    report = run_publish(PublishRequest(root=invocation.root, options=options))
    click.echo(
        report.model_dump_json(indent=2) if fmt == "json" else render_report(report),
        nl=fmt == "json",
    )
    error = failure_of(report)
    if error is not None:
        raise error


@click.command()
@click.argument("name")
@click.option(
    "--from", "from_", metavar="VERSION", help="Older version (default: the one before --to)."
)
@click.option("--to", metavar="VERSION", help="Newer version (default: the latest published).")
@click.option("--no-content", is_flag=True, help="Leave out the model diff (do not read weights).")
@format_option("md", "json", help="md for people and release pages, json for machines.")
@pass_invocation
def notes(
    invocation: Invocation, name: str, from_: str | None, to: str | None, no_content: bool, fmt: str
) -> None:
    """Print the release notes between two published versions of a model.

    \b
    Example:
      registry notes digits-cnn --from 1.0.0 --to 1.1.0
    """
    from registry.api.publishing import NotesRequest
    from registry.api.publishing import notes as notes_between
    from registry.publishing.notes import render_notes

    release_notes = notes_between(
        NotesRequest(root=invocation.root, name=name, to=to, from_=from_, content=not no_content)
    )
    click.echo(render_notes(release_notes, fmt), nl=False)


@click.command("verify-tag")
@click.argument("tag")
@click.option("--branch", help="The default branch's ref (default: origin's HEAD, else HEAD).")
@pass_invocation
def verify_tag_command(invocation: Invocation, tag: str, branch: str | None) -> None:
    """Check that TAG is a version the publish workflow made: its commit is on the default branch
    and the card there says published/updated with that version. The release workflow runs it
    first, from the default branch's code, so a hand-pushed tag builds nothing.

    \b
    Example:
      registry verify-tag digits-cnn@v1.2.0 --branch origin/main
    Exit codes: 0 a published version, 2 not a version tag, 4 no such tag or a stray tag.
    """
    from registry.api.publishing import VerifyTagRequest, verify_tag

    v = verify_tag(VerifyTagRequest(root=invocation.root, tag=tag, branch=branch))
    click.echo(f"{v.tag}: published version {v.version} of {v.name} at {v.commit[:10]}")


@click.command()
@click.option(
    "--remote",
    "remote_name",
    type=click.Choice(["public", "staging"]),
    default="public",
    show_default=True,
    help="The DVC remote to clean.",
)
@click.option(
    "--apply", is_flag=True, help="Remove the unreferenced objects (default: only list them)."
)
@click.option(
    "--grace",
    "grace_days",
    type=click.FloatRange(min=0),
    default=None,
    help="Keep unreferenced objects younger than this many days (default: 14 on staging, 0 on "
    "public).",
)
@format_option("text", "json", help="text for people, json for machines.")
@pass_invocation
def gc(
    invocation: Invocation, remote_name: str, apply: bool, grace_days: float | None, fmt: str
) -> None:
    """List (or with --apply remove) remote objects that no version tag refers to.

    Never removes an object any version tag refers to (withdrawn versions included); on staging,
    objects of every branch head are kept too.

    \b
    Examples:
      registry gc                      # dry run on public
      registry gc --remote staging --apply
    """
    from registry.api.publishing import GcRequest
    from registry.api.publishing import gc as collect_garbage
    from registry.cards.schema import format_size

    report = collect_garbage(
        GcRequest(root=invocation.root, remote=remote_name, apply=apply, grace_days=grace_days)
    )
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
        return
    verb = "removed" if apply else "would remove"
    for o in report.unreferenced:
        click.echo(f"{verb} {o.md5} ({format_size(o.size or 0)})")
    for p in report.partial:
        click.echo(f"{verb} {p} (left by an interrupted copy)")
    if report.kept_young:
        click.echo(
            f"kept {len(report.kept_young)} unreferenced objects younger than "
            f"{report.grace_seconds / 86400:g} days (--grace)"
        )
    click.echo(
        f"{report.remote}: {report.objects} objects, {len(report.unreferenced)} unreferenced "
        f"({format_size(report.unreferenced_bytes)}); {verb} {len(report.unreferenced)}"
        + ("" if apply or not report.unreferenced else "; run with --apply to remove them")
    )


COMMANDS = (publish, notes, verify_tag_command, gc)
