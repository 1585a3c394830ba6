"""The API of the commands about models and their cards: `new`, `check`, `list`, `show`, `pull`,
`schema`, `sync-artifacts` and `codeowners`.

Owns their requests and the small decisions between flags and domain calls (the version a spec
names, whether CODEOWNERS is up to date). The work is done by `registry.cards` (scaffold, schema,
artifacts, codeowners), `registry.checks`, `registry.versions.listing` and
`registry.consuming.pull`.

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.errors import CardError

if TYPE_CHECKING:
    from registry.cards.artifacts import ArtifactsSync
    from registry.cards.scaffold import NewModel, NewModelResult
    from registry.checks import CheckOptions, CheckReport
    from registry.consuming.pulled import PullResult
    from registry.versions.details import ModelDetails
    from registry.versions.index import SyncResult, Verification
    from registry.versions.listing import ModelTable

__all__ = [
    "CheckRequest",
    "CodeownersRequest",
    "CodeownersResult",
    "IndexRequest",
    "ListRequest",
    "NewRequest",
    "PullVersionRequest",
    "ShowRequest",
    "SyncArtifactsRequest",
    "card_json_schema",
    "check",
    "codeowners",
    "index_fetch",
    "index_rebuild",
    "index_verify",
    "list_models",
    "new",
    "pull",
    "show",
    "sync_artifacts",
]


def card_json_schema() -> dict:
    """The card's JSON Schema (`registry schema`)."""
    from registry.cards.schema import card_json_schema as schema

    return schema()


# --------------------------------------------------------------------------- check


@dataclass(frozen=True, kw_only=True)
class CheckRequest:
    """Which models to validate, at which revisions, with which checks.

    Args:
        root: the registry clone.
        names: models to check (empty: see `all_models` and `base`).
        all_models: every model folder of the registry.
        base: base revision of a pull request: only the models the diff touches.
        head: head revision (None: the working tree).
        options: the switches of the run (offline, content, only…).
    """

    root: Path
    options: CheckOptions
    names: tuple[str, ...] = ()
    all_models: bool = False
    base: str | None = None
    head: str | None = None


def check(request: CheckRequest) -> CheckReport:
    """Validate models against the registry's standards (`registry check`).

    Raises:
        UsageError: a bad selection or an unknown check. GitError: an unknown revision.
        StorageError: a remote the content checks need is unreachable.
    """
    from registry.checks import check_revisions
    from registry.core.repo import RegistryRepo

    return check_revisions(
        RegistryRepo(request.root),
        names=request.names,
        all_models=request.all_models,
        base=request.base,
        head=request.head,
        options=request.options,
    )


# --------------------------------------------------------------------------- new


@dataclass(frozen=True, kw_only=True)
class NewRequest:
    """A new model folder to scaffold.

    Args:
        root: the registry clone.
        model: what the publisher says about the model (every required field given).
        push: also push the weights to the staging remote.
    """

    root: Path
    model: NewModel
    push: bool = False


def new(request: NewRequest) -> NewModelResult:
    """Scaffold models/NAME: the card, the config and the DVC-tracked weights (`registry new`).

    Nothing is written if any step fails (`registry.cards.scaffold.check_new_folder` refuses a
    bad or taken name before anything is asked).

    Raises:
        UsageError: a bad name or an existing model, bad files. StorageError: the push failed.
    """
    from registry.cards.scaffold import new_model

    return new_model(request.root, request.model, push=request.push)


# --------------------------------------------------------------------------- list, show


@dataclass(frozen=True, kw_only=True)
class ListRequest:
    """Which models to list: every filter given must match.

    Args:
        root: the registry clone.
        task, project, state: keep only models with this task / project / state.
        rev: read the cards at this revision instead of the working tree.
    """

    root: Path
    task: str | None = None
    project: str | None = None
    state: str | None = None
    rev: str | None = None


def list_models(request: ListRequest) -> ModelTable:
    """Models with their state, latest version and task (`registry list`): a sequence of
    `ModelSummary`, sorted by name.

    Raises:
        UsageError: an unknown state. GitError: an unknown revision.
    """
    from registry.versions.listing import list_models as rows_of

    return rows_of(
        request.root,
        task=request.task,
        project=request.project,
        state=request.state,
        rev=request.rev,
    )


@dataclass(frozen=True, kw_only=True)
class ShowRequest:
    """The model to show.

    Args:
        root: the registry clone.
        spec: `NAME`, `NAME@VERSION` or `NAME@latest` (both: the latest published version).
    """

    root: Path
    spec: str


def show(request: ShowRequest) -> ModelDetails:
    """A model's card, state, versions, release notes and pull commands (`registry show`).

    Raises:
        UsageError: a bad spec, no such model or version.
    """
    from registry.versions.details import show_model
    from registry.versions.tags import LATEST, parse_version_spec

    name, version = parse_version_spec(request.spec)
    return show_model(request.root, name, None if version == LATEST else version)


def show_text(request: ShowRequest) -> str | None:
    """`registry show` as text when the registry index vouches for the card, without importing the
    card schema; None when `show` must answer (same output, same errors).

    Raises:
        GitError: git cannot be run in the clone.
    """
    from registry.versions.plainshow import show_text as plain

    return plain(request.root, request.spec)


# --------------------------------------------------------------------------- pull


@dataclass(frozen=True, kw_only=True)
class PullVersionRequest:
    """A published version to fetch, and where to.

    Args:
        spec: `NAME@VERSION`, `NAME@vVERSION` or `NAME@latest`.
        root: the registry clone to read tags from (None with `repo_url`).
        repo_url: the registry's git URL: no clone needed.
        out_dir: destination folder (default: ./NAME-VERSION).
        targets: fetch these targets' device packages instead of the weights.
    """

    spec: str
    root: Path | None = None
    repo_url: str | None = None
    out_dir: Path | None = None
    targets: tuple[str, ...] = ()


def pull(request: PullVersionRequest) -> PullResult:
    """Fetch a published version, verified (`registry pull`).

    Raises:
        UsageError: a bad spec, unknown version or target. CardError: the card at the tag.
        GitError: the URL cannot be cloned. StorageError: the public remote.
    """
    from registry.consuming.pull import pull as pull_version

    return pull_version(
        request.spec,
        request.out_dir,
        root=request.root,
        repo_url=request.repo_url,
        targets=request.targets,
    )


# --------------------------------------------------------------------------- the registry index


@dataclass(frozen=True, kw_only=True)
class IndexRequest:
    """What to do with the registry index (`refs/registry/index`).

    Args:
        root: the registry clone.
        head: the default branch's commit the index describes (default: the default branch).
        remote: the git remote to fetch it from or push it to.
        push: after a rebuild, push the ref to `remote`.
    """

    root: Path
    head: str | None = None
    remote: str = "origin"
    push: bool = False


def index_verify(request: IndexRequest) -> Verification:
    """Compare the registry index with the tags and cards, naming every disagreement
    (`registry index verify`)."""
    from registry.versions.index import verify

    return verify(request.root, request.head)


def index_rebuild(request: IndexRequest) -> SyncResult:
    """Write the registry index anew from the tags and cards (`registry index rebuild`).

    Raises:
        GitError: an unknown head, or the push failed.
    """
    from registry.core.errors import GitError
    from registry.versions.index import push, sync
    from registry.versions.tags import default_branch

    result = sync(request.root, request.head or default_branch(request.root), rebuild=True)
    if request.push and not push(request.root, request.remote):
        raise GitError(
            f"git remote '{request.remote}' has a newer registry index",
            "run `registry index fetch`, then `registry index verify`",
        )
    return result


def index_fetch(request: IndexRequest) -> str | None:
    """Fetch the published registry index and keep it fetched by `git fetch`
    (`registry index fetch`); the index commit, or None when the remote has none."""
    from registry.versions.index import fetch

    return fetch(request.root, request.remote)


# --------------------------------------------------------------------------- dvc.yaml, CODEOWNERS


@dataclass(frozen=True, kw_only=True)
class SyncArtifactsRequest:
    """Declare every model as a DVC artifact in the root dvc.yaml.

    Args:
        root: the registry clone.
        check: only compare; write nothing.
    """

    root: Path
    check: bool = False


def sync_artifacts(request: SyncArtifactsRequest) -> ArtifactsSync:
    """What dvc.yaml lacked, and whether it was written (`registry sync-artifacts`)."""
    from registry.cards.artifacts import sync_artifacts as sync

    return sync(request.root, check=request.check)


@dataclass(frozen=True, kw_only=True)
class CodeownersRequest:
    """Write (or only compare) .github/CODEOWNERS from the cards' owners.

    Args:
        root: the registry clone.
        maintainers: who owns everything else (empty: those the current file names).
        check: write nothing; raise when the file is out of date.
    """

    root: Path
    maintainers: tuple[str, ...] = ()
    check: bool = False


@dataclass(frozen=True)
class CodeownersResult:
    """What `codeowners` did to the file."""

    path: str  # repository-relative
    changed: bool  # written (False: it was up to date)


def codeowners(request: CodeownersRequest) -> CodeownersResult:
    """Keep .github/CODEOWNERS in step with the cards' owners (`registry codeowners`).

    Raises:
        CardError: with `check`, the file is out of date.
        UsageError: an owner that is not @user, @org/team or an e-mail.
    """
    from registry.cards import codeowners as co
    from registry.core.repo import RegistryRepo

    snapshot = RegistryRepo(request.root).snapshot()
    maintainers = list(request.maintainers)
    if request.check:
        current = snapshot.read_text(co.FILE)
        if current != co.render(snapshot, maintainers or co.maintainers_of(current)):
            raise CardError(
                f"{co.FILE} is out of date with the cards' owners",
                "run `registry codeowners`",
                path=co.FILE,
            )
        return CodeownersResult(path=co.FILE, changed=False)
    _, changed = co.write(request.root, snapshot, maintainers or None)
    return CodeownersResult(path=co.FILE, changed=changed)
