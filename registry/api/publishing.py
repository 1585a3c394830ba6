"""The API of what a merge and a release do: `publish`, `notes`, `verify-tag` and `gc`.

Owns their requests and how a publish's failures add up to one error (and so one exit code).
The work is done by `registry.publishing` (publish, notes, gc) and `registry.versions.tags`.

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.errors import RegistryError

if TYPE_CHECKING:
    from registry.publishing.gc import GcReport
    from registry.publishing.notes import ReleaseNotes
    from registry.publishing.publish import PublishOptions, PublishReport
    from registry.versions.tags import Version

__all__ = [
    "GcRequest",
    "NotesRequest",
    "PublishRequest",
    "VerifyTagRequest",
    "failure_of",
    "gc",
    "notes",
    "publish",
    "verify_tag",
]


@dataclass(frozen=True, kw_only=True)
class PublishRequest:
    """What a merge asks to publish (`options`: base, head, push, changelog…) in the clone
    `root`."""

    root: Path
    options: PublishOptions


def publish(request: PublishRequest) -> PublishReport:
    """Copy, verify, tag, push and write the changelog for what a merge asks (`registry publish`).

    A model that fails is reported in `PublishReport.failed`, not raised: the others go on, and
    `failure_of` turns the failures into the one error to exit with.

    Raises:
        GitError: the revisions cannot be read.
    """
    from registry.core.repo import RegistryRepo
    from registry.publishing.publish import publish as run_publish

    return run_publish(RegistryRepo(request.root), request.options)


def failure_of(report: PublishReport) -> RegistryError | None:
    """The error the models left unpublished add up to, or None when every model went through.

    The message names each failed model; the hint and the exit code are the first failure's.
    """
    if not report.failed:
        return None
    first = report.failed[0].error
    error = RegistryError(
        f"{len(report.failed)} model(s) not published: "
        + "; ".join(f"{m.name}: {m.error.message}" for m in report.failed),
        first.hint,
    )
    error.exit_code = first.exit_code
    return error


@dataclass(frozen=True, kw_only=True)
class NotesRequest:
    """The release notes of a model between two published versions.

    Args:
        root: the registry clone.
        name: the model.
        to: the newer version (default: the latest published).
        from_: the older version (default: the one before `to`).
        content: read the weights of both versions for the model diff.
    """

    root: Path
    name: str
    to: str | None = None
    from_: str | None = None
    content: bool = True


def notes(request: NotesRequest) -> ReleaseNotes:
    """Release notes between two published versions (`registry notes`).

    Raises:
        UsageError: an unknown model or version, or `from_` not older than `to`.
    """
    from registry.core.repo import RegistryRepo
    from registry.core.storage import Storage
    from registry.publishing.notes import notes_between

    storage = Storage(request.root) if request.content else None
    return notes_between(
        RegistryRepo(request.root), storage, request.name, request.to, request.from_
    )


@dataclass(frozen=True, kw_only=True)
class VerifyTagRequest:
    """A tag to check against the default branch (`branch`: its ref, default origin's HEAD)."""

    root: Path
    tag: str
    branch: str | None = None


def verify_tag(request: VerifyTagRequest) -> Version:
    """The published version a tag names, when the publish workflow made it (`registry verify-tag`).

    Raises:
        UsageError: not a version tag. GitError: no such tag, or a stray tag.
    """
    from registry.versions.tags import verify_tag as verified

    return verified(request.root, request.tag, request.branch)


@dataclass(frozen=True, kw_only=True)
class GcRequest:
    """Which remote to clean, and how.

    Args:
        root: the registry clone.
        remote: `public` or `staging`.
        apply: remove the unreferenced objects (default: only list them).
        grace_days: keep unreferenced objects younger than this (default: 14 on staging, 0 on
            public).
    """

    root: Path
    remote: str = "public"
    apply: bool = False
    grace_days: float | None = None


def gc(request: GcRequest) -> GcReport:
    """The objects of a remote that no version tag refers to, removed with `apply` (`registry gc`).

    Raises:
        UsageError: an unknown remote. StorageError: a pointer or the remote fails.
    """
    from registry.core.repo import RegistryRepo
    from registry.core.storage import Storage
    from registry.publishing.gc import collect_garbage

    grace = None if request.grace_days is None else request.grace_days * 86400
    return collect_garbage(
        RegistryRepo(request.root), Storage(request.root), request.remote, request.apply, grace
    )
