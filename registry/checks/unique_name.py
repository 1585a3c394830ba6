"""Standard: every model has a name no other model shares, even after case and separators are
ignored.

On a case-insensitive file system (macOS, Windows) `models/Digits-CNN` and `models/digits-cnn` are
one folder, and `digits_cnn` reads as the same model to a person; so names collide when their
normal forms do. The index is built once per run from the listing of `models/` (one directory
read), then each checked model is looked up in it, so a pull request is told about collisions
with models it did not touch without reading their cards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from registry.cards.schema import CARD_FILE, MODELS_DIR
from registry.checks import Check, Finding, ModelContext, register
from registry.core.repo import Snapshot


def normal_name(name: str) -> str:
    """The form two names must not share: lower case, runs of '-', '_', '.', blanks as one '-'."""
    return re.sub(r"[-_.\s]+", "-", name.strip().lower()).strip("-")


def name_index(snapshot: Snapshot) -> dict[str, list[str]]:
    """{normal name: [folder names]} over every folder under models/ of a snapshot."""
    index: dict[str, list[str]] = {}
    for folder in snapshot.model_folders():
        index.setdefault(normal_name(folder), []).append(folder)
    return index


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
        # by revision (None: the working tree), so that processes forked by the run reuse it
        key = ("name-index", ctx.head.rev)
        if key not in ctx.cache:
            ctx.cache[key] = name_index(ctx.head)
        if ctx.loaded is None and ctx.head_error is None:
            if ctx.head.list_dir(ctx.folder):
                yield self.finding(
                    f"{ctx.folder}/ has no {CARD_FILE}",
                    f"add {ctx.folder}/{CARD_FILE} (`registry new {ctx.name.lower()}` "
                    "writes one), or remove the folder",
                    path=f"{ctx.folder}/",
                )
            return
        others = [n for n in ctx.cache[key].get(normal_name(ctx.name), []) if n != ctx.name]
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
