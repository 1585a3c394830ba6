"""Every model's card at once: from the working tree (plain file reads) or, for a revision, from the
object database through one `git cat-file --batch` process. A card that does not validate is a
record with the reason, never an exception, so one bad card does not hide the others.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from registry.cards.schema import ModelCard, load_card
from registry.core.errors import CardError, GitError
from registry.core.git import cat_files, run_git
from registry.core.layout import CARD_FILE, MODELS_DIR


class CardRecord(BaseModel):
    """One model's card as read for listing: the validated card, or why it could not be read."""

    name: str
    card: ModelCard | None = None
    problem: str | None = None


def read_cards(
    root: str | Path, rev: str | None = None, names: list[str] | None = None
) -> dict[str, CardRecord]:
    """Cards of every model (or of `names`), from the working tree or a revision.

    Raises:
        GitError: unknown revision.
    """
    root = Path(root)
    if rev is None:
        if names is None:
            try:
                names = sorted(e.name for e in os.scandir(root / MODELS_DIR) if e.is_dir())
            except FileNotFoundError:
                names = []
        blobs: dict[str, bytes | None] = {}
        for n in names:
            try:
                blobs[n] = (root / MODELS_DIR / n / CARD_FILE).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                blobs[n] = None
    else:
        commit = run_git(
            root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False
        ).strip()
        if not commit:
            raise GitError(
                f"unknown git revision '{rev}'",
                "give a branch, tag or commit that exists (git fetch?)",
            )
        rev = commit
        if names is None:
            out = run_git(root, "ls-tree", "-d", "--name-only", f"{rev}:{MODELS_DIR}", check=False)
            names = sorted(filter(None, out.splitlines()))
        blobs = dict(
            zip(names, cat_files(root, [f"{rev}:{MODELS_DIR}/{n}/{CARD_FILE}" for n in names]))
        )
    return {n: record_of(n, data) for n, data in blobs.items() if data is not None}


def record_of(name: str, data: bytes) -> CardRecord:
    """The record of one card's bytes: the validated card, or the first problem with its line."""
    path = f"{MODELS_DIR}/{name}/{CARD_FILE}"
    try:
        loaded = load_card(data, path)
    except CardError as e:
        return CardRecord(name=name, problem=str(e))
    if loaded.card is None:
        first = loaded.findings[0]
        where = f"{path}:{first.line}" if first.line else path
        return CardRecord(name=name, problem=f"{where}: {first.message}")
    return CardRecord(name=name, card=loaded.card)
