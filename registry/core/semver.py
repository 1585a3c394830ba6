"""SemVer 2.0: the grammar of a model version (`1.2.0`, `2.0.0-rc.1`) and its order, in one place.

The card's `version` field, version tags (`registry.versions.tags`) and every comparison of
versions use this module.
"""

from __future__ import annotations

import re
from functools import total_ordering

_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
# The pattern, without anchors or groups, for embedding in other grammars (the tag grammar).
SEMVER = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    rf"(?:-{_ID}(?:\.{_ID})*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
# Anchored, with groups: 1-3 major, minor, patch; 4 pre-release; 5 build metadata.
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    rf"(?:-({_ID}(?:\.{_ID})*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def is_semver(text: str) -> bool:
    """Whether `text` is a SemVer 2.0 version."""
    return SEMVER_RE.fullmatch(text) is not None


def semver_key(version: str) -> tuple:
    """Sort key with SemVer 2.0 precedence: build metadata ignored, a release after its
    pre-releases, numeric pre-release identifiers before alphanumeric ones."""
    core, _, _build = version.partition("+")
    main, dash, pre = core.partition("-")
    nums = tuple(int(x) for x in main.split("."))
    if not dash:
        return nums + (1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return nums + (0, parts)


@total_ordering
class SemVer:
    """A parsed version that compares by SemVer precedence.

    Raises:
        ValueError: when the text is not SemVer.
    """

    def __init__(self, text: str):
        m = SEMVER_RE.fullmatch(text)
        if not m:
            raise ValueError(f"'{text}' is not a SemVer version such as 1.2.0")
        self.text = text
        self.core = tuple(int(m[i]) for i in (1, 2, 3))
        self.pre = tuple(m[4].split(".")) if m[4] else ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and semver_key(self.text) == semver_key(other.text)

    def __lt__(self, other: SemVer) -> bool:
        return semver_key(self.text) < semver_key(other.text)

    def __hash__(self) -> int:
        return hash(semver_key(self.text))

    def __str__(self) -> str:
        return self.text

    def next_patch(self) -> str:
        """The next patch release: 1.2.3 -> 1.2.4 (1.3.0-rc.1 -> 1.3.0)."""
        if self.pre:
            return ".".join(map(str, self.core))
        return f"{self.core[0]}.{self.core[1]}.{self.core[2] + 1}"
