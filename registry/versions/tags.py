"""Published versions, read from git tags in one call (the GTO tag convention).

A published version is an annotated tag `<name>@v<version>` made by the publish step. A version is
*withdrawn* when it has been taken off the public listing:

- GTO's deregistration tag for that version exists: `<name>@v<version>!` (optionally numbered,
  `<name>@v<version>!#<n>`), which `gto show` also understands; or
- GTO's deprecation tag for the whole model exists (`<name>@deprecated`, `<name>@deprecated#<n>`),
  which withdraws every version tagged before it; or
- the card says `status: offline` (the caller passes that in, see `withdraw_offline`).

Withdrawn versions stay fetchable (consumers pinned to them keep working) but are never chosen as
`latest`, and `registry pull` warns about them.

Every version comes from one `git for-each-ref` over `refs/tags`, so 10,000 tags cost one process
and no history walk; one model's versions come from its own refs alone (`model_tag_refs`), so a
pull request's check costs the same beside ten tags or a million.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from registry.core.errors import GitError, UnavailableError, UsageError
from registry.core.git import TAG_REF_FORMAT, run_git
from registry.core.semver import SEMVER, semver_key

if TYPE_CHECKING:
    from registry.core.git import ObjectReader
    from registry.core.repo import RegistryRepo

# GTO's tag grammar (gto/constants.py `tag_re`) restricted to the registry's model names.
TAG_RE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9-]{0,62}[a-z0-9])@"
    rf"(?:v(?P<version>{SEMVER})(?P<cancel>!?)|(?P<deprecated>deprecated))"
    r"(?:#(?P<counter>\d+))?$"
)
LATEST = "latest"
_COUNTER = re.compile(r"#(\d+)$")  # GTO's event counter, at the end of any tag of a model


class Version(BaseModel):
    """One published version of a model."""

    name: str = Field(description="model name")
    version: str = Field(description="SemVer, without the leading 'v'")
    tag: str = Field(description="the git tag, <name>@v<version>")
    commit: str = Field(description="the commit the tag points at")
    date: datetime = Field(description="when the version was tagged (the tagger date)")
    withdrawn: bool = Field(False, description="unpublished: still fetchable, never 'latest'")
    withdrawn_by: str | None = Field(None, description="the tag (or card state) that withdrew it")

    @property
    def prerelease(self) -> bool:
        """Whether the version has a pre-release part (1.0.0-rc.1)."""
        return "-" in self.version.split("+", 1)[0]


def parse_version_spec(spec: str, *, allow_latest: bool = True) -> tuple[str, str]:
    """Split `NAME@VERSION` / `NAME@vVERSION` / `NAME@latest` / `NAME` into (name, version or
    'latest').

    Args:
        spec: the reference as a user wrote it.
        allow_latest: accept `NAME@latest` and a bare `NAME`; when False, only an exact version.

    Raises:
        UsageError: when the spec is not of that form.
    """
    name, _, version = spec.partition("@")
    version = version or LATEST
    if version != LATEST:
        version = version.removeprefix("v")
        if not re.fullmatch(SEMVER, version):
            raise UsageError(
                f"'{spec}' does not name a version",
                "write NAME@1.2.0 (SemVer)" + (" or NAME@latest" if allow_latest else ""),
            )
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}[a-z0-9]", name):
        raise UsageError(
            f"'{name}' is not a model name",
            "model names are lowercase letters, digits and '-' (see `registry list`)",
        )
    if version == LATEST and not allow_latest:
        raise UsageError(
            f"'{spec}' does not name an exact version",
            f"write NAME@VERSION, e.g. {name}@1.2.0 (`registry show {name}` lists the versions)",
        )
    return name, version


def is_version_tag(tag: str) -> bool:
    """Whether a tag name is a version tag `<name>@v<version>` (GTO's numbered re-registrations
    `#<n>` included), as opposed to a withdrawal, a deprecation or a tag of something else."""
    m = TAG_RE.match(tag)
    return bool(m and m["version"] and not m["cancel"])


def read_versions(root: str | Path) -> dict[str, list[Version]]:
    """Every published version of every model, from one `git for-each-ref`.

    Args:
        root: a clone (or bare clone) of the registry.

    Returns:
        {model name: [Version, …] sorted by SemVer, lowest first}. Withdrawal by deregistration
        or deprecation tags is already applied; a card's `offline` state is not (see
        `withdraw_offline`).
    """
    out = run_git(root, "for-each-ref", f"--format={TAG_REF_FORMAT}", "refs/tags")
    return parse_refs(out)


def read_model_versions(root: str | Path, name: str) -> list[Version]:
    """One model's published versions from its own tags (`refs/tags/<name>@*`), lowest first,
    withdrawal by tags applied, reading no other model's tags (`model_tag_refs`)."""
    return parse_refs(model_tag_refs(root, name)).get(name, [])


def model_tag_refs(root: str | Path, name: str, objects: ObjectReader | None = None) -> str:
    """The tags of one model: every ref `refs/tags/<name>@…`, one line each as `git for-each-ref
    --format=<TAG_REF_FORMAT>` prints them (sorted by name), without reading any other tag.

    git answers `for-each-ref 'refs/tags/<name>@*'` by loading every loose tag ref of the clone,
    and a CI checkout that fetched the tags holds thousands of them. So the refs are found here:
    the names in `refs/tags/` that start with `<name>@`, and the lines of `packed-refs` that do
    (by a binary search where git wrote the file sorted, as it does), a loose ref taking
    precedence over its packed copy as in git; then one `git cat-file --batch` reads the objects
    they name. Anything unusual (another ref store, `GIT_DIR` and friends in the environment, a
    symbolic or broken ref, a missing object) is answered by `git for-each-ref` itself.

    Args:
        root: a clone (or bare clone) of the registry.
        name: the model; matched literally (no glob).
        objects: the clone's running object reader, if the caller has one (else one
            `git cat-file --batch` reads the objects).
    """
    from registry.core.git import read_objects
    from registry.versions.tag_digest import common_dir

    common = common_dir(root)
    refs = _own_refs(common, name) if common is not None else None
    if refs is None:
        return _listed_by_git(root, name)
    names = sorted(refs)
    if objects is not None:
        read = [objects.read(refs[n]) for n in names]
        found_objects = [(r[1], r[2]) if r is not None else None for r in read]
    else:
        found_objects = read_objects(root, [refs[n] for n in names])
    lines = []
    for ref, found in zip(names, found_objects):
        if found is None:
            return _listed_by_git(root, name)
        kind, body = found
        head = body.split(b"\n\n", 1)[0].decode("utf-8", "replace").split("\n")
        fields = dict(line.partition(" ")[::2] for line in head)
        peeled = fields.get("object", "") if kind == "tag" else ""
        who = fields.get("tagger" if kind == "tag" else "committer", "")
        stamp = who.rsplit(" ", 2)[-2] if who.count(" ") >= 2 and ">" in who else ""
        lines.append(f"{ref}\t{kind}\t{refs[ref]}\t{peeled}\t{stamp}\n")
    return "".join(lines)


def _listed_by_git(root: str | Path, name: str) -> str:
    """`model_tag_refs` as git lists it: by pattern where the name has no glob character."""
    if re.fullmatch(r"[A-Za-z0-9._-]+", name):
        return run_git(root, "for-each-ref", f"--format={TAG_REF_FORMAT}", f"refs/tags/{name}@*")
    out = run_git(root, "for-each-ref", f"--format={TAG_REF_FORMAT}", "refs/tags")
    return "".join(f"{line}\n" for line in out.splitlines() if line.startswith(f"{name}@"))


_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _own_refs(common: Path, name: str) -> dict[str, str] | None:
    """{tag name: object id} of the refs `refs/tags/<name>@…`, loose over packed; None when a ref
    is not a plain object id (a symbolic or broken ref: git then decides)."""
    prefix = f"{name}@"
    refs = _packed_refs(common / "packed-refs", f"refs/tags/{prefix}")
    if refs is None:
        return None
    tags = common / "refs" / "tags"
    try:
        top = [n for n in os.listdir(tags) if n.startswith(prefix)]
    except FileNotFoundError:
        top = []
    except OSError:
        return None
    todo = [(tags / n, n) for n in top]
    while todo:
        path, ref = todo.pop()
        if ref.endswith(".lock"):
            continue  # git's lock while it writes the ref: not a ref
        try:
            if path.is_dir():
                todo += [(path / n, f"{ref}/{n}") for n in os.listdir(path)]
                continue
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not _OBJECT_ID.fullmatch(text):
            return None
        refs[ref] = text
    return refs


def _packed_refs(path: Path, prefix: str) -> dict[str, str] | None:
    """{name after refs/tags/: object id} of the lines of a `packed-refs` file whose ref starts with
    `prefix`: a binary search when the file says it is sorted, a scan otherwise; None when the file
    cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    want = os.fsencode(prefix)
    start = 0
    if data.startswith(b"# pack-refs with:"):
        start = data.find(b"\n") + 1 or len(data)
        traits = data[:start].split()
    else:
        traits = []
    if b"sorted" in traits:
        at = _first_at_or_after(data, start, want)
        end = at
        while end < len(data):
            nxt = data.find(b"\n", end)
            nxt = len(data) if nxt < 0 else nxt + 1
            ref = data[end:nxt].rstrip(b"\n").partition(b" ")[2]
            if not data.startswith(b"^", end) and not ref.startswith(want):
                break
            end = nxt
        lines = data[at:end].splitlines()
    else:
        lines = data[start:].splitlines()
    out = {}
    for line in lines:
        if line.startswith((b"^", b"#")):
            continue
        sha, _, ref = line.partition(b" ")
        if ref.startswith(want):
            out[os.fsdecode(ref[len(b"refs/tags/") :])] = sha.decode("ascii", "replace")
    return out


def _first_at_or_after(data: bytes, lo: int, want: bytes) -> int:
    """The offset of the first record (a ref line and its peeled `^` line) of a sorted
    `packed-refs` whose ref is not below `want`; `lo` is the first record's offset."""
    hi = len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        start = max(lo, data.rfind(b"\n", lo, mid) + 1)
        if data.startswith(b"^", start):  # a peeled line: its record starts on the line before
            start = max(lo, data.rfind(b"\n", lo, start - 1) + 1)
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        ref = data[start:end].rstrip(b"\n").partition(b" ")[2]
        if ref < want:
            while data.startswith(b"^", end):  # past this record's peeled line
                nxt = data.find(b"\n", end)
                end = len(data) if nxt < 0 else nxt + 1
            lo = end
        else:
            hi = start
    return lo


def parse_refs(out: str) -> dict[str, list[Version]]:
    """Build the version table from `git for-each-ref --format=<TAG_REF_FORMAT>` output."""
    versions: dict[str, dict[str, Version]] = {}
    cancelled: dict[str, dict[str, str]] = {}
    deprecated: dict[str, tuple[datetime, str]] = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) != 5:
            continue
        ref, objtype, obj, peeled, stamp = fields
        if objtype != "tag":  # lightweight tags are not registry versions (GTO ignores them too)
            continue
        m = TAG_RE.match(ref)
        if not m:
            continue
        date = datetime.fromtimestamp(int(stamp or 0), tz=timezone.utc)
        name = m["name"]
        if m["deprecated"]:
            prev = deprecated.get(name)
            if prev is None or date > prev[0]:
                deprecated[name] = (date, ref)
        elif m["cancel"]:
            cancelled.setdefault(name, {})[m["version"]] = ref
        else:
            # model_construct: the fields come from our own parse, and 10,000 validations cost ~0.1
            # s
            v = Version.model_construct(
                name=name,
                version=m["version"],
                tag=ref,
                commit=peeled or obj,
                date=date,
                withdrawn=False,
                withdrawn_by=None,
            )
            seen = versions.setdefault(name, {})
            # a numbered re-registration (name@v1.0.0#3) never replaces the plain tag
            if m["version"] not in seen or ref == f"{name}@v{m['version']}":
                seen[m["version"]] = v
    table: dict[str, list[Version]] = {}
    for name, by_version in versions.items():
        gone = cancelled.get(name, {})
        dep = deprecated.get(name)
        listed = []
        for v in by_version.values():
            if v.version in gone:
                v = v.model_copy(update={"withdrawn": True, "withdrawn_by": gone[v.version]})
            elif dep and v.date <= dep[0]:
                v = v.model_copy(update={"withdrawn": True, "withdrawn_by": dep[1]})
            listed.append(v)
        table[name] = sorted(listed, key=lambda v: semver_key(v.version))
    return table


def tagged_commits(repo: RegistryRepo) -> dict[str, dict[str, str]]:
    """{model name: {version: tagged commit}} of every published version, withdrawn ones included,
    from the repository's tag refs (read once per `RegistryRepo`)."""
    return {
        name: {v.version: v.commit for v in vs} for name, vs in parse_refs(repo.tag_refs).items()
    }


class StrayTag(BaseModel):
    """A version tag that is not a published version: made by hand, not by the publish workflow."""

    tag: str
    commit: str
    reason: str = Field(
        description="why it does not count: off the default branch, or its card disagrees"
    )


def default_branch(root: str | Path) -> str:
    """The ref of the registry's default branch in a clone or bare clone (origin's HEAD when
    known)."""
    ref = run_git(root, "symbolic-ref", "-q", "refs/remotes/origin/HEAD", check=False).strip()
    return ref or "HEAD"


def confirm_versions(
    root: str | Path, versions: list[Version], branch: str | None = None
) -> tuple[list[Version], list[StrayTag]]:
    """Keep the versions the publish workflow made: the tag's commit is on the default branch and
    the
    card at that commit says `published`/`updated` with that very version. Anything else (a tag
    pushed by hand, on a side branch, or on a commit whose card says another version) is a stray:
    never a version, never `latest`.

    One `git rev-list` and one `git cat-file --batch` for all the tags of the model.
    """
    from registry.core.git import cat_files

    if not versions:
        return [], []
    branch = branch or default_branch(root)
    on_branch = set(run_git(root, "rev-list", branch, check=False).split())
    cards = cat_files(root, [f"{v.commit}:models/{v.name}/model.yaml" for v in versions])
    kept, stray = [], []
    for v, data in zip(versions, cards):
        reason = _stray_reason(v, data, on_branch, branch)
        if reason:
            stray.append(StrayTag(tag=v.tag, commit=v.commit, reason=reason))
        else:
            kept.append(v)
    return kept, stray


def verify_tag(root: str | Path, tag: str, branch: str | None = None) -> Version:
    """The version a tag names, when the publish workflow made it (see `confirm_versions`).

    Raises:
        UsageError: not a version tag. GitError: no such tag, or a stray tag (with the reason).
    """
    m = TAG_RE.match(tag)
    if not m or not m["version"] or m["cancel"] or m["counter"]:
        raise UsageError(f"'{tag}' is not a version tag <name>@v<version>")
    versions = [v for v in read_versions(root).get(m["name"], []) if v.tag == tag]
    if not versions:
        raise GitError(f"no annotated tag {tag} in this clone", "fetch the tags: git fetch --tags")
    kept, stray = confirm_versions(root, versions, branch)
    if stray:
        raise GitError(
            f"tag {tag} is not a published version: {stray[0].reason}",
            "packages are built only for versions the publish workflow tagged "
            "on the default branch",
        )
    return kept[0]


def _stray_reason(
    v: Version, card_bytes: bytes | None, on_branch: set[str], branch: str
) -> str | None:
    from registry.cards.schema import Status, load_card
    from registry.core.errors import CardError

    if v.commit not in on_branch:
        return f"its commit {v.commit[:10]} is not on the default branch ({branch})"
    if card_bytes is None:
        return f"its commit has no models/{v.name}/model.yaml"
    try:
        card = load_card(card_bytes).card
    except CardError:
        card = None
    if card is None:
        return "the card at its commit is not valid"
    if card.status not in (Status.published, Status.updated) or card.version != v.version:
        return (
            f"the card at its commit says status {card.status.value}, version {card.version}, "
            f"not a publication of {v.version}"
        )
    return None


def withdraw_offline(
    versions: list[Version], reason: str = "card status: offline"
) -> list[Version]:
    """Mark every version withdrawn (the model was unpublished: its card says offline)."""
    return [
        v if v.withdrawn else v.model_copy(update={"withdrawn": True, "withdrawn_by": reason})
        for v in versions
    ]


def latest(versions: list[Version]) -> Version | None:
    """The version `NAME@latest` means: the highest SemVer release that is not withdrawn.

    Pre-releases are chosen only when a model has no release at all.
    """
    live = [v for v in versions if not v.withdrawn]
    releases = [v for v in live if not v.prerelease]
    pool = releases or live
    return max(pool, key=lambda v: semver_key(v.version)) if pool else None


def resolve(table: dict[str, list[Version]], name: str, version: str) -> Version:
    """The Version a `name` + `version` (or 'latest') request means.

    Raises:
        UsageError: unknown model or unknown version.
        UnavailableError: 'latest' asked for while every version is withdrawn.
    """
    versions = table.get(name)
    if not versions:
        raise UsageError(
            f"model '{name}' has no published version (no tag {name}@v<version>)",
            "see `registry list` for published models; run `git fetch --tags` in a clone",
        )
    if version == LATEST:
        found = latest(versions)
        if found is None:
            raise UnavailableError(
                f"every version of '{name}' is withdrawn, so there is no latest",
                f"pull an exact version to get a withdrawn one: {name}@{versions[-1].version}",
            )
        return found
    for v in versions:
        if v.version == version:
            return v
    known = ("…, " if len(versions) > 5 else "") + ", ".join(v.version for v in versions[-5:])
    raise UsageError(
        f"model '{name}' has no version {version} (no version tag {name}@v{version})",
        f"published versions: {known}",
    )


def tag_message(root: str | Path, tag: str) -> str:
    """The message of an annotated tag (the version's release notes); empty when there is none."""
    out = run_git(root, "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}")
    return out.strip()


def deregistration_tag(name: str, version: str, existing: list[str]) -> str:
    """The GTO tag that withdraws one version: `<name>@v<version>!#<n>`, n one above any event
    counter already used by that model's tags, whatever their kind (GTO's own numbering,
    gto/tag.py `name_tag`): `existing` is every tag name, or those matching `<name>@*` and
    `<name>#*`."""
    counters = [
        int(m.group(1))
        for t in existing
        if t.startswith((f"{name}@", f"{name}#")) and (m := _COUNTER.search(t))
    ]
    return f"{name}@v{version}!#{max(counters, default=0) + 1}"
