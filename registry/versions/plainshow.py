"""`registry show NAME[@VERSION]` as text, without the card schema: the common case, sooner.

The full path (`details`) validates the card with the schema, whose validation library costs about
half a second to import and build; `show` prints a dozen of the card's fields. This path answers
when the registry index has already vouched for the card, and otherwise steps aside (returns None)
so that the full path answers, with the same output and the same errors:

- the model's index entry agrees with its tags (`index.model_and_blobs`, as the full path reads);
- the card in the working tree is the same bytes as the card at the shown version's tag. A version
  is published only when the card at its commit validates (`tags.confirm_versions`, which the
  index's writer runs; publish validated it before tagging), so the registry has validated exactly
  these bytes: an edited, broken or unpublished card, or an older version whose card differs,
  steps aside;
- the card is in the plain shape (`registry.cards.plaincard`) and every field printed has the type
  and form the schema gives it (a string that the schema would normalise, a size in another form,
  a metric value written as a string, … all step aside).

Reads: one `git for-each-ref` of the model's tags beside one `git cat-file --batch` (the index
entry), then one more `git cat-file --batch` (the tag object for the notes,
the card at the tag) beside `git config` (the origin URL for the pull commands).
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from registry.cards.plaincard import read_plain
from registry.cards.sizes import format_size, parse_size
from registry.core.git import cat_files
from registry.core.layout import CARD_FILE, MODELS_DIR, NAME_RE
from registry.core.semver import SEMVER, semver_key
from registry.versions.index import model_and_blobs
from registry.versions.listing import printable

# the schema's enums (registry.cards.schema.Status, Task) as the card writes them; a value not
# here steps aside, so a new value only costs speed until it is added
STATUSES = ("unpublished", "published", "updated", "offline")
TASKS = (
    "classification",
    "detection",
    "segmentation",
    "embedding",
    "regression",
    "keypoints",
    "ocr",
    "speech-recognition",
    "text-classification",
    "token-classification",
    "generation",
    "translation",
    "anomaly-detection",
    "tracking",
    "depth-estimation",
    "super-resolution",
)
SELF_REPO = "self"
OFFLINE = "card status: offline"
_PATH_PART = re.compile(r"[^/\\]+")


class _StepAside(Exception):
    """The full path must answer."""


def show_text(root: str | Path, spec: str) -> str | None:
    """What `registry show SPEC` prints as text, or None when the full path must answer."""
    try:
        return _show(Path(root), spec)
    except _StepAside:
        return None


def _show(root: Path, spec: str) -> str:
    name, _, version = spec.partition("@")
    if version in ("", "latest"):
        version = None
    else:
        version = version.removeprefix("v")
        _need(re.fullmatch(SEMVER, version) is not None)
    _need(NAME_RE.fullmatch(name) is not None)
    card_path = f"{MODELS_DIR}/{name}/{CARD_FILE}"
    origin = subprocess.Popen(
        ["git", "config", "--get", "remote.origin.url"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        entry = model_and_blobs(root, name, [])[0]
        _need(entry is not None)
        try:
            head = (root / card_path).read_bytes()
        except OSError:
            raise _StepAside from None
        card = _card(head)
        versions = [
            {
                "version": v["version"],
                "tag": v["tag"],
                "commit": v["commit"],
                "date": datetime.fromtimestamp(v["date"], tz=timezone.utc),
                "withdrawn_by": v.get("withdrawn_by"),
            }
            for v in entry.versions
        ]
        if card["status"] == "offline":
            for v in versions:
                v["withdrawn_by"] = v["withdrawn_by"] or OFFLINE
        live = _latest(versions)
        if version is None:
            chosen = live
        else:
            chosen = next((v for v in versions if v["version"] == version), None)
        _need(chosen is not None)  # without a version to show, no validated card either
        tag_object, at_tag = cat_files(
            root,
            [f"refs/tags/{chosen['tag']}", f"{chosen['commit']}:{card_path}"],
            (b"tag", b"blob"),
        )
        _need(tag_object is not None and at_tag == head)
        notes = _message(tag_object)
        url = origin.communicate()[0].decode().strip() or str(root)
        targets = [t if isinstance(t, str) else t["name"] for t in card["targets"]]
        pull = pull_commands(name, chosen["version"], url, targets)
    finally:
        if origin.returncode is None:
            origin.kill()
            origin.wait()
    return _render(name, card, versions, entry.stray, live, chosen, notes, pull)


def _need(ok: bool) -> None:
    if not ok:
        raise _StepAside


def _message(tag_object: bytes) -> str:
    """The message of an annotated tag object as `%(contents)` prints it, stripped."""
    _, sep, body = tag_object.partition(b"\n\n")
    try:
        return body.decode().strip() if sep else ""
    except UnicodeDecodeError:
        raise _StepAside from None


def _text(value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    _need(isinstance(value, str))
    return value


def _relative(value: object) -> str:
    """A path the schema keeps as written (check_relative_path would not change it)."""
    text = _text(value)
    parts = text.split("/")
    _need(all(_PATH_PART.fullmatch(p) and p not in (".", "..") for p in parts))
    _need(not re.match(r"^[A-Za-z]:", text) and str(PurePosixPath(text)) == text)
    return text


def _card(data: bytes) -> dict:
    """The fields `show` prints, checked by hand; anything unexpected steps aside."""
    doc = read_plain(data)
    _need(isinstance(doc, dict))
    status = doc.get("status", "unpublished")
    _need(status in STATUSES and doc.get("task") in TASKS)
    source = doc.get("source")
    _need(isinstance(source, dict) and set(source) <= {"repo", "path", "commit"})
    repo = _text(source.get("repo"))
    _need(repo == repo.strip() and bool(repo))
    size = doc.get("size")
    if isinstance(size, str):
        try:
            size = int(parse_size(size)[0])
        except ValueError:
            raise _StepAside from None
    else:
        _need(size is None or (type(size) is int and size >= 0))
    metrics = doc.get("metrics") or []
    _need(isinstance(metrics, list) and all(isinstance(m, dict) for m in metrics))
    for m in metrics:
        _need(type(m.get("value")) in (int, float))
        _text(m.get("name"))
        _text(m.get("dataset"))
        _text(m.get("unit"), optional=True)
    owners = doc.get("owners") or []
    _need(isinstance(owners, list) and all(isinstance(o, str) for o in owners))
    targets = doc.get("targets") or []
    _need(isinstance(targets, list))
    for t in targets:
        _need(isinstance(t, str) or (isinstance(t, dict) and isinstance(t.get("name"), str)))
    description = _text(doc.get("description"), optional=True)
    _need(description is None or not description or bool(description.strip()))
    return {
        "status": status,
        "task": doc["task"],
        "project": _text(doc.get("project")),
        "license": _text(doc.get("license"), optional=True),
        "description": description,
        "repo": repo,
        "path": _text(source.get("path"), optional=True),
        "commit": _text(source.get("commit"), optional=True),
        "config": _relative(doc.get("config")),
        "weights": _relative(doc.get("weights")),
        "size": size,
        "metrics": metrics,
        "owners": owners,
        "targets": targets,
    }


def _latest(versions: list[dict]) -> dict | None:
    """`tags.latest` on plain versions: the highest release not withdrawn, else pre-release."""
    live = [v for v in versions if v["withdrawn_by"] is None]
    releases = [v for v in live if "-" not in v["version"].split("+", 1)[0]]
    pool = releases or live
    return max(pool, key=lambda v: semver_key(v["version"])) if pool else None


def pull_commands(
    name: str, version: str, repo_url: str, targets: list[str] | tuple = ()
) -> list[str]:
    """The ways to fetch one version: registry pull, git checkout + dvc pull, dvc artifacts get, and
    `registry pull --target` for the device package of each target the card lists. (Here, not in
    `details`, so that the schema-free show imports nothing heavier; `details` uses it too.)"""
    return [
        f"registry pull {name}@{version} -o {name}-{version}",
        f"registry pull {name}@{version} --repo {repo_url}",
        f"git checkout {name}@v{version} && dvc pull -R models/{name}",
        f"dvc artifacts get {repo_url} {name} --rev v{version}",
    ] + [f"registry pull {name}@{version} --target {t}" for t in targets]


def _render(name, c, versions, stray, live, chosen, notes, pull) -> str:
    """As `details.render_details`, line for line."""
    lines = [f"{name}  [{c['status']}]"]
    lines.append(f"  task: {c['task']}   project: {c['project']}   license: {c['license'] or '-'}")
    if c["description"]:
        lines.append(f"  {c['description'].strip().splitlines()[0]}")
    source = "this repository" if c["repo"] == SELF_REPO else c["repo"]
    lines.append(
        f"  source: {source}"
        + (f", {c['path']}" if c["path"] else "")
        + (f" @ {c['commit']}" if c["commit"] else "")
    )
    size = c["size"]
    lines.append(
        f"  config: {c['config']}   weights: {c['weights']}"
        + (f"   size: {format_size(size)} ({size:,} bytes)" if size is not None else "")
    )
    for m in c["metrics"]:
        value = float(m["value"])
        lines.append(f"  metric: {m['name']} = {value:g}{m.get('unit') or ''} on {m['dataset']}")
    if c["owners"]:
        lines.append(f"  owners: {', '.join(c['owners'])}")
    lines.append("")
    shown = chosen["version"] if chosen else None
    if versions:
        lines.append(f"versions (latest: {live['version'] if live else 'none'}):")
        for v in reversed(versions):
            by = v["withdrawn_by"]
            mark = f"  withdrawn ({by})" if by is not None else ""
            here = " *" if v["version"] == shown else "  "
            lines.append(
                f" {here}{v['version']:<14} {v['date'].strftime('%Y-%m-%d %H:%M')}  "
                f"{v['commit'][:8]}{mark}"
            )
    else:
        lines.append("versions: none published")
    if stray:
        lines += ["", "stray tags (not versions; tell the registry's maintainers):"]
        lines += [f"  {t['tag']}: {t['reason']}" for t in stray]
    if notes:
        lines += ["", f"release notes of {shown}:"] + [f"  {x}" for x in notes.splitlines()]
    if pull:
        lines += ["", f"get {name} {shown}:"] + [f"  {x}" for x in pull]
    return "\n".join(printable(line) for line in lines)
