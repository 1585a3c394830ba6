"""One published version, from `NAME@VERSION` to its tag, its card and its files.

This is the one path `registry pull`, `registry package NAME@VERSION`, `registry compress
NAME@VERSION` and `registry push-packages` take to a published version:

- `parse_reference` reads a version reference with the one grammar (`tags.parse_version_spec`):
  `NAME@1.2.0`, `NAME@v1.2.0`, and `NAME@latest` (or a bare `NAME`) where the caller allows it.
- `find_version` finds the version from the registry index when it agrees with the model's tags
  (`registry.versions.index`; in the common case without the card schema, through
  `plainresolve.locate`), else from the model's own tags (`read_model_versions` + `resolve`).
  Only tags the publish workflow made count (`confirm_versions`, or the index that publish wrote:
  a stray tag asked for by name is refused), and withdrawal is applied: deregistration and
  deprecation tags, and the card's `status: offline` on the default branch. The result carries
  the card as committed at the tag.
- `fetch_files` writes files of that version into a folder. Each path is resolved by
  `registry.cards.model_files` at the tag (the resolution the bot and publish use) and must stay
  inside the model folder; regular files in git are copied from git, DVC-tracked ones are
  downloaded from a named remote (`public` unless told otherwise, never a local cache) and
  verified against their pointer's md5 and size. A file already there with that md5 and size is
  kept. Every file is fetched under a temporary name and renamed only once all of them are
  fetched and verified, so a refused or interrupted fetch leaves nothing in the folder.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from registry.cards.schema import (
    ModelCard,
    card_path,
    check_relative_path,
    load_card,
    says_offline,
)
from registry.core.errors import CardError, StorageError, UsageError
from registry.core.files import make_folders, remove_empty_folders, write_atomic
from registry.core.git import cat_files
from registry.core.layout import MODELS_DIR
from registry.core.storage import PUBLIC, file_md5
from registry.versions.index import model_and_blobs, versions_of
from registry.versions.plainresolve import default_branch_ref, locate
from registry.versions.prefetch import Prefetch, download_name
from registry.versions.tags import (
    Version,
    confirm_versions,
    default_branch,
    parse_version_spec,
    read_model_versions,
    resolve,
    withdraw_offline,
)

if TYPE_CHECKING:
    from registry.core.storage import Remote, Storage


class VersionRef(BaseModel):
    """A version of a model as a user names it: `NAME@1.2.0`, or `NAME@latest`."""

    name: str = Field(description="model name")
    version: str = Field(description="SemVer without the leading 'v', or 'latest'")

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class PublishedVersion(Version):
    """A published version found from the tags, with the card committed at its tag."""

    card: ModelCard = Field(description="the card at the version's tag")


class FetchedFile(BaseModel):
    """One file of a version written into a folder."""

    path: str = Field(description="where it was written")
    md5: str = Field(description="md5 of the content")
    size: int = Field(description="bytes")
    source: str = Field(
        description="'git' for a file committed in the model folder, else the "
        "name of the remote it was downloaded from"
    )
    kept: bool = Field(
        False, description="the file was already there with this md5 and size: not downloaded"
    )


class FetchedVersion(BaseModel):
    """What `fetch_files` wrote: which version, into which folder, from which remote."""

    version: PublishedVersion
    folder: str = Field(description="the folder the files were written into")
    remote: str = Field(description="URL of the remote the DVC-tracked files came from")
    files: list[FetchedFile] = Field(
        default_factory=list, description="in the order they were asked for"
    )


def parse_reference(spec: str, *, allow_latest: bool = True) -> VersionRef:
    """Read `NAME@1.2.0` / `NAME@v1.2.0`, and `NAME@latest` / `NAME` when `allow_latest`.

    Raises:
        UsageError: not a version reference (or `latest` where an exact version is needed).
    """
    name, version = parse_version_spec(spec.strip(), allow_latest=allow_latest)
    return VersionRef(name=name, version=version)


def find_version(
    root: str | Path, ref: VersionRef | str, *, allow_latest: bool = True
) -> PublishedVersion:
    """The published version `ref` names, withdrawal applied, with its card at the tag.

    Args:
        root: a clone (or bare clone) of the registry: its top folder or its git folder.
        ref: `NAME@VERSION` (or `NAME@latest` when `allow_latest`), as text or parsed.
        allow_latest: whether `latest` may be asked for.

    Raises:
        UsageError: a bad reference, an unknown model or version, no live version for `latest`,
            or a tag the publish workflow did not make.
        CardError: the card at the tag is missing or invalid.
    """
    if isinstance(ref, str):
        ref = parse_reference(ref, allow_latest=allow_latest)
    elif not allow_latest:
        ref = parse_reference(str(ref), allow_latest=False)
    name = ref.name
    # the common case, without the card schema: the index vouches for the answer
    located = locate(root, str(ref), allow_latest=allow_latest, check_card=False)
    if located is not None:
        found = Version.model_construct(**located.fields())
    else:
        found = _resolve_full(root, ref)
    path = card_path(name)
    (data,) = cat_files(root, [f"{found.commit}:{path}"])
    if data is None:
        raise CardError(
            f"{found.tag} has no {path}", "the tag does not point at a registry version", path=path
        )
    card = load_card(data, path).require(f"the card at {found.tag} is invalid: ")
    return PublishedVersion(**found.model_dump(), card=card)


def _resolve_full(root: str | Path, ref: VersionRef) -> Version:
    """The version `ref` names, from the index when it agrees with the model's tags, else from the
    tags, withdrawal applied (every error of `find_version` but the card's)."""
    name = ref.name
    branch = default_branch_ref(root)
    # the index entry and the card on the default branch through one `git cat-file`
    entry, (on_branch,) = model_and_blobs(root, name, [f"{branch}:{card_path(name)}"])
    if entry is not None:
        versions, stray = versions_of(entry)
    else:
        versions, stray = confirm_versions(
            root, read_model_versions(root, name), default_branch(root)
        )
    if says_offline(on_branch):
        versions = withdraw_offline(versions)
    refused = next((t for t in stray if t.tag == f"{name}@v{ref.version}"), None)
    if refused is not None:
        raise UsageError(
            f"tag {refused.tag} is not a published version: {refused.reason}",
            "only versions the publish workflow tagged are served; tell the "
            "registry's maintainers about the stray tag",
        )
    return resolve({name: versions}, name, ref.version)


@dataclass
class _Planned:
    """One file to write: where it goes, and its bytes (from git) or its object (on the remote)."""

    target: Path
    repo_path: str
    data: bytes | None = None
    md5: str | None = None
    size: int | None = None


def fetch_files(
    root: str | Path,
    version: PublishedVersion,
    paths: Sequence[str],
    dest: str | Path,
    *,
    optional: Sequence[str] = (),
    remote: str = PUBLIC,
    storage: Storage | None = None,
    prefetch: Prefetch | None = None,
) -> FetchedVersion:
    """Write files of a published version into `dest`, at their paths inside the model folder.

    Args:
        root: the clone (or bare clone) `version` was found in.
        version: from `find_version`.
        paths: files relative to the model folder (as the card names them); each must exist at the
            tag, in git or DVC-tracked.
        dest: the folder to write into (created when missing).
        optional: more files, skipped when the version does not have them.
        remote: the DVC remote DVC-tracked files are downloaded from.
        storage: the remotes (default: the clone's `.dvc/config` at `root`).
        prefetch: a download already started (`versions.prefetch`); taken over when it is one of
            the planned objects to its planned place, and verified as every download is.

    Returns:
        The version, the folder, the remote's URL and each file, in the order asked for.

    Raises:
        CardError: the model folder at the tag is unusable (a link, a submodule, a bad pointer), a
            path leads out of the model folder, or a required file is not in the version.
        UsageError: a path would be written outside `dest` (a link there), or no such remote.
        StorageError: an object is missing from the remote, corrupt, the wrong size, or the remote
            is unreachable; nothing is written then.
    """
    from registry.cards.model_files import model_files
    from registry.core.repo import GitRevision
    from registry.core.storage import Storage

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UsageError(
            f"{dest} exists and is not a folder", "give a folder to write the version's files into"
        )
    files = model_files(GitRevision(root, version.commit), version.name)
    files.require_usable(f"{version.tag}: cannot fetch")
    in_git = {e.path for e in files.entries if e.kind == "file"}
    source = (storage or Storage(root)).remote(remote)
    required = set(paths)
    planned: list[_Planned] = []
    for rel in dict.fromkeys([*paths, *optional]):
        inside = _inside_folder(version, rel)
        repo_path = f"{files.folder}/{inside}"
        item = _Planned(target=_target(dest, inside), repo_path=repo_path)
        tracked = files.pointer_of(inside)
        if tracked is not None:
            item.md5, item.size = tracked.md5, tracked.size
        elif repo_path not in in_git:
            if rel in required:
                raise CardError(
                    f"{repo_path} is neither in git nor DVC-tracked at {version.tag}",
                    "the card names a file the version does not have; tell the "
                    "registry's maintainers",
                    path=repo_path,
                )
            continue
        planned.append(item)
    in_git_items = [p for p in planned if p.md5 is None]
    for item, data in zip(
        in_git_items, cat_files(root, [f"{version.commit}:{p.repo_path}" for p in in_git_items])
    ):
        item.data = data or b""
    written = _write_all(dest, planned, source, version.tag, prefetch)
    return FetchedVersion(version=version, folder=str(dest), remote=source.url, files=written)


def _inside_folder(version: PublishedVersion, rel: str) -> str:
    """`rel` normalised, when it names a file inside the model folder."""
    try:
        return check_relative_path(rel)
    except ValueError as e:
        path = f"{MODELS_DIR}/{version.name}/{rel}"
        raise CardError(
            f"{path} at {version.tag} is outside the model folder ({e})",
            "a card names files inside its own folder",
            path=card_path(version.name),
        ) from None


def _target(dest: Path, rel: str) -> Path:
    """Where `rel` lands in `dest`, refused when a link on the way would take it elsewhere."""
    target = dest / rel
    if not os.path.realpath(target).startswith(os.path.realpath(dest) + os.sep):
        raise UsageError(
            f"{target} leads out of {dest} (through a link)",
            "write into a folder without links, or remove the link",
        )
    return target


def _already_there(target: Path, md5: str, size: int | None) -> bool:
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or (size is not None and st.st_size != size):
        return False
    return file_md5(target) == md5


def _write_all(
    dest: Path, planned: list[_Planned], source: Remote, tag: str, prefetch: Prefetch | None
) -> list[FetchedFile]:
    """Download every object that is not already there under a temporary name and verify it; then
    rename them all into place and write the files from git. On a failure before that, remove the
    temporary files and the folders made for them."""
    made: list[Path] = []
    temps: dict[int, Path] = {}
    kept: set[int] = set()
    try:
        for i, item in enumerate(planned):
            make_folders(item.target.parent, made)
            if item.md5 is None:
                continue
            if _already_there(item.target, item.md5, item.size):
                kept.add(i)
                continue
            temps[i] = download_name(item.target)
            _download(source, item, temps[i], tag, prefetch)
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".part").unlink(missing_ok=True)
        remove_empty_folders(made)
        raise
    out = []
    for i, item in enumerate(planned):
        if item.md5 is None:
            data = item.data or b""
            write_atomic(item.target, data)
            out.append(
                FetchedFile(
                    path=str(item.target),
                    md5=hashlib.md5(data).hexdigest(),
                    size=len(data),
                    source="git",
                )
            )
            continue
        if i in temps:
            os.replace(temps[i], item.target)
        out.append(
            FetchedFile(
                path=str(item.target),
                md5=item.md5,
                size=item.target.stat().st_size,
                source=source.name,
                kept=i in kept,
            )
        )
    return out


def _download(
    source: Remote, item: _Planned, tmp: Path, tag: str, prefetch: Prefetch | None
) -> None:
    """Download an object to `tmp` (or wait for the prefetch already downloading it there),
    verified against md5 (by `Remote.download`) and size.

    Raises:
        StorageError: missing, corrupt or the wrong size, naming the file and the version.
    """
    try:
        if prefetch is not None and prefetch.take(source, item.md5, tmp):
            prefetch.wait()
        else:
            source.download(item.md5, tmp)
    except StorageError as e:
        raise type(e)(f"{item.repo_path} of {tag}: {e.message}", e.hint) from None
    got = tmp.stat().st_size
    if item.size is not None and got != item.size:
        raise StorageError(
            f"{item.repo_path} of {tag}: object {item.md5} on remote "
            f"'{source.name}' is {got} bytes, the pointer says {item.size}",
            "the copy on the remote is damaged; ask the registry's maintainers to publish it again",
        )
