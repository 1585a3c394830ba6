"""Consumers fetch one published version: `registry pull NAME@VERSION` (or `NAME@latest`).

The version, its card and its files come through `registry.versions.resolve`: resolved from the
tags (stray tags refused, withdrawal applied), the card read at the tag's commit, the weights (and
the PyTorch source, when the card has one) downloaded from the `public` remote only (never
`staging`, never a local cache) and verified against their pointers' md5 and size, the card and
config copied from git. With `--target T` the version's device package for T is fetched instead,
found through the version's package index on the same remote (`registry.packaging.index`) and
verified against its md5, size and SHA-256. Inside a clone the clone's `.dvc/config` (and its
`config.local` credentials) name the remote; with `repo_url` the registry is bare-cloned without
blobs into a temporary folder, so the command works from any directory.

Files land in the output folder atomically (each is fetched under a temporary name, verified,
then renamed), so an interrupted pull never leaves a truncated model behind.

The weights start downloading before the card schema is even loaded (`versions.prefetch`), so
the checks of the version run beside the download instead of before it; this module imports
nothing heavy at its top for that reason (what a pull returns is in `consuming.pulled`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.errors import UsageError
from registry.core.git import cat_files, clone_root, run_git
from registry.core.layout import CARD_FILE
from registry.core.storage import PUBLIC, Storage, absolute_local_remotes
from registry.versions.index import INDEX_REF
from registry.versions.prefetch import prefetching

if TYPE_CHECKING:
    from registry.consuming.pulled import PulledFile, PullResult
    from registry.versions.resolve import PublishedVersion


@contextmanager
def open_registry(
    root: str | Path | None = None, repo_url: str | None = None
) -> Iterator[tuple[Path, Path]]:
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
        run_git(
            tmp,
            "clone",
            "--quiet",
            "--bare",
            "--filter=blob:none",
            repo_url,
            str(gitdir),
            timeout=600,
        )
        # the registry index answers NAME@latest; a registry without one is read from its tags
        run_git(
            gitdir, "fetch", "-q", "--no-tags", "origin", f"+{INDEX_REF}:{INDEX_REF}", check=False
        )
        conf_root = Path(tmp) / "conf"
        (conf_root / ".dvc").mkdir(parents=True)
        config = cat_files(gitdir, ["HEAD:.dvc/config"])[0]
        if config is None:
            raise UsageError(
                f"{repo_url} has no .dvc/config on its default branch",
                "is this the model registry's URL?",
            )
        (conf_root / ".dvc" / "config").write_bytes(absolute_local_remotes(config, repo_url))
        yield gitdir, conf_root


def pull(
    spec: str,
    out_dir: str | Path | None = None,
    *,
    root: str | Path | None = None,
    repo_url: str | None = None,
    targets: Sequence[str] = (),
) -> PullResult:
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
        UsageError: bad spec, unknown model or version, a target with no package (the nearest
        named).
        CardError: the card at the version's tag cannot be read.
        StorageError: the public remote lacks the object, is unreachable, or serves corrupt bytes.
    """
    with (
        open_registry(root, repo_url) as (gitdir, conf_root),
        nullcontext() if targets else prefetching(gitdir, conf_root, spec, out_dir) as early,
    ):
        # loaded (the card schema with it) while the weights download
        from registry.consuming.pulled import PulledFile, PullResult
        from registry.versions.resolve import fetch_files, find_version

        version = find_version(gitdir, spec)
        name, card = version.name, version.card
        storage = Storage(conf_root)
        remote = storage.remote(PUBLIC)
        dest = _destination(out_dir, version)
        if targets:
            from registry.packaging.index import package_entry

            entries = [
                package_entry(
                    remote, name, version.version, version.commit, t, [s.name for s in card.targets]
                )
                for t in dict.fromkeys(targets)
            ]
            dest.mkdir(parents=True, exist_ok=True)
            files = [_fetch_package(remote, e, dest) for e in entries]
        else:
            tracked = [card.weights, *([card.pytorch] if card.pytorch else [])]
            fetched = fetch_files(
                gitdir,
                version,
                [*tracked, CARD_FILE],
                dest,
                optional=[card.config],
                storage=storage,
                prefetch=early,
            )
            files = [PulledFile(**f.model_dump()) for f in fetched.files]
    result = PullResult(
        name=name,
        version=version.version,
        tag=version.tag,
        commit=version.commit,
        out_dir=str(dest),
        remote=remote.url,
        files=files,
        withdrawn=version.withdrawn,
    )
    if version.withdrawn:
        result.warning = (
            f"{name}@{version.version} was withdrawn ({version.withdrawn_by}); it is kept "
            "for consumers pinned to it, but do not start using it"
        )
    return result


def _destination(out_dir: str | Path | None, version: PublishedVersion) -> Path:
    """The output folder (made once there is something to write into it)."""
    dest = Path(out_dir) if out_dir else Path.cwd() / f"{version.name}-{version.version}"
    if dest.exists() and not dest.is_dir():
        raise UsageError(
            f"{dest} exists and is not a folder", "give -o a folder to write the model into"
        )
    return dest


def _fetch_package(remote, entry, dest: Path) -> PulledFile:
    from registry.consuming.pulled import PulledFile
    from registry.packaging.index import fetch_package

    path, _ = fetch_package(remote, entry, dest)
    return PulledFile(
        path=str(path),
        md5=entry.md5,
        size=entry.size,
        source=PUBLIC,
        target=entry.target,
        sha256=entry.sha256,
    )
