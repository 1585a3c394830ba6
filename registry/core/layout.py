"""The repository layout every layer agrees on (DESIGN.md): where models live and how they are
named."""

from __future__ import annotations

import re

MODELS_DIR = "models"
CARD_FILE = "model.yaml"
# A model's name: lowercase letters, digits and '-', 2 to 64 characters, no '-' at either end.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
