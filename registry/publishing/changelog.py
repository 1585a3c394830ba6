"""`models/<name>/CHANGELOG.md`: every published version's release notes, newest first.

Written only by `registry publish` (the publish workflow commits it back to the default branch).
Each entry starts with a marker line `<!-- version: X -->`, so adding a version that is already
there changes nothing, and entries can be found again without parsing Markdown.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from registry.core.errors import RegistryError

from registry.publishing.notes import version_key

FILE = "CHANGELOG.md"
_MARKER = "<!-- version: {} -->"
_MARKER_RE = re.compile(r"^<!-- version: (\S+) -->$", re.MULTILINE)


def header(name: str) -> str:
    return (f"# Changelog of {name}\n\n"
            "<!-- Written by `registry publish` from each version's release notes; do not edit by hand. -->\n")


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
    head = text[:first.start()] if first else text
    entries = _MARKER_RE.split(text[first.start():]) if first else [""]
    # split() yields ['', v1, body1, v2, body2, ...]
    pairs = [(entries[i], _MARKER.format(entries[i]) + entries[i + 1]) for i in range(1, len(entries), 2)]
    pairs.append((version, entry))
    pairs.sort(key=lambda p: version_key(p[0]), reverse=True)
    body = "\n".join(chunk.strip("\n") + "\n" for _, chunk in pairs)
    new = head.rstrip("\n") + "\n\n" + body
    write_regular(path, new.encode("utf-8"))
    return True


def read_regular(path: str | os.PathLike, max_bytes: int = 64 * 1024 * 1024) -> bytes | None:
    """The bytes of a regular file, opened without following a link; None when there is none.

    Raises:
        RegistryError: `path` is a link, a fifo, a device or a folder, or over `max_bytes`: the
            file came from a pull request and publish never reads through it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as e:  # ELOOP: the last component is a symlink
        raise RegistryError(f"{path} is not a regular file ({e.strerror}); publish never follows links",
                            f"remove it from the repository: git rm {path}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RegistryError(f"{path} is not a regular file; publish reads and writes regular files only",
                                f"remove it from the repository: git rm {path}")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RegistryError(f"{path} is over {max_bytes:,} bytes", "remove it from the repository")
    return data


def write_regular(path: str | os.PathLike, data: bytes) -> None:
    """Write a file atomically without following links: a new temporary file (created exclusively,
    never through a link) renamed over `path`, which is refused when it is a link or not a regular file.

    Raises:
        RegistryError: `path` (or its folder) is a link or not a regular file.
    """
    path = Path(path)
    if path.parent.is_symlink():
        raise RegistryError(f"{path.parent} is a symbolic link; publish never writes through links",
                            f"remove the link from the repository: git rm {path.parent}")
    if os.path.lexists(path):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise RegistryError(f"{path} is not a regular file (a link or a special file); publish never "
                                "writes through it", f"remove it from the repository: git rm {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileExistsError:  # left by a killed run of ours (same pid reused): never followed, replaced
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # renames over the name itself; a link there would be replaced, not followed
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
