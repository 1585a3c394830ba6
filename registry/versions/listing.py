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

from registry.core.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms of `list`)
if TYPE_CHECKING:
    import re
    from pathlib import Path

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
) -> ModelTable:
    """Every model with its state, latest version and task, filtered (all filters must match).

    Args:
        root: a clone of the registry.
        task, project, state: keep only models with this task / project / state.
        rev: read cards at this revision instead of the working tree.

    Returns:
        The rows, sorted by name: a sequence of `ModelSummary`.

    Raises:
        UsageError: an unknown state. GitError: an unknown revision.
    """
    table = _from_index(root, rev)
    if table is None:
        table = ModelTable.of(_from_cards_and_tags(root, rev))
    out = table.where(task=task, project=project, state=state)
    if state is not None and not out:
        from registry.cards.schema import Status

        if state not in {s.value for s in Status} | {"invalid"}:
            raise UsageError(
                f"unknown state '{state}'",
                "states: " + ", ".join(s.value for s in Status) + ", invalid",
            )
    return out


class ModelTable:
    """The rows of `registry list` kept as columns of text (`-` for none), as `models.tsv` holds
    them: a hundred thousand models are listed, filtered and printed without an object per row.
    A sequence of `ModelSummary` (made when asked for) for the API's callers."""

    __slots__ = ("names", "states", "latest", "versions", "tasks", "projects", "printable")

    def __init__(
        self,
        names: list[str],
        states: list[str],
        latest: list[str],
        versions: list[str],
        tasks: list[str],
        projects: list[str],
        printable: bool = False,
    ):
        self.names, self.states, self.latest = names, states, latest
        self.versions, self.tasks, self.projects = versions, tasks, projects
        # known to hold no control character (else `render` checks every column)
        self.printable = printable

    @classmethod
    def of(cls, rows: list[ModelSummary]) -> ModelTable:
        """A table of rows."""
        return cls(
            [r.name for r in rows],
            [r.state for r in rows],
            [r.latest or "-" for r in rows],
            [str(r.versions) for r in rows],
            [r.task or "-" for r in rows],
            [r.project or "-" for r in rows],
        )

    def _columns(self) -> tuple[list[str], ...]:
        return (self.names, self.states, self.latest, self.versions, self.tasks, self.projects)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> ModelSummary:
        def cell(v: str) -> str | None:
            return None if v == "-" else v

        return ModelSummary(
            self.names[i],
            self.states[i],
            cell(self.latest[i]),
            int(self.versions[i]),
            cell(self.tasks[i]),
            cell(self.projects[i]),
        )

    def __iter__(self):
        return (self[i] for i in range(len(self.names)))

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (ModelTable, list)) else False

    def __repr__(self) -> str:
        return f"ModelTable({list(self)!r})"

    def where(
        self, *, task: str | None = None, project: str | None = None, state: str | None = None
    ) -> ModelTable:
        """The rows matching every filter given."""
        keep = None
        for column, wanted in ((self.tasks, task), (self.projects, project), (self.states, state)):
            if wanted is not None:
                match = [v == wanted for v in column]
                keep = match if keep is None else [a and b for a, b in zip(keep, match)]
        if keep is None:
            return self
        from itertools import compress

        return ModelTable(*(list(compress(c, keep)) for c in self._columns()), self.printable)

    def without(self, names: set[str]) -> ModelTable:
        """The table less the rows of `names`."""
        if not names:
            return self
        from itertools import compress

        keep = [n not in names for n in self.names]
        return ModelTable(*(list(compress(c, keep)) for c in self._columns()), self.printable)

    def merged(self, rows: list[ModelSummary]) -> ModelTable:
        """The table with more rows, all sorted by name."""
        if not rows:
            return self
        extra = ModelTable.of(rows)
        printable = self.printable and all("".join(c).isprintable() for c in extra._columns())
        if len(rows) < 64:
            from bisect import bisect_left

            cols = [list(c) for c in self._columns()]
            for i, name in enumerate(extra.names):
                at = bisect_left(cols[0], name)
                for col, add in zip(cols, extra._columns()):
                    col.insert(at, add[i])
            return ModelTable(*cols, printable)
        both = sorted(list(zip(*self._columns())) + list(zip(*extra._columns())))
        return ModelTable(*(list(c) for c in zip(*both)), printable)

    def render(self) -> str:
        """The aligned text table of `registry list`."""
        if not self.names:
            return "no models"
        heads = ("NAME", "STATE", "LATEST", "VERSIONS", "TASK", "PROJECT")
        cols = [[h, *c] for h, c in zip(heads, self._columns())]
        # str.isprintable is false for every control character (and a few harmless ones): only
        # then is each cell cleaned
        if not self.printable and not all("".join(c).isprintable() for c in cols):
            cols = [[printable(v) for v in c] for c in cols]
        widths = [len(max(c, key=len)) for c in cols[:-1]]
        line = "".join(f"%-{w}s  " for w in widths) + "%s"
        return "\n".join(map(line.__mod__, zip(*cols)))

    def to_json(self) -> str:
        """`registry list --format json`: a list of objects, one per line."""
        import json

        dumps = json.dumps
        return "[\n" + ",\n".join("  " + dumps(r.model_dump()) for r in self) + "\n]"


def _from_index(root: str | Path, rev: str | None) -> ModelTable | None:
    """Every row from the registry index, the models whose card or tags changed since read again;
    None (with a notice) when there is no usable index."""
    from registry.versions import index as ix

    if rev is not None:
        _commit_of(root, rev)
    tags = ix.TagDigest(root)
    edits = ix.WorktreeCards(root) if rev is None else None
    head, here, reason = ix.read_index_head(root, rev)
    if head is None:
        ix.notice(f"{reason}; reading every card and tag. {ix.FIX}")
        if edits is not None:
            edits.close()
        return None
    try:
        columns = ix.models_columns(head.models)
    except (ValueError, UnicodeDecodeError) as e:
        ix.notice(f"the registry index cannot be read: {e}; reading every card and tag. {ix.FIX}")
        if edits is not None:
            edits.close()
        return None
    names, states, tasks, projects, latest, versions, digests = columns
    changed = ix.changed_cards(root, head.cards_tree, here)
    if changed is None:
        ix.notice(
            "the cards the registry index was written for are not in this clone; reading every "
            f"card and tag. {ix.FIX}"
        )
        if edits is not None:
            edits.close()
        return None
    if edits is not None:
        changed |= edits.names(names, key=head.commit)
    doubt: set[str] = set()
    refs = None
    if tags.hexdigest() != head.tags_digest:
        refs = ix.refs_by_model(ix.all_tag_refs(root))
        doubt = {n for n, d in zip(names, digests) if ix.model_digest(refs.get(n, [])) != d}
        if doubt:
            shown = ", ".join(sorted(doubt)[:5]) + (", …" if len(doubt) > 5 else "")
            ix.notice(
                f"the registry index disagrees with the tags of {len(doubt)} model(s) ({shown}); "
                f"reading their tags. {ix.FIX}"
            )
    # models.tsv in ASCII without a control character but tab and line feed (the common case,
    # found in one pass over the bytes) needs no cleaning for the terminal
    data = head.models
    printable = data.isascii() and len(data.translate(None, _CONTROL_BYTES)) == len(data)
    table = ModelTable(names, states, latest, versions, tasks, projects, printable)
    again = changed | doubt
    if again:
        table = table.without(again).merged(_reread(root, rev, sorted(again), doubt, refs))
    return table


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


_CONTROL_BYTES = bytes([*range(0x09), *range(0x0B, 0x20), 0x7F])  # all but tab and line feed
# escape sequences (CSI, OSC) and the other control characters; compiled when first needed (`re`
# is a few ms of `registry list`, which rarely needs it)
_CONTROL = (
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
_compiled: list[re.Pattern] = []


def printable(text: str) -> str:
    """Card text (and tag messages) made safe for a terminal: escape sequences (colours, cursor
    moves, window titles, hyperlinks) and other control characters removed, tabs kept."""
    if not _compiled:
        import re

        _compiled.append(re.compile(_CONTROL))
    return _compiled[0].sub("", text)


def render_list(rows: ModelTable | list[ModelSummary]) -> str:
    """`registry list` as an aligned text table."""
    table = rows if isinstance(rows, ModelTable) else ModelTable.of(rows)
    return table.render()
