"""What `registry list` prints: every model's state, latest version and task.

The registry index (`registry.versions.index`) answers it without reading every card and every
tag object: one `git for-each-ref` that reads no tag object checks the index against the tag refs,
one tree diff (and, for the working tree, one `git diff-index`) finds the cards changed since the
index was written, and only those models, and any whose tags disagree with the index, are read
from their cards and tags. Without an index, everything comes from the cards (working tree or a
revision, `registry.cards.bulk`) and one `git for-each-ref` of every tag
(`registry.versions.tags`), with a notice saying so.

This module imports no validation library: listing a registry of 100,000 models starts fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.errors import UsageError

if TYPE_CHECKING:
    from registry.cards.bulk import CardRecord
    from registry.versions.tags import Version


class ModelSummary:
    """One line of `registry list`.

    Attributes:
        name: the model.
        state: the card's status, 'invalid' when the card does not validate.
        latest: the version NAME@latest resolves to.
        versions: number of published versions (withdrawn included).
        task, project: the card's.
    """

    __slots__ = ("name", "state", "latest", "versions", "task", "project")

    def __init__(
        self,
        name: str,
        state: str,
        latest: str | None = None,
        versions: int = 0,
        task: str | None = None,
        project: str | None = None,
    ):
        # a plain class, not a dataclass: building one costs a compile at import time
        self.name, self.state, self.latest = name, state, latest
        self.versions, self.task, self.project = versions, task, project

    def model_dump(self, mode: str = "python") -> dict:
        """The row as a dict (the JSON of `registry list --format json`)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSummary) and self.model_dump() == other.model_dump()

    def __repr__(self) -> str:
        return f"ModelSummary({self.model_dump()})"


def model_versions(
    table: dict[str, list[Version]], record: CardRecord | None, name: str
) -> list[Version]:
    """A model's versions with the card's offline state applied."""
    from registry.cards.schema import Status
    from registry.versions.tags import withdraw_offline

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

    Raises:
        UsageError: an unknown state. GitError: an unknown revision.
    """
    rows = _from_index(root, rev)
    if rows is None:
        rows = _from_cards_and_tags(root, rev)
    out = [
        r
        for r in rows
        if (task is None or r.task == task)
        and (project is None or r.project == project)
        and (state is None or r.state == state)
    ]
    if state is not None and not out:
        from registry.cards.schema import Status

        if state not in {s.value for s in Status} | {"invalid"}:
            raise UsageError(
                f"unknown state '{state}'",
                "states: " + ", ".join(s.value for s in Status) + ", invalid",
            )
    return out


def _from_index(root: str | Path, rev: str | None) -> list[ModelSummary] | None:
    """Every row from the registry index, the models whose card or tags changed since read again;
    None (with a notice) when there is no usable index."""
    from registry.versions import index as ix

    if rev is not None:
        _commit_of(root, rev)
    tags = ix.TagDigest(root)
    index, here, reason = ix.read_index(root, rev)
    if index is None:
        ix.notice(f"{reason}; reading every card and tag. {ix.FIX}")
        return None
    changed = ix.changed_cards(root, index.cards_tree, here)
    if changed is None:
        ix.notice(
            "the cards the registry index was written for are not in this clone; reading every "
            f"card and tag. {ix.FIX}"
        )
        return None
    if rev is None:
        changed |= ix.worktree_cards(root, index.rows)
    doubt: set[str] = set()
    refs = None
    if tags.hexdigest() != index.tags_digest:
        refs = ix.refs_by_model(ix.all_tag_refs(root))
        doubt = {n for n, r in index.rows.items() if ix.model_digest(refs.get(n, [])) != r.digest}
        if doubt:
            shown = ", ".join(sorted(doubt)[:5]) + (", …" if len(doubt) > 5 else "")
            ix.notice(
                f"the registry index disagrees with the tags of {len(doubt)} model(s) ({shown}); "
                f"reading their tags. {ix.FIX}"
            )
    again = changed | doubt
    rows = [
        ModelSummary(r.name, r.state, r.latest, r.versions, r.task, r.project)
        for r in index.rows.values()
        if r.name not in again
    ]
    if again:
        rows += _reread(root, rev, sorted(again), doubt, refs)
        rows.sort(key=lambda r: r.name)
    return rows


def _reread(
    root: str | Path, rev: str | None, names: list[str], doubt: set[str], refs: dict | None
) -> list[ModelSummary]:
    """Rows of models whose card changed since the index or whose tags disagree with it: cards
    read again; versions from the index where it agrees with the model's tags, else from the tags
    (confirmed against the default branch)."""
    from registry.cards.bulk import read_cards
    from registry.versions import index as ix
    from registry.versions.tags import confirm_versions, read_model_versions

    cards = read_cards(root, rev, names)
    names = sorted(cards)
    entries = ix.read_models(root, names)
    table: dict[str, list[Version]] = {}
    from_tags = []
    for n in names:
        entry = entries.get(n)
        indexed = entry.tags if entry else {}
        if refs is None or (n not in doubt and dict(refs.get(n, [])) == indexed):
            # every tag ref of this model is the index's: its versions are the index's
            table[n] = ix.versions_of(entry)[0] if entry else []
        else:
            from_tags += read_model_versions(root, n)
    if from_tags:
        kept, _ = confirm_versions(root, from_tags)
        for v in kept:
            table.setdefault(v.name, []).append(v)
    return [_row(n, cards[n], table) for n in names]


def _row(name: str, rec: CardRecord, table: dict[str, list[Version]]) -> ModelSummary:
    from registry.versions.tags import latest

    c = rec.card
    versions = model_versions(table, rec, name)
    found = latest(versions)
    return ModelSummary(
        name=name,
        state=c.status.value if c else "invalid",
        latest=found.version if found else None,
        versions=len(versions),
        task=c.task.value if c else None,
        project=c.project if c else None,
    )


def _commit_of(root: str | Path, rev: str) -> str:
    from registry.core.errors import GitError
    from registry.core.git import run_git

    commit = run_git(
        root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False
    ).strip()
    if not commit:
        raise GitError(
            f"unknown git revision '{rev}'", "give a branch, tag or commit that exists (git fetch?)"
        )
    return commit


def _from_cards_and_tags(root: str | Path, rev: str | None) -> list[ModelSummary]:
    """Every row from the cards and every tag (no index): the latest version of a model whose
    card does not name it is confirmed against its tag's commit, so a tag pushed by hand never
    shows as latest."""
    from registry.cards.bulk import read_cards
    from registry.versions.tags import latest, read_versions

    cards = read_cards(root, rev)
    table = read_versions(root)
    rows, doubtful = [], {}
    for name, rec in cards.items():
        row = _row(name, rec, table)
        found = latest(model_versions(table, rec, name))
        if found is not None and (rec.card is None or rec.card.version != found.version):
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
    from registry.versions.tags import confirm_versions, latest

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
        (r.name, r.state, r.latest or "-", str(r.versions), r.task or "-", r.project or "-")
        for r in rows
    ]
    if _CONTROL.search("\n".join("\n".join(row) for row in table)):
        table = [tuple(printable(c) for c in row) for row in table]
    widths = [max(map(len, col)) for col in zip(*table)]
    line = "  ".join(f"%-{w}s" for w in widths)
    return "\n".join([(line % row).rstrip() for row in table])
