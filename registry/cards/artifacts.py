"""DVC artifact declarations: the `artifacts:` section of the root `dvc.yaml`, one entry per model.

DVC (`dvc artifacts get <repo-url> <name> --rev v<version>`) and GTO find a model's weights by
its artifact entry: `path` (the DVC-tracked weights file), `type: model`, `desc` and `labels`.
The entries are derived from the cards, never written by hand: `registry sync-artifacts` rewrites
them (keeping anything else in `dvc.yaml`, comments included) and `registry sync-artifacts --check`
fails when they are out of date, so a pull request that adds a model also declares it.
"""

from __future__ import annotations

import io
from pathlib import Path

from pydantic import BaseModel, Field

from registry.cards.schema import MODELS_DIR, ModelCard
from registry.core.errors import CardError
from registry.core.files import write_atomic

DVC_YAML = "dvc.yaml"


class ArtifactsSync(BaseModel):
    """The outcome of comparing `dvc.yaml`'s artifacts with the cards."""

    path: str = Field(description="the dvc.yaml file")
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    written: bool = False

    @property
    def in_sync(self) -> bool:
        """Whether dvc.yaml already declares every model exactly as its card says."""
        return not (self.added or self.removed or self.changed)


def artifact_entry(card: ModelCard) -> dict:
    """The dvc.yaml artifact entry for one model."""
    entry: dict = {"path": f"{MODELS_DIR}/{card.name}/{card.weights}", "type": "model"}
    desc = (card.description or "").strip().splitlines()
    entry["desc"] = desc[0] if desc else f"{card.task.value} model of project {card.project}"
    labels = [card.task.value, card.project, *card.tags]
    entry["labels"] = list(dict.fromkeys(labels))
    return entry


def _yaml():
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def render_artifacts(current: str | None, cards: dict[str, ModelCard]) -> tuple[str, ArtifactsSync]:
    """New dvc.yaml text whose `artifacts:` declare exactly `cards`, and what changed.

    Other sections (stages, plots…) and comments are kept.

    Raises:
        CardError: the current dvc.yaml is not a YAML mapping.
    """
    y = _yaml()
    data = y.load(current) if current and current.strip() else None
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        data = CommentedMap()
    if not hasattr(data, "get"):
        raise CardError(
            "dvc.yaml is not a mapping", "fix dvc.yaml (see DVC's documentation)", path=DVC_YAML
        )
    old = data.get("artifacts") or {}
    sync = ArtifactsSync(path=DVC_YAML)
    from ruamel.yaml.comments import CommentedMap

    new = CommentedMap()
    for name in sorted(cards):
        entry = artifact_entry(cards[name])
        if name not in old:
            sync.added.append(name)
            new[name] = entry
        elif _plain(old[name]) != entry:
            sync.changed.append(name)
            new[name] = entry
        else:
            new[name] = old[name]
    sync.removed = sorted(n for n in old if n not in cards)
    data["artifacts"] = new
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue(), sync


def remove_artifact(current: str, name: str) -> str | None:
    """dvc.yaml text without model `name`'s artifact entry (comments and the rest kept); None when
    it declares no such artifact."""
    y = _yaml()
    data = y.load(current)
    if not data or not hasattr(data, "get") or (data.get("artifacts") or {}).get(name) is None:
        return None
    del data["artifacts"][name]
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def _plain(node) -> object:
    if hasattr(node, "items"):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def sync_artifacts(root: str | Path, *, check: bool = False) -> ArtifactsSync:
    """Make the root dvc.yaml declare every model of the working tree (or only compare, with
    `check`).

    Models whose card does not validate are left as they are declared (the bot reports the card).
    """
    from registry.cards.bulk import read_cards

    root = Path(root)
    path = root / DVC_YAML
    current = path.read_text() if path.is_file() else None
    records = read_cards(root)
    cards = {n: r.card for n, r in records.items() if r.card is not None}
    text, sync = render_artifacts(current, cards)
    invalid = [n for n, r in records.items() if r.card is None]
    if invalid:  # keep their existing declaration rather than drop it
        sync.removed = [n for n in sync.removed if n not in invalid]
        if current:
            y = _yaml()
            data = y.load(text)
            old = y.load(current).get("artifacts") or {}
            for n in invalid:
                if n in old:
                    data["artifacts"][n] = old[n]
            buf = io.StringIO()
            y.dump(data, buf)
            text = buf.getvalue()
    if not check and not sync.in_sync:
        write_atomic(path, text)
        sync.written = True
    return sync
