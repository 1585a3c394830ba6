"""Device packages on the public remote: where the release puts them and how consumers find them.

A version's packages are ordinary objects of the `public` DVC remote, stored under their md5 in
DVC's own layout (`files/md5/ab/cdef…`), like weights. What ties them to a version is one small
JSON file at a key anyone can compute from the version alone:

    <public remote>/packages/<name>/<version>/index.json

    {"index_format": 1, "model": "digits-cnn@1.2.0", "tag": "digits-cnn@v1.2.0", "commit": "<sha>",
     "packages": {"linux-x86_64": {"file": "digits-cnn-1.2.0-linux-x86_64.tar.gz", "md5": …,
                                   "sha256": …, "size": …, "encrypted": false, …}, …}}

so `registry pull NAME@VERSION --target T` needs only the git repository (tags and
`.dvc/config`) and read access to the remote; no commit goes back to the default branch.

Published packages are immutable: `push_packages` (the release workflow's last job, once for all
targets) uploads and reads back every object before it writes the index, keeps entries that are
already there, adds new targets, and refuses to replace a target's package with different bytes.
Re-running it with the same files changes nothing. The workflow's `concurrency` group runs one
release per tag at a time, which is what makes the index's read-modify-write safe.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from registry.core.errors import StorageError, UsageError
from registry.core.storage import PUBLIC, ObjectMissingError, Remote, Storage

INDEX_FORMAT = 1
PACKAGE_SUFFIXES = (".tar.gz.enc", ".tar.gz")


class PackageEntry(BaseModel):
    """One target's package of a version, as the index records it."""

    target: str
    file: str = Field(description="file name: <name>-<version>-<target>.tar.gz[.enc]")
    md5: str = Field(description="its object on the public remote (DVC layout)")
    sha256: str = Field(description="the digest SHA256SUMS and the provenance attestation name")
    size: int = Field(description="bytes")
    encrypted: bool = False
    key_id: str | None = Field(None, description="id of the key an encrypted package needs")
    engine: str | None = Field(
        None, description="the engine setting the package runs with (plain packages)"
    )
    verified_on_device: bool | None = Field(
        None, description="as the package's manifest says (plain packages)"
    )

    def same_package(self, other: PackageEntry) -> bool:
        """Whether both entries describe the very same bytes."""
        return (self.sha256, self.md5, self.size, self.file) == (
            other.sha256,
            other.md5,
            other.size,
            other.file,
        )


class PackageIndex(BaseModel):
    """`packages/<name>/<version>/index.json` on the public remote."""

    index_format: int = INDEX_FORMAT
    model: str = Field(description="'<name>@<version>'")
    tag: str = Field(description="the version tag the packages were built from")
    commit: str = Field(description="the commit that tag points at")
    packages: dict[str, PackageEntry] = Field(default_factory=dict, description="by target")

    def dump(self) -> bytes:
        """Canonical JSON bytes: the same index always reads back as the same bytes."""
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()


class PushedPackage(BaseModel):
    """What `push_packages` did with one package."""

    entry: PackageEntry
    action: Literal["uploaded", "present"] = Field(
        description="uploaded in this run, or already published"
    )
    verified: Literal["md5+size", "size"] = Field(
        description="md5+size: read back from the remote and hashed; size: already indexed, size "
        "checked"
    )


class PushReport(BaseModel):
    """What `registry push-packages` did (its `--format json` output)."""

    model: str
    tag: str
    commit: str
    remote: str = Field(description="URL of the public remote")
    index: str = Field(description="the index's key on that remote")
    index_written: bool = Field(description="false when the index already held every package")
    warning: str | None = Field(None, description="set when the version was withdrawn")
    packages: list[PushedPackage] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list, description="every target the index now holds")


class PackageConflictError(StorageError):
    """The remote already holds a different package for a target of this version."""


def index_key(name: str, version: str) -> str:
    """The key of a version's package index on the public remote."""
    return f"packages/{name}/{version}/index.json"


def package_file_name(name: str, version: str, target: str, encrypted: bool = False) -> str:
    """The file name `registry package` gives a package."""
    return f"{name}-{version}-{target}.tar.gz" + (".enc" if encrypted else "")


def read_index(remote: Remote, name: str, version: str) -> PackageIndex | None:
    """The version's package index, or None when no package of it was ever pushed.

    Raises:
        StorageError: the remote is unreachable, or the index is not valid JSON of this format.
    """
    key = index_key(name, version)
    data = remote.read_key(key)
    if data is None:
        return None
    try:
        index = PackageIndex.model_validate_json(data)
    except ValueError as e:
        raise StorageError(
            f"{key} on remote '{remote.name}' ({remote.url}) is not a package index: "
            f"{str(e).splitlines()[0]}",
            "re-run the release workflow's last job to write it again",
        ) from None
    if index.index_format > INDEX_FORMAT:
        raise StorageError(
            f"{key} on remote '{remote.name}' has index format {index.index_format}; "
            f"this registry reads format {INDEX_FORMAT}",
            "upgrade the registry package",
        )
    return index


# --------------------------------------------------------------------------- push


def describe_package(path: Path, name: str, version: str) -> PackageEntry:
    """Hash a built package and read what its name (and manifest, when not encrypted) say.

    Raises:
        UsageError: a file name that is not `<name>-<version>-<target>.tar.gz[.enc]` of a known
            target, or a package whose manifest belongs to another model, version or target.
        PackageIntegrityError: a plain package whose files do not match its manifest.
    """
    from registry.packaging.archive import open_package
    from registry.packaging.encryption import is_encrypted, read_header
    from registry.packaging.targets import get_target

    target = _target_of(path.name, name, version)
    get_target(target)  # an unknown target: UsageError naming the nearest
    data = path.read_bytes()
    entry = PackageEntry(
        target=target,
        file=path.name,
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    if is_encrypted(data):
        if not path.name.endswith(".enc"):
            raise UsageError(
                f"{path} is encrypted but not named .tar.gz.enc",
                "keep the name registry package gave it",
            )
        entry.encrypted, entry.key_id = True, read_header(data, str(path))[0]["key_id"]
        return entry
    manifest = open_package(path).manifest
    if manifest.model != f"{name}@{version}" or manifest.target != target:
        raise UsageError(
            f"{path} holds {manifest.model} for {manifest.target}, not {name}@{version} for "
            f"{target}",
            "push each version's own packages, under the names registry package gave them",
        )
    entry.engine, entry.verified_on_device = manifest.engine.label(), manifest.verified_on_device
    return entry


def _target_of(file_name: str, name: str, version: str) -> str:
    prefix = f"{name}-{version}-"
    suffix = next((s for s in PACKAGE_SUFFIXES if file_name.endswith(s)), None)
    if (
        not file_name.startswith(prefix)
        or suffix is None
        or len(file_name) <= len(prefix) + len(suffix)
    ):
        raise UsageError(
            f"{file_name} is not a package of {name}@{version}",
            f"packages are named {prefix}<target>.tar.gz (or .tar.gz.enc)",
        )
    return file_name[len(prefix) : -len(suffix)]


def find_packages(folder: Path, name: str, version: str) -> list[Path]:
    """The package files of NAME@VERSION in `folder` (other files, e.g. SHA256SUMS, are left
    out)."""
    pattern = re.compile(rf"^{re.escape(name)}-{re.escape(version)}-[a-z0-9_-]+\.tar\.gz(\.enc)?$")
    return sorted(p for p in folder.iterdir() if p.is_file() and pattern.match(p.name))


def push_packages(
    ref: str,
    folder: Path,
    *,
    root: Path | None = None,
    storage: Storage | None = None,
    log=lambda msg: None,
) -> PushReport:
    """Put a version's built packages on the public remote and record them in its index.

    Order: check every package and the index for conflicts (nothing written on a refusal); upload
    what the remote lacks; read each object back and check md5 and size; only then write the index
    (atomically), and read it back. Running it again with the same files changes nothing.

    Args:
        ref: NAME@VERSION (a published version: its tag must exist).
        folder: where the packages are (file names as `registry package` wrote them).
        root: a folder of the registry clone (default: the current directory).
        storage: the clone's remotes (default: from `.dvc/config`).
        log: called with one line per package.

    Raises:
        UsageError: no such version, no package in the folder, a misnamed or foreign package.
        PackageConflictError: the index already holds different bytes for a target (nothing
        written).
        StorageError: the remote refuses, stays unreachable, or does not read back what was written.
    """
    from registry.core.git import clone_root
    from registry.core.transfer import verify_object
    from registry.versions.resolve import find_version

    top = clone_root(root)
    found = find_version(top, ref, allow_latest=False)
    name, version = found.name, found.version
    if not folder.is_dir():
        raise UsageError(
            f"{folder} is not a folder",
            "give the folder the build jobs' packages were collected in",
        )
    files = find_packages(folder, name, version)
    if not files:
        raise UsageError(
            f"no package of {name}@{version} in {folder}",
            f"expected files named {package_file_name(name, version, '<target>')}",
        )
    entries = [describe_package(p, name, version) for p in files]
    twice = sorted({e.target for e in entries if sum(x.target == e.target for x in entries) > 1})
    if twice:
        raise UsageError(
            f"{folder} holds more than one package for {', '.join(twice)}",
            "keep one package per target (plain or encrypted, not both)",
        )
    remote = (storage or Storage(top)).remote(PUBLIC)
    key = index_key(name, version)
    index = read_index(remote, name, version)
    if index is not None and index.commit != found.commit:
        raise PackageConflictError(
            f"{key} on remote '{remote.name}' was written for commit {index.commit[:10]}, but "
            f"{found.tag} "
            f"points at {found.commit[:10]}",
            "a published version is never re-tagged; ask the registry's admins",
        )
    index = index or PackageIndex(model=f"{name}@{version}", tag=found.tag, commit=found.commit)
    conflicts = [
        (e, index.packages[e.target])
        for e in entries
        if e.target in index.packages and not index.packages[e.target].same_package(e)
    ]
    if conflicts:
        detail = "; ".join(
            f"{new.target}: published sha256 {old.sha256[:16]}…, this build {new.sha256[:16]}…"
            for new, old in conflicts
        )
        raise PackageConflictError(
            f"{name}@{version} already has different packages on remote '{remote.name}' "
            f"({detail}); "
            "published packages are immutable",
            "re-run only the release job with the same build artifacts, or publish a new version "
            "to ship a rebuilt package",
        )

    report = PushReport(
        model=index.model,
        tag=found.tag,
        commit=found.commit,
        remote=remote.url,
        index=key,
        index_written=False,
    )
    if found.withdrawn:
        report.warning = (
            f"{name}@{version} was withdrawn ({found.withdrawn_by}); "
            "its packages are published for consumers pinned to it, and it is never 'latest'"
        )
    for path, entry in zip(files, entries):
        indexed = entry.target in index.packages
        have = remote.object_size(entry.md5)
        action, verified, checked = "present", "size", False
        if have != entry.size:
            checked = remote.upload(path, entry.md5, entry.size)  # True: the store checked it
            action = "uploaded"
        if (action == "uploaded" or not indexed) and not checked:
            verify_object(remote, entry.md5, entry.size)
        if action == "uploaded" or not indexed:
            verified = "md5+size"
        report.packages.append(PushedPackage(entry=entry, action=action, verified=verified))
        log(f"{entry.target}: {entry.file} {action}, verified ({verified})")

    new = {e.target: e for e in entries if e.target not in index.packages}
    if new:
        index.packages = dict(sorted({**index.packages, **new}.items()))
        data = index.dump()
        remote.write_key(key, data)
        if remote.read_key(key) != data:
            raise StorageError(
                f"{key} on remote '{remote.name}' does not read back as written",
                "run push-packages again; if it repeats, check the remote's storage",
            )
        report.index_written = True
    report.targets = list(index.packages)
    return report


def render_push(report: PushReport) -> str:
    """The text output of `registry push-packages`."""
    lines = [f"{report.model} ({report.tag}) on {report.remote}:"]
    for p in report.packages:
        lines.append(
            f"  {p.entry.target:<16} {p.entry.file}  {p.entry.size} bytes  sha256 "
            f"{p.entry.sha256[:16]}…  "
            f"{p.action}, verified {p.verified}"
        )
    state = "written" if report.index_written else "unchanged (every package was already published)"
    lines.append(f"index {report.index}: {state}; targets: {', '.join(report.targets)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- pull


def package_entry(
    remote: Remote, name: str, version: str, commit: str, target: str, card_targets: list[str]
) -> PackageEntry:
    """The index entry of one target's package of a version.

    Raises:
        UsageError: no package was pushed for the version, or none for this target (the message
            lists the targets that exist and suggests the nearest name).
        StorageError: the remote is unreachable, or the index belongs to another commit.
    """
    index = read_index(remote, name, version)
    ref = f"{name}@{version}"
    if index is None:
        listed = ", ".join(card_targets)
        raise UsageError(
            f"{ref} has no device packages on remote '{remote.name}' ({remote.url})",
            f"the release workflow builds the card's targets ({listed}) when the version is "
            f"tagged; "
            "check that its run finished"
            if card_targets
            else f"the card of {ref} lists no targets, so none were built",
        )
    if index.commit != commit:
        raise StorageError(
            f"the package index of {ref} on remote '{remote.name}' was written for commit "
            f"{index.commit[:10]}, not for the tagged commit {commit[:10]}",
            "ask the registry's admins: the index and the tag disagree",
        )
    if target in index.packages:
        return index.packages[target]
    built = list(index.packages)
    from registry.packaging.targets import load_all

    near = difflib.get_close_matches(target, built, n=1, cutoff=0.5) or difflib.get_close_matches(
        target, list(load_all()), n=1, cutoff=0.5
    )
    why = (
        "it is in the card's targets, but its package was not pushed (did its build job fail?)"
        if target in card_targets
        else ""
    )
    hint = "; ".join(
        filter(
            None,
            [
                f"did you mean '{near[0]}'?" if near else "",
                why,
                f"packages of {ref}: {', '.join(built) or 'none'}",
            ],
        )
    )
    raise UsageError(f"{ref} has no package for target '{target}'", hint)


def fetch_package(remote: Remote, entry: PackageEntry, dest_dir: Path) -> tuple[Path, bool]:
    """Download one package into `dest_dir` under its file name, verified against md5, size and
    sha256.

    A file already there with the right size and sha256 is kept. Returns (path, whether downloaded).

    Raises:
        StorageError: missing or corrupt object; nothing is left in `dest_dir` then.
    """
    target = dest_dir / entry.file
    if target.is_file() and target.stat().st_size == entry.size and _sha256(target) == entry.sha256:
        return target, False
    tmp = target.with_name(f".{target.name}.{os.getpid()}.download")
    try:
        try:
            remote.download(entry.md5, tmp)  # checks the md5 before it renames onto `tmp`
        except ObjectMissingError:
            raise StorageError(
                f"{entry.file} (object {entry.md5}) is missing from remote '{remote.name}' "
                f"({remote.url})",
                "ask the registry's admins to re-run the release job",
            ) from None
        size, digest = tmp.stat().st_size, _sha256(tmp)
        if size != entry.size or digest != entry.sha256:
            raise StorageError(
                f"{entry.file} on remote '{remote.name}' does not match its index entry "
                f"({size} bytes, sha256 {digest[:16]}…; expected {entry.size} bytes, "
                f"sha256 {entry.sha256[:16]}…)",
                "ask the registry's admins to re-run the release job",
            )
        os.replace(tmp, target)
    finally:  # an interrupted or refused download leaves nothing in the output folder
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".part").unlink(missing_ok=True)
    return target, True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def index_files(remote: Remote) -> list[str]:
    """Paths of every package index on the remote (`packages/<name>/<version>/index.json`).

    Raises:
        StorageError: the remote stays unreachable after retries.
    """
    from registry.core.storage import with_retries

    fs = getattr(remote.fs, "fs", remote.fs)
    base = f"{remote.root}/packages"

    def find() -> list[str]:
        try:
            return list(fs.find(base))
        except FileNotFoundError:
            return []

    return [
        p
        for p in with_retries(f"listing the package indexes of remote '{remote.name}'", find)
        if p.rstrip("/").endswith("/index.json")
    ]


def package_objects(remote: Remote) -> set[str]:
    """md5s of every object a package index on the remote refers to (what gc must keep).

    Raises:
        StorageError: an index cannot be read (then gc must not remove anything).
    """
    refs: set[str] = set()
    for path in index_files(remote):
        parts = path.rstrip("/").split("/")
        name, version = parts[-3], parts[-2]
        try:
            index = read_index(remote, name, version)
        except StorageError as e:
            raise StorageError(
                f"{e.message}; refusing to collect garbage without knowing every reference", e.hint
            ) from None
        refs |= {p.md5 for p in index.packages.values()} if index else set()
    return refs
