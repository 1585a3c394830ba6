"""Sizes as a card writes them (`12.5MB`, `300 KiB`, `1024`) and as the registry prints them.

Kept apart from the schema so that a reader that only prints a size (`registry show`) does not
import the validation library.
"""

from __future__ import annotations

import re

__all__ = ["format_size", "parse_size"]

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str) -> tuple[float, float]:
    """Parse '12.5MB' / '300 KiB' / '1024' into (bytes, tolerance in bytes).

    The tolerance is half a unit of the last digit written, so '1.2MB' agrees with 1,249,999 bytes.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.(\d+))?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(3).lower() not in _SIZE_UNITS:
        raise ValueError(
            f"'{text}' is not a size: write bytes (123456) or a number with a unit "
            "(B, KB, MB, GB, KiB, MiB, GiB)"
        )
    unit = _SIZE_UNITS[m.group(3).lower()]
    decimals = len(m.group(2) or "")
    return float(m.group(1)) * unit, 0.5 * unit / (10**decimals) if unit > 1 else 0.0


def format_size(n: float) -> str:
    """Human size with decimal units: 1234567 -> '1.23 MB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"  # pragma: no cover
