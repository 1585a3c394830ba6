"""`models/<name>/CHANGELOG.md`: every published version's release notes, newest first.

Written only by `registry publish` (the publish workflow commits it back to the default branch).
Each entry starts with a marker line `<!-- version: X -->`, so adding a version that is already
there changes nothing, and entries can be found again without parsing Markdown.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from registry.core.files import read_regular, write_regular
from registry.core.semver import semver_key

FILE = "CHANGELOG.md"
_MARKER = "<!-- version: {} -->"
_MARKER_RE = re.compile(r"^<!-- version: (\S+) -->$", re.MULTILINE)


def header(name: str) -> str:
    return (
        f"# Changelog of {name}\n\n"
        "<!-- Written by `registry publish` from each version's release notes; do not edit by "
        "hand. -->\n"
    )


def versions_in(text: str) -> list[str]:
    """Versions that already have an entry, in file order."""
    return _MARKER_RE.findall(text)


def add_entry(path: str | os.PathLike, name: str, version: str, notes_md: str) -> bool:
    """Add a version's notes to the changelog at `path`, keeping versions newest first.

    Returns:
        True when the file changed, False when the version was already there.
    """
    path = Path(path)
    current = read_regular(path)
    text = current.decode("utf-8", errors="replace") if current is not None else header(name)
    if version in versions_in(text):
        return False
    entry = f"{_MARKER.format(version)}\n{notes_md.strip()}\n"
    # Split into the header and the entries; place the new one by version, not by time of writing.
    first = _MARKER_RE.search(text)
    head = text[: first.start()] if first else text
    entries = _MARKER_RE.split(text[first.start() :]) if first else [""]
    # split() yields ['', v1, body1, v2, body2, ...]
    pairs = [
        (entries[i], _MARKER.format(entries[i]) + entries[i + 1]) for i in range(1, len(entries), 2)
    ]
    pairs.append((version, entry))
    pairs.sort(key=lambda p: semver_key(p[0]), reverse=True)
    body = "\n".join(chunk.strip("\n") + "\n" for _, chunk in pairs)
    new = head.rstrip("\n") + "\n\n" + body
    write_regular(path, new.encode("utf-8"))
    return True
