"""Consumers fetch one published version: `registry pull NAME@VERSION` (or `NAME@latest`).

The version is resolved from tags (`registry.versions.tags`), the card and the DVC pointer are read at
the tag's commit, and the weights come from the `public` remote only (never `staging`), verified
against the pointer's md5 and size. With `--target T` the version's device package for T is
fetched instead, found through the version's package index on the same remote
(`registry.packaging.index`) and verified against its md5, size and SHA-256. Inside a clone the clone's `.dvc/config` (and its
`config.local` credentials) name the remote; with `repo_url` the registry is bare-cloned without
blobs into a temporary folder, so the command works from any directory.

Files land in the output folder atomically (each is written under a temporary name, verified,
then renamed), so an interrupted pull never leaves a truncated model behind.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

from pydantic import BaseModel, Field

from registry.cards.schema import CARD_FILE, MODELS_DIR, ModelCard, load_card, says_offline
from registry.core.errors import CardError, StorageError, UsageError
from registry.core.git import cat_files
from registry.core.storage import PUBLIC, Pointer, Storage, absolute_local_remotes, file_md5
from registry.versions.tags import Version, confirm_versions, parse_version_spec, read_versions, resolve, withdraw_offline
from registry.core.git import clone_root, run_git


class PulledFile(BaseModel):
    """One file written by a pull."""

    path: str = Field(description="where it was written")
    md5: str = Field(description="md5 of the content")
    size: int = Field(description="bytes")
    source: str = Field(description="'public' for weights and packages, 'git' for the card and config")
    target: str | None = Field(None, description="the device target, for a package")
    sha256: str | None = Field(None, description="SHA-256 of a package (as in the release's SHA256SUMS)")
    kept: bool = Field(False, description="the file was already there with this md5 and size: not downloaded")


class PullResult(BaseModel):
    """What `registry pull` fetched (its `--format json` output)."""

    name: str
    version: str
    tag: str
    commit: str
    out_dir: str
    remote: str = Field(description="URL of the public remote the weights came from")
    files: list[PulledFile] = Field(default_factory=list)
    withdrawn: bool = False
    warning: str | None = None


@contextmanager
def open_registry(root: str | Path | None = None, repo_url: str | None = None) -> Iterator[tuple[Path, Path]]:
    """Yield (git dir to read tags and objects from, folder whose `.dvc/config` names the remotes).

    With `repo_url`, bare-clone it without blobs into a temporary folder (removed afterwards);
    relative local remote URLs are resolved against the URL when it is a local path, as DVC does.

    Raises:
        GitError: the URL cannot be cloned.
        UsageError: `root` is not inside a clone.
    """
    if repo_url is None:
        top = clone_root(root)
        yield top, top
        return
    with tempfile.TemporaryDirectory(prefix="registry-pull-") as tmp:
        gitdir = Path(tmp) / "registry.git"
        run_git(tmp, "clone", "--quiet", "--bare", "--filter=blob:none", repo_url, str(gitdir), timeout=600)
        conf_root = Path(tmp) / "conf"
        (conf_root / ".dvc").mkdir(parents=True)
        config = cat_files(gitdir, ["HEAD:.dvc/config"])[0]
        if config is None:
            raise UsageError(f"{repo_url} has no .dvc/config on its default branch",
                             "is this the model registry's URL?")
        (conf_root / ".dvc" / "config").write_bytes(absolute_local_remotes(config, repo_url))
        yield gitdir, conf_root


def pull(spec: str, out_dir: str | Path | None = None, *, root: str | Path | None = None,
         repo_url: str | None = None, targets: Sequence[str] = ()) -> PullResult:
    """Fetch one published version of a model, or its device packages, into a folder.

    Args:
        spec: `NAME@VERSION`, `NAME@vVERSION` or `NAME@latest`.
        out_dir: destination folder (default: `./<name>-<version>`); created when missing.
        root: a folder inside a registry clone (default: the current directory).
        repo_url: the registry's git URL; when given, no clone is needed.
        targets: fetch these targets' packages instead of the weights, card and config.

    Returns:
        What was written, with `withdrawn`/`warning` set for a withdrawn version.

    Raises:
        UsageError: bad spec, unknown model or version, a target with no package (the nearest named).
        CardError: the card at the version's tag cannot be read.
        StorageError: the public remote lacks the object, is unreachable, or serves corrupt bytes.
    """
    name, wanted = parse_version_spec(spec)
    with open_registry(root, repo_url) as (gitdir, conf_root):
        table = read_versions(gitdir)
        head_card_bytes, = cat_files(gitdir, [f"HEAD:{MODELS_DIR}/{name}/{CARD_FILE}"])
        table[name], stray = confirm_versions(gitdir, table.get(name, []))
        if says_offline(head_card_bytes):
            table[name] = withdraw_offline(table[name])
        refused = next((t for t in stray if t.tag == f"{name}@v{wanted}"), None)
        if refused is not None:
            raise UsageError(f"tag {refused.tag} is not a published version: {refused.reason}",
                             "only versions the publish workflow tagged can be pulled; tell the registry's "
                             "maintainers about the stray tag")
        version = resolve(table, name, wanted)
        card, pointer_path = _card_at(gitdir, version)
        remote = Storage(conf_root).remote(PUBLIC)
        if targets:
            from registry.packaging.index import package_entry

            entries = [package_entry(remote, name, version.version, version.commit, t,
                                     [s.name for s in card.targets]) for t in dict.fromkeys(targets)]
            dest = _destination(out_dir, name, version)
            files = [_fetch_package(remote, e, dest) for e in entries]
        else:
            dest, files = _pull_weights(gitdir, version, card, pointer_path, remote, out_dir)
    result = PullResult(name=name, version=version.version, tag=version.tag, commit=version.commit,
                        out_dir=str(dest), remote=remote.url, files=files, withdrawn=version.withdrawn)
    if version.withdrawn:
        result.warning = (f"{name}@{version.version} was withdrawn ({version.withdrawn_by}); it is kept "
                          "for consumers pinned to it, but do not start using it")
    return result


def _destination(out_dir: str | Path | None, name: str, version: Version) -> Path:
    dest = Path(out_dir) if out_dir else Path.cwd() / f"{name}-{version.version}"
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a folder", "give -o a folder to write the model into")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _pull_weights(gitdir: Path, version: Version, card: ModelCard, pointer_path: str, remote,
                  out_dir: str | Path | None) -> tuple[Path, list[PulledFile]]:
    """The weights (and the PyTorch source, when the card has one) from the public remote, and the
    card and config from git."""
    name = version.name
    folder = f"{MODELS_DIR}/{name}"
    tracked = [card.weights] + ([card.pytorch] if card.pytorch else [])
    pointers = _tagged_pointers(gitdir, version, tracked)
    card_bytes, config_bytes = cat_files(gitdir, [
        f"{version.commit}:{folder}/{CARD_FILE}", f"{version.commit}:{folder}/{card.config}"])
    dest = _destination(out_dir, name, version)
    files = [_fetch_weights(remote, ptr.md5, ptr.size, dest / PurePosixPath(rel).name)
             for rel, ptr in zip(tracked, pointers)]
    for rel, data in ((CARD_FILE, card_bytes), (card.config, config_bytes)):
        if data is not None:
            files.append(_write_atomic(dest / PurePosixPath(rel).name, data))
    return dest, files


def _tagged_pointers(gitdir: Path, version: Version, tracked: list[str]) -> list[Pointer]:
    """The DVC pointers of `tracked` files (relative to the model folder) at a version's tag, resolved
    by `registry.cards.model_files` exactly as the bot and publish resolved them.

    Raises:
        CardError: the folder at the tag has a link, a submodule or an unusable pointer, or a
            file has no pointer.
    """
    import git

    from registry.cards.model_files import model_files
    from registry.core.repo import GitRevision

    files = model_files(GitRevision(git.Repo(gitdir), version.commit), version.name)
    files.require_usable(f"{version.tag}: cannot pull")
    out = []
    for rel in tracked:
        found = files.pointer_of(rel)
        if found is None:
            path = f"{files.folder}/{rel}.dvc"
            raise CardError(f"{version.tag} has no DVC pointer {path}",
                            "the version was tagged without its weights; ask the registry's admins", path=path)
        out.append(found.pointer)
    return out


def _fetch_package(remote, entry, dest: Path) -> PulledFile:
    from registry.packaging.index import fetch_package

    path, _ = fetch_package(remote, entry, dest)
    return PulledFile(path=str(path), md5=entry.md5, size=entry.size, source=PUBLIC, target=entry.target,
                      sha256=entry.sha256)


def _card_at(gitdir: Path, version: Version) -> tuple[ModelCard, str]:
    """The card at a version's tag and the repository path of its weights pointer."""
    path = f"{MODELS_DIR}/{version.name}/{CARD_FILE}"
    data, = cat_files(gitdir, [f"{version.commit}:{path}"])
    if data is None:
        raise CardError(f"{version.tag} has no {path}", "the tag does not point at a registry version",
                        path=path)
    card = load_card(data, path).require(f"the card at {version.tag} is invalid: ")
    return card, f"{MODELS_DIR}/{version.name}/{card.weights}.dvc"


def _fetch_weights(remote, md5: str, size: int | None, target: Path) -> PulledFile:
    """Download an object from the public remote into `target`, verified, unless already there."""
    if target.is_file() and (size is None or target.stat().st_size == size) and file_md5(target) == md5:
        return PulledFile(path=str(target), md5=md5, size=target.stat().st_size, source=PUBLIC, kept=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.download")
    try:
        remote.download(md5, tmp)  # verifies the md5 before it renames onto `tmp`
        got = tmp.stat().st_size
        if size is not None and got != size:
            raise StorageError(f"object {md5} on remote '{remote.name}' is {got} bytes, the pointer says {size}",
                               "the public copy is damaged; ask the registry's admins to re-publish it")
        os.replace(tmp, target)
    finally:  # an interrupted or refused download leaves nothing in the output folder
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".part").unlink(missing_ok=True)
    return PulledFile(path=str(target), md5=md5, size=got, source=PUBLIC)


def _write_atomic(target: Path, data: bytes) -> PulledFile:
    import hashlib

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return PulledFile(path=str(target), md5=hashlib.md5(data).hexdigest(), size=len(data), source="git")
