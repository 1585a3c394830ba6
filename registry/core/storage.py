"""Weights storage: DVC pointers (`*.dvc`) and the `staging` and `public` DVC remotes.

The registry speaks DVC's own on-remote layout (`files/md5/ab/cdef…`), so anything this module
writes is what `dvc pull` and `dvc artifacts get` read, and the other way round. Remotes are the
ones configured in `.dvc/config` (plus `.dvc/config.local` for credentials): local folders by
default, S3/GCS/Azure/SSH when configured (see docs/storage.md). `dvc_add` and `dvc_push` are
the registry's one way to track a new file with DVC and upload it (DVC's own Python API).

A remote that is a folder on this machine is worked on with the operating system's calls (DVC's
file system for it is built only when a caller asks for `Remote.fs`), and its objects are copied
with `copy_hashed`: one pass that copies and hashes, so a download or a publish between folders
costs about one md5 of the object and no second read of it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import mmap
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from registry.core.errors import RegistryError, StorageError, UsageError

STAGING = "staging"
PUBLIC = "public"
T = TypeVar("T")


@dataclass(frozen=True)
class Pointer:
    """What a `.dvc` file records about one tracked output."""

    path: str  # the tracked file, relative to the pointer's folder
    md5: str
    size: int | None
    is_dir: bool = False


# Seconds a remote's temporary upload file must be untouched before a publish takes it for the
# remains of a killed copy (a live copy writes to it all the time).
PARTIAL_IDLE = 600.0

# The largest object S3 takes in one request; bigger ones go through a temporary name.
SINGLE_PUT_LIMIT = 5 * 2**30


def _modified(info: dict) -> float | None:
    """Last-modified time (epoch seconds) from an fsspec `info` answer, when the store gives one."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class PointerError(ValueError):
    """A `.dvc` file that cannot be used; the message says why."""


class ObjectMissingError(StorageError):
    """The remote answered, and it does not hold the object (a problem of the model, not of the
    remote)."""


class ObjectCorruptError(StorageError):
    """The remote's copy of an object does not hash to its md5 (a problem of the model, not of the
    remote)."""


MAX_POINTER_BYTES = 64 * 1024

# A pointer exactly as `dvc add` writes it (the `hash: md5` line since DVC 3), whose values YAML
# reads as these same strings and integer: an md5 with a letter in it (never a YAML number) and a
# file name that starts with a letter or '_' and has an extension (never a YAML boolean, number or
# null). `check --all` reads 100,000 of them; any other text goes through the YAML parser.
_CANONICAL_POINTER = re.compile(
    r"outs:\n- md5: (?=[0-9]*[a-f])([0-9a-f]{32})\n  size: (0|[1-9][0-9]{0,17})\n"
    r"(?:  hash: md5\n)?  path: ([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+)\n"
)


def parse_pointer(text: bytes | str) -> Pointer:
    """Read a DVC pointer file, within limits (a pointer is a few lines that `dvc add` writes).

    Raises:
        PointerError: over `MAX_POINTER_BYTES`, YAML aliases, deeper or bigger than a pointer can
            be, not YAML, no `outs`, several outputs, no md5, or a size that is not a byte count.
    """
    canonical = len(text) <= 256 and _CANONICAL_POINTER.fullmatch(
        text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    )
    if canonical:
        md5, size, path = canonical.groups()
        return Pointer(path=path, md5=md5, size=int(size), is_dir=False)
    from registry.core.bounded import BoundedParseError, parse_yaml

    try:
        data = parse_yaml(
            text, what="DVC pointer", max_bytes=MAX_POINTER_BYTES, max_nodes=1000, max_depth=8
        )
    except BoundedParseError as e:
        where = f" (line {e.line})" if e.line else ""
        raise PointerError(f"not a DVC pointer: {e.message}{where}") from None
    outs = data.get("outs") if isinstance(data, dict) else None
    if not isinstance(outs, list) or len(outs) != 1 or not isinstance(outs[0], dict):
        raise PointerError("a weights pointer must have exactly one entry under 'outs'")
    out = outs[0]
    md5 = str(out.get("md5") or "")
    if not (
        len(md5) in (32, 36) and all(c in "0123456789abcdef." for c in md5.removesuffix(".dir"))
    ):
        raise PointerError(f"'md5' is missing or not an md5 hash (got {md5!r})")
    size = out.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise PointerError(f"'size' must be a byte count (got {size!r})")
    path = out.get("path")
    if path is not None and not isinstance(path, str):
        raise PointerError(f"'path' must be a file name (got {path!r})")
    return Pointer(path=path or "", md5=md5, size=size, is_dir=md5.endswith(".dir"))


def recorded_md5(pointer: bytes | str | None) -> str | None:
    """The md5 a `.dvc` pointer's text records, or None when the pointer is absent or unreadable."""
    if pointer is None:
        return None
    try:
        return parse_pointer(pointer).md5
    except PointerError:
        return None


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """md5 of a file, as DVC computes it for a plain file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def written_hashed(
    path: str | os.PathLike, write: Callable[[], object], expected: str | None = None
) -> str:
    """Run `write`, which writes the file `path` from its first byte to its last (a download of
    one stream) and returns once the file is complete and closed, while a second thread hashes the
    bytes as they land: the md5 of the file, without a second pass over it after the download.

    `path` must not exist when this starts. Should the writer not have written in order after all,
    what landed hashes to something else than `expected` (or is cut short): the complete file is
    then hashed again, so the answer is always the md5 of the file as it stands.

    Raises:
        what `write` raises (the hashing thread is stopped first).
    """
    done = threading.Event()
    found: dict[str, object] = {}

    def follow() -> None:
        h, fd = hashlib.md5(), None
        try:
            while True:
                finished = done.is_set()  # before the read: once set, what is there is all
                if fd is None:
                    try:
                        fd = os.open(path, os.O_RDONLY)
                    except FileNotFoundError:
                        if finished:
                            return
                        done.wait(0.01)
                        continue
                block = os.read(fd, _FOLLOW_CHUNK)
                if block:
                    h.update(block)
                elif finished:
                    found["md5"] = h.hexdigest()
                    found["size"] = os.fstat(fd).st_size
                    return
                else:
                    done.wait(0.005)
        except OSError:
            return  # the file went away (a failed download): the writer's error is the answer
        finally:
            if fd is not None:
                os.close(fd)

    hasher = threading.Thread(target=follow, name="registry-hash", daemon=True)
    hasher.start()
    try:
        write()
    finally:
        done.set()
        hasher.join()
    md5 = found.get("md5")
    if md5 is not None and found["size"] == os.path.getsize(path) and md5 in (expected, None):
        return str(md5)
    return file_md5(path)  # the writer went back over what it had written: hash the whole again


_FOLLOW_CHUNK = 1 << 23

COPY_CHUNK = 1 << 21

# The in-kernel copy grows its chunks from COPY_CHUNK to this: the read-back starts after a small
# first chunk, and the copy costs less CPU in big ones (measured on ext4, 1 GB: 0.9 s of CPU in
# 2 MiB sendfile calls, 0.45 s in 32 MiB ones).
COPY_CHUNK_MAX = 1 << 25

# The most of the target the read-back maps at once.
HASH_WINDOW = 1 << 26


class CopyStopped(Exception):
    """A copy given up because its caller asked it to stop (`copy_hashed`'s `stop`)."""


def copy_hashed(
    source: str | os.PathLike, target: str | os.PathLike, stop: threading.Event | None = None
) -> tuple[str, int]:
    """Copy the local file `source` to a new file `target`; return the md5 and size of `target`
    as read back from it.

    The bytes are copied in the kernel (`sendfile`) a chunk at a time where the system offers it,
    else through a buffer; a second thread hashes each chunk of `target` as soon as it is written
    (mapped into memory, so the page cache is hashed in place, with the GIL released). The hash is
    of what `target` holds, so a copy that went wrong on the way shows as a different md5, and
    the verification costs the md5 of the object and little more time than the copy (measured:
    cheaper in CPU than reading the source once into a buffer that is both hashed and written,
    because the in-kernel copy moves the bytes without passing them through the process, and
    mapping the target saves the read-back's copy into a buffer, some 0.35 s of CPU a GB).

    Args:
        source: the file to copy.
        target: the new file.
        stop: when set, the copy stops at the next chunk (checked between chunks).

    Raises:
        OSError: reading `source` or writing `target` failed, or `target` became shorter than
            what was written to it; `target` is then incomplete and is the caller's to remove.
        CopyStopped: `stop` was set; `target` is incomplete and is the caller's to remove.
    """
    state = {"written": 0, "done": False, "failed": False}
    progress = threading.Condition()

    def read_back() -> tuple[str, int]:
        h, pos = hashlib.md5(), 0
        fd = os.open(target, os.O_RDONLY)
        try:
            while True:
                with progress:
                    progress.wait_for(lambda at=pos: state["written"] > at or state["done"])
                    limit, finished = state["written"], state["done"]
                while pos < limit:
                    if state["failed"]:
                        return "", pos  # nobody reads the hash of a failed copy
                    end = min(limit, pos + HASH_WINDOW)
                    _hash_range(h, fd, pos, end, target)
                    pos = end
                if state["failed"]:
                    return "", pos
                if finished and pos >= state["written"]:
                    return h.hexdigest(), pos
        finally:
            os.close(fd)

    from concurrent.futures import ThreadPoolExecutor

    with (
        open(source, "rb") as fin,
        open(target, "wb", buffering=0) as fout,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-read-back") as pool,
    ):
        reading = pool.submit(read_back)
        try:
            offset, chunk = 0, COPY_CHUNK
            while n := _copy_chunk(fin, fout, offset, chunk):
                offset += n
                chunk = min(chunk * 2, COPY_CHUNK_MAX)
                with progress:
                    state["written"] = offset
                    progress.notify()
                if stop is not None and stop.is_set():
                    raise CopyStopped(f"the copy to {target} was stopped")
        except BaseException:
            with progress:
                state["failed"] = True
            raise
        finally:
            with progress:
                state["done"] = True
                progress.notify()
        return reading.result()


def _hash_range(h, fd: int, start: int, end: int, target: str | os.PathLike) -> None:
    """Add bytes `start`..`end` of the open file `fd` to the hash `h`: mapped into memory where
    the file system allows it (hashed in the page cache, no copy), else read through a buffer.

    Raises:
        OSError: the file is shorter than `end` (checked before it is mapped: reading a mapping
            past the end of a file kills the process).
    """
    if os.fstat(fd).st_size < end:
        raise OSError(f"{target} is shorter than what was written to it")
    base = start - start % mmap.ALLOCATIONGRANULARITY
    try:
        mapped = mmap.mmap(fd, end - base, access=mmap.ACCESS_READ, offset=base)
    except (OSError, ValueError):  # a file system that cannot map files
        mapped = None
    if mapped is not None:
        with mapped, memoryview(mapped) as view:
            h.update(view[start - base :])
        return
    pos = start
    while pos < end:
        block = os.pread(fd, min(COPY_CHUNK, end - pos), pos)
        if not block:
            raise OSError(f"{target} is shorter than what was written to it")
        h.update(block)
        pos += len(block)


def _copy_chunk(fin, fout, offset: int, size: int = COPY_CHUNK) -> int:
    """Copy up to `size` bytes at `offset`: in the kernel where the OS and file system offer it,
    else through a buffer."""
    if sys.platform.startswith("linux"):
        try:
            return os.sendfile(fout.fileno(), fin.fileno(), offset, size)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
    if hasattr(os, "pread"):
        block = memoryview(os.pread(fin.fileno(), size, offset))
    else:
        fin.seek(offset)
        block = memoryview(fin.read(size))
    written = 0
    while written < len(block):  # at the descriptor's position, as sendfile writes
        written += os.write(fout.fileno(), block[written:])
    return len(block)


def local_folder(url: str) -> str | None:
    """The absolute path of a remote's URL when it names a folder on this machine (DVC's local
    remote: no scheme), else None."""
    from urllib.parse import urlparse

    if not url or urlparse(url).scheme or "://" in url:
        return None
    return os.path.abspath(os.path.expanduser(url))


def with_retries(
    what: str, fn: Callable[[], T], *, attempts: int = 4, base_delay: float = 0.5
) -> T:
    """Call `fn`, retrying transient I/O failures with exponential backoff.

    Missing objects and permission errors are not transient and fail at once.

    Raises:
        StorageError: after the last attempt, naming `what`.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as e:
            if isinstance(e, _client_credential_errors()):
                raise StorageError(
                    f"{what} failed: no usable credentials for the remote "
                    f"({type(e).__name__}: {e})",
                    "give the remote's credentials (for S3: AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or `dvc remote modify --local`); see docs/storage.md",
                ) from None
            if not isinstance(
                e, (OSError, TimeoutError, ConnectionError) + _client_network_errors()
            ):
                raise
            if attempt == attempts:
                raise StorageError(
                    f"{what} failed after {attempts} attempts: {e}",
                    "check that the remote is reachable and try again",
                ) from e
            time.sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _client_credential_errors() -> tuple[type[BaseException], ...]:
    """Credential errors of cloud clients (botocore's NoCredentialsError and friends): a storage
    error
    with a clear message, not a crash. Only a loaded client can have raised one."""
    boto = sys.modules.get("botocore.exceptions")
    if not boto:
        return ()
    return tuple(
        getattr(boto, n)
        for n in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError")
        if hasattr(boto, n)
    )


def _client_network_errors() -> tuple[type[BaseException], ...]:
    """Network errors of cloud clients that are not OSErrors (botocore's, for S3 remotes).

    Only a client that is loaded can have raised one, so nothing is imported here.
    """
    boto = sys.modules.get("botocore.exceptions")
    return (boto.ConnectionError, boto.HTTPClientError) if boto else ()


class Remote:
    """One DVC remote, addressed by object hash.

    Args:
        name: remote name in the DVC config.
        fs: the fsspec-style filesystem DVC built for it; None with `open_fs`.
        root: path of the remote's root on that filesystem.
        url: the URL as configured (for messages).
        is_local: the remote is a folder on this machine (`root` is its path): its objects are
            looked up, listed, removed and copied with the operating system's calls (default:
            told by `fs`).
        open_fs: builds `fs` the first time a caller asks for it.
    """

    def __init__(
        self,
        name: str,
        fs,
        root: str,
        url: str,
        *,
        is_local: bool | None = None,
        open_fs: Callable[[], object] | None = None,
    ):
        self.name, self.root, self.url = name, root.rstrip("/") or root, url
        self._fs, self._open_fs = fs, open_fs
        if is_local is None:
            is_local = (
                getattr(fs, "protocol", None) == "local" or type(fs).__name__ == "LocalFileSystem"
            )
        self.is_local = is_local

    @property
    def fs(self):
        """DVC's file system for the remote (built on first use)."""
        if self._fs is None:
            self._fs = self._open_fs()
        return self._fs

    def __repr__(self) -> str:
        return f"Remote({self.name!r}, {self.url!r})"

    def object_path(self, md5: str) -> str:
        """Where DVC 3 keeps an object with this md5 on the remote."""
        return f"{self.root}/files/md5/{md5[:2]}/{md5[2:]}"

    def object_size(self, md5: str) -> int | None:
        """Size of the object on the remote, or None when it is absent."""
        path = self.object_path(md5)

        def stat() -> int | None:
            if self.is_local:
                try:
                    return os.stat(path).st_size
                except (FileNotFoundError, NotADirectoryError):
                    return None
            try:
                return int(self.fs.info(path)["size"])
            except FileNotFoundError as e:
                # fsspec's HTTP filesystem reports a refused connection as FileNotFoundError,
                # with the network error as its cause: that is an unreachable remote, not a miss.
                cause = e.__cause__
                if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
                    raise ConnectionError(str(cause)) from cause
                return None

        return with_retries(f"looking up {md5} on remote '{self.name}' ({self.url})", stat)

    def download(
        self, md5: str, dest: str | os.PathLike, stop: threading.Event | None = None
    ) -> Path:
        """Fetch an object to `dest` and verify its md5.

        Args:
            md5: the object.
            dest: where it lands, once verified (written under `<dest>.part` until then).
            stop: when set, a copy from a local-folder remote stops at its next chunk.

        Raises:
            StorageError: object missing, unreachable remote, or content that does not match.
            CopyStopped: `stop` was set; nothing is left at `dest` or `<dest>.part`.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        source = self.object_path(md5)

        def fetch() -> str:
            if self.is_local:  # copied and hashed in one pass
                return copy_hashed(source, tmp, stop)[0]
            tmp.unlink(missing_ok=True)
            if getattr(self.fs, "protocol", None) == "s3":
                # one stream, written in order, hashed as it lands (in parts fetched side by side
                # the file fills out of order, and its md5 could only start at the end)
                return written_hashed(
                    tmp, lambda: self.fs.get_file(source, str(tmp), max_concurrency=1), md5
                )
            self.fs.get_file(source, str(tmp))
            return file_md5(tmp)

        try:
            got = with_retries(f"downloading {md5} from remote '{self.name}'", fetch)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            raise ObjectMissingError(
                f"object {md5} is not in remote '{self.name}' ({self.url})",
                f"push it: dvc push -r {self.name}",
            ) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if got != md5:
            tmp.unlink(missing_ok=True)
            raise ObjectCorruptError(
                f"object {md5} on remote '{self.name}' is corrupt (its content hashes to {got})",
                "push the file again with dvc push",
            )
        os.replace(tmp, dest)
        return dest

    def upload(self, src: str | os.PathLike, md5: str, size: int | None = None) -> bool:
        """Put a local file on the remote under its md5, verified before it counts as stored.

        On S3 (up to `SINGLE_PUT_LIMIT` bytes) the file goes up in one request that carries its
        md5 (`Content-MD5`): the store refuses bytes that do not hash to it, a request is all or
        nothing, and the md5 the store reports back (its ETag) is compared as well; no byte is
        read back. The request is conditional (`If-None-Match: *`): a store that honours it never
        replaces an object that appeared meanwhile, which the caller then reads back.

        Elsewhere the file is written to a temporary name, read back and checked against `md5`
        and `size` there, and only then moved to its real name; an object that appeared at the
        real name meanwhile is never overwritten.

        Returns:
            True when the object at its real name is verified (the store checked it), False when
            the caller still has to read it back there (`registry.core.transfer.verify_object`).
        Raises:
            StorageError: unreachable, refused, or the copy does not match.
        """
        if getattr(self.fs, "protocol", None) == "s3" and os.path.getsize(src) <= SINGLE_PUT_LIMIT:
            return self._put_s3(src, md5, size)
        self._put(
            src, self.object_path(md5), f"uploading {md5} to", "the write", md5=md5, size=size
        )
        return False

    def _put_s3(self, src: str | os.PathLike, md5: str, size: int | None) -> bool:
        """One S3 `PutObject` with `Content-MD5`; see `upload`."""
        import base64

        content = md5.removesuffix(".dir")
        n = os.path.getsize(src)
        if size is not None and n != size:
            raise StorageError(
                f"the local copy of {md5} ({src}) holds {n:,} bytes, but the pointer records "
                f"{size:,}",
                f"delete {src}; it is fetched again from the source remote on the next run",
            )
        s3, path = self.fs.fs, self.object_path(md5)
        bucket, key, _ = s3.split_path(path)
        digest = base64.b64encode(bytes.fromhex(content)).decode("ascii")
        # Content-MD5 is the check; without this, botocore also sends a CRC32 that the store keeps
        # as the object's checksum, and some stores then answer ranged reads (the parallel
        # downloads of `dvc pull`) with it, which botocore rejects.
        with_retries(f"connecting to remote '{self.name}'", s3.connect)
        s3.s3.meta.config.request_checksum_calculation = "when_required"

        def put() -> dict | None:
            try:
                with open(src, "rb") as f:
                    return s3.call_s3(
                        "put_object",
                        Bucket=bucket,
                        Key=key,
                        Body=f,
                        ContentMD5=digest,
                        ContentLength=n,
                        IfNoneMatch="*",  # where the store honours it, never over another object
                    )
            except FileExistsError:
                return None  # an object appeared meanwhile: the caller reads that one back
            except OSError as e:
                if "BadDigest" in str(e) and file_md5(src) != content:
                    # the local bytes are wrong, not the transfer: sending them again cannot help
                    raise StorageError(
                        f"remote '{self.name}' refused {md5}: the local copy {src} does not hash "
                        "to it",
                        f"delete {src}; it is fetched again from the source remote on the next run",
                    ) from None
                raise  # a transfer that damaged the bytes, or the network: tried again
            finally:
                s3.invalidate_cache(path)

        try:
            answer = with_retries(f"uploading {md5} to remote '{self.name}'", put)
        except PermissionError as e:
            raise StorageError(
                f"remote '{self.name}' ({self.url}) refused the write: {e}",
                "check the remote's permissions/credentials",
            ) from None
        if answer is None:
            return False
        etag = str(answer.get("ETag") or "").strip('"').lower()
        if re.fullmatch(r"[0-9a-f]{32}", etag):
            got, stored = etag, n
        else:  # a store whose ETag is not the md5 (encrypted with a KMS key…): read it back
            got, stored = with_retries(
                f"verifying {md5} on remote '{self.name}'", lambda: self._hash(path)
            )
        if got != content or (size is not None and stored != size):
            self._remove(path)  # written by this request, and wrong: never left for a consumer
            raise StorageError(
                f"the copy of {md5} on remote '{self.name}' does not match after the upload "
                f"(the store reports md5 {got}, {stored:,} bytes)",
                "run it again; if it repeats, check the remote's storage",
            )
        return True

    def partial_path(self, path: str) -> str:
        """The temporary name a copy to `path` is written under by this process."""
        return f"{path}.tmp{os.getpid()}"

    def partial_files(self, md5: str) -> list[str]:
        """Temporary files a killed copy of this object left next to it (`<object>.tmp<pid>`)."""
        path = self.object_path(md5)
        folder, name = path.rsplit("/", 1)
        try:
            if self.is_local:
                return [
                    f"{folder}/{entry}"
                    for entry in os.listdir(folder)
                    if entry.startswith(f"{name}.tmp")
                ]
            found = self.fs.ls(folder, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError:
            return []
        return [p for p in found if p.rstrip("/").rsplit("/", 1)[-1].startswith(f"{name}.tmp")]

    def remove_partial(self, md5: str, idle: float = PARTIAL_IDLE) -> list[str]:
        """Remove what a killed copy of this object left; return the paths removed.

        Only files untouched for `idle` seconds count as left behind: a copy that is still running
        (another publish of the same object, racing this one) writes to its file all the time, and
        removing it would make that publish fail for a reason that is not its own.
        """
        removed = []
        now = time.time()
        for p in self.partial_files(md5):
            try:
                modified = os.stat(p).st_mtime if self.is_local else _modified(self.fs.info(p))
                if modified is not None and now - modified < idle:
                    continue
                if self.is_local:
                    os.unlink(p)
                else:
                    self.fs.rm_file(p)
                removed.append(p)
            except OSError:
                pass
        return removed

    def _put(
        self,
        src: str | os.PathLike,
        path: str,
        doing: str,
        what: str,
        *,
        md5: str | None = None,
        size: int | None = None,
    ) -> None:
        """Copy a local file to `path` on the remote: to a temporary name first (checked against
        `md5`
        and `size` when given), then moved into place unless something is there already.

        Raises:
            StorageError: the remote is unreachable or refuses `what`, or the copy does not match.
        """
        part = self.partial_path(path)

        def put() -> None:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(src), part)
            if md5 is not None:
                got, n = self._hash(part)
                if got != md5.removesuffix(".dir") or (size is not None and n != size):
                    self._remove(part)
                    raise StorageError(
                        f"the copy of {md5} on remote '{self.name}' does not match after the "
                        f"upload (md5 {got}, {n} bytes)",
                        "run it again; if it repeats, check the remote's storage",
                    )
                if self.fs.exists(path):  # never replaced: the caller verifies what is there
                    self._remove(part)
                    return
            self.fs.mv(part, path)

        try:
            with_retries(f"{doing} remote '{self.name}'", put)
        except PermissionError as e:
            raise StorageError(
                f"remote '{self.name}' ({self.url}) refused {what}: {e}",
                "check the remote's permissions/credentials",
            ) from None

    def _hash(self, path: str) -> tuple[str, int]:
        h, n = hashlib.md5(), 0
        with self.fs.open(path, mode="rb") as f:
            while block := f.read(1 << 21):
                h.update(block)
                n += len(block)
        return h.hexdigest(), n

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except OSError:
            pass

    # Files outside DVC's object layout, at fixed keys (e.g.
    # `packages/<name>/<version>/index.json`):
    # DVC neither reads nor collects them, and anyone who knows the key can find them.

    def key_path(self, key: str) -> str:
        """Where a file at `key` (a relative, '/'-separated path) lives on the remote."""
        parts = key.split("/")
        if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == "files":
            raise ValueError(f"not a key outside DVC's object layout: {key!r}")
        return f"{self.root}/{key}"

    def read_key(self, key: str) -> bytes | None:
        """The bytes of the file at `key`, or None when the remote has no such file.

        Raises:
            StorageError: the remote is unreachable or refuses the read.
        """
        path = self.key_path(key)

        def read() -> bytes | None:
            try:
                with self.fs.open(path, mode="rb") as f:
                    return f.read()
            except FileNotFoundError as e:
                cause = e.__cause__  # fsspec's HTTP filesystem: a refused connection, not a miss
                if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
                    raise ConnectionError(str(cause)) from cause
                return None

        try:
            return with_retries(f"reading {key} from remote '{self.name}' ({self.url})", read)
        except PermissionError as e:
            raise StorageError(
                f"remote '{self.name}' ({self.url}) refused to read {key}: {e}",
                "check the remote's permissions/credentials",
            ) from None

    def write_key(self, key: str, data: bytes) -> None:
        """Write `data` at `key`: to a temporary name first, then moved over the old file.

        Raises:
            StorageError: the remote is unreachable or refuses the write.
        """
        import tempfile

        path = self.key_path(key)
        with tempfile.TemporaryDirectory(prefix="registry-key-") as tmp:
            local = Path(tmp) / "data"
            local.write_bytes(data)
            self._put(local, path, f"writing {key} to", f"to write {key}")


def absolute_local_remotes(config: bytes, repo_url: str) -> bytes:
    """Rewrite relative local remote URLs to absolute ones, relative to a local registry's `.dvc`
    (a `.dvc/config` read from git and written elsewhere keeps naming the same folders)."""
    local = repo_url.removeprefix("file://")
    if re.match(r"^[a-z][a-z0-9+.-]*://", local) or re.match(r"^[^/]+@[^/]+:", local):
        return config  # a network URL: relative remotes cannot be resolved, leave them as they are
    from configobj import ConfigObj

    conf = ConfigObj(io.BytesIO(config), encoding="utf-8")
    for section, values in conf.items():
        url = (
            values.get("url")
            if section.startswith("remote ") and isinstance(values, dict)
            else None
        )
        if url and "://" not in url and not os.path.isabs(url):
            values["url"] = os.path.normpath(os.path.join(os.path.abspath(local), ".dvc", url))
    out = io.BytesIO()
    conf.write(out)
    return out.getvalue()


# The settings of a registry's own `.dvc/config` and `.dvc/config.local` that `plain_remotes`
# reads itself: `core` keys (None: any text, else the values DVC accepts) and a remote's `url`.
_PLAIN_CORE: dict[str, tuple[str, ...] | None] = {
    "remote": None,
    "analytics": ("true", "false"),
    "autostage": ("true", "false"),
    "check_update": ("true", "false"),
}
_NAMED_REMOTE = re.compile(r'^\s*remote\s*"(.*)"\s*$')
_PLAIN_MAX = 1 << 20  # a bigger config file is DVC's to read


def plain_remotes(dvc_dir: str | os.PathLike) -> dict[str, str] | None:
    """{remote name: absolute folder} as DVC's `Config` would give it, read without DVC (whose
    config machinery costs every command that opens a remote some 0.3 s of imports), when the
    configuration is the plain kind a registry of local folders has: no user or system DVC
    config, and in the repository's `config` and `config.local` only `core` settings of
    `_PLAIN_CORE` with values DVC accepts and remotes that are local folders given by `url`
    alone. None for anything else, which DVC then reads (and judges) itself.
    """
    import platformdirs

    levels = [
        os.environ.get("DVC_SYSTEM_CONFIG_DIR") or platformdirs.site_config_dir("dvc", "iterative"),
        os.environ.get("DVC_GLOBAL_CONFIG_DIR") or platformdirs.user_config_dir("dvc", "iterative"),
    ]
    if any(os.path.lexists(os.path.join(folder, "config")) for folder in levels):
        return None
    from configobj import ConfigObj, ConfigObjError

    remotes: dict[str, str] = {}
    for name in ("config", "config.local"):
        path = os.path.join(dvc_dir, name)
        try:
            with open(path, "rb") as f:
                data = f.read(_PLAIN_MAX + 1)
            text = data.decode("utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            return None
        # interpolation (`%`, `$`) is DVC's reading, not a plain one
        if len(data) > _PLAIN_MAX or "%" in text or "$" in text:
            return None
        try:
            conf = ConfigObj(text.splitlines()).dict()
        except (ConfigObjError, ValueError):
            return None
        folder = os.path.abspath(os.path.dirname(path))
        for section, values in conf.items():
            section = section.lower()
            if not isinstance(values, dict):
                return None
            values = {k.lower(): v for k, v in values.items()}
            if section == "core":
                for key, value in values.items():
                    if key not in _PLAIN_CORE or not isinstance(value, str):
                        return None
                    allowed = _PLAIN_CORE[key]
                    if allowed is not None and value.lower() not in allowed:
                        return None
                continue
            named = _NAMED_REMOTE.match(section)
            url = values.get("url")
            if named is None or set(values) != {"url"} or not isinstance(url, str) or not url:
                return None
            if local_folder(url) is None:
                return None  # a store DVC's file systems open
            # as DVC resolves it: absolute as it is, `~` expanded, else from the file's folder
            expanded = os.path.expanduser(url)
            remotes[named.group(1)] = (
                expanded if os.path.isabs(expanded) else os.path.abspath(os.path.join(folder, url))
            )
    return remotes


class Storage:
    """The DVC remotes of a registry clone.

    Its own configuration (local-folder remotes only) is read by `plain_remotes`; any other is
    DVC's to read and check, at once.

    Args:
        root: the repository root that holds `.dvc/`.
    """

    def __init__(self, root: str | os.PathLike, config_dir: str | os.PathLike | None = None):
        self.root = Path(root)
        if not (self.root / ".dvc").is_dir():
            raise UsageError(
                f"{self.root} has no .dvc folder", "run this inside the registry clone"
            )
        self._config_dir = str(config_dir or self.root / ".dvc")
        self._plain = plain_remotes(self._config_dir)
        self._config = None if self._plain is not None else self._dvc_config()
        self._remotes: dict[str, Remote] = {}
        self._config_holder = None  # the temporary copy of a revision's config (`at_revision`)
        self.config_revision: str | None = None

    def _dvc_config(self):
        from dvc.config import Config, ConfigError

        try:
            return Config(dvc_dir=self._config_dir)
        except ConfigError as e:
            raise UsageError(
                f".dvc/config is invalid: {e}", "fix .dvc/config (see docs/storage.md)"
            ) from None

    @property
    def config(self):
        """DVC's `Config` of the registry (read when first asked for where `plain_remotes` read
        the remotes)."""
        if self._config is None:
            self._config = self._dvc_config()
        return self._config

    @classmethod
    def at_revision(cls, root: str | os.PathLike, rev: str) -> Storage:
        """The remotes as `.dvc/config` names them at a trusted revision (not as the working tree
        does),
        with the clone's own `.dvc/config.local` (credentials, never in git) on top.

        `registry publish` opens its remotes at the merge's base: a merged pull request that
        re-points `public` cannot send the weights it publishes anywhere new.

        Raises:
            UsageError: the revision has no `.dvc/config`, or it is invalid.
        """
        import tempfile

        from registry.core.git import run_git

        root = Path(root)
        try:
            text = run_git(root, "show", f"{rev}:.dvc/config").encode("utf-8")
        except RegistryError:
            raise UsageError(
                f"revision {rev} has no .dvc/config",
                "run this in the registry's clone, on its default branch's history",
            ) from None
        holder = tempfile.TemporaryDirectory(prefix="registry-dvc-config-")
        conf_dir = Path(holder.name) / ".dvc"
        conf_dir.mkdir()
        (conf_dir / "config").write_bytes(absolute_local_remotes(text, str(root)))
        local = root / ".dvc" / "config.local"
        if local.is_file() and not local.is_symlink():
            (conf_dir / "config.local").write_bytes(local.read_bytes())
        storage = cls(root, conf_dir)
        storage._config_holder = holder  # removed with the Storage object
        storage.config_revision = rev
        return storage

    def remote(self, name: str) -> Remote:
        """The remote called `name` in `.dvc/config`.

        Raises:
            UsageError: when no such remote is configured.
        """
        if name in self._remotes:
            return self._remotes[name]
        urls = self._plain
        if urls is None:
            urls = {n: c.get("url", "") for n, c in self.config.get("remote", {}).items()}
        if name not in urls:
            raise UsageError(
                f"no DVC remote named '{name}' in .dvc/config",
                f"add one: dvc remote add {name} <url>  (see docs/storage.md)",
            )
        url = urls[name]

        def open_fs():
            from dvc.config import ConfigError
            from dvc.fs import get_cloud_fs

            try:
                cls, fs_conf, fs_path = get_cloud_fs(self.config, name=name)
                return cls(**fs_conf), fs_path
            except (ConfigError, ImportError) as e:
                raise StorageError(
                    f"cannot open remote '{name}': {e}",
                    "install the DVC plug-in for its scheme (e.g. pip install dvc-s3)",
                ) from None

        folder = local_folder(str(url))
        if folder is not None:  # DVC's file system for it (an import of its own) only on demand
            remote = Remote(name, None, folder, url, is_local=True, open_fs=lambda: open_fs()[0])
        else:
            fs, fs_path = open_fs()
            remote = Remote(name, fs, fs_path, url)
        self._remotes[name] = remote
        return remote

    def cache_path(self, md5: str) -> Path:
        """Where the local DVC cache keeps an object."""
        return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]

    def fetch(self, md5: str, remote: str = STAGING) -> Path:
        """A local path to the object's bytes: from the DVC cache when there, else from `remote`."""
        cached = self.cache_path(md5)
        if cached.is_file():
            return cached
        return self.remote(remote).download(md5, cached)


# --------------------------------------------------------------------------- dvc add / push


def dvc_add(root: str | os.PathLike, path: str | os.PathLike) -> Pointer:
    """`dvc add` one file of the DVC project at `root`: DVC caches it and writes `<file>.dvc` (and
    a `.gitignore` entry) next to it. Returns the pointer it wrote.

    Raises:
        StorageError: DVC refused or failed (the file, the project or its config).
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    path = Path(path)
    try:
        with Repo(str(root)) as repo:
            repo.scm_context.quiet = True  # its "git add" advice may name a temporary folder
            repo.add(str(path))
    except (DvcException, OSError) as e:
        raise StorageError(
            f"dvc add {path.name} failed: {e}", "check .dvc/config and that the file is readable"
        ) from None
    return parse_pointer(path.with_name(path.name + ".dvc").read_bytes())


def dvc_push(
    root: str | os.PathLike, pointers: list[Path], remote: str = STAGING, what: str = "the weights"
) -> None:
    """`dvc push -r <remote>` the objects the given `.dvc` files name.

    Args:
        what: what the pointers track, for the message ("the weights").
    Raises:
        StorageError: the remote is missing, unreachable or refused the upload.
    """
    _dvc_transfer(
        "push",
        root,
        pointers,
        remote,
        f"pushing {what} to the '{remote}' remote failed",
        f"check the '{remote}' remote in .dvc/config (see docs/storage.md)",
    )


def dvc_pull(
    root: str | os.PathLike, pointers: list[Path], remote: str = STAGING, what: str = "the data"
) -> None:
    """`dvc pull -r <remote>` the objects the given `.dvc` files name, into the working tree.

    Args:
        what: what the pointers track, for the message ("the datasets").
    Raises:
        StorageError: the remote is missing, unreachable, or lacks an object.
    """
    _dvc_transfer(
        "pull",
        root,
        pointers,
        remote,
        f"pulling {what} from the '{remote}' remote failed",
        f"check the '{remote}' remote in .dvc/config and its credentials (see docs/storage.md), "
        "and that the data was pushed there",
    )


def _dvc_transfer(
    op: str, root: str | os.PathLike, pointers: list[Path], remote: str, failed: str, hint: str
) -> None:
    """Run DVC's `push` or `pull` of `pointers` with `remote`; a failure is `failed: <why>`."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            getattr(repo, op)(targets=[str(p) for p in pointers], remote=remote)
    except (DvcException, OSError) as e:
        raise StorageError(f"{failed}: {e}", hint) from None
