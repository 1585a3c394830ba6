"""The model to package: its card, its ONNX weights, its PyTorch source and the folder of its data.

Owns `ModelSource`, what a build starts from, and `source_from_files`, a local build's source (an
ONNX file and a card file). A published version's source comes from its tag and the public remote.
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
    folder: Path = Field(description="folder with the card's other files (calibration, sample inputs)")
    pytorch: Path | None = Field(None, description="the card's PyTorch source (.pt2), when it has one")


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
    if pytorch is not None and not pytorch.is_file():
        raise UsageError(f"{card_file} names pytorch: {card.pytorch}, which is not in {card_file.parent}",
                         f"put the .pt2 there (dvc pull {pytorch}.dvc), or drop 'pytorch:' from the card")
    return ModelSource(name=card.name, version=card.version or "0.0.0", card=card, weights=model,
                       folder=card_file.parent, pytorch=pytorch)
