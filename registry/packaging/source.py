"""The model to package: its card, its ONNX weights, its PyTorch source and the folder of its data.

Owns `ModelSource`, what a build starts from, and `source_from_files`, a local build's source (an
ONNX file and a card file), and `source_from_tag`, a published version's source: its tag and the
public remote, through `registry.versions.resolve` (`card_at_tag` reads only the card).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from registry.cards.schema import ModelCard, load_card
from registry.core.errors import UsageError


class ModelSource(BaseModel):
    """The model to package: its card, its ONNX weights, and the folder that holds card files."""

    name: str
    version: str
    card: ModelCard
    weights: Path = Field(description="the source ONNX file")
    folder: Path = Field(
        description="folder with the card's other files (calibration, sample inputs)"
    )
    pytorch: Path | None = Field(
        None, description="the card's PyTorch source (.pt2), when it has one and it is here"
    )
    pytorch_missing: Path | None = Field(
        None,
        description="the .pt2 the card names but a local build does not have: only the targets "
        "that convert from it need it",
    )

    def require_pytorch(self, why: str) -> None:
        """Raise when the card's `.pt2` is needed (`why`) but was not given to a local build.

        Raises:
            UsageError: naming the file and how to get it.
        """
        if self.pytorch is None and self.pytorch_missing is not None:
            raise UsageError(
                f"{why} needs the card's PyTorch source {self.pytorch_missing}, which is not there",
                f"put the .pt2 there (dvc pull {self.pytorch_missing}.dvc), or build a target "
                "that converts the ONNX",
            )


def source_from_files(model: Path, card_file: Path) -> ModelSource:
    """A local build: an ONNX file and a card file (their folder holds the card's other files).

    Raises:
        UsageError: a file is missing. CardError: the card is invalid.
    """
    for p in (model, card_file):
        if not p.is_file():
            raise UsageError(f"{p} does not exist")
    card = load_card(card_file.read_bytes(), str(card_file)).require()
    pytorch = card_file.parent / card.pytorch if card.pytorch else None
    here = pytorch is not None and pytorch.is_file()
    return ModelSource(
        name=card.name,
        version=card.version or "0.0.0",
        card=card,
        weights=model,
        folder=card_file.parent,
        pytorch=pytorch if here else None,
        pytorch_missing=None if here else pytorch,
    )


def source_from_tag(ref: str, repo_root: Path, workdir: Path) -> ModelSource:
    """The card at tag `<name>@v<version>` and its files: the weights, the PyTorch source and the
    targets' calibration and sample inputs (from git, or from the public remote when DVC-tracked),
    fetched by `registry.versions.resolve`.

    Raises:
        UsageError: not NAME@VERSION, or no such version. CardError: the card or the folder at the
            tag is unusable, or names a file the version does not have.
        StorageError: a DVC-tracked file is not in the public remote (or is damaged there).
    """
    from registry.core.git import clone_root
    from registry.versions.resolve import fetch_files, find_version

    root = clone_root(repo_root)
    version = find_version(root, ref, allow_latest=False)
    card = version.card
    folder = workdir / "source"
    wanted = (
        [card.weights]
        + ([card.pytorch] if card.pytorch else [])
        + [p for t in card.targets for p in (t.calibration, t.inputs) if p]
    )
    fetch_files(root, version, wanted, folder)
    return ModelSource(
        name=version.name,
        version=version.version,
        card=card,
        weights=folder / card.weights,
        folder=folder,
        pytorch=folder / card.pytorch if card.pytorch else None,
    )


def card_at_tag(ref: str, repo_root: Path) -> ModelCard:
    """The card of NAME@VERSION as committed at its version tag (no weights needed).

    Raises:
        UsageError: not NAME@VERSION, or no such version.
        CardError: the card at the tag is invalid.
    """
    from registry.core.git import clone_root
    from registry.versions.resolve import find_version

    return find_version(clone_root(repo_root), ref, allow_latest=False).card
