"""The registry index: a compact, git-native cache of every published version, kept by publish.

The tags stay the truth (GTO and DVC read them); the index answers `registry list`, `show` and
`NAME@latest` without reading every tag object and every card. It lives on its own ref,
`refs/registry/index`, as a commit (its parent is the previous index, so a push is a fast-forward
and two racing publishes cannot silently overwrite each other) whose tree holds:

- `models.tsv`: a header line `# registry-index 1<TAB><sha1 of the tag refs><TAB><tag count>`,
  then one line per model that has a card: name, state, task, project, latest version, number of
  versions, and a digest of that model's tag refs;
- `versions/<name>.json`: one file per model with tags: its tag refs and their object ids, its
  published versions (version, tag, commit, date, withdrawing tag, the DVC objects of the model
  folder: path, md5, size) and its stray tags (version tags the publish workflow did not make);
- `cards`: the `models` tree of the commit the index describes (the same tree object as on the
  default branch, so it costs nothing to store), against which a reader finds the cards that
  changed since.

A reader trusts the index only as far as it checks it, cheaply: `list` compares the digest of
every tag ref (one `git for-each-ref` that reads no tag object) and the cards that changed
since the index (one tree diff); `show` and `pull` compare one model's tag refs. Whatever does not
match is read from the tags and cards instead, with a notice on stderr naming it, so a stale or
missing index is never a silently wrong answer. `verify` recomputes the whole index from the tags
and names every disagreement; `sync` (run by publish) and `rebuild` write it.
"""

from __future__ import annotations

import os
import sys

from registry.core.errors import GitError
from registry.core.git import PIPE_SAFE, GitProcess, run_git

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

INDEX_REF = "refs/registry/index"
FORMAT = "registry-index 1"
MODELS_FILE = "models.tsv"
VERSIONS_DIR = "versions"
CARDS_ENTRY = "cards"
# What the tag digest covers: every ref under refs/tags and the object it points at, as
# `git show-ref --tags` lists them ("<object id> refs/tags/<tag>", in ref order). Listing them
# opens no tag object and sorts nothing, so a million tags cost one pass over packed-refs.
REFS_FORMAT = "%(objectname) %(refname)"
FIX = (
    "run `registry index fetch` to get the published index, or `registry index rebuild` to make "
    "it from the tags"
)

_said: set[str] = set()


def _sha1(data: bytes = b""):
    """A SHA-1 hash object (hashlib imported when first needed: `registry list` with a kept tag
    digest hashes nothing)."""
    import hashlib

    return hashlib.sha1(data)


def notice(message: str) -> None:
    """Tell the user, once per process, that an answer came from the tags rather than the index."""
    if message not in _said:
        _said.add(message)
        sys.stderr.write(f"note: {message}\n")


# --------------------------------------------------------------------------- the data


class ModelRow:
    """One line of `models.tsv`: what `registry list` prints of a model, and its tags' digest.

    (The classes here are plain classes, not dataclasses: a dataclass costs a compile when the
    module is imported, and `registry list` imports this module.)
    """

    __slots__ = ("name", "state", "task", "project", "latest", "versions", "digest")

    def __init__(
        self,
        name: str,
        state: str,
        task: str | None,
        project: str | None,
        latest: str | None,
        versions: int,
        digest: str,
    ):
        self.name, self.state, self.task, self.project = name, state, task, project
        self.latest, self.versions, self.digest = latest, versions, digest


class IndexedModel:
    """One `versions/<name>.json`: a model's tag refs (refs/tags/<tag> → object id), published
    versions and stray tags."""

    def __init__(
        self,
        name: str,
        tags: dict[str, str] | None = None,
        versions: list[dict] | None = None,
        stray: list[dict] | None = None,
    ):
        self.name = name
        self.tags = tags if tags is not None else {}
        self.versions = versions if versions is not None else []
        self.stray = stray if stray is not None else []

    def to_json(self) -> bytes:
        """The file's bytes (stable: sorted keys, one version per line)."""
        import json

        lines = [
            "{",
            f'"name": {json.dumps(self.name)},',
            f'"tags": {json.dumps(self.tags, sort_keys=True)},',
            '"versions": [',
            ",\n".join(json.dumps(v, sort_keys=True) for v in self.versions),
            "],",
            f'"stray": {json.dumps(self.stray, sort_keys=True)}',
            "}",
        ]
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> IndexedModel:
        """Read a `versions/<name>.json`."""
        import json

        raw = json.loads(data)
        return cls(name=raw["name"], tags=raw["tags"], versions=raw["versions"], stray=raw["stray"])


class Index:
    """The index as read from `refs/registry/index`: its commit, the digest and count of the tag
    refs it was written for, the `models` tree it describes, and its rows by name."""

    def __init__(
        self,
        commit: str,
        tags_digest: str,
        tag_count: int,
        cards_tree: str | None,
        rows: dict[str, ModelRow],
    ):
        self.commit, self.tags_digest, self.tag_count = commit, tags_digest, tag_count
        self.cards_tree, self.rows = cards_tree, rows


def model_digest(refs: list[tuple[str, str]]) -> str:
    """The digest of one model's tag refs [(refs/tags/<tag>, object id)], in any order."""
    text = "".join(f"{r} {o}\n" for r, o in sorted(refs))
    return _sha1(text.encode()).hexdigest()[:20]


def _clean(value: str | None) -> str:
    """A card value as one TSV cell: '-' for none, tabs and line breaks made spaces."""
    if value is None or value == "":
        return "-"
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def format_models(tags_digest: str, tag_count: int, rows: list[ModelRow]) -> bytes:
    """`models.tsv`, rows sorted by name."""
    out = [f"# {FORMAT}\t{tags_digest}\t{tag_count}\n"]
    for r in sorted(rows, key=lambda r: r.name):
        out.append(
            f"{r.name}\t{_clean(r.state)}\t{_clean(r.task)}\t{_clean(r.project)}\t"
            f"{r.latest or '-'}\t{r.versions}\t{r.digest}\n"
        )
    return "".join(out).encode()


def parse_models(data: bytes) -> tuple[str, int, dict[str, ModelRow]]:
    """(tags digest, tag count, rows by name) of a `models.tsv`.

    Raises:
        ValueError: not a models.tsv of this format.
    """
    text = data.decode()
    head, _, body = text.partition("\n")
    parts = head.split("\t")
    if len(parts) != 3 or parts[0] != f"# {FORMAT}":
        raise ValueError(f"{MODELS_FILE} does not start with '# {FORMAT}'")
    rows: dict[str, ModelRow] = {}
    for n, line in enumerate(body.splitlines(), start=2):
        f = line.split("\t")
        if len(f) != 7:
            raise ValueError(f"{MODELS_FILE}:{n}: expected 7 tab-separated fields, got {len(f)}")
        name, state, task, project, latest, count, digest = f
        rows[name] = ModelRow(
            name,
            state,
            None if task == "-" else task,
            None if project == "-" else project,
            None if latest == "-" else latest,
            int(count),
            digest,
        )
    return parts[1], int(parts[2]), rows


# --------------------------------------------------------------------------- reading git


def _batch(root: str | Path, specs: list[str]) -> list[tuple[str, str, bytes] | None]:
    """(object id, type, content) of each spec through one `git cat-file --batch`; None when
    missing."""
    request = "".join(s + "\n" for s in specs).encode()
    if len(request) <= PIPE_SAFE:
        # a request that fits in the pipe is written at once, and the answer (the index's
        # models.tsv: megabytes) read whole, not 32 KB per wake-up as `communicate` reads
        stdout, stderr, returncode = GitProcess(
            root, "cat-file", "--batch", stdin=True, stderr=True
        ).communicate(request)
    else:
        import subprocess

        done = subprocess.run(
            ["git", "cat-file", "--batch"], cwd=root, input=request, capture_output=True
        )
        stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
    if returncode != 0:
        raise GitError(f"git cat-file failed: {stderr.decode(errors='replace').strip()}")
    data, pos, out = stdout, 0, []
    for _ in specs:
        end = data.index(b"\n", pos)
        header = data[pos:end].split(b" ")
        pos = end + 1
        if len(header) == 3 and header[1] != b"missing":
            size = int(header[2])
            out.append((header[0].decode(), header[1].decode(), data[pos : pos + size]))
            pos += size + 1
        else:
            out.append(None)
    return out


def _tag_refs(root: str | Path, patterns: list[str]) -> subprocess.Popen:
    """The tag refs matching `patterns` ("<object id> <ref>" lines), listed by a started git (read
    its stdout): `git show-ref --tags` for all of them, `git for-each-ref` for a model's."""
    import subprocess

    cmd = (
        ["git", "show-ref", "--tags"]
        if patterns == ["refs/tags"]
        else ["git", "for-each-ref", f"--format={REFS_FORMAT}", *patterns]
    )
    return subprocess.Popen(
        cmd,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


class TagDigest:
    """The SHA-1 of every tag ref (what `git show-ref --tags` prints), hashed in a thread while git
    streams them (nothing kept: a million refs are 75 MB of text); or, when the files holding the
    tag refs did not change since a reader last computed it, the digest that reader kept
    (`registry.versions.tag_digest`), without starting git."""

    def __init__(self, root: str | Path):
        from registry.versions import tag_digest as kept

        self._digest: str | None = None
        self._common = kept.git_common_dir(root)
        self._state = kept.ref_state(self._common) if self._common is not None else None
        if self._state is not None:
            found = kept.cached_digest(self._common, self._state)
            if found is not None:
                self._digest, self.count = found
                return
        import threading

        self.count = 0
        self._proc = _tag_refs(root, ["refs/tags"])
        self._sha = _sha1()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        read = self._proc.stdout.read
        lines = 0
        while chunk := read(1 << 20):
            self._sha.update(chunk)
            lines += chunk.count(b"\n")
        self.count = lines
        self._proc.wait()

    def hexdigest(self) -> str:
        """The digest, once git has listed every tag ref."""
        if self._digest is None:
            self._thread.join()
            self._digest = self._sha.hexdigest()
            if self._proc.returncode == 0 and self._state is not None:
                from registry.versions.tag_digest import keep_digest

                keep_digest(self._common, self._state, self._digest, self.count)
        return self._digest


def all_tag_refs(root: str | Path) -> bytes:
    """Every tag ref, as `git show-ref --tags` lists them."""
    return _tag_refs(root, ["refs/tags"]).communicate()[0]


def refs_by_model(out: bytes | str) -> dict[str, list[tuple[str, str]]]:
    """{model name: [(refs/tags/<tag>, object id)]} of the registry's tags in for-each-ref output
    (tags of other shapes are left out)."""
    from registry.versions.tags import TAG_RE

    if isinstance(out, bytes):
        out = out.decode()
    grouped: dict[str, list[tuple[str, str]]] = {}
    for line in out.splitlines():
        oid, _, ref = line.partition(" ")
        m = TAG_RE.match(ref[10:])
        if m:
            grouped.setdefault(m["name"], []).append((ref, oid))
    return grouped


class IndexHead:
    """What a reader of the whole index needs first: the index commit, the digest and count of the
    tag refs it was written for, `models.tsv` as stored (parsed by the reader, as far as it needs)
    and the `models` tree it describes."""

    __slots__ = ("commit", "tags_digest", "tag_count", "models", "cards_tree")

    def __init__(
        self,
        commit: str,
        tags_digest: str,
        tag_count: int,
        models: bytes,
        cards_tree: str | None,
    ):
        self.commit, self.tags_digest, self.tag_count = commit, tags_digest, tag_count
        self.models, self.cards_tree = models, cards_tree


def read_index_head(
    root: str | Path, rev: str | None = None
) -> tuple[IndexHead | None, str | None, str]:
    """The index's commit, header, `models.tsv` and `cards` tree, and the `models` tree of `rev`
    (default HEAD), through one `git cat-file --batch`.

    Returns:
        (head or None, the tree id of `<rev>:models` or None, the reason when head is None). The
        rows are not parsed: see `models_columns` and `parse_models`.
    """
    got = _batch(
        root,
        [
            INDEX_REF,
            f"{INDEX_REF}:{MODELS_FILE}",
            f"{INDEX_REF}:{CARDS_ENTRY}",
            f"{rev or 'HEAD'}:models",
        ],
    )
    commit, models, cards, here = got
    here_tree = here[0] if here and here[1] == "tree" else None
    if commit is None:
        return None, here_tree, f"this clone has no registry index ({INDEX_REF})"
    if models is None:
        return None, here_tree, f"the registry index {commit[0][:10]} has no {MODELS_FILE}"
    data = models[2]
    end = data.find(b"\n")
    parts = data[: end if end >= 0 else len(data)].split(b"\t")
    if len(parts) != 3 or parts[0] != f"# {FORMAT}".encode() or not parts[2].isdigit():
        return (
            None,
            here_tree,
            f"the registry index cannot be read: {MODELS_FILE} does not start with '# {FORMAT}'",
        )
    head = IndexHead(
        commit=commit[0],
        tags_digest=parts[1].decode(errors="replace"),
        tag_count=int(parts[2]),
        models=data,
        cards_tree=cards[0] if cards and cards[1] == "tree" else None,
    )
    return head, here_tree, ""


def models_columns(data: bytes) -> tuple[list[str], ...]:
    """The columns of a `models.tsv` (name, state, task, project, latest, versions, digest), as
    stored (`-` for none): split in one pass, no object per row.

    A line with a field too many or too few shifts the cells after it: the count column would
    then hold other text, or the digest column something else than 20 hex digits (or `-`), so
    those two are checked whole.

    Raises:
        ValueError: a line that is not 7 tab-separated fields (the first one named).
    """
    body = data.decode().partition("\n")[2]
    cells = body.replace("\n", "\t").split("\t") if body else []
    if body.endswith("\n"):
        cells.pop()
    columns = tuple(cells[k::7] for k in range(7))
    counts, digests = columns[5], columns[6]
    if (
        len(cells) % 7
        or (counts and not "".join(counts).isdigit())
        or not set(map(len, digests)) <= {1, 20}
        or "".join(digests).translate(_NOT_DIGEST)
        or not "".join(counts).isascii()
    ):
        parse_models(data)  # names the bad line
        raise ValueError(f"{MODELS_FILE}: a line is not 7 tab-separated fields")
    return columns


# deletes every character a digest cell may hold: what is left is not a digest
_NOT_DIGEST = str.maketrans("", "", "0123456789abcdef-")


def read_index(root: str | Path, rev: str | None = None) -> tuple[Index | None, str | None, str]:
    """The index, the `models` tree of `rev` (default HEAD), and why there is no usable index.

    Returns:
        (index or None, the tree id of `<rev>:models` or None, the reason when index is None).
    """
    head, here_tree, reason = read_index_head(root, rev)
    if head is None:
        return None, here_tree, reason
    try:
        digest, count, rows = parse_models(head.models)
    except (ValueError, UnicodeDecodeError) as e:
        return None, here_tree, f"the registry index cannot be read: {e}"
    index = Index(
        commit=head.commit,
        tags_digest=digest,
        tag_count=count,
        cards_tree=head.cards_tree,
        rows=rows,
    )
    return index, here_tree, ""


def read_models(root: str | Path, names: list[str]) -> dict[str, IndexedModel | None]:
    """The `versions/<name>.json` of each name (None where the index has none)."""
    if len(names) < _WHOLE_TREE:
        got = _batch(root, [f"{INDEX_REF}:{VERSIONS_DIR}/{n}.json" for n in names])
        blobs = [item[2] if item and item[1] == "blob" else None for item in got]
    else:
        # many: the versions tree listed once, the files read by id (no scan of a tree of a
        # hundred thousand entries per name)
        listed = run_git(root, "ls-tree", "-z", f"{INDEX_REF}:{VERSIONS_DIR}", check=False)
        oids = {}
        for item in listed.split("\0"):
            meta, _, path = item.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                oids[path] = parts[2]
        wanted = [oids.get(f"{n}.json") for n in names]
        found = iter(_contents(root, [o for o in wanted if o is not None]))
        blobs = [next(found) if o is not None else None for o in wanted]
    out: dict[str, IndexedModel | None] = {}
    for n, data in zip(names, blobs):
        try:
            out[n] = IndexedModel.from_json(data) if data is not None else None
        except (ValueError, KeyError, TypeError):
            out[n] = None
    return out


def changed_cards(root: str | Path, old_tree: str | None, new_tree: str | None) -> set[str] | None:
    """Names of the models whose card differs between two `models` trees (None: unknown)."""
    if old_tree == new_tree:
        return set()
    if old_tree is None or new_tree is None:
        return None
    out, _, code = GitProcess(
        root, "diff-tree", "-r", "--name-only", "--no-renames", old_tree, new_tree
    ).communicate()
    if code != 0:
        return None
    names = set()
    for path in out.decode(errors="surrogateescape").splitlines():
        name, _, rest = path.partition("/")
        if rest == "model.yaml":
            names.add(name)
    return names


class WorktreeCards:
    """Models whose card in the working tree may differ from HEAD's: edited, staged, removed, or in
    a folder git does not know yet.

    Git compares the cards with HEAD (`git diff-index`, which stats each card file and compares
    the staged ones through the index's cached trees) in a process started at once, so that it
    runs while the caller reads the index; `names` collects its answer and adds the folders of
    `models/` that are not in `known`.
    """

    def __init__(self, root: str | Path):
        self._root = os.fspath(root)
        self._proc = GitProcess(
            root, "diff-index", "--name-only", "--no-renames", "HEAD", "--", "models/*/model.yaml"
        )

    def close(self) -> None:
        """Stop git, when its answer is not needed after all."""
        self._proc.kill()

    def names(self, known, key: str | None = None) -> set[str]:
        """The models whose card may have changed; `known`: the models the caller already has,
        `key`: a name for that list (the index commit it comes from) under which the folders
        found in `models/` may be kept between reads (`_unknown_folders`)."""
        out = self._proc.communicate()[0].decode(errors="surrogateescape")
        names = {p.split("/")[1] for p in out.splitlines() if p.count("/") == 2}
        names.update(_unknown_folders(os.path.join(self._root, "models"), known, key))
        return names


_FOLDERS_CACHE = "registry/models-folders"
_FOLDERS_HEADER = "registry-models-folders 1"


def _unknown_folders(folder: str, known, key: str | None) -> set[str]:
    """The folders of `models/` that are not in `known` (a hundred thousand entries listed and
    compared). When `key` names `known`, the answer is kept beside git's files with the state of
    `models/` (inode, size, modification and change times: adding, removing or renaming an entry
    changes them), as the tag digest is kept (`tag_digest`, whose margin against racy writes it
    shares: the answer is kept only when `models/` had not changed for that long), and reused
    while that state is the same."""
    from registry.versions import tag_digest as kept

    common = kept.git_common_dir(os.path.dirname(folder)) if key else None
    before, settled = _folder_state(folder, kept.MARGIN_S)
    cache = head = None
    if common is not None and before is not None:
        cache = os.path.join(common, _FOLDERS_CACHE)
        head = f"{_FOLDERS_HEADER}\n{key}\n{os.path.realpath(folder)}\n{before}\n"
        try:
            with open(cache, errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            text = ""
        if text.startswith(head):
            return set(filter(None, text[len(head) :].split("\n")))
    try:
        unknown = set(os.listdir(folder)).difference(known)
    except (FileNotFoundError, NotADirectoryError):
        unknown = set()
    found = {n for n in unknown if not n.startswith(".") and os.path.isdir(os.path.join(folder, n))}
    if cache is not None and settled and _folder_state(folder, 0)[0] == before:
        kept.write_kept(cache, head + "".join(f"{n}\n" for n in sorted(found)))
    return found


def _folder_state(folder: str, margin_s: float) -> tuple[str | None, bool]:
    """(the stat of `folder` as text, whether it was last changed at least `margin_s` ago)."""
    import time

    now = time.time_ns()
    try:
        st = os.stat(folder)
    except OSError:
        return None, False
    state = f"{st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"
    return state, max(st.st_mtime_ns, st.st_ctime_ns) <= now - int(margin_s * 1e9)


def worktree_cards(root: str | Path, known) -> set[str]:
    """Models whose card in the working tree may differ from HEAD's: edited, staged, removed, or in
    a folder git does not know yet (`known`: the models the caller already has)."""
    return WorktreeCards(root).names(known)


# --------------------------------------------------------------------------- one model (show, pull)


def model_from_index(root: str | Path, name: str) -> IndexedModel | None:
    """One model's index entry, when it agrees with the model's tag refs in this clone.

    Returns None (with a notice saying why) when there is no index, or when the tags of `name`
    disagree with it: the caller then reads the tags.
    """
    return model_and_blobs(root, name, [])[0]


def model_and_blobs(
    root: str | Path, name: str, specs: list[str]
) -> tuple[IndexedModel | None, list[bytes | None]]:
    """`model_from_index`, and the blobs `specs` name (`<rev>:<path>`; None where missing) read by
    the same `git cat-file`, while `git for-each-ref` lists the model's tags beside it."""
    tags = _tag_refs(root, [f"refs/tags/{name}@*"])
    got = _batch(root, [INDEX_REF, f"{INDEX_REF}:{VERSIONS_DIR}/{name}.json", *specs])
    out = tags.communicate()[0].decode()
    blobs = [g[2] if g is not None and g[1] == "blob" else None for g in got[2:]]
    refs = {r: o for o, _, r in (line.partition(" ") for line in out.splitlines()) if r}
    if got[0] is None:
        notice(f"no registry index ({INDEX_REF}) in this clone; reading the tags of {name}. {FIX}")
        return None, blobs
    entry = None
    if got[1] is not None and got[1][1] == "blob":
        try:
            entry = IndexedModel.from_json(got[1][2])
        except (ValueError, KeyError, TypeError):
            entry = None
    known = entry.tags if entry else {}
    if refs == known:
        return entry or IndexedModel(name=name), blobs
    diff = describe_difference(known, refs)
    notice(
        f"the registry index disagrees with the tags of {name} ({diff}); reading the tags. {FIX}"
    )
    return None, blobs


def describe_difference(indexed: dict[str, str], actual: dict[str, str]) -> str:
    """The tags that differ between the index and the clone, in a few words."""
    missing = sorted(set(actual) - set(indexed))
    gone = sorted(set(indexed) - set(actual))
    moved = sorted(t for t in set(actual) & set(indexed) if actual[t] != indexed[t])
    parts = []
    for label, tags in (
        ("not in the index", missing),
        ("in the index but not in this clone", gone),
        ("pointing elsewhere", moved),
    ):
        if tags:
            shown = ", ".join(t.removeprefix("refs/tags/") for t in tags[:3])
            parts.append(f"{shown}{', …' if len(tags) > 3 else ''} {label}")
    return "; ".join(parts) or "the index entry cannot be read"


def versions_of(entry: IndexedModel):
    """The published versions of an index entry as `Version`s (lowest first), and its stray
    tags."""
    from datetime import datetime, timezone

    from registry.versions.tags import StrayTag, Version

    versions = [
        Version.model_construct(
            name=entry.name,
            version=v["version"],
            tag=v["tag"],
            commit=v["commit"],
            date=datetime.fromtimestamp(v["date"], tz=timezone.utc),
            withdrawn=v.get("withdrawn_by") is not None,
            withdrawn_by=v.get("withdrawn_by"),
        )
        for v in entry.versions
    ]
    stray = [StrayTag(**s) for s in entry.stray]
    return versions, stray


# --------------------------------------------------------------------------- computing entries


def compute(
    root: str | Path, head: str, names: list[str], tag_lines: list[str]
) -> tuple[dict[str, IndexedModel], dict[str, ModelRow]]:
    """Index entries and rows of `names`, from the tags and the cards at `head` (the truth).

    The same answer as reading each card with `cards.bulk.read_cards` and confirming the versions
    with `tags.confirm_versions`, read in bulk: the model folders of every version's commit come
    from the commits' `models` trees (`ModelFolders`: one `git cat-file` stream, no path looked up
    in a tree of a hundred thousand entries per version), and each distinct card blob is validated
    once.

    Args:
        root: the clone.
        head: the default branch's commit the index describes.
        names: the models to compute.
        tag_lines: `git for-each-ref --format=<TAG_REF_FORMAT>` lines of those models' tags.

    Returns:
        ({name: entry} for models with tags, {name: row} for models with a card at `head`).
    """
    from registry.versions.tags import TAG_RE, latest, parse_refs, withdraw_offline

    wanted = set(names)
    table = parse_refs("\n".join(tag_lines))
    all_versions = [v for n in sorted(wanted) for v in table.get(n, [])]
    folders = ModelFolders(root)
    folders.add([(head, n) for n in sorted(wanted)])
    folders.add([(v.commit, v.name) for v in all_versions])
    folders.read()
    folders.validate()
    card_at = folders.card
    cards = {n: card_at(head, n) for n in sorted(wanted) if folders.has_card(head, n)}
    kept, stray = _confirm(root, all_versions, head, folders)
    refs: dict[str, dict[str, str]] = {}
    for line in tag_lines:
        fields = line.split("\t")
        if len(fields) == 5:
            m = TAG_RE.match(fields[0])
            if m and m["name"] in wanted:
                refs.setdefault(m["name"], {})[f"refs/tags/{fields[0]}"] = fields[2]
    entries: dict[str, IndexedModel] = {}
    for n in refs:
        entries[n] = IndexedModel(name=n, tags=refs[n])
    for v in kept:
        entries[v.name].versions.append(
            {
                "version": v.version,
                "tag": v.tag,
                "commit": v.commit,
                "date": int(v.date.timestamp()),
                "withdrawn_by": v.withdrawn_by,
                "objects": folders.objects(v.commit, v.name),
            }
        )
    for s in stray:
        entries[s["tag"].partition("@")[0]].stray.append(s)
    rows: dict[str, ModelRow] = {}
    by_model: dict[str, list] = {}
    for v in kept:
        by_model.setdefault(v.name, []).append(v)
    for n, card in cards.items():
        versions = by_model.get(n, [])
        if card is not None and card.status == "offline":
            versions = withdraw_offline(versions)
        found = latest(versions)
        rows[n] = ModelRow(
            name=n,
            state=card.status if card else "invalid",
            task=card.task if card else None,
            project=card.project if card else None,
            latest=found.version if found else None,
            versions=len(versions),
            digest=model_digest(list(refs.get(n, {}).items())),
        )
    return entries, rows


def _confirm(root: str | Path, versions: list, branch: str, folders: ModelFolders):
    """`tags.confirm_versions(root, versions, branch)` with the cards read by `folders`: the same
    kept versions and stray tags (as the index stores them: tag, commit, reason), with the same
    reasons (tests/test_index.py compares them)."""
    if not versions:
        return [], []
    on_branch = set(run_git(root, "rev-list", branch, check=False).split())
    kept, stray = [], []
    for v in versions:
        card = folders.card(v.commit, v.name)
        if v.commit not in on_branch:
            reason = f"its commit {v.commit[:10]} is not on the default branch ({branch})"
        elif not folders.has_card(v.commit, v.name):
            reason = f"its commit has no models/{v.name}/model.yaml"
        elif card is None:
            reason = "the card at its commit is not valid"
        elif card.status not in ("published", "updated") or card.version != v.version:
            reason = (
                f"the card at its commit says status {card.status}, version "
                f"{card.version}, not a publication of {v.version}"
            )
        else:
            kept.append(v)
            continue
        stray.append({"tag": v.tag, "commit": v.commit, "reason": reason})
    return kept, stray


# a `models` tree is read whole (one object, parsed here) when this many of its models are wanted;
# fewer are looked up by path (git scans the tree for each)
_WHOLE_TREE = 64


class ModelFolders:
    """The model folders of many (commit, model) pairs, their cards (validated once per distinct
    blob) and their DVC pointers, read through a few `git cat-file` streams.

    `git cat-file` resolves `<commit>:models/<name>/model.yaml` by scanning the `models` tree for
    `<name>`: a million versions in a registry of a hundred thousand models would scan fifty
    billion entries. Here each commit's `models` tree id is looked up once, a tree holding many
    of the wanted models is parsed once, and the folders (usually shared by many commits: a
    folder that did not change is the same tree) are read once each.
    """

    def __init__(self, root: str | Path):
        self._root = root
        self._pairs: set[tuple[str, str]] = set()
        self._folder: dict[tuple[str, str], str | None] = {}
        self._files: dict[str, list[tuple[str, str, str, str]]] = {}  # rel, mode, kind, oid
        self._blobs: dict[str, bytes | None] = {}
        self._cards: dict[str, object] = {}
        self._card_of: dict[str | None, str] = {}  # folder tree → its model.yaml blob

    def add(self, pairs) -> None:
        """Ask for the folders of these (commit, model name) pairs."""
        self._pairs.update(pairs)

    def read(self) -> None:
        """Read every folder asked for, its cards and its DVC pointers."""
        commits = sorted({c for c, _ in self._pairs})
        trees = dict(zip(commits, _check(self._root, [f"{c}:models" for c in commits])))
        by_tree: dict[str, set[str]] = {}
        for c, n in self._pairs:
            t = trees.get(c)
            if t is not None and t[1] == "tree":
                by_tree.setdefault(t[0], set()).add(n)
        folder_of: dict[tuple[str, str], str | None] = {}  # (models tree, name) → folder tree
        whole = [t for t, ns in by_tree.items() if len(ns) >= _WHOLE_TREE]
        for t, data in zip(whole, _contents(self._root, whole)):
            wanted = by_tree[t]
            for mode, name, oid in _tree_entries(data or b""):
                if name in wanted:
                    folder_of[(t, name)] = oid if mode == "40000" else None
        few = [(t, n) for t, ns in by_tree.items() if len(ns) < _WHOLE_TREE for n in sorted(ns)]
        for (t, n), got in zip(few, _check(self._root, [f"{t}:{n}" for t, n in few])):
            folder_of[(t, n)] = got[0] if got is not None and got[1] == "tree" else None
        for c, n in self._pairs:
            t = trees.get(c)
            self._folder[(c, n)] = (
                folder_of.get((t[0], n)) if t is not None and t[1] == "tree" else None
            )
        self._read_folders({f for f in self._folder.values() if f is not None})
        oids = sorted(
            {
                oid
                for files in self._files.values()
                for rel, mode, kind, oid in files
                if kind == "blob" and (rel == CARD or (rel.endswith(".dvc") and mode != "120000"))
            }
        )
        self._blobs = dict(zip(oids, _contents(self._root, oids)))
        for folder, files in self._files.items():
            for rel, _, kind, oid in files:
                if rel == CARD and kind == "blob" and self._blobs.get(oid) is not None:
                    self._card_of[folder] = oid
                    break

    def _read_folders(self, folders: set[str]) -> None:
        """Every file of these folder trees, subfolders included, as `git ls-tree -r` lists them
        (its order; submodules are not entered)."""
        listed: dict[str, list[tuple[str, str, str]]] = {}
        todo = sorted(folders)
        while todo:
            for t, data in zip(todo, _contents(self._root, todo)):
                listed[t] = _tree_entries(data or b"")
            todo = sorted(
                {oid for t in todo for mode, _, oid in listed[t] if mode == "40000"} - set(listed)
            )

        def walk(tree: str, prefix: str, out: list) -> None:
            for mode, name, oid in listed.get(tree, []):
                if mode == "40000":
                    walk(oid, f"{prefix}{name}/", out)
                else:
                    kind = "commit" if mode == "160000" else "blob"
                    out.append((f"{prefix}{name}", mode.rjust(6, "0"), kind, oid))

        for f in folders:
            self._files[f] = out = []
            walk(f, "", out)

    def has_card(self, commit: str, name: str) -> bool:
        """Whether the model's folder at `commit` holds a `model.yaml` blob."""
        return self._card_blob(commit, name) is not None

    def _card_blob(self, commit: str, name: str) -> str | None:
        return self._card_of.get(self._folder.get((commit, name)))

    def validate(self) -> None:
        """Validate every card read, each distinct blob once (in a few processes when there are
        many)."""
        oids = sorted({oid for oid in self._card_of.values() if oid not in self._cards})
        self._cards.update(zip(oids, _facts_of_all([self._blobs[o] for o in oids])))

    def card(self, commit: str, name: str) -> CardFacts | None:
        """What the index needs of the model's card at `commit` when it is valid, or None (missing
        or invalid: `cards.schema.load_card(...).card` is None)."""
        oid = self._card_of.get(self._folder.get((commit, name)))
        if oid is None:
            return None
        if oid not in self._cards:
            self._cards[oid] = _facts(self._blobs[oid])
        return self._cards[oid]

    def objects(self, commit: str, name: str) -> list[dict]:
        """[{path, md5, size}]: the DVC pointers in the model's folder at `commit`."""
        from registry.core.storage import PointerError, parse_pointer

        folder = self._folder.get((commit, name))
        found = []
        for rel, mode, kind, oid in self._files.get(folder, ()) if folder else ():
            if kind != "blob" or not rel.endswith(".dvc") or mode == "120000":
                continue
            try:
                p = parse_pointer(self._blobs.get(oid) or b"")
            except PointerError:
                continue
            sub = rel.rpartition("/")[0]
            found.append(
                {"path": f"{sub}/{p.path}" if sub else p.path, "md5": p.md5, "size": p.size}
            )
        return found


CARD = "model.yaml"


class CardFacts:
    """What the index takes from a valid card: its status, version, task and project (text)."""

    __slots__ = ("status", "version", "task", "project")

    def __init__(self, status: str, version: str | None, task: str, project: str):
        self.status, self.version, self.task, self.project = status, version, task, project


def _facts(data: bytes) -> CardFacts | None:
    """The facts of a valid card, None for one that cannot be read or does not validate."""
    card = _valid_card(data)
    if card is None:
        return None
    return CardFacts(card.status.value, card.version, card.task.value, card.project)


# the cards a forked worker validates: set before the workers start, inherited by them
_PENDING: list[bytes] = []


def _facts_of_range(bounds: tuple[int, int]) -> list[tuple | None]:
    return [
        (f.status, f.version, f.task, f.project) if f else None
        for f in map(_facts, _PENDING[bounds[0] : bounds[1]])
    ]


def _facts_of_all(blobs: list[bytes]) -> list[CardFacts | None]:
    """`_facts` of each card; many are shared out between forked processes, one per CPU this
    process may use (a rebuild validates every card of every version)."""
    global _PENDING
    try:
        workers = min(len(os.sched_getaffinity(0)), 8)
    except (AttributeError, OSError):
        workers = 1
    if workers < 2 or len(blobs) < 2000:
        return [_facts(b) for b in blobs]
    import multiprocessing

    _facts(blobs[0])  # the schema imported and built once, before the fork
    step = -(-len(blobs) // (workers * 4))
    _PENDING = blobs
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_facts_of_range, [(i, i + step) for i in range(0, len(blobs), step)])
    finally:
        _PENDING = []
    return [CardFacts(*t) if t else None for part in parts for t in part]


def _valid_card(data: bytes):
    """`load_card(data).card` (None when the card cannot be read or does not validate). A card in
    the plain shape (`cards.plaincard`: the parser's data, sooner; a key given twice, which the
    loader refuses, is not plain) within the size limit is validated directly, as the catalog
    does; any other goes through the loader."""
    from registry.cards.plaincard import read_plain
    from registry.cards.schema import MAX_CARD_BYTES, ModelCard, load_card
    from registry.core.errors import CardError

    if len(data) <= MAX_CARD_BYTES:
        doc = read_plain(data)
        if isinstance(doc, dict):
            from pydantic import ValidationError

            try:
                return ModelCard.model_validate(doc)
            except ValidationError:
                return None
    try:
        return load_card(data).card
    except CardError:
        return None


def _tree_entries(data: bytes) -> list[tuple[str, str, str]]:
    """(mode, name, object id) of each entry of a tree object's content, in its order."""
    out = []
    pos, end = 0, len(data)
    find = data.find
    while pos < end:
        space = find(b" ", pos)
        nul = find(b"\0", space)
        if space < 0 or nul < 0:
            break
        out.append(
            (
                data[pos:space].decode(),
                data[space + 1 : nul].decode(errors="surrogateescape"),
                data[nul + 1 : nul + 21].hex(),
            )
        )
        pos = nul + 21
    return out


def _check(root: str | Path, specs: list[str]) -> list[tuple[str, str] | None]:
    """(object id, type) of each spec through one `git cat-file --batch-check`; None when
    missing."""
    if not specs:
        return []
    import subprocess

    proc = subprocess.run(
        ["git", "cat-file", "--batch-check", "--buffer"],
        cwd=root,
        input="".join(s + "\n" for s in specs).encode(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise GitError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    out: list[tuple[str, str] | None] = []
    for line in proc.stdout.decode().splitlines():
        parts = line.split(" ")
        out.append((parts[0], parts[1]) if len(parts) == 3 else None)
    if len(out) != len(specs):
        raise GitError("git cat-file answered an unexpected number of lines")
    return out


def _contents(root: str | Path, oids: list[str]) -> list[bytes | None]:
    """The content of each object (any type) through one `git cat-file --batch`."""
    from registry.core.git import cat_files

    return cat_files(root, oids, (b"blob", b"tree"))


# --------------------------------------------------------------------------- writing


class SyncResult:
    """What `sync` did: the index commit, the models it recomputed, whether it started afresh."""

    def __init__(
        self, commit: str | None = None, changed: list[str] | None = None, rebuilt: bool = False
    ):
        self.commit, self.changed, self.rebuilt = commit, changed or [], rebuilt


def _all_tag_lines(root: str | Path) -> list[str]:
    from registry.core.git import TAG_REF_FORMAT

    return run_git(root, "for-each-ref", f"--format={TAG_REF_FORMAT}", "refs/tags").splitlines()


def sync(
    root: str | Path, head: str = "HEAD", *, rebuild: bool = False, message: str = ""
) -> SyncResult:
    """Bring the index up to date with the tags and the cards at `head`, and commit it on
    `refs/registry/index`: only the models whose tags or card changed are recomputed (all of them
    with `rebuild`).

    Raises:
        GitError: `head` is not a commit, or the ref moved while writing (another sync won).
    """
    head = run_git(root, "rev-parse", "--verify", f"{head}^{{commit}}").strip()
    current = run_git(root, "rev-parse", "-q", "--verify", INDEX_REF, check=False).strip() or None
    index, head_tree, _ = read_index(root, head)
    if rebuild:
        index = None
    lines = _all_tag_lines(root)
    digest_out = "".join(
        f"{f[2]} refs/tags/{f[0]}\n" for f in (line.split("\t") for line in lines) if len(f) == 5
    )
    refs = refs_by_model(digest_out)
    tags_digest = _sha1(digest_out.encode()).hexdigest()
    tag_count = digest_out.count("\n")
    card_names = _card_names(root, head_tree)
    if index is None:
        todo = set(card_names) | set(refs)
        old_rows: dict[str, ModelRow] = {}
    else:
        old_rows = index.rows
        cards = changed_cards(root, index.cards_tree, head_tree)
        if cards is None:
            cards = set(card_names) | set(old_rows)
        todo = set(cards) | (set(old_rows) - set(card_names)) | (set(card_names) - set(old_rows))
        # each model's tag digest: from models.tsv, or from its versions file when it has no card
        recorded = _entry_digests(root, index.commit, skip=old_rows)
        recorded.update({n: r.digest for n, r in old_rows.items()})
        none = model_digest([])
        for n in set(refs) | set(recorded):
            if recorded.get(n, none) != model_digest(refs.get(n, [])):
                todo.add(n)
    by_name: dict[str, list[str]] = {}
    from registry.versions.tags import TAG_RE

    for line in lines:
        m = TAG_RE.match(line.split("\t", 1)[0])
        if m and m["name"] in todo:
            by_name.setdefault(m["name"], []).append(line)
    entries, rows = compute(root, head, sorted(todo), [x for n in by_name for x in by_name[n]])
    new_rows = {n: r for n, r in old_rows.items() if n not in todo and n in card_names}
    new_rows.update(rows)
    if index is not None and not todo and index.tags_digest == tags_digest:
        return SyncResult(commit=index.commit, changed=[])
    commit = _write(
        root,
        parent=current,
        models=format_models(tags_digest, tag_count, list(new_rows.values())),
        entries={n: entries.get(n) for n in todo},
        cards_tree=head_tree,
        message=message or f"registry index at {head[:10]}: {len(todo)} model(s) updated",
        deleteall=index is None,
    )
    return SyncResult(commit=commit, changed=sorted(todo), rebuilt=index is None)


def _card_names(root: str | Path, tree: str | None) -> set[str]:
    """Models with a `model.yaml` in a `models` tree."""
    if tree is None:
        return set()
    out = run_git(root, "ls-tree", "-r", "--name-only", tree)
    return {
        p.split("/")[0] for p in out.splitlines() if p.count("/") == 1 and p.endswith("/model.yaml")
    }


def _entry_digests(root: str | Path, commit: str, skip: dict | set = frozenset()) -> dict[str, str]:
    """{name: digest of its tag refs as the index records them} for every versions/ file (but
    those of `skip`)."""
    out = run_git(root, "ls-tree", f"{commit}:{VERSIONS_DIR}", check=False)
    names, oids = [], []
    for line in out.splitlines():
        meta, _, path = line.partition("\t")
        if path.endswith(".json") and path[:-5] not in skip:
            names.append(path[:-5])
            oids.append(meta.split()[2])
    from registry.core.git import cat_files

    digests = {}
    for n, data in zip(names, cat_files(root, oids)):
        try:
            digests[n] = model_digest(list(IndexedModel.from_json(data or b"").tags.items()))
        except (ValueError, KeyError, TypeError):
            digests[n] = ""
    return digests


def _write(
    root: str | Path,
    *,
    parent: str | None,
    models: bytes,
    entries: dict[str, IndexedModel | None],
    cards_tree: str | None,
    message: str,
    deleteall: bool,
) -> str:
    """Commit the index and move `refs/registry/index` to it, refusing when the ref moved
    meanwhile. The changed files are written as blobs through one `git fast-import`, the trees
    with `git mktree` (which sorts 100,000 entries at once, where fast-import would search its
    tree once per file), the commit with `git commit-tree`."""
    stream: list[bytes] = []

    def blob(payload: bytes) -> str:
        stream.append(b"blob\ndata %d\n" % len(payload) + payload + b"\n")
        return _sha1(b"blob %d\0" % len(payload) + payload).hexdigest()

    models_blob = blob(models)
    listing: dict[str, str] = {}
    if parent and not deleteall:
        out = run_git(root, "ls-tree", f"{parent}:{VERSIONS_DIR}", check=False)
        for line in out.splitlines():
            meta, _, path = line.partition("\t")
            listing[path] = meta
    for name, entry in entries.items():
        path = f"{name}.json"
        if entry is None or not entry.tags:
            listing.pop(path, None)
        else:
            listing[path] = f"100644 blob {blob(entry.to_json())}"
    import subprocess

    proc = subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=root, input=b"".join(stream), capture_output=True
    )
    if proc.returncode != 0:
        raise GitError(f"writing the registry index failed: {proc.stderr.decode().strip()}")
    versions_tree = _mktree(root, [f"{meta}\t{path}" for path, meta in listing.items()])
    top = [
        f"100644 blob {models_blob}\t{MODELS_FILE}",
        f"040000 tree {versions_tree}\t{VERSIONS_DIR}",
    ]
    if cards_tree:
        top.append(f"040000 tree {cards_tree}\t{CARDS_ENTRY}")
    tree = _mktree(root, top)
    who = {"GIT_AUTHOR_NAME": "registry", "GIT_AUTHOR_EMAIL": "registry@localhost"}
    who |= {"GIT_COMMITTER_NAME": "registry", "GIT_COMMITTER_EMAIL": "registry@localhost"}
    commit = run_git(
        root,
        "commit-tree",
        tree,
        *(["-p", parent] if parent else []),
        "-m",
        message,
        env={**os.environ, **who},
    ).strip()
    try:
        run_git(root, "update-ref", INDEX_REF, commit, parent or "0" * 40)
    except GitError:
        raise GitError(
            f"{INDEX_REF} moved while the index was written (another sync ran)",
            "run it again: it starts from the index the other run wrote",
        ) from None
    return commit


def _mktree(root: str | Path, lines: list[str]) -> str:
    """`git mktree` of `ls-tree`-style lines."""
    import subprocess

    proc = subprocess.run(
        ["git", "mktree"],
        cwd=root,
        input="".join(x + "\n" for x in lines),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise GitError(f"writing the registry index failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


# --------------------------------------------------------------------------- verification


class Verification:
    """What `verify` found: the index checked (its commit), the commit compared with, every
    disagreement with the tags and cards, and the cards changed since the index was written."""

    def __init__(self, commit: str | None, head: str):
        self.commit, self.head = commit, head
        self.problems: list[str] = []
        self.cards_changed: list[str] = []

    def to_dict(self) -> dict:
        """The verification as JSON-ready data."""
        return {
            "commit": self.commit,
            "head": self.head,
            "ok": self.ok,
            "problems": self.problems,
            "cards_changed": self.cards_changed,
        }

    @property
    def ok(self) -> bool:
        """No disagreement."""
        return self.commit is not None and not self.problems


def verify(root: str | Path, head: str | None = None) -> Verification:
    """Recompute the index from the tags and the cards at `head` (default: the default branch)
    and compare it with `refs/registry/index`, naming every model and version that differs.

    Card-derived columns (state, task, project, latest) are compared only for models whose card is
    the same at `head` as in the index's `cards` tree: a card changed since the last publish is
    listed in `cards_changed`, not as a disagreement (publish updates the index on the merge).
    """
    from registry.versions.tags import default_branch

    head = run_git(
        root, "rev-parse", "--verify", f"{head or default_branch(root)}^{{commit}}"
    ).strip()
    index, head_tree, reason = read_index(root, head)
    result = Verification(commit=index.commit if index else None, head=head)
    if index is None:
        result.problems.append(reason)
        return result
    lines = _all_tag_lines(root)
    digest_out = "".join(
        f"{f[2]} refs/tags/{f[0]}\n" for f in (line.split("\t") for line in lines) if len(f) == 5
    )
    refs = refs_by_model(digest_out)
    card_names = _card_names(root, head_tree)
    names = sorted(card_names | set(refs) | set(index.rows))
    entries, rows = compute(root, head, names, lines)
    stored = read_models(root, sorted(set(refs) | set(_entry_digests(root, index.commit))))
    changed = changed_cards(root, index.cards_tree, head_tree)
    changed = set(card_names) | set(index.rows) if changed is None else changed
    result.cards_changed = sorted(changed)
    say = result.problems.append
    if index.tags_digest != _sha1(digest_out.encode()).hexdigest():
        say(
            f"the tag refs changed since the index was written ({index.tag_count} then, "
            f"{digest_out.count(chr(10))} now)"
        )
    for n in names:
        true_entry, kept_entry = entries.get(n), stored.get(n)
        _compare_entry(n, true_entry, kept_entry, say)
        if n in changed:
            continue
        row, kept = rows.get(n), index.rows.get(n)
        if row is None and kept is not None:
            say(f"{n}: listed by the index, but has no card at {head[:10]}")
        elif row is not None and kept is None:
            say(f"{n}: has a card at {head[:10]}, but the index does not list it")
        elif row is not None and kept is not None:
            for col in ("state", "task", "project", "latest", "versions", "digest"):
                a, b = getattr(kept, col), getattr(row, col)
                if a != b:
                    say(f"{n}: the index says {col} {a!r}, the tags and card say {b!r}")
    return result


def _compare_entry(name: str, true: IndexedModel | None, kept: IndexedModel | None, say) -> None:
    true_tags = true.tags if true else {}
    kept_tags = kept.tags if kept else {}
    if true_tags != kept_tags:
        say(f"{name}: {describe_difference(kept_tags, true_tags)}")
    t = {v["version"]: v for v in (true.versions if true else [])}
    k = {v["version"]: v for v in (kept.versions if kept else [])}
    for version in sorted(set(t) | set(k)):
        a, b = k.get(version), t.get(version)
        if a is None:
            say(f"{name}@{version}: a published version (tag {b['tag']}) the index does not list")
        elif b is None:
            say(f"{name}@{version}: listed by the index, but no tag publishes it")
        else:
            for key in ("tag", "commit", "date", "withdrawn_by", "objects"):
                if a.get(key) != b.get(key):
                    say(
                        f"{name}@{version}: the index says {key} {a.get(key)!r}, "
                        f"the tags say {b.get(key)!r}"
                    )
    ts = {s["tag"]: s for s in (true.stray if true else [])}
    ks = {s["tag"]: s for s in (kept.stray if kept else [])}
    for tag in sorted(set(ts) ^ set(ks)):
        say(
            f"{name}: stray tag {tag} "
            + ("missing from the index" if tag in ts else "in the index, but not a stray tag now")
        )


# --------------------------------------------------------------------------- sharing it


def fetch(root: str | Path, remote: str = "origin", *, remember: bool = True) -> str | None:
    """Fetch `refs/registry/index` from a git remote (replacing the local one); with `remember`,
    also add it to the remote's fetch refspecs so that every later `git fetch` keeps it current.

    Returns:
        The index commit, or None when the remote has no index.

    Raises:
        GitError: the remote cannot be read.
    """
    spec = f"+{INDEX_REF}:{INDEX_REF}"
    out = run_git(root, "ls-remote", remote, INDEX_REF, timeout=60)
    if not out.strip():
        return None
    shallow = run_git(root, "rev-parse", "--is-shallow-repository", check=False).strip()
    depth = ["--depth=1"] if shallow == "true" else []  # a shallow checkout needs no index history
    run_git(root, "fetch", "-q", "--no-tags", *depth, remote, spec, timeout=600)
    if remember:
        known = run_git(root, "config", "--get-all", f"remote.{remote}.fetch", check=False)
        if spec not in known.split():
            run_git(root, "config", "--add", f"remote.{remote}.fetch", spec)
    return run_git(root, "rev-parse", INDEX_REF).strip()


def push(root: str | Path, remote: str = "origin") -> bool:
    """Push `refs/registry/index` to a git remote without force.

    Returns:
        True when the remote took it (or already had it); False when the remote's index moved on
        (another publish wrote it): fetch, sync and push again.
    """
    import subprocess

    proc = subprocess.run(
        ["git", "push", "--porcelain", remote, f"{INDEX_REF}:{INDEX_REF}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return True
    if "[rejected]" in proc.stdout or "non-fast-forward" in proc.stdout + proc.stderr:
        return False
    raise GitError(
        f"pushing {INDEX_REF} to git remote '{remote}' failed: "
        f"{(proc.stderr or proc.stdout).strip()}",
        "check the credentials; `registry index rebuild` and a push of the ref repair it later",
    )


def publish_index(
    root: str | Path, head: str, remote: str | None, attempts: int = 3, *, fetched: bool = False
) -> SyncResult:
    """What publish runs after its tags: fetch the remote's index (when pushing), bring it up to
    date with the tags and cards at `head`, and push it; when another publish pushed first, start
    again from theirs.

    Args:
        fetched: the remote's index was fetched already (while the objects were copied): the first
            attempt starts from it. The push never forces, so an index the remote moved on from
            meanwhile is refused and the next attempt fetches again.

    Raises:
        GitError: the remote cannot be read or written, or it kept moving.
    """
    for attempt in range(attempts):
        if remote and not (fetched and attempt == 0):
            fetch(root, remote, remember=False)
        result = sync(root, head)
        if not remote or push(root, remote):
            return result
    raise GitError(
        f"the registry index on '{remote}' kept moving during {attempts} attempts",
        "run `registry index rebuild` and push refs/registry/index when publishing is quiet",
    )
