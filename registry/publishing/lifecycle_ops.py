"""Lifecycle operations as a person asks for them: a card edit committed on a new branch.

`request_publish`, `request_unpublish`, `request_delete` and `request_edit` each read the model's
card at a base revision (default HEAD), refuse what the lifecycle table (`registry.cards.lifecycle`)
disallows before writing anything, edit the card with the card writer (`registry.cards.writer`:
comments, key order and layout stay as the author wrote them), and commit the result on a new
branch `registry/<operation>-<name>-<version>`. The commit is built from git objects through a
private index, so the working tree, the real index and the checked-out branch are never touched:
a refusal or failure leaves nothing behind. The returned `ChangeRequest` says how to push the branch
and open the pull request, where the bot checks it and reviewers approve it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from registry.cards.artifacts import DVC_YAML, remove_artifact
from registry.cards.lifecycle import Operation, classify
from registry.cards.schema import (
    CARD_FILE,
    MODELS_DIR,
    NAME_RE,
    ModelCard,
    Status,
    load_card,
    parse_card_yaml,
)
from registry.cards.writer import edit_card_text
from registry.core.errors import GitError, UsageError
from registry.core.git import cat_files, run_git
from registry.core.semver import SEMVER, semver_key
from registry.versions.tags import read_versions

# Fields that identify a published version (DESIGN.md): changing one needs a new version.
IDENTITY_FIELDS = ("source.repo", "config", "weights")
# Fields the lifecycle commands own; `edit` refuses them and names the command to use.
MANAGED_FIELDS = {
    "name": "a model cannot be renamed; create a new model with `registry new`",
    "version": "set it with `registry publish-request NAME --version V`",
    "status": "use `registry publish-request`, `registry unpublish` or `registry delete`",
}


class ChangeRequest(BaseModel):
    """A committed branch that asks for one lifecycle operation, ready for a pull request."""

    operation: str = Field(description="publish, update, unpublish, delete or edit")
    name: str
    version: str | None = None
    branch: str = Field(description="the new branch holding the change")
    base: str = Field(description="the branch the pull request targets")
    commit: str = Field(description="the commit on the new branch")
    title: str
    body: str
    changes: list[str] = Field(
        default_factory=list, description="what the commit changes, one line each"
    )

    @property
    def push_command(self) -> str:
        """The command that publishes the branch."""
        return f"git push -u origin {shlex.quote(self.branch)}"

    @property
    def pr_command(self) -> str:
        """The `gh` command that opens the pull request."""
        return (
            f"gh pr create --base {shlex.quote(self.base)} --head {shlex.quote(self.branch)} "
            f"--title {shlex.quote(self.title)} --body {shlex.quote(self.body)}"
        )


class _Card:
    """A model's card at a revision: text, validated card, and the revision's commit."""

    def __init__(self, root: Path, name: str, base: str):
        self.root, self.name = root, name
        if not NAME_RE.fullmatch(name):
            raise UsageError(
                f"'{name}' is not a model name",
                "model names are lowercase letters, digits and '-' (see `registry list`)",
            )
        self.commit = run_git(
            root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False
        ).strip()
        if not self.commit:
            raise GitError(f"unknown revision '{base}'", "give a branch, tag or commit that exists")
        self.path = f"{MODELS_DIR}/{name}/{CARD_FILE}"
        (data,) = cat_files(root, [f"{self.commit}:{self.path}"])
        if data is None:
            raise UsageError(
                f"no model named '{name}' at {base} ({self.path} does not exist)",
                "see `registry list` for the models in this registry",
            )
        self.text = data.decode("utf-8")
        self.card: ModelCard = load_card(data, self.path).require("the card is invalid: ")


def _commit_branch(
    root: Path,
    base_commit: str,
    branch: str,
    message: str,
    writes: dict[str, bytes],
    remove_dirs: tuple[str, ...] = (),
) -> str:
    """Commit `writes` (and folder removals) on top of `base_commit` as the new branch `branch`.

    Uses a private index, so nothing outside the object database and the new ref changes.

    Raises:
        UsageError: the branch already exists.
    """
    if run_git(
        root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
    ).strip():
        raise UsageError(
            f"branch '{branch}' already exists",
            f"open a pull request from it, or delete it first: git branch -D {branch}",
        )
    with tempfile.TemporaryDirectory(prefix="registry-index-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(root, "read-tree", base_commit, env=env)
        for folder in remove_dirs:
            run_git(
                root, "rm", "-r", "-q", "-f", "--cached", "--ignore-unmatch", "--", folder, env=env
            )
        for path, data in writes.items():
            proc = subprocess.run(
                ["git", "hash-object", "-w", "--stdin"], cwd=root, input=data, capture_output=True
            )
            if proc.returncode != 0:
                raise GitError(
                    f"git hash-object failed: {proc.stderr.decode(errors='replace').strip()}"
                )
            blob = proc.stdout.decode().strip()
            run_git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = run_git(root, "write-tree", env=env).strip()
    commit = run_git(root, "commit-tree", tree, "-p", base_commit, "-m", message).strip()
    # an empty old value makes the ref update fail if the branch appeared meanwhile
    run_git(root, "update-ref", f"refs/heads/{branch}", commit, "")
    return commit


def _target_branch(root: Path, base: str) -> str:
    """The branch a pull request from `base` should target: `base` itself when it is a branch."""
    if base == "HEAD":
        cur = run_git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
        return cur or "main"
    short = run_git(root, "rev-parse", "--abbrev-ref", base, check=False).strip()
    return short.removeprefix("origin/") if short and short != "HEAD" else "main"


def _check_allowed(before: ModelCard, after: ModelCard | None, expected: Operation) -> None:
    change = classify(before, after)
    if not change.allowed or change.operation not in (
        expected,
        Operation.publish,
        Operation.update,
    ):
        raise UsageError(
            f"cannot {expected.value} '{before.name}': {change.reason or 'not allowed'} "
            f"(its state is '{before.status.value}')",
            _state_hint(before.status),
        )


def _state_hint(status: Status) -> str:
    allowed = {
        Status.unpublished: "publish-request, edit, delete",
        Status.published: "edit, unpublish, publish-request (a new version)",
        Status.updated: "edit, unpublish, publish-request (a new version)",
        Status.offline: "delete",
    }[status]
    return f"a model in state '{status.value}' allows: {allowed}"


def _validated(text: str, path: str) -> ModelCard:
    loaded = load_card(text, path)
    if loaded.card is None or loaded.findings:
        f = loaded.findings[0]
        raise UsageError(f"the edited card would be invalid: {f.message} ({path}:{f.line})", f.hint)
    return loaded.card


def _request(
    root: Path,
    operation: str,
    verb: str,
    c: _Card,
    version: str | None,
    title: str,
    changes: list[str],
    writes: dict[str, bytes],
    branch: str | None,
    base: str,
    remove_dirs: tuple[str, ...] = (),
) -> ChangeRequest:
    branch = branch or f"registry/{verb}-{c.name}" + (f"-{version}" if version else "")
    command = "publish-request" if verb == "publish" else verb
    body = (
        f"{title}.\n\n"
        + "\n".join(f"- {x}" for x in changes)
        + f"\n\nRequested with `registry {command}`; the registry's checks run on this pull "
        f"request."
    )
    commit = _commit_branch(root, c.commit, branch, title, writes, remove_dirs)
    return ChangeRequest(
        operation=operation,
        name=c.name,
        version=version,
        branch=branch,
        base=_target_branch(root, base),
        commit=commit,
        title=title,
        body=body,
        changes=changes,
    )


def request_publish(
    root: str | Path, name: str, version: str, *, base: str = "HEAD", branch: str | None = None
) -> ChangeRequest:
    """Ask to publish `version` of a model: sets `version` and `status` (published, or updated for a
    model that already has a published version).

    Raises:
        UsageError: bad version, a version not above the last published one, or a state that does
            not allow publishing (offline).
    """
    root = Path(root)
    version = version.removeprefix("v")
    if not re.fullmatch(SEMVER, version):
        raise UsageError(
            f"'{version}' is not a SemVer version", "write it as MAJOR.MINOR.PATCH, e.g. 1.2.0"
        )
    c = _card(root, name, base)
    published = read_versions(root).get(name, [])
    if published and semver_key(version) <= semver_key(published[-1].version):
        raise UsageError(
            f"version {version} is not above {name}'s last published version "
            f"{published[-1].version} (tag {published[-1].tag})",
            f"choose a higher version, e.g. {_bump(published[-1].version)}",
        )
    first = c.card.status is Status.unpublished
    status = Status.published if first else Status.updated
    if c.card.status is Status.offline:
        raise UsageError(
            f"cannot publish '{name}': it is offline (unpublished after publication)",
            _state_hint(Status.offline),
        )
    _check_allowed(
        c.card,
        c.card.model_copy(update={"version": version, "status": status}),
        Operation.publish if first else Operation.update,
    )
    text = edit_card_text(c.text, {("version",): version, ("status",): status.value})
    _validated(text, c.path)
    op = "publish" if first else "update"
    title = f"Publish {name} {version}"
    changes = [f"{c.path}: version {c.card.version or '(none)'} → {version}"]
    if status is not c.card.status:
        changes.append(f"{c.path}: status {c.card.status.value} → {status.value}")
    return _request(
        root, op, "publish", c, version, title, changes, {c.path: text.encode()}, branch, base
    )


def request_unpublish(
    root: str | Path, name: str, *, base: str = "HEAD", branch: str | None = None
) -> ChangeRequest:
    """Ask to unpublish a model (status → offline): its versions are withdrawn but stay fetchable.

    Raises:
        UsageError: the model is not published/updated.
    """
    root = Path(root)
    c = _card(root, name, base)
    _check_allowed(
        c.card, c.card.model_copy(update={"status": Status.offline}), Operation.unpublish
    )
    text = edit_card_text(c.text, {("status",): Status.offline.value})
    _validated(text, c.path)
    title = f"Unpublish {name}"
    changes = [f"{c.path}: status {c.card.status.value} → offline"]
    return _request(
        root,
        "unpublish",
        "unpublish",
        c,
        c.card.version,
        title,
        changes,
        {c.path: text.encode()},
        branch,
        base,
    )


def request_delete(
    root: str | Path, name: str, *, base: str = "HEAD", branch: str | None = None
) -> ChangeRequest:
    """Ask to delete a model: its folder leaves the registry (storage and tags are kept).

    Raises:
        UsageError: the model is published/updated (unpublish it first).
    """
    root = Path(root)
    c = _card(root, name, base)
    _check_allowed(c.card, None, Operation.delete)
    folder = f"{MODELS_DIR}/{name}"
    writes: dict[str, bytes] = {}
    changes = [f"{folder}/: removed"]
    (dvc_yaml,) = cat_files(root, [f"{c.commit}:{DVC_YAML}"])
    kept = remove_artifact(dvc_yaml.decode(), name) if dvc_yaml is not None else None
    if kept is not None:
        writes[DVC_YAML] = kept.encode()
        changes.append(f"{DVC_YAML}: artifact '{name}' removed")
    return _request(
        root,
        "delete",
        "delete",
        c,
        c.card.version,
        f"Delete {name}",
        changes,
        writes,
        branch,
        base,
        remove_dirs=(folder,),
    )


def request_edit(
    root: str | Path,
    name: str,
    assignments: list[str],
    *,
    base: str = "HEAD",
    branch: str | None = None,
) -> ChangeRequest:
    """Ask to change card fields that do not identify a version (`key=value`, dotted paths allowed:
    `description=…`, `source.commit=abc1234`, `metrics.0.value=0.95`, `tags=[a, b]`).

    Raises:
        UsageError: a managed field (name/version/status), an identity field of a published
            version, an unknown path, a value the card schema refuses, or an offline model.
    """
    root = Path(root)
    if not assignments:
        raise UsageError("nothing to edit", "give one or more --set key=value")
    c = _card(root, name, base)
    _check_allowed(c.card, c.card, Operation.edit)
    import yaml

    updates: dict[tuple, object] = {}
    raw: dict[tuple, str] = {}
    for item in assignments:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(
                f"'{item}' is not key=value", "write --set description='A digit classifier'"
            )
        if key.split(".")[0] in MANAGED_FIELDS:
            raise UsageError(
                f"'{key}' cannot be edited with `registry edit`", MANAGED_FIELDS[key.split(".")[0]]
            )
        if (key in IDENTITY_FIELDS or key == "source") and c.card.status is not Status.unpublished:
            raise UsageError(
                f"'{key}' identifies {name} {c.card.version} (with source.repo, config and "
                f"weights) "
                "and cannot change once published",
                f"publish the change as a new version: edit the card on a branch and run "
                f"`registry publish-request {name} --version {_bump(c.card.version or '0.0.0')}`",
            )
        path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        updates[path] = parsed
        raw[path] = value
    _check_paths(c.text, updates)
    # A value YAML reads as a number or boolean where the card wants text (project=2024) is kept as
    # the text the user typed; each field is retried on its own so metrics stay numbers.
    for _ in range(len(updates) + 1):
        text = edit_card_text(c.text, updates)
        loaded = load_card(text, c.path)
        if loaded.card is not None and not loaded.findings:
            break
        retry = [
            tuple(f.loc)
            for f in loaded.findings
            if tuple(f.loc) in updates and not isinstance(updates[tuple(f.loc)], str)
        ]
        if not retry:
            break
        for p in retry:
            updates[p] = raw[p]
    after = _validated(text, c.path)
    _check_allowed(c.card, after, Operation.edit)
    if text == c.text:
        raise UsageError("the card already has these values; nothing to change")
    changes = [f"{c.path}: {'.'.join(map(str, p))} = {v!r}" for p, v in updates.items()]
    fields = ", ".join(".".join(map(str, p)) for p in updates)
    return _request(
        root,
        "edit",
        "edit",
        c,
        c.card.version,
        f"Edit {name}: {fields}",
        changes,
        {c.path: text.encode()},
        branch,
        base,
    )


def _check_paths(text: str, updates: dict[tuple, object]) -> None:
    """Refuse a dotted path whose parent does not exist in the card (a typo would add junk)."""
    data = parse_card_yaml(text).data
    for path in updates:
        node = data
        for i, key in enumerate(path[:-1]):
            ok = (isinstance(key, int) and isinstance(node, list) and key < len(node)) or (
                isinstance(key, str) and hasattr(node, "keys") and key in node
            )
            if not ok:
                where = ".".join(map(str, path[: i + 1]))
                if isinstance(node, list):
                    raise UsageError(
                        f"the card has no '{where}' ({'.'.join(map(str, path[:i]))} has "
                        f"{len(node)} items)",
                        "list items are numbered from 0",
                    )
                raise UsageError(
                    f"the card has no '{where}'", "check the key path (see `registry schema`)"
                )
            node = node[key]
        last = path[-1]
        if isinstance(last, int) and not (isinstance(node, list) and last < len(node)):
            raise UsageError(
                f"the card has no '{'.'.join(map(str, path))}'", "list items are numbered from 0"
            )


def _card(root: Path, name: str, base: str) -> _Card:
    return _Card(root, name, base)


def _bump(version: str) -> str:
    """The next minor version: 1.2.3 → 1.3.0."""
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return f"{m[1]}.{int(m[2]) + 1}.0" if m else "1.0.0"


def render_request(r: ChangeRequest) -> str:
    """What the lifecycle commands print: the branch, the change, and how to open the pull
    request."""
    lines = [f"committed {r.title!r} on new branch {r.branch} ({r.commit[:8]}), based on {r.base}:"]
    lines += [f"  {x}" for x in r.changes]
    lines += [
        "",
        "your working tree is unchanged. Open the pull request:",
        f"  {r.push_command}",
        f"  {r.pr_command}",
    ]
    return "\n".join(lines)
