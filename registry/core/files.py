"""Writing files whole or not at all, and reading and writing without following links.

Every file the registry writes goes through `write_atomic` (its own outputs; `atomic_path` for a
library that writes to a file name) or `write_regular` (files in the repository, which a pull
request may have replaced by a link or a fifo).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from registry.core.errors import RegistryError


def read_regular(path: str | os.PathLike, max_bytes: int = 64 * 1024 * 1024) -> bytes | None:
    """The bytes of a regular file, opened without following a link; None when there is none.

    Raises:
        RegistryError: `path` is a link, a fifo, a device or a folder, or over `max_bytes`: the
            file came from a pull request and publish never reads through it.
    """
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        return None
    except OSError as e:  # ELOOP: the last component is a symlink
        raise RegistryError(
            f"{path} is not a regular file ({e.strerror}); publish never follows links",
            f"remove it from the repository: git rm {path}",
        ) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RegistryError(
                f"{path} is not a regular file; publish reads and writes regular files only",
                f"remove it from the repository: git rm {path}",
            )
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RegistryError(f"{path} is over {max_bytes:,} bytes", "remove it from the repository")
    return data


def read_in_tree(
    root: str | os.PathLike, rel: str, max_bytes: int = 64 * 1024 * 1024
) -> bytes | None:
    """The bytes of the regular file `rel` under `root`, read only when no folder on the way and
    not the file itself is a link; None when there is none.

    For readers of a checkout's files that a pull request may have made links (the catalog, the
    training results): what they read stays inside the checkout.

    Raises:
        RegistryError: a component of `rel` is a link, the file is not a regular file, or it is
            over `max_bytes`.
    """
    current = os.fspath(root)
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise RegistryError(f"'{rel}' is not a path inside {current}", "name a file in the clone")
    for part in parts[:-1]:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            raise RegistryError(
                f"{current} is a symbolic link; the registry reads no file through a link",
                f"replace the link by a folder: git rm {current}",
            )
        if not stat.S_ISDIR(mode):
            return None
    path = os.path.join(current, parts[-1])
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:  # ELOOP: the file is a link
        raise RegistryError(
            f"{path} is not a regular file ({e.strerror}); the registry reads no file through a "
            "link",
            f"replace it by a regular file: git rm {path}",
        ) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RegistryError(
                f"{path} is not a regular file", f"replace it by a regular file: git rm {path}"
            )
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RegistryError(f"{path} is over {max_bytes:,} bytes", "make it smaller")
    return data


def write_regular(path: str | os.PathLike, data: bytes) -> None:
    """Write a file atomically without following links: a new temporary file (created exclusively,
    never through a link) renamed over `path`, which is refused when it is a link or not a
    regular file.

    Raises:
        RegistryError: `path` (or its folder) is a link or not a regular file.
    """
    path = Path(path)
    if path.parent.is_symlink():
        raise RegistryError(
            f"{path.parent} is a symbolic link; publish never writes through links",
            f"remove the link from the repository: git rm {path.parent}",
        )
    if os.path.lexists(path):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise RegistryError(
                f"{path} is not a regular file (a link or a special file); publish never "
                "writes through it",
                f"remove it from the repository: git rm {path}",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except (
        FileExistsError
    ):  # left by a killed run of ours (same pid reused): never followed, replaced
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(
            tmp, path
        )  # renames over the name itself; a link there would be replaced, not followed
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path`, for a writer that takes a file name (`onnx.save`,
    `savefig`, `torch.save`, `shutil.copyfile`): renamed over `path` when the block ends, removed
    when it raises. The temporary name keeps `path`'s suffix, which some writers read the format
    from."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write a file whole or not at all (temporary name in the same folder, then rename), with the
    permissions any new file gets (the umask's)."""
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def make_folders(folder: Path, made: list[Path]) -> None:
    """Make `folder` and its missing parents, recording each one made in `made`."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        made.append(path)


def remove_empty_folders(made: list[Path]) -> None:
    """Remove the folders `make_folders` made, deepest first, those still empty only."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            pass
