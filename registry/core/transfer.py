"""Copying DVC objects between remotes, verified: nothing reaches its final name unread.

Between local folders an object is written under a temporary name, hashed as it lands, and only
then linked to its content address. On S3 it is sent in one request that carries its md5, which
the store checks before it stores anything, and the md5 the store reports back is compared too
(`Remote.upload`). Elsewhere it is written under a temporary name, read back and hashed there,
and only then moved. Publish (staging → public) and package uploads use it.
"""

from __future__ import annotations

import hashlib
import os

from registry.core.errors import StorageError
from registry.core.storage import COPY_CHUNK, Remote, Storage, copy_hashed, with_retries


def _content_md5(md5: str) -> str:
    return md5.removesuffix(".dir")


def _open(remote: Remote, path: str):
    """An object of the remote, open for reading."""
    return open(path, "rb") if remote.is_local else remote.fs.open(path, mode="rb")


def _read_object(remote: Remote, md5: str) -> bytes:
    """A small object's bytes (a directory listing), verified against its md5."""

    def read() -> bytes:
        with _open(remote, remote.object_path(md5)) as f:
            return f.read()

    try:
        data = with_retries(f"reading {md5} from remote '{remote.name}'", read)
    except FileNotFoundError:
        raise StorageError(
            f"object {md5} is not in remote '{remote.name}' ({remote.url})",
            f"push it: dvc push -r {remote.name}",
        ) from None
    if hashlib.md5(data).hexdigest() != _content_md5(md5):
        raise StorageError(
            f"object {md5} on remote '{remote.name}' is corrupt", "push it again with dvc push"
        )
    return data


def _copy_local(src: Remote, dst: Remote, md5: str, size: int | None) -> None:
    """Copy an object between two local-folder remotes and verify it on the way.

    The bytes are copied under a temporary name and hashed as they land there
    (`registry.core.storage.copy_hashed`). The object gets its real name only once that md5 and
    size match, so a bad copy never looks present, and the verification costs little more time
    than the copy.
    """
    source, target = src.object_path(md5), dst.object_path(md5)
    tmp = f"{target}.tmp{os.getpid()}"

    def copy() -> tuple[str, int, bool]:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        placed = False
        try:
            got = copy_hashed(source, tmp)
            if got[0] == _content_md5(md5) and (size is None or got[1] == size):
                # a hard link never replaces an object that appeared meanwhile (unlike a rename)
                try:
                    os.link(tmp, target)
                    placed = True
                except FileExistsError:
                    pass  # someone else's object: verified below, reported when it does not match
                except OSError:  # a file system without hard links
                    if not os.path.lexists(target):
                        os.replace(tmp, target)
                        placed = True
            return got[0], got[1], placed
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    got, n, placed = with_retries(
        f"copying {md5} from remote '{src.name}' to remote '{dst.name}'", copy
    )
    _require_match(dst, md5, size, got, n)
    if not placed:
        verify_object(dst, md5, size)  # an object that appeared at the final name meanwhile


def _require_match(remote: Remote, md5: str, size: int | None, got: str, n: int) -> None:
    """Fail when an object read back from `remote` does not have the md5 and size its pointer
    records."""
    if got != _content_md5(md5) or (size is not None and n != size):
        raise StorageError(
            f"object {md5} on remote '{remote.name}' does not match after the copy "
            f"(md5 {got}, {n} bytes; expected {size} bytes)",
            "run the publish again; if it repeats, check the remote's storage",
        )


def copy_object(
    storage: Storage, src: Remote, dst: Remote, md5: str, path: str, size: int | None = None
) -> bool:
    """Copy one object from `src` to `dst`: file to file when both are local folders, else via the
    DVC cache.

    Returns:
        True when the copy at its real name is already verified (read back between local
        folders, checked by the store on S3), False when the caller still has to verify it with
        `verify_object`.

    Raises:
        StorageError: the object is missing from `src`, `dst` refuses the write, or a remote stays
            unreachable after retries; the message names the remote and the object.
    """
    try:
        if src.is_local and dst.is_local:
            _copy_local(src, dst, md5, size)
            return True
        if md5.endswith(".dir"):
            local = storage.cache_path(md5)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(_read_object(src, md5))
        else:
            local = storage.fetch(md5, src.name)
        return dst.upload(local, md5, size)  # verified before it counts as stored
    except FileNotFoundError:
        raise StorageError(
            f"object {md5} ({path}) is not in remote '{src.name}' ({src.url})",
            f"push the weights to staging before merging: dvc push -r {src.name} {path}.dvc",
        ) from None
    except PermissionError as e:
        raise StorageError(
            f"remote '{dst.name}' ({dst.url}) refused to store {md5} ({path}): {e}",
            f"give the publisher write access to remote '{dst.name}'",
        ) from None
    except StorageError as e:
        if f"'{src.name}'" in e.message and "not in remote" in e.message:
            raise StorageError(
                f"object {md5} ({path}) is not in remote '{src.name}' ({src.url})",
                f"push the weights to staging before merging: dvc push -r {src.name} {path}.dvc",
            ) from None
        raise


def verify_object(remote: Remote, md5: str, size: int | None) -> None:
    """Read an object back from the remote and check its md5 and size.

    Raises:
        StorageError: missing, or content that does not match.
    """
    path = remote.object_path(md5)

    def read() -> tuple[str, int]:
        h, n = hashlib.md5(), 0
        with _open(remote, path) as f:
            while block := f.read(COPY_CHUNK):
                h.update(block)
                n += len(block)
        return h.hexdigest(), n

    try:
        got, n = with_retries(f"verifying {md5} on remote '{remote.name}'", read)
    except FileNotFoundError:
        raise StorageError(
            f"object {md5} is missing from remote '{remote.name}' ({remote.url}) right after the "
            f"copy",
            "check that nothing else deletes objects from the remote while publishing",
        ) from None
    if got != _content_md5(md5) or (size is not None and n != size):
        # Reported, never removed: an object at its final name was either verified before it got
        # that name by this registry, or written by someone else; deleting it could lose another
        # version's data. The publish stops before any tag.
        _require_match(remote, md5, size, got, n)
