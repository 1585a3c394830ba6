"""Garbage collection of DVC remotes: objects no published version (or open branch) refers to.

A merge never destroys storage. `registry gc` is the explicit clean-up: it lists the objects of a
remote that no version tag `<name>@v<version>` refers to (for `staging`, nor any branch head's
pointers, so pull requests in review keep their weights), and removes them only with `apply`.
An object that any version tag refers to is never removed, deregistered (offline) versions
included: consumers pinned to them can still fetch them. On `public`, the device packages that a
version's package index (`packages/<name>/<version>/index.json`) lists are kept the same way.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from pydantic import BaseModel, Field

from registry.card import MODELS_DIR
from registry.errors import StorageError, UsageError
from registry.repo import RegistryRepo, Snapshot, run_git
from registry.storage import PUBLIC, STAGING, PointerError, Remote, Storage, parse_pointer, with_retries


class GcObject(BaseModel):
    """An object of the remote that nothing refers to."""

    md5: str
    size: int | None = None


class GcReport(BaseModel):
    """What `registry gc` found (and removed, with `apply`)."""

    remote: str
    url: str
    applied: bool
    objects: int = Field(description="objects on the remote")
    referenced: int = Field(description="distinct objects referred to by version tags (and branches)")
    unreferenced: list[GcObject] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)

    @property
    def unreferenced_bytes(self) -> int:
        return sum(o.size or 0 for o in self.unreferenced)


def _pointers(snapshot: Snapshot, folders: list[str]) -> set[str]:
    refs: set[str] = set()
    for folder in folders:
        for n in snapshot.list_dir(folder):
            if not n.endswith(".dvc"):
                continue
            try:
                refs.add(parse_pointer(snapshot.read(f"{folder}/{n}") or b"").md5)
            except PointerError as e:
                raise StorageError(f"{folder}/{n} at {snapshot.label} cannot be read ({e}); "
                                   "refusing to collect garbage without knowing every reference",
                                   "fix or remove the pointer, then run gc again") from None
    return refs


def referenced_objects(repo: RegistryRepo, remote: Remote, *, branches: bool) -> set[str]:
    """md5s that version tags (and, with `branches`, every branch head) refer to, directory listings expanded."""
    refs: set[str] = set()
    for name, versions in repo.version_tags.items():
        for commit in set(versions.values()):
            refs |= _pointers(repo.snapshot(commit), [f"{MODELS_DIR}/{name}"])
    if branches:
        heads = run_git(repo.root, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/remotes").split()
        for commit in set(heads):
            snap = repo.snapshot(commit)
            refs |= _pointers(snap, [f"{MODELS_DIR}/{n}" for n in snap.list_dir(MODELS_DIR)])
    for md5 in [r for r in refs if r.endswith(".dir")]:
        try:
            with remote.fs.open(remote.object_path(md5), mode="rb") as f:
                refs |= {e["md5"] for e in json.loads(f.read())}
        except FileNotFoundError:
            pass  # the listing is not on this remote, so neither are files only it refers to
    return refs


def remote_objects(remote: Remote) -> dict[str, int | None]:
    """{md5: size} of every object in the remote's DVC 3 layout (temporary upload files aside)."""
    base = f"{remote.root}/files/md5"

    fs = getattr(remote.fs, "fs", remote.fs)  # the fsspec filesystem under DVC's wrapper lists with sizes

    def find() -> dict:
        try:
            found = fs.find(base, detail=True)
            # some filesystems ignore `detail` and yield paths: stat them instead
            return found if isinstance(found, dict) else {p: fs.info(p) for p in found}
        except FileNotFoundError:
            return {}

    found = with_retries(f"listing remote '{remote.name}'", find)
    out: dict[str, int | None] = {}
    for path, info in found.items():
        parts = PurePosixPath(path).parts
        if len(parts) < 2:
            continue
        prefix, rest = parts[-2], parts[-1]
        md5 = prefix + rest
        if len(prefix) == 2 and (len(md5) == 32 or (len(md5) == 36 and md5.endswith(".dir"))) \
                and all(c in "0123456789abcdef" for c in md5.removesuffix(".dir")):
            out[md5] = info.get("size")
    return out


def collect_garbage(repo: RegistryRepo, storage: Storage, remote_name: str = PUBLIC,
                    apply: bool = False) -> GcReport:
    """List (and with `apply`, remove) the objects of a remote that nothing refers to.

    Raises:
        UsageError: unknown remote.
        StorageError: a pointer cannot be read (then nothing is removed) or the remote fails.
    """
    if remote_name not in (PUBLIC, STAGING):
        raise UsageError(f"gc works on the 'public' or 'staging' remote, not '{remote_name}'")
    remote = storage.remote(remote_name)
    refs = referenced_objects(repo, remote, branches=remote_name == STAGING)
    if remote_name == PUBLIC:
        from registry.package_index import package_objects

        refs |= package_objects(remote)
    objects = remote_objects(remote)
    garbage = sorted(md5 for md5 in objects if md5 not in refs)
    report = GcReport(remote=remote_name, url=remote.url, applied=apply, objects=len(objects),
                      referenced=len(refs), unreferenced=[GcObject(md5=m, size=objects[m]) for m in garbage])
    if apply:
        for md5 in garbage:
            with_retries(f"removing {md5} from remote '{remote_name}'",
                         lambda m=md5: remote.fs.rm_file(remote.object_path(m)))
            report.removed.append(md5)
    return report
