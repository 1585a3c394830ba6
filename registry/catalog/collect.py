"""Reading the registry for the catalog, in bulk: tags, cards, release notes, package indexes.

`scan_registry` reads what every build needs, cheaply: every tag's name and object id in one
`git for-each-ref` (git answers from its ref store without opening the tags), every current card
from the working tree (bytes only), and the package indexes on the public remote (one listing,
then only the indexes that exist). From that, `fingerprint` tells whether a model's page can
change, so a build reads the rest only for the models it renders: `read_models` reads their tag
objects (dates, tagged commits, release notes) and their versions' cards in one
`git cat-file --batch` each.

`catalog_model` turns one model's sources (`ModelSource`) into its `CatalogModel`; during a full
build both run in worker processes, each for its share of the models.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from registry.cards.plaincard import read_metrics, read_plain
from registry.cards.schema import (
    CARD_FILE,
    MAX_CARD_BYTES,
    MODELS_DIR,
    SELF_REPO,
    ModelCard,
    load_card,
)
from registry.catalog.markdown import MAX_CHARS
from registry.catalog.records import (
    CatalogMetric,
    CatalogModel,
    CatalogPackage,
    GraphInfo,
)
from registry.core.errors import CardError, RegistryError, UsageError
from registry.core.git import cat_files, run_git
from registry.versions.tags import (
    Version,
    default_branch,
    is_version_tag,
    latest,
    parse_refs,
    parse_version_spec,
    withdraw_offline,
)

# the raw `derived_from:` value of a card, read without parsing the YAML (parsed by the tag grammar)
_DERIVED = re.compile(rb"^derived_from:\s*[\"']?([^\s\"'#]+)", re.MULTILINE)
_WEIGHTS = re.compile(rb"^weights:\s*[\"']?([^\s\"'#]+)", re.MULTILINE)
_OFFLINE = re.compile(rb"^status:\s*[\"']?offline\b", re.MULTILINE)
# a card's status and version as `registry` writes them: a plain word, at most quoted, then nothing
_STATUS = re.compile(rb"^status:[ \t]*([a-z]+)[ \t]*$", re.MULTILINE)
_VERSION = re.compile(rb"^version:[ \t]*[\"']?([0-9A-Za-z.+-]+)[\"']?[ \t]*$", re.MULTILINE)
try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


@dataclass
class RegistryScan:
    """What every build reads: the registry's tags, current cards and package indexes."""

    root: Path
    commit: str
    repo_url: str
    refs: dict[str, list[str]] = field(default_factory=dict)  # model -> "<tag> <object id>" lines
    # model -> (what its card is known by, the model its card derives from) for every model folder
    # with a card: the id of its folder's tree at HEAD where the working tree has the same files,
    # else a hash of the card itself
    cards: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    heads: dict[str, bytes | None] = field(default_factory=dict)  # cards read so far (`head`)
    package_indexes: dict[tuple[str, str], bytes] = field(
        default_factory=dict
    )  # (model, version) -> index
    object_dirs: list[Path] = field(default_factory=list)  # where weights objects may lie locally
    card_history: tuple | None = None  # see history()
    public_remote: dict | None = None  # where the public remote is, and for which configuration

    _packages_by_model: dict[str, dict[str, bytes]] | None = None
    _branch: set[str] | None = None

    def listed(self) -> list[str]:
        """The models with at least one version tag: the catalog lists those of them whose
        version tags are annotated (`read_models` finds that out)."""
        return sorted(
            name
            for name, lines in self.refs.items()
            if any(is_version_tag(line.partition(" ")[0]) for line in lines)
        )

    def history(self) -> tuple[dict[str, int], dict[str, list[tuple[int, str]]]]:
        """The main line's history of cards (see `card_ids`), walked on first use."""
        if self.card_history is None:
            self.card_history = _card_history(self.root)
        return self.card_history

    def packages_of(self, name: str) -> dict[str, bytes]:
        """version -> package index bytes, for one model."""
        if self._packages_by_model is None:
            self._packages_by_model = {}
            for (model, version), data in self.package_indexes.items():
                self._packages_by_model.setdefault(model, {})[version] = data
        return self._packages_by_model.get(name, {})

    def branch_commits(self) -> set[str]:
        """The commits of the default branch (`versions.tags.default_branch`), listed on first
        use."""
        if self._branch is None:
            branch = default_branch(self.root)
            self._branch = set(run_git(self.root, "rev-list", branch, check=False).split())
        return self._branch

    def head(self, name: str) -> bytes | None:
        """A model's card in the working tree (None: it has none), read on first use."""
        if name not in self.heads:
            self.heads[name] = _read_card(self.root, name)
        return self.heads[name]

    def parents(self) -> dict[str, str]:
        """model -> the model its current card says it derives from."""
        return {name: parent for name, (_, parent) in self.cards.items() if parent}


@dataclass
class ModelSource:
    """Everything one model's page is made from, as plain data."""

    name: str
    head: bytes | None
    versions: list[Version]
    cards: list[bytes | None]  # each version's card
    notes: list[str]  # each version's release notes
    packages: dict[str, bytes]
    variants: list[str]
    pointer: bytes | None
    repo_url: str
    object_dirs: list[Path]


# --------------------------------------------------------------------------- scanning


def scan_registry(
    root: str | Path,
    *,
    repo_url: str | None = None,
    packages: bool = True,
    public_remote: dict | None = None,
    known_cards: dict[str, tuple[str, str | None]] | None = None,
) -> RegistryScan:
    """Read tags, current cards and (unless `packages` is False) the public remote's package
    indexes.

    `public_remote` is the `RegistryScan.public_remote` of an earlier build of this clone: where
    the public remote was, valid while DVC's configuration files are unchanged. `known_cards` is
    its `RegistryScan.cards`: the cards of folders unchanged since are not read again.

    Raises:
        UsageError: `root` is not a clone of the registry.
        StorageError: the public remote cannot be listed or read.
    """
    root = Path(root)
    commit = run_git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip()
    if not commit:
        raise UsageError(
            f"{root} is not a clone of the registry with a commit",
            "run this in a clone of the registry (or pass -C <clone>)",
        )
    # three listings at once: the tag refs ("<object id> refs/tags/<tag>", by name); the files of
    # models/ at HEAD; the tracked files of models/ that differ from HEAD in the working tree,
    # staged or not (git compares them by the stat it recorded, and by content where that changed)
    commands = {
        "tags": ["show-ref", "--tags"],
        "trees": ["ls-tree", "-r", "-z", "HEAD", f"{MODELS_DIR}/"],
        "edited": ["status", "--porcelain", "-z", "--no-renames", "-uno", "--", MODELS_DIR],
    }
    git = {
        key: subprocess.Popen(
            ["git", *cmd], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        for key, cmd in commands.items()
    }
    out = {key: proc.communicate()[0] for key, proc in git.items()}
    scan = RegistryScan(root=root, commit=commit, repo_url=repo_url or _origin_url(root))
    refs = scan.refs
    for line in out["tags"].decode().splitlines():
        obj, _, ref = line.partition(" refs/tags/")
        name, at, _ = ref.partition("@")
        if at:
            refs.setdefault(name, []).append(f"{ref} {obj}")
    _scan_cards(scan, out["trees"], out["edited"], known_cards or {})
    if (root / ".dvc").is_dir():
        _scan_storage(scan, packages, public_remote)
    return scan


def _scan_cards(scan: RegistryScan, files: bytes, edited: bytes, known: dict) -> None:
    """`scan.cards`, each card known by its git blob id: from HEAD's tree where the working tree
    has the same card (read only when an earlier build, `known`, did not see that blob), else
    read and hashed as git would."""
    at_head = {}
    for entry in files.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        parts = path.split(b"/")
        if len(parts) == 3 and parts[2] == CARD_FILE.encode() and b" blob " in meta:
            at_head[parts[1].decode(errors="replace")] = meta.rsplit(b" ", 1)[1].decode()
    card = f"/{CARD_FILE}".encode()
    changed = {
        p[3:].split(b"/")[1].decode(errors="replace")
        for p in edited.split(b"\0")
        if p.endswith(card) and p.count(b"/") == 2
    }
    models = os.path.join(scan.root, MODELS_DIR)
    try:
        with os.scandir(models) as entries:
            folders = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        folders = []
    for name in folders:
        blob = at_head.get(name)
        if blob is not None and name not in changed and name in known and known[name][0] == blob:
            scan.cards[name] = known[name]
            continue
        data = scan.head(name)
        if data is None:
            continue
        if blob is None or name in changed:
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        scan.cards[name] = (blob, _parent(data))


def _read_card(root: Path, name: str) -> bytes | None:
    """A model's card in the working tree, up to one byte over the limit (None: none)."""
    try:
        with open(os.path.join(root, MODELS_DIR, name, CARD_FILE), "rb") as f:
            return f.read(MAX_CARD_BYTES + 1)
    except OSError:
        return None


def _parent(card: bytes) -> str | None:
    """The model a card says it derives from (None: none, or not NAME@VERSION, which the card
    check reports)."""
    m = _DERIVED.search(card)
    if not m:
        return None
    try:
        return parse_version_spec(m.group(1).decode(errors="replace"), allow_latest=False)[0]
    except UsageError:
        return None


def _scan_storage(scan: RegistryScan, packages: bool, known: dict | None) -> None:
    """The local object folders and (with `packages`) the package indexes of the public remote.

    Where the public remote lies comes from DVC's configuration, which costs DVC's import; `known`
    is what an earlier build found (`scan.public_remote`, kept by the site), used when the files
    DVC reads its configuration from are unchanged. A local remote is then listed directly.
    """
    scan.object_dirs.append(scan.root / ".dvc" / "cache" / "files" / "md5")
    key = _config_key(scan.root)
    if known and known.get("key") == key and known.get("kind") in ("none", "local"):
        scan.public_remote = known
        if known["kind"] == "local":
            scan.object_dirs.append(Path(known["root"]) / "files" / "md5")
            if packages:
                _local_package_indexes(scan, known["root"])
        return
    from registry.core.storage import PUBLIC, Storage

    storage = Storage(scan.root)
    try:
        remote = storage.remote(PUBLIC)
    except UsageError:
        scan.public_remote = {"key": key, "kind": "none"}
        return  # no public remote: nothing is published there yet, and no packages
    local = type(remote.fs).__name__ == "LocalFileSystem"  # DVC's, around fsspec's
    scan.public_remote = {"key": key, "kind": "local" if local else "other"}
    if local:
        scan.public_remote["root"] = str(remote.root)
        scan.object_dirs.append(Path(remote.root) / "files" / "md5")
    if not packages:
        return
    from registry.packaging.index import index_files

    for path in index_files(remote):
        parts = path.rstrip("/").split("/")
        if len(parts) < 4:
            continue
        name, version = parts[-3], parts[-2]
        data = remote.read_key(f"packages/{name}/{version}/index.json")
        if data is not None:
            scan.package_indexes[(name, version)] = data


def _config_key(root: Path) -> str:
    """A hash of everything DVC reads to configure a clone's remotes: the clone's place, its
    `.dvc/config` and `.dvc/config.local`, and the user's and the system's DVC config files (found
    as DVC finds them: `DVC_GLOBAL_CONFIG_DIR`, `DVC_SYSTEM_CONFIG_DIR`, else the platform's
    folders)."""
    import platformdirs

    h = hashlib.sha256(str(root.resolve()).encode())
    folders = [
        str(root / ".dvc"),
        os.getenv("DVC_GLOBAL_CONFIG_DIR") or platformdirs.user_config_dir("dvc", "iterative"),
        os.getenv("DVC_SYSTEM_CONFIG_DIR") or platformdirs.site_config_dir("dvc", "iterative"),
    ]
    for path in (
        f"{folders[0]}/config",
        f"{folders[0]}/config.local",
        f"{folders[1]}/config",
        f"{folders[2]}/config",
    ):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = None
        h.update(b"\0" + path.encode() + b"\0" + (b"-" if data is None else b"+" + data))
    return h.hexdigest()


def _local_package_indexes(scan: RegistryScan, remote_root: str) -> None:
    """The package indexes of a public remote that is a local folder, read as `index_files` and
    `Remote.read_key` read them."""
    base = os.path.join(remote_root, "packages")
    for folder, _, files in os.walk(base, followlinks=True):  # as fsspec lists a folder
        if "index.json" not in files:
            continue
        parts = f"{folder}/index.json".split("/")
        if len(parts) < 4:
            continue
        name, version = parts[-3], parts[-2]
        try:
            with open(os.path.join(base, name, version, "index.json"), "rb") as f:
                scan.package_indexes[(name, version)] = f.read()
        except FileNotFoundError:
            continue


def _origin_url(root: Path) -> str:
    url = run_git(root, "config", "--get", "remote.origin.url", check=False).strip()
    return url or str(root.resolve())


def fingerprint(scan: RegistryScan, name: str, variants: list[str], settings: str) -> str:
    """A hash of everything a model's page and JSON are made from (its tags are immutable, so
    their names and object ids stand for their cards and notes)."""
    h = hashlib.sha256(settings.encode())
    h.update(b"\0card\0" + scan.cards.get(name, ("<none>",))[0].encode())
    h.update(b"\0tags\0" + "\n".join(sorted(scan.refs.get(name, []))).encode())
    for version, data in sorted(scan.packages_of(name).items()):
        h.update(b"\0packages\0" + version.encode() + b"\0" + data)
    h.update(b"\0variants\0" + ",".join(variants).encode())
    return h.hexdigest()


# Reading a model's entry in the registry index is a path lookup in the index's tree, and git
# scans a tree of every model for each one: about 2 ms of git's time a model on a registry of
# 10,000 models, several times what reading its versions from the tags costs. The index answers
# for a few models (a rebuild after a publish); a larger batch (a full build's share of the
# models) reads the tags.
INDEX_READS = 50


def read_models(
    scan: RegistryScan, names: list[str], variants: dict[str, list[str]]
) -> list[ModelSource]:
    """The sources of these models' pages: their versions from the registry index where it agrees
    with the model's tag refs (for batches of up to `INDEX_READS` models), else from the tags;
    their tag objects (for the release notes) read with one `git cat-file --batch`, and their
    versions' cards with another.

    A version read from the tags counts only when the publish workflow could have made it, as
    everywhere in the registry (`versions.tags.confirm_versions`): its commit is on the default
    branch and the card there says published or updated with that version. A model left with no
    version (its tags are lightweight, or none counts) has no source: it is left out.
    """
    from registry.versions import index

    indexed = index.read_models(scan.root, names) if len(names) <= INDEX_READS else {}
    chosen: dict[str, list[Version] | None] = {}  # None: to be read from the tags
    tags: list[tuple[str, str]] = []  # (tag, object id) of the tag objects to read
    for name in names:
        refs = dict(line.partition(" ")[::2] for line in scan.refs.get(name, []))
        entry = indexed.get(name)
        if entry is not None and entry.tags == {f"refs/tags/{t}": o for t, o in refs.items()}:
            chosen[name] = index.versions_of(entry)[0]
            tags += [(v.tag, refs[v.tag]) for v in chosen[name]]
        else:
            chosen[name] = None
            tags += refs.items()
    raw = cat_files(scan.root, [obj for _, obj in tags], kinds=(b"tag",))
    objects = {ref: data for (ref, _), data in zip(tags, raw)}
    from_tags = {name for name, versions in chosen.items() if versions is None}
    if from_tags:
        table = parse_refs(
            "\n".join(
                _ref_line(ref, obj, data)
                for (ref, obj), data in zip(tags, raw)
                if data is not None and ref.partition("@")[0] in from_tags
            )
        )
        chosen.update({name: table.get(name, []) for name in from_tags})
    plan = [(name, scan.head(name), versions) for name, versions in chosen.items() if versions]
    ids = card_ids(scan, [(name, v.commit) for name, _, versions in plan for v in versions])
    blobs = list(dict.fromkeys(ids.values()))
    cards = dict(zip(blobs, cat_files(scan.root, blobs)))
    sources = []
    for name, head, versions in plan:
        if name in from_tags:
            versions = [
                v
                for v in versions
                if _published_by_workflow(scan, v, cards.get(ids.get((name, v.commit))))
            ]
            if not versions:
                continue
        if head is not None and _OFFLINE.search(head):
            versions = withdraw_offline(versions)
        pointer = None
        w = _WEIGHTS.search(head) if head is not None else None
        if (
            w and b".." not in w.group(1) and not w.group(1).startswith((b"/", b"\\"))
        ):  # stay in the folder
            try:
                with open(
                    os.path.join(scan.root, MODELS_DIR, name, w.group(1).decode() + ".dvc"), "rb"
                ) as f:
                    pointer = f.read(64 * 1024)
            except (OSError, UnicodeDecodeError):
                pointer = None
        sources.append(
            ModelSource(
                name=name,
                head=head,
                versions=versions,
                cards=[cards.get(ids.get((name, v.commit))) for v in versions],
                notes=[_tag_message(objects.get(v.tag)) for v in versions],
                packages=scan.packages_of(name),
                variants=variants.get(name, []),
                pointer=pointer,
                repo_url=scan.repo_url,
                object_dirs=scan.object_dirs,
            )
        )
    return sources


def _published_by_workflow(scan: RegistryScan, v: Version, card: bytes | None) -> bool:
    """Whether a version read from the tags is one the publish workflow made: its commit is on the
    default branch, and the card there says published or updated with that version."""
    if v.commit not in scan.branch_commits():
        return False
    if (
        card
        and _says(card, b"version: " + v.version.encode())
        and (_says(card, b"status: updated") or _says(card, b"status: published"))
    ):
        return True  # the card as publish writes it: a line each, as they are
    fields = _card_fields(card) if card else None
    if fields is None:
        doc, _ = _card(card, v.name)
        if doc is None:
            return False
        fields = (doc.status.value, doc.version)
    return fields[0] in ("published", "updated") and fields[1] == v.version


def _says(card: bytes, line: bytes) -> bool:
    """Whether a card has this very line (a top-level key and its plain value)."""
    return card.startswith(line + b"\n") or b"\n" + line + b"\n" in card


def _card_fields(card: bytes) -> tuple[str, str] | None:
    """(status, version) of a card in the plain shape the registry writes, read without parsing
    it; None for any other shape."""
    status, version = _STATUS.findall(card), _VERSION.findall(card)
    if len(status) != 1 or len(version) != 1:
        return None
    return status[0].decode(), version[0].decode()


def _ref_line(ref: str, obj: str, tag: bytes) -> str:
    """The line `git for-each-ref --format=<core.git.TAG_REF_FORMAT>` prints for an annotated
    tag, made from the tag object itself (name, type, object id, tagged object, tagger date)."""
    target = stamp = ""
    for line in tag.partition(b"\n\n")[0].decode("utf-8", errors="replace").split("\n"):
        key, _, value = line.partition(" ")
        if key == "object":
            target = value
        elif key == "tagger":
            date = value.rsplit(" ", 2)
            stamp = date[-2] if len(date) == 3 and date[-2].isdigit() else ""
    return f"{ref}\ttag\t{obj}\t{target}\t{stamp}"


# Looking a path up in a commit (`<commit>:models/<name>/model.yaml`) makes git scan the whole
# models/ tree each time: milliseconds per lookup on a registry of 10,000 models. Many lookups are
# answered instead from one walk of the main line's history of cards, which lists each card's blob
# id at every commit that changed it.
HISTORY_WALK_FROM = 200  # lookups from which the history walk is cheaper


def card_ids(scan: RegistryScan, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Blob ids of `models/<name>/model.yaml` at each (name, commit) wanted (absent: no card
    there)."""
    found: dict[tuple[str, str], str] = {}
    todo = list(dict.fromkeys(wanted))
    if len(todo) >= HISTORY_WALK_FROM:
        positions, history = scan.history()
        rest = []
        for name, commit in todo:
            pos = positions.get(commit)
            if pos is None:  # not on the main line: ask git directly
                rest.append((name, commit))
                continue
            changes = history.get(name, [])
            i = bisect.bisect_right(changes, (pos, "\uffff")) - 1
            if i >= 0 and changes[i][1]:
                found[(name, commit)] = changes[i][1]
        todo = rest
    if todo:
        out = subprocess.run(
            ["git", "cat-file", "--batch-check=%(objectname) %(objecttype)"],
            cwd=scan.root,
            input="".join(f"{c}:{MODELS_DIR}/{n}/{CARD_FILE}\n" for n, c in todo).encode(),
            capture_output=True,
        )
        for key, line in zip(todo, out.stdout.decode().splitlines()):
            sha, _, kind = line.partition(" ")
            if kind == "blob":
                found[key] = sha
    return found


def _card_history(root: Path) -> tuple[dict[str, int], dict[str, list[tuple[int, str]]]]:
    """(position of each first-parent commit of HEAD, oldest 0; {model: [(position, card blob id or
    '' when deleted)] sorted}) from one `git rev-list` and one `git log --raw`."""
    order = run_git(root, "rev-list", "--first-parent", "HEAD").split()
    positions = {c: i for i, c in enumerate(reversed(order))}
    out = run_git(
        root,
        "log",
        "--first-parent",
        "--diff-merges=first-parent",
        "--format=%x00%H",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "HEAD",
        "--",
        f"{MODELS_DIR}/*/{CARD_FILE}",
    )
    history: dict[str, list[tuple[int, str]]] = {}
    for block in out.split("\0")[1:]:
        lines = block.split("\n")
        pos = positions.get(lines[0].strip())
        if pos is None:
            continue
        for line in lines[1:]:
            if not line.startswith(":"):
                continue
            meta, _, path = line.partition("\t")
            parts, fields = path.split("/"), meta.split()
            if len(parts) != 3 or len(fields) < 5:
                continue
            history.setdefault(parts[1], []).append(
                (pos, "" if fields[4].startswith("D") else fields[3])
            )
    for changes in history.values():
        changes.sort()
    return positions, history


def _tag_message(obj: bytes | None) -> str:
    """The message of a raw annotated tag object (its signature left out)."""
    if not obj:
        return ""
    _, sep, message = obj.partition(b"\n\n")
    text = message.decode("utf-8", errors="replace") if sep else ""
    cut = text.find("-----BEGIN PGP SIGNATURE-----")
    if cut < 0:
        cut = text.find("-----BEGIN SSH SIGNATURE-----")
    return (text[:cut] if cut >= 0 else text).strip()


# --------------------------------------------------------------------------- one model


def _metrics(data: bytes | None) -> list[CatalogMetric | dict]:
    """The metrics of a version's card (published cards passed the bot's checks, so reading the
    metrics is enough here); anything that is not a well-formed metric is left out. Metrics read
    by the block pattern are already well-typed and come as plain fields."""
    if not data or len(data) > MAX_CARD_BYTES:
        return []
    text = data.decode("utf-8", errors="replace")
    raw = read_metrics(text)
    if raw is not None:
        return [m for m in raw[:200] if "name" in m and "dataset" in m and "value" in m]
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return []
    raw = doc.get("metrics") if isinstance(doc, dict) else None
    out = []
    for item in raw[:200] if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            out.append(
                CatalogMetric(
                    name=str(item["name"]),
                    dataset=str(item["dataset"]),
                    value=float(item["value"]),
                    unit=item.get("unit"),
                    higher_is_better=item.get("higher_is_better"),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _card(data: bytes | None, name: str) -> tuple[ModelCard | None, str | None]:
    """A card and, when it does not validate, the first problem with its line.

    A card of the plain shape (`plaincard`: no anchors, aliases or tags, no key given twice) is
    read without the YAML parser and validated directly; the registry's own loader, which refuses
    what the bot refuses (a key given twice, which a YAML parser would silently read as its last
    value) and maps every key to its line, reads the rest and says where a problem is.
    """
    if data is None:
        return None, None
    if len(data) <= MAX_CARD_BYTES and not re.search(rb"[&*!]", data):
        try:
            doc = read_plain(data)
            if isinstance(doc, dict):
                return ModelCard.model_validate(doc), None
        except ValueError:
            pass
    path = f"{MODELS_DIR}/{name}/{CARD_FILE}"
    try:
        loaded = load_card(data, path)
    except CardError as e:
        return None, str(e)
    if loaded.card is None:
        first = loaded.findings[0]
        return None, f"{path}:{first.line or '?'}: {first.message}"
    return loaded.card, None


def version_commands(name: str, version: str, repo_url: str) -> list[str]:
    """The commands that fetch one version: registry pull, dvc artifacts get, git checkout + dvc
    pull."""
    return [
        f"registry pull {name}@{version} --repo {repo_url}",
        f"dvc artifacts get {repo_url} {name} --rev v{version}",
        f"git checkout {name}@v{version} && dvc pull -R {MODELS_DIR}/{name}",
    ]


def _packages(src: ModelSource, v: Version) -> list[CatalogPackage]:
    data = src.packages.get(v.version)
    if data is None:
        return []
    from registry.packaging.index import PackageIndex

    try:
        index = PackageIndex.model_validate_json(data)
    except ValueError:
        return []
    if index.commit != v.commit:  # an index written for another commit is not this version's
        return []
    return [
        CatalogPackage(
            target=t,
            file=e.file,
            size=e.size,
            sha256=e.sha256,
            engine=e.engine,
            verified_on_device=e.verified_on_device,
            encrypted=e.encrypted,
            pull=f"registry pull {src.name}@{v.version} --target {t} --repo {src.repo_url}",
        )
        for t, e in sorted(index.packages.items())
    ]


def catalog_model(src: ModelSource) -> tuple[CatalogModel, str | None]:
    """One model's catalog record, and the SVG picture of its graph when its weights are local.

    The record is gathered as plain data and validated once, which costs a fraction of building
    its many small parts one by one."""
    head, problem = _card(src.head, src.name)
    live = latest(src.versions)
    last = src.versions[-1] if src.versions else None
    shown = head
    if shown is None and (live or last) is not None:
        idx = src.versions.index(live or last)
        shown, _ = _card(src.cards[idx], src.name)
    state = "deleted" if src.head is None else (head.status.value if head else "invalid")
    model = {
        "name": src.name,
        "state": state,
        "withdrawn": live is None,
        "latest": live.version if live else None,
        "date": (live or last).date if (live or last) else None,
        "card_problem": problem,
    }
    if shown is not None:
        desc = shown.description
        if desc and len(desc) > MAX_CHARS:
            desc, model["description_truncated"] = desc[:MAX_CHARS], True
        model.update(
            task=shown.task.value,
            project=shown.project,
            owners=list(shown.owners),
            license=shown.license,
            tags=list(shown.tags),
            description=desc,
            source_repo=shown.source.repo,
            source_commit=shown.source.commit,
            size=shown.size_bytes,
        )
    model["lineage"] = {
        "derived_from": shown.derived_from if shown else None,
        "variants": src.variants,
        "training_task": training_task_of(shown),
    }
    versions = []
    for v, card_bytes, notes in zip(src.versions, src.cards, src.notes):
        state_v = (
            "withdrawn"
            if v.withdrawn
            else "latest"
            if live is not None and v.version == live.version
            else "pre-release"
            if v.prerelease
            else "release"
        )
        versions.append(
            {
                "version": v.version,
                "tag": v.tag,
                "commit": v.commit,
                "date": v.date,
                "state": state_v,
                "withdrawn_by": v.withdrawn_by,
                "notes": notes[:MAX_CHARS],
                "metrics": _metrics(card_bytes),
                "packages": _packages(src, v),
                "commands": version_commands(src.name, v.version, src.repo_url),
            }
        )
    versions.reverse()
    model["versions"] = versions
    chosen = next((v for v in versions if v["version"] == model["latest"]), None) or (
        versions[0] if versions else None
    )
    if chosen is not None and chosen["metrics"]:
        model["headline"] = chosen["metrics"][0]
    model["graph"], svg = _graph(src, head, live)
    return CatalogModel.model_validate(model), svg


def training_task_of(card: ModelCard | None) -> str | None:
    """The training task that made the model: its card's source is this repository's
    `training/<task>` folder, as `registry train --register` writes it."""
    if card is None or card.source.repo != SELF_REPO or not card.source.path:
        return None
    parts = card.source.path.strip("/").split("/")
    return parts[1] if len(parts) == 2 and parts[0] == "training" else None


def _graph(
    src: ModelSource, head: ModelCard | None, live: Version | None
) -> tuple[GraphInfo, str | None]:
    """The graph of the latest version, when its weights object is in a local folder."""
    from registry.core.storage import recorded_md5

    if live is None:
        return GraphInfo(available=False, reason="no live version"), None
    if head is None or head.version != live.version:
        return GraphInfo(
            available=False,
            reason=f"the weights of v{live.version} are not checked out "
            "where the catalog was built",
        ), None
    md5 = recorded_md5(src.pointer) if src.pointer else None
    path = next(
        (p for d in src.object_dirs if md5 and (p := d / md5[:2] / md5[2:]).is_file()), None
    )
    if path is None:
        return GraphInfo(
            available=False,
            reason="the weights are not available locally where the catalog "
            "was built (not in the DVC cache or a local public remote)",
        ), None
    from registry.formats.summary import summarize
    from registry.formats.svg import render_svg
    from registry.formats.weights import WeightsFormat, load_onnx
    from registry.publishing.notes import facts_of

    try:
        summary = summarize(path, md5=md5)
        facts = facts_of(summary)
        svg = (
            render_svg(load_onnx(path, load_external=False))
            if summary.format is WeightsFormat.onnx
            else None
        )
    except RegistryError as e:
        return GraphInfo(
            available=False, reason=f"the weights could not be read: {e.message}"
        ), None
    info = GraphInfo(
        available=True,
        picture="graph.svg" if svg else None,
        format=summary.format.value,
        inputs=facts.inputs,
        outputs=facts.outputs,
        opset=facts.opset,
        operators=dict(sorted(summary.op_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        parameters=facts.parameters,
        file_size=facts.file_size,
    )
    return info, svg
