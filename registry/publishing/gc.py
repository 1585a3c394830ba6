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

from registry.cards.schema import MODELS_DIR
from registry.core.errors import StorageError, UsageError
from registry.core.git import run_git
from registry.core.repo import RegistryRepo, Snapshot
from registry.core.storage import (
    PUBLIC,
    STAGING,
    PointerError,
    Remote,
    Storage,
    parse_pointer,
    with_retries,
)
from registry.versions.tags import tagged_commits


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
    referenced: int = Field(
        description="distinct objects referred to by version tags (and branches)"
    )
    unreferenced: list[GcObject] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    grace_seconds: float = Field(
        0,
        description="objects younger than this are kept (staging: pull requests "
        "in review may not have a branch here yet)",
    )
    kept_young: list[GcObject] = Field(
        default_factory=list, description="unreferenced but younger than the grace"
    )
    partial: list[str] = Field(
        default_factory=list,
        description="temporary files a killed copy left (`<object>.tmp<pid>`), removed "
        "with apply; publish also removes them before it copies that object again",
    )

    @property
    def unreferenced_bytes(self) -> int:
        return sum(o.size or 0 for o in self.unreferenced)


def _pointers(snapshot: Snapshot, folders: list[str]) -> set[str]:
    """md5s of every DVC pointer in the model folders (resolved by `registry.cards.model_files`).

    A pointer the resolver refuses still counts when it parses (a folder output of an old branch
    keeps its objects); one that does not parse stops the collection.
    """
    from registry.cards.model_files import model_files

    refs: set[str] = set()
    for folder in folders:
        files = model_files(snapshot, PurePosixPath(folder).name)
        refs |= {t.md5 for t in files.tracked.values()}
        for problem in files.problems:
            if not problem.path.endswith(".dvc"):
                continue
            try:
                refs.add(parse_pointer(snapshot.read(problem.path) or b"").md5)
            except PointerError as e:
                raise StorageError(
                    f"{problem.path} at {snapshot.label} cannot be read ({e}); "
                    "refusing to collect garbage without knowing every reference",
                    "fix or remove the pointer, then run gc again",
                ) from None
    return refs


def referenced_objects(repo: RegistryRepo, remote: Remote, *, branches: bool) -> set[str]:
    """md5s that version tags (and, with `branches`, every branch head) refer to, directory
    listings expanded."""
    refs: set[str] = set()
    for name, versions in tagged_commits(repo).items():
        for commit in set(versions.values()):
            refs |= _pointers(repo.snapshot(commit), [f"{MODELS_DIR}/{name}"])
    if branches:
        heads = run_git(
            repo.root, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/remotes"
        ).split()
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


def remote_objects(
    remote: Remote, partial: list[str] | None = None, ages: dict[str, float] | None = None
) -> dict[str, int | None]:
    """{md5: size} of every object in the remote's DVC 3 layout.

    Args:
        partial: receives the paths of temporary upload files (`<object>.tmp<pid>`).
        ages: receives {md5: seconds since it was last modified} where the remote says.
    """
    import time

    base = f"{remote.root}/files/md5"

    fs = getattr(
        remote.fs, "fs", remote.fs
    )  # the fsspec filesystem under DVC's wrapper lists with sizes

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
        if (
            len(prefix) == 2
            and (len(md5) == 32 or (len(md5) == 36 and md5.endswith(".dir")))
            and all(c in "0123456789abcdef" for c in md5.removesuffix(".dir"))
        ):
            out[md5] = info.get("size")
            modified = _modified(info)
            if ages is not None and modified is not None:
                ages[md5] = time.time() - modified
        elif partial is not None and len(prefix) == 2 and ".tmp" in rest:
            partial.append(path)
    return out


def _modified(info: dict) -> float | None:
    """When an object was last written, in seconds since the epoch, from a file system's `info`."""
    value = info.get(
        "mtime", info.get("LastModified", info.get("last_modified", info.get("created")))
    )
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


DEFAULT_GRACE = {STAGING: 14 * 24 * 3600.0, PUBLIC: 0.0}


def collect_garbage(
    repo: RegistryRepo,
    storage: Storage,
    remote_name: str = PUBLIC,
    apply: bool = False,
    grace: float | None = None,
) -> GcReport:
    """List (and with `apply`, remove) the objects of a remote that nothing refers to.

    Like git's prune expiry, an unreferenced object younger than `grace` seconds is kept (default:
    14 days on staging, where a pull request's weights arrive before any branch of this clone names
    them; none on public, where publish writes only what a tag then names). Temporary files left by
    a killed copy are listed, and removed with `apply`.

    Raises:
        UsageError: unknown remote.
        StorageError: a pointer cannot be read (then nothing is removed) or the remote fails.
    """
    if remote_name not in (PUBLIC, STAGING):
        raise UsageError(f"gc works on the 'public' or 'staging' remote, not '{remote_name}'")
    remote = storage.remote(remote_name)
    refs = referenced_objects(repo, remote, branches=remote_name == STAGING)
    if remote_name == PUBLIC:
        from registry.packaging.index import package_objects

        refs |= package_objects(remote)
    grace = DEFAULT_GRACE[remote_name] if grace is None else grace
    partial: list[str] = []
    ages: dict[str, float] = {}
    objects = remote_objects(remote, partial, ages)
    unreferenced = sorted(md5 for md5 in objects if md5 not in refs)
    young = [m for m in unreferenced if grace > 0 and ages.get(m, 0.0) < grace]
    garbage = [m for m in unreferenced if m not in young]
    report = GcReport(
        remote=remote_name,
        url=remote.url,
        applied=apply,
        objects=len(objects),
        referenced=len(refs),
        unreferenced=[GcObject(md5=m, size=objects[m]) for m in garbage],
        grace_seconds=grace,
        kept_young=[GcObject(md5=m, size=objects[m]) for m in young],
        partial=sorted(partial),
    )
    if apply:
        for md5 in garbage:
            with_retries(
                f"removing {md5} from remote '{remote_name}'",
                lambda m=md5: remote.fs.rm_file(remote.object_path(m)),
            )
            report.removed.append(md5)
        for path in partial:
            with_retries(
                f"removing {path} from remote '{remote_name}'", lambda p=path: remote.fs.rm_file(p)
            )
            report.removed.append(path)
    return report
