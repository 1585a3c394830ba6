"""What `registry list` and `registry show` print: every model's state and versions, read in bulk.

Cards come from the working tree (plain file reads) or, for a revision, from the object database
through one `git cat-file --batch` process; versions come from one `git for-each-ref`
(`registry.versions.tags`). Nothing walks history, so a registry of 1,000 models and 10,000 tags
lists
in a fraction of a second.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from registry.cards.bulk import CardRecord, read_cards
from registry.cards.schema import ModelCard, Status, format_size
from registry.core.errors import UsageError
from registry.core.git import run_git
from registry.versions.tags import (
    StrayTag,
    Version,
    confirm_versions,
    latest,
    read_versions,
    resolve,
    tag_message,
    withdraw_offline,
)


class ModelSummary(BaseModel):
    """One line of `registry list`."""

    name: str
    state: str = Field(
        description="the card's status, 'invalid' when the card does not validate, "
        "'deleted' when only tags remain"
    )
    latest: str | None = Field(None, description="the version NAME@latest resolves to")
    versions: int = Field(0, description="number of published versions (withdrawn included)")
    task: str | None = None
    project: str | None = None


class ModelDetails(BaseModel):
    """Everything `registry show NAME[@VERSION]` prints."""

    name: str
    state: str
    card: ModelCard | None = Field(
        None, description="the card at the shown version's tag, else at HEAD"
    )
    card_problem: str | None = None
    shown_version: str | None = Field(
        None, description="the version whose card and notes are shown"
    )
    latest: str | None = None
    versions: list[Version] = Field(default_factory=list)
    notes: str = Field("", description="release notes of the shown version (its tag message)")
    pull: list[str] = Field(
        default_factory=list, description="commands that fetch the shown version"
    )
    stray: list[StrayTag] = Field(
        default_factory=list,
        description="version tags the publish workflow did not "
        "make (off the default branch, or the card there disagrees): never versions",
    )


# --------------------------------------------------------------------------- bulk card reading


def model_versions(
    table: dict[str, list[Version]], record: CardRecord | None, name: str
) -> list[Version]:
    """A model's versions with the card's offline state applied."""
    versions = table.get(name, [])
    if record is not None and record.card is not None and record.card.status is Status.offline:
        versions = withdraw_offline(versions)
    return versions


# --------------------------------------------------------------------------- list


def list_models(
    root: str | Path,
    *,
    task: str | None = None,
    project: str | None = None,
    state: str | None = None,
    rev: str | None = None,
) -> list[ModelSummary]:
    """Every model with its state, latest version and task, filtered (all filters must match).

    Args:
        root: a clone of the registry.
        task, project, state: keep only models with this task / project / state.
        rev: read cards at this revision instead of the working tree.
    """
    if state is not None and state not in {s.value for s in Status} | {"invalid"}:
        raise UsageError(
            f"unknown state '{state}'",
            "states: " + ", ".join(s.value for s in Status) + ", invalid",
        )
    cards = read_cards(root, rev)
    table = read_versions(root)
    rows, doubtful = [], {}
    for name, rec in cards.items():
        c = rec.card
        row = ModelSummary(
            name=name,
            state=c.status.value if c else "invalid",
            task=c.task.value if c else None,
            project=c.project if c else None,
        )
        if (
            (task and row.task != task)
            or (project and row.project != project)
            or (state and row.state != state)
        ):
            continue
        versions = model_versions(table, rec, name)
        found = latest(versions)
        row.latest = found.version if found else None
        row.versions = len(versions)
        if found is not None and (c is None or c.version != found.version):
            doubtful[name] = (row, rec)  # the card does not name it: maybe a tag pushed by hand
        rows.append(row)
    if doubtful:
        _confirm_latest(root, table, doubtful)
    return rows


def _confirm_latest(root: str | Path, table: dict[str, list[Version]], doubtful: dict) -> None:
    """Latest versions the current card does not name are confirmed against their tags' commits
    (on the default branch, card publishing that version); stray tags are dropped, so a tag pushed
    by hand never shows as latest. The common case, the card naming its latest version, costs
    nothing."""
    kept, _ = confirm_versions(
        root, [v for name in doubtful for v in table.get(name, [])]
    )  # one git pass
    confirmed: dict[str, list[Version]] = {}
    for v in kept:
        confirmed.setdefault(v.name, []).append(v)
    for name, (row, rec) in doubtful.items():
        versions = model_versions(confirmed, rec, name)
        found = latest(versions)
        row.latest = found.version if found else None
        row.versions = len(versions)


# --------------------------------------------------------------------------- show


def show_model(root: str | Path, name: str, version: str | None = None) -> ModelDetails:
    """A model's details: card, state, versions with dates and withdrawn marks, notes, pull
    commands.

    Args:
        root: a clone of the registry.
        name: the model.
        version: show this version's card and notes (default: the latest, else the card at HEAD).

    Raises:
        UsageError: no such model, or no such version.
    """
    root = Path(root)
    head = read_cards(root, None, [name]).get(name)
    table = read_versions(root)
    table[name], stray = confirm_versions(root, table.get(name, []))
    versions = model_versions(table, head, name)
    if head is None and not versions and not stray:
        raise UsageError(
            f"no model named '{name}'", "see `registry list` for the models in this registry"
        )
    state = "deleted" if head is None else (head.card.status.value if head.card else "invalid")
    chosen = resolve({name: versions}, name, version) if version else latest(versions)
    details = ModelDetails(name=name, state=state, versions=versions, stray=stray)
    live = latest(versions)
    details.latest = live.version if live else None
    record = head
    if chosen is not None:
        details.shown_version = chosen.version
        details.notes = tag_message(root, chosen.tag)
        record = read_cards(root, chosen.commit, [name]).get(name) or head
        targets = [t.name for t in record.card.targets] if record and record.card else []
        details.pull = pull_commands(name, chosen.version, _origin_url(root), targets)
    if record is not None:
        details.card, details.card_problem = record.card, record.problem
    return details


def pull_commands(
    name: str, version: str, repo_url: str, targets: list[str] | tuple = ()
) -> list[str]:
    """The ways to fetch one version: registry pull, git checkout + dvc pull, dvc artifacts get, and
    `registry pull --target` for the device package of each target the card lists."""
    return [
        f"registry pull {name}@{version} -o {name}-{version}",
        f"registry pull {name}@{version} --repo {repo_url}",
        f"git checkout {name}@v{version} && dvc pull -R models/{name}",
        f"dvc artifacts get {repo_url} {name} --rev v{version}",
    ] + [f"registry pull {name}@{version} --target {t}" for t in targets]


def _origin_url(root: Path) -> str:
    url = run_git(root, "config", "--get", "remote.origin.url", check=False).strip()
    return url or str(root)  # a local clone is a valid URL for `--repo` and `dvc artifacts get`


def render_details(d: ModelDetails) -> str:
    """`registry show` as text."""
    lines = [f"{d.name}  [{d.state}]"]
    c = d.card
    if c is not None:
        lines.append(f"  task: {c.task.value}   project: {c.project}   license: {c.license or '-'}")
        if c.description:
            lines.append(f"  {c.description.strip().splitlines()[0]}")
        source = "this repository" if c.source.is_self else c.source.repo
        lines.append(
            f"  source: {source}"
            + (f", {c.source.path}" if c.source.path else "")
            + (f" @ {c.source.commit}" if c.source.commit else "")
        )
        lines.append(
            f"  config: {c.config}   weights: {c.weights}"
            + (
                f"   size: {format_size(c.size_bytes)} ({c.size_bytes:,} bytes)"
                if c.size_bytes is not None
                else ""
            )
        )
        for m in c.metrics:
            lines.append(f"  metric: {m.name} = {m.value:g}{m.unit or ''} on {m.dataset}")
        if c.owners:
            lines.append(f"  owners: {', '.join(c.owners)}")
    elif d.card_problem:
        lines.append(f"  card: {d.card_problem}")
    lines.append("")
    if d.versions:
        lines.append(f"versions (latest: {d.latest or 'none'}):")
        for v in reversed(d.versions):
            mark = f"  withdrawn ({v.withdrawn_by})" if v.withdrawn else ""
            here = " *" if v.version == d.shown_version else "  "
            lines.append(
                f" {here}{v.version:<14} {v.date.strftime('%Y-%m-%d %H:%M')}  {v.commit[:8]}{mark}"
            )
    else:
        lines.append("versions: none published")
    if d.stray:
        lines += ["", "stray tags (not versions; tell the registry's maintainers):"]
        lines += [f"  {t.tag}: {t.reason}" for t in d.stray]
    if d.notes:
        lines += ["", f"release notes of {d.shown_version}:"] + [
            f"  {x}" for x in d.notes.splitlines()
        ]
    if d.pull:
        lines += ["", f"get {d.name} {d.shown_version}:"] + [f"  {x}" for x in d.pull]
    return "\n".join(printable(line) for line in lines)


_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: str) -> str:
    """Card text (and tag messages) made safe for a terminal: escape sequences (colours, cursor
    moves, window titles, hyperlinks) and other control characters removed, tabs kept."""
    return _CONTROL.sub("", text)


def render_list(rows: list[ModelSummary]) -> str:
    """`registry list` as an aligned text table."""
    if not rows:
        return "no models"
    head = ("NAME", "STATE", "LATEST", "VERSIONS", "TASK", "PROJECT")
    table = [head] + [
        tuple(
            printable(c)
            for c in (
                r.name,
                r.state,
                r.latest or "-",
                str(r.versions),
                r.task or "-",
                r.project or "-",
            )
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table
    )
