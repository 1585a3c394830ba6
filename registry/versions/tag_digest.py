"""The digest of every tag ref, known without listing a million refs when none of them changed.

`registry list` compares the registry index with the tag refs through one digest: the SHA-1 of
what `git show-ref --tags` prints. Listing a million refs costs a second; so the digest is kept,
beside git's own files, in `<git common dir>/registry/tag-digest`, with the *state* of the files
that hold the tag refs when it was computed: the `packed-refs` file and every loose ref under
`refs/tags` (path, inode, size, modification and change times, nanoseconds), as git's own index
keeps the stat of each file to know it did not change. The next reader stats those files again
(one `stat` and a walk of the loose refs, which a clone keeps few of) and reuses the digest only
when the state is the same; any tag added, deleted or moved, loose or packed, rewrites one of
those files and so changes the state.

Racy writes (a file changed within the clock's granularity of the moment it was stat'ed, which
could leave the same times) are handled as git handles them: the digest is kept only when every
one of those files is older than `MARGIN_S` seconds when first stat'ed, so that any later change
gives a later time. Anything unusual (the reftable ref store, `GIT_DIR` and friends in the
environment, a git folder that cannot be found or written) means no cache: the digest is
computed from `git show-ref` every time, which is always correct.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pathlib import Path

CACHE = "registry/tag-digest"
HEADER = "registry-tag-digest 1"
# a file is trusted unchanged by its stat only when it was last written this long before the
# stat (coarser than any file system's time stamps: FAT's are 2 s)
MARGIN_S = 2.0
_ENV = ("GIT_DIR", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_OBJECT_DIRECTORY", "GIT_WORK_TREE")


def common_dir(root: str | Path) -> Path | None:
    """The git folder that holds the refs of the clone at `root` (a worktree's is its main clone's),
    found without starting git; None where it cannot be found for certain (then: no cache)."""
    from pathlib import Path

    found = git_common_dir(root)
    return Path(found) if found is not None else None


def git_common_dir(root: str | os.PathLike) -> str | None:
    """`common_dir` as a string (for `registry list`, which does not import pathlib)."""
    if any(os.environ.get(v) for v in _ENV):
        return None
    root = os.fspath(root)
    dot = os.path.join(root, ".git")
    join, isdir, isfile = os.path.join, os.path.isdir, os.path.isfile
    try:
        if isdir(dot):
            git_dir = dot
        elif isfile(dot):
            with open(dot) as f:
                text = f.read().strip()
            if not text.startswith("gitdir: "):
                return None
            git_dir = os.path.realpath(join(root, text[8:]))
        elif isfile(join(root, "HEAD")) and isdir(join(root, "objects")):
            git_dir = root  # a bare clone
        else:
            return None
        common = git_dir
        if isfile(join(git_dir, "commondir")):
            with open(join(git_dir, "commondir")) as f:
                common = os.path.realpath(join(git_dir, f.read().strip()))
        if os.path.exists(join(common, "reftable")) or not isdir(join(common, "refs")):
            return None  # another ref store: only git can list it
    except (OSError, UnicodeDecodeError):
        return None
    return common


class RefState:
    """The state of the files holding the tag refs (`key`: a line per file, its stat), and whether
    every file is old enough to be trusted unchanged by its stat."""

    def __init__(self, key: str, settled: bool):
        self.key, self.settled = key, settled


def ref_state(common: str | os.PathLike) -> RefState | None:
    """Stat `packed-refs` and every loose ref under `refs/tags`; None when that fails."""
    now = time.time_ns()
    limit = now - int(MARGIN_S * 1e9)
    settled = True
    lines = []
    try:
        try:
            st = os.stat(os.path.join(common, "packed-refs"))
            lines.append(f"packed-refs {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}")
            settled = max(st.st_mtime_ns, st.st_ctime_ns) <= limit
        except FileNotFoundError:
            lines.append("packed-refs -")
        stack = [os.path.join(common, "refs", "tags")]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except FileNotFoundError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                    continue
                st = e.stat(follow_symlinks=False)
                lines.append(f"{e.path} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}")
                if max(st.st_mtime_ns, st.st_ctime_ns) > limit:
                    settled = False
    except OSError:
        return None
    return RefState("\n".join(lines), settled)


def cached_digest(common: str | os.PathLike, state: RefState) -> tuple[str, int] | None:
    """(digest, number of tag refs) kept for this state of the ref files, or None."""
    try:
        with open(os.path.join(common, CACHE), errors="surrogateescape") as f:
            text = f.read()
    except OSError:
        return None
    head, _, key = text.partition("\n")
    parts = head.split("\t")
    if len(parts) != 3 or parts[0] != HEADER or key != state.key + "\n":
        return None
    try:
        return parts[1], int(parts[2])
    except ValueError:
        return None


def keep_digest(common: str | os.PathLike, before: RefState, digest: str, count: int) -> None:
    """Keep the digest computed between two stats of the ref files, when neither the files changed
    between them nor any was written too recently to be trusted by its stat. Failing to write
    (a read-only clone) is no error: the next reader computes it again."""
    after = ref_state(common)
    if after is None or not before.settled or after.key != before.key:
        return
    write_kept(os.path.join(common, CACHE), f"{HEADER}\t{digest}\t{count}\n{before.key}\n")


def write_kept(path: str | os.PathLike, text: str) -> None:
    """Write a file kept between reads, whole or not at all. Failing to write (a read-only clone)
    is no error: the next reader computes it again."""
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        try:
            os.mkdir(os.path.dirname(path))
        except FileExistsError:
            pass
        with open(tmp, "w", errors="surrogateescape") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
