"""Standard: every model has a name no other model shares, even after case and separators are
ignored.

On a case-insensitive file system (macOS, Windows) `models/Digits-CNN` and `models/digits-cnn` are
one folder, and `digits_cnn` reads as the same model to a person; so names collide when their
normal forms do. The listing of `models/` is read once per run (one directory read, no card), so a
pull request is told about collisions with models it did not touch without reading their cards.
The first models of a run are each looked for in that listing by one text search, so a pull
request's check costs little in a registry of 100,000 models; a run over many models builds the
index of every name's normal form once instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from registry.cards.schema import CARD_FILE, MODELS_DIR
from registry.checks import Check, Finding, ModelContext, register
from registry.core.repo import Snapshot


def normal_name(name: str) -> str:
    """The form two names must not share: lower case, runs of '-', '_', '.', blanks as one '-'."""
    return _RUNS.sub("-", name.strip().lower()).strip("-")


_RUNS = re.compile(r"[-_.\s]+")


def name_index(snapshot: Snapshot) -> dict[str, list[str]]:
    """{normal name: [folder names]} over every folder under models/ of a snapshot."""
    return _index(snapshot.model_folders())


def _index(folders: list[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for folder in folders:
        index.setdefault(normal_name(folder), []).append(folder)
    return index


# Characters of the names a pattern search finds by itself; a folder name with any other (rare:
# the bot refuses such names) is always a candidate, compared by its normal form.
_OTHER = re.compile(r"[^\0A-Za-z0-9._-]")
_SEPARATORS = "[-_.]"
# Models looked for one at a time before a run builds the whole index.
_SEARCHES = 16
# Names compared one by one at most in such a search (more: one pattern search of the listing).
_CANDIDATES = 1_000


def sharing_normal_form(listing: str, name: str) -> list[str]:
    """The folders of `listing` (folder names, each followed by NUL) whose normal form is `name`'s,
    found by searching the listing rather than by normalising each name."""
    target = normal_name(name)
    lowered = listing.lower() if listing.isascii() else ""  # (lower() keeps ASCII's offsets)
    counts = {w: lowered.count(w) for w in target.split("-") if w and lowered}
    rarest = min(counts, key=counts.__getitem__, default=None)
    if rarest is not None and counts[rarest] <= _CANDIDATES:
        # a name of that normal form holds each of its words, lower-cased, between separators:
        # the names holding its rarest word (plain text searches) are the only candidates
        candidates, at = set(), 0
        while (at := lowered.find(rarest, at)) >= 0:
            start = lowered.rfind("\0", 0, at) + 1
            end = lowered.find("\0", at)
            end = len(listing) if end < 0 else end
            candidates.add(listing[start:end])
            at = end
        return sorted(f for f in candidates if normal_name(f) == target)
    words = f"{_SEPARATORS}+".join(re.escape(w) for w in target.split("-"))
    pattern = f"(?<![^\\0]){_SEPARATORS}*{words}{_SEPARATORS}*(?=\\0)"
    found = re.findall(pattern, listing, re.IGNORECASE)
    for m in _OTHER.finditer(listing):
        start = listing.rfind("\0", 0, m.start()) + 1
        found.append(listing[start : listing.index("\0", m.start())])
    return sorted({f for f in found if normal_name(f) == target})


@register
class UniqueName(Check):
    """No two models whose names differ only in case or separators; every model folder has a
    card."""

    name = "unique-name"
    description = (
        "no two model folders whose names differ only in case or in '-', '_', '.' "
        "(checked across the whole registry, reported on the models checked); every "
        "folder under models/ holds a model.yaml"
    )
    needs_card = False
    order = 10

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        # by revision (None: the working tree), so that processes forked by the run reuse them
        key = ("name-index", ctx.head.rev)
        if ctx.loaded is None and ctx.head_error is None:
            if ctx.head.list_dir(ctx.folder):
                yield self.finding(
                    f"{ctx.folder}/ has no {CARD_FILE}",
                    f"add {ctx.folder}/{CARD_FILE} (`registry new {ctx.name.lower()}` "
                    "writes one), or remove the folder",
                    path=f"{ctx.folder}/",
                )
            return
        others = [n for n in self._same_form(ctx, key) if n != ctx.name]
        if others:
            clash = ", ".join(f"{MODELS_DIR}/{n}" for n in others)
            yield self.finding(
                f"model name '{ctx.name}' collides with {clash} (names may not differ only in case "
                f"or "
                "separators)",
                "rename one of them: model names are lowercase with '-' between words",
                path=ctx.card_path,
                line=ctx.line("name") or 1,
            )

    def _same_form(self, ctx: ModelContext, key: tuple) -> list[str]:
        """The folders whose normal form is the model's: a search of the listing for the first
        models of a run, the index for the others."""
        if key not in ctx.cache:
            listing_key = ("model-listing", key[1])
            if listing_key not in ctx.cache:
                ctx.cache[listing_key] = ctx.head.model_listing()
            searched = ctx.cache.setdefault(("name-searches", key[1]), [0])
            # a run over more models than that builds the index at once (it will need it)
            if searched[0] < _SEARCHES and ctx.cache.get("run-size", 0) <= _SEARCHES:
                searched[0] += 1
                return sharing_normal_form(ctx.cache[listing_key], ctx.name)
            ctx.cache[key] = _index(sorted(ctx.cache[listing_key].split("\0")[:-1]))
        return ctx.cache[key].get(normal_name(ctx.name), [])
