"""The API of the lifecycle requests: `publish-request`, `unpublish`, `delete` and `edit`.

Each asks for a change of a model's card on a new branch, for a pull request; the change itself
is made by `registry.publishing.lifecycle_ops`, which returns the `ChangeRequest` made (branch,
commit, pull-request title and body).

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.publishing.lifecycle_ops import ChangeRequest

__all__ = [
    "CardChange",
    "EditChange",
    "PublishChange",
    "delete",
    "edit",
    "publish_request",
    "unpublish",
]


@dataclass(frozen=True, kw_only=True)
class CardChange:
    """A change of one model's card, asked for on a new branch.

    Args:
        root: the registry clone.
        name: the model.
        base: the revision whose card is changed.
        branch: the new branch (default: registry/<operation>-<name>-<version>).
    """

    root: Path
    name: str
    base: str = "HEAD"
    branch: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublishChange(CardChange):
    """Publishing a version: `version` is the SemVer to publish, above the last one."""

    version: str


@dataclass(frozen=True, kw_only=True)
class EditChange(CardChange):
    """Changing card fields: `assignments` are `KEY=VALUE` (dotted paths: `source.commit=…`)."""

    assignments: tuple[str, ...] = ()


def publish_request(change: PublishChange) -> ChangeRequest:
    """Ask to publish a version: set version and status (`registry publish-request`).

    Raises:
        UsageError: a bad version, not above the last one, or an offline model.
    """
    from registry.publishing.lifecycle_ops import request_publish

    return request_publish(
        change.root, change.name, change.version, base=change.base, branch=change.branch
    )


def unpublish(change: CardChange) -> ChangeRequest:
    """Ask to take a model offline (`registry unpublish`).

    Raises:
        UsageError: the model is not published.
    """
    from registry.publishing.lifecycle_ops import request_unpublish

    return request_unpublish(change.root, change.name, base=change.base, branch=change.branch)


def delete(change: CardChange) -> ChangeRequest:
    """Ask to delete an unpublished or offline model (`registry delete`).

    Raises:
        UsageError: the model is published.
    """
    from registry.publishing.lifecycle_ops import request_delete

    return request_delete(change.root, change.name, base=change.base, branch=change.branch)


def edit(change: EditChange) -> ChangeRequest:
    """Ask to change card fields that do not identify a version (`registry edit`).

    Raises:
        UsageError: a managed or identity field, an unknown path, a value the schema refuses.
    """
    from registry.publishing.lifecycle_ops import request_edit

    return request_edit(
        change.root, change.name, list(change.assignments), base=change.base, branch=change.branch
    )
