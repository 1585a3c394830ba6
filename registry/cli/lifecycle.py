"""The lifecycle requests: `publish-request`, `unpublish`, `delete` and `edit`; each parses its
flags into a request of `registry.api.lifecycle` and prints the branch it made.
"""

from __future__ import annotations

import json

import click

from registry.cli.options import Invocation, format_option, pass_invocation


def _print_request(request, fmt: str) -> None:
    from registry.publishing.lifecycle_ops import render_request

    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    **request.model_dump(),
                    "push_command": request.push_command,
                    "pr_command": request.pr_command,
                },
                indent=2,
            )
        )
    else:
        click.echo(render_request(request))


_BASE = click.option(
    "--base", default="HEAD", show_default=True, help="Revision whose card is changed."
)
_BRANCH = click.option(
    "--branch", help="Name of the new branch (default: registry/<operation>-<name>-<version>)."
)


@click.command("publish-request")
@click.argument("name")
@click.option(
    "--version",
    "version",
    required=True,
    help="The version to publish (SemVer, above the last one).",
)
@_BASE
@_BRANCH
@format_option("text", "json")
@pass_invocation
def publish_request(
    invocation: Invocation, name: str, version: str, base: str, branch: str | None, fmt: str
) -> None:
    """Ask to publish a version: set version and status on a new branch, for a pull request.

    \b
    Example:
      registry publish-request digits-cnn --version 1.1.0
    The merge of that pull request publishes (copy to public, tag, release notes).
    """
    from registry.api.lifecycle import PublishChange
    from registry.api.lifecycle import publish_request as ask

    _print_request(
        ask(
            PublishChange(
                root=invocation.root, name=name, version=version, base=base, branch=branch
            )
        ),
        fmt,
    )


@click.command()
@click.argument("name")
@_BASE
@_BRANCH
@format_option("text", "json")
@pass_invocation
def unpublish(invocation: Invocation, name: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to unpublish a model (status: offline) on a new branch, for a pull request.

    \b
    Example:
      registry unpublish digits-cnn
    Its versions stay fetchable for pinned consumers, with a warning.
    """
    from registry.api.lifecycle import CardChange
    from registry.api.lifecycle import unpublish as ask

    _print_request(ask(CardChange(root=invocation.root, name=name, base=base, branch=branch)), fmt)


@click.command()
@click.argument("name")
@_BASE
@_BRANCH
@format_option("text", "json")
@pass_invocation
def delete(invocation: Invocation, name: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to delete an unpublished or offline model on a new branch, for a pull request.

    \b
    Example:
      registry delete old-detector
    Storage and version tags are kept; `registry gc` reclaims storage explicitly.
    """
    from registry.api.lifecycle import CardChange
    from registry.api.lifecycle import delete as ask

    _print_request(ask(CardChange(root=invocation.root, name=name, base=base, branch=branch)), fmt)


@click.command()
@click.argument("name")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    required=True,
    help="A field to change (dotted paths: source.commit=…, metrics.0.value=0.95). Repeatable.",
)
@_BASE
@_BRANCH
@format_option("text", "json")
@pass_invocation
def edit(
    invocation: Invocation,
    name: str,
    assignments: tuple[str, ...],
    base: str,
    branch: str | None,
    fmt: str,
) -> None:
    """Ask to change card fields that do not identify a version, on a new branch, for a pull
    request.

    \b
    Example:
      registry edit digits-cnn --set description="Handwritten digits, 8x8" --set license=MIT
    source.repo, config and weights of a published version need a new version instead.
    """
    from registry.api.lifecycle import EditChange
    from registry.api.lifecycle import edit as ask

    _print_request(
        ask(
            EditChange(
                root=invocation.root, name=name, assignments=assignments, base=base, branch=branch
            )
        ),
        fmt,
    )


COMMANDS = (publish_request, unpublish, delete, edit)
