"""SemVer 2.0 ordering of model versions (`1.2.0`, `2.0.0-rc.1`), as the card's `version` field holds them."""

from __future__ import annotations

from functools import total_ordering

from registry.cards.schema import SEMVER_RE


@total_ordering
class Version:
    """A parsed SemVer version; compares by SemVer precedence (build metadata ignored).

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

    def _key(self) -> tuple:
        # a release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.core, not self.pre and 1 or 0, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.text

    def next_patch(self) -> str:
        """The next patch release: 1.2.3 -> 1.2.4 (1.3.0-rc.1 -> 1.3.0)."""
        if self.pre:
            return ".".join(map(str, self.core))
        return f"{self.core[0]}.{self.core[1]}.{self.core[2] + 1}"
