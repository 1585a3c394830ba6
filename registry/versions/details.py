"""What `registry show` prints: a model's card, state, versions with dates and withdrawn marks,
release notes and the commands that fetch it.

The versions come from the registry index when it agrees with the model's tags
(`registry.versions.index`), else from the model's own tags (one `git for-each-ref` of
`refs/tags/NAME@*`), confirmed against the default branch; nothing reads the other models' tags.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from registry.cards.bulk import CardRecord, read_cards
from registry.cards.schema import ModelCard, format_size
from registry.core.errors import UsageError
from registry.core.git import cat_files, run_git
from registry.versions.listing import model_versions, printable
from registry.versions.plainshow import pull_commands
from registry.versions.tags import (
    StrayTag,
    Version,
    confirm_versions,
    latest,
    read_model_versions,
    resolve,
    tag_message,
)


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
    found, stray = published_versions(root, name)
    versions = model_versions({name: found}, head, name)
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
        record = _card_at(root, chosen.commit, name) or head
        targets = [t.name for t in record.card.targets] if record and record.card else []
        details.pull = pull_commands(name, chosen.version, _origin_url(root), targets)
    if record is not None:
        details.card, details.card_problem = record.card, record.problem
    return details


def published_versions(root: str | Path, name: str) -> tuple[list[Version], list[StrayTag]]:
    """A model's published versions (lowest first, withdrawal by tags applied) and its stray tags:
    from the registry index when it agrees with the model's tags, else from the tags themselves
    (confirmed against the default branch)."""
    from registry.versions.index import model_from_index, versions_of

    entry = model_from_index(root, name)
    if entry is not None:
        return versions_of(entry)
    return confirm_versions(root, read_model_versions(root, name))


def _card_at(root: Path, commit: str, name: str) -> CardRecord | None:
    """The card of `name` as committed at `commit` (one `git cat-file`)."""
    from registry.cards.bulk import record_of
    from registry.core.layout import CARD_FILE, MODELS_DIR

    (data,) = cat_files(root, [f"{commit}:{MODELS_DIR}/{name}/{CARD_FILE}"])
    return None if data is None else record_of(name, data)


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
