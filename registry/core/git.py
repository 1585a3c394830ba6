"""Running git: the one wrapper every layer uses, bulk object reads, and finding the clone's root.

Nothing here imports gitpython, so `list`, `show` and `pull` start fast; `registry.core.repo`
builds the richer views (snapshots, diffs) on top of it.
"""

from __future__ import annotations

import os
import subprocess
import weakref
from pathlib import Path

from registry.core.errors import GitError, UsageError

# `git for-each-ref` fields of a tag: name, object type (tag for annotated), object, peeled commit,
# date.
TAG_REF_FORMAT = (
    "%(refname:lstrip=2)%09%(objecttype)%09%(objectname)%09%(*objectname)%09%(creatordate:unix)"
)


def run_git(
    cwd: str | os.PathLike,
    *args: str,
    check: bool = True,
    timeout: float | None = None,
    env: dict | None = None,
) -> str:
    """stdout of a git command; a failure becomes a GitError with git's own message.

    Raises:
        GitError: git exited non-zero (with `check`), or ran past `timeout` seconds.
    """
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        raise GitError(
            f"git {args[0]} timed out after {timeout:g}s", "check the URL and the network"
        ) from None
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}",
            "run this inside a clone of the registry",
        )
    return proc.stdout


def cat_files(
    root: str | Path, specs: list[str], kinds: tuple[bytes, ...] = (b"blob",)
) -> list[bytes | None]:
    """Contents of many objects (`<rev>:<path>` or an object id) through one `git cat-file --batch`:
    those of the given `kinds` (blobs by default; the catalog also reads tag objects), None for the
    missing and for other kinds."""
    wanted = {k.decode() for k in kinds}
    return [
        found[1] if found is not None and found[0] in wanted else None
        for found in read_objects(root, specs)
    ]


def read_objects(root: str | Path, ids: list[str]) -> list[tuple[str, bytes] | None]:
    """(type, content) of many objects through one `git cat-file --batch`, None for the missing."""
    if not ids:
        return []
    proc = subprocess.run(
        ["git", "cat-file", "--batch", "--buffer"],
        cwd=root,
        input="\n".join(ids).encode() + b"\n",
        capture_output=True,
    )
    if proc.returncode != 0:
        raise GitError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    data, pos, result = proc.stdout, 0, []
    for _ in ids:
        end = data.index(b"\n", pos)
        header = data[pos:end].split(b" ")
        pos = end + 1
        # found: "<id> <type> <size>"; else "<spec> missing" (a spec may hold spaces)
        if len(header) == 3 and header[2] not in (b"missing", b"ambiguous"):
            size = int(header[2])
            result.append((header[1].decode(), data[pos : pos + size]))
            pos += size + 1
        else:  # "<id> missing" / "ambiguous"
            result.append(None)
    return result


class ObjectReader:
    """The objects of one clone, read through persistent `git cat-file` processes started on first
    use (headers by `--batch-check`, contents by `--batch`), so a run that reads a few dozen files
    of a revision starts git twice instead of once per file.

    Args:
        cwd: a folder of the clone (its work tree, or the git folder of a bare clone).
    """

    def __init__(self, cwd: str | os.PathLike):
        self.cwd = cwd
        self._procs: dict[str, subprocess.Popen] = {}
        weakref.finalize(self, _close_readers, self._procs, os.getpid())

    def _ask(self, mode: str, spec: str) -> tuple[subprocess.Popen, list[bytes]]:
        if "\n" in spec or "\r" in spec:
            raise GitError(f"not an object name: {spec!r}")
        proc = self._procs.get(mode)
        if proc is None or proc.poll() is not None:
            proc = subprocess.Popen(
                ["git", "cat-file", f"--{mode}"],
                cwd=self.cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self._procs[mode] = proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(spec.encode("utf-8", "surrogateescape") + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError:
            line = b""
        if not line.endswith(b"\n"):
            self._procs.pop(mode, None)
            raise GitError(f"git cat-file stopped while reading '{spec}'", "is this a git clone?")
        return proc, line.split()

    @staticmethod
    def _header(fields: list[bytes]) -> tuple[str, str, int] | None:
        # "<id> <type> <size>", or "<spec> missing" / "ambiguous" (a spec may hold blanks)
        if len(fields) != 3 or not fields[2].isdigit() or len(fields[0]) not in (40, 64):
            return None
        return fields[0].decode(), fields[1].decode(), int(fields[2])

    def header(self, spec: str) -> tuple[str, str, int] | None:
        """(object id, type, size) of `spec` (`<rev>:<path>`, an id, `<rev>^{commit}`…), None when
        there is no such object."""
        return self._header(self._ask("batch-check", spec)[1])

    def read(self, spec: str) -> tuple[str, str, bytes] | None:
        """(object id, type, content) of `spec`, None when there is no such object."""
        proc, fields = self._ask("batch", spec)
        found = self._header(fields)
        if found is None:
            return None
        assert proc.stdout is not None
        data = proc.stdout.read(found[2] + 1)
        if len(data) != found[2] + 1:
            self._procs.pop("batch", None)
            raise GitError(f"git cat-file stopped while reading '{spec}'")
        return found[0], found[1], data[:-1]


def _close_readers(procs: dict[str, subprocess.Popen], owner: int) -> None:
    """End an `ObjectReader`'s processes (in the process that started them: a forked copy of the
    reader leaves them to their parent)."""
    for proc in procs.values():
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if os.getpid() == owner:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    procs.clear()


def clone_root(start: str | Path | None = None) -> Path:
    """The top folder of the registry clone containing `start` (default: the current directory).

    Raises:
        UsageError: `start` is not inside a git clone.
    """
    start = Path(start or os.getcwd())
    top = (
        run_git(start, "rev-parse", "--show-toplevel", check=False).strip()
        if start.is_dir()
        else ""
    )
    if not top:
        raise UsageError(
            f"{start} is not inside a clone of the registry",
            "run this inside a clone, or pass --repo <registry git URL> (registry pull)",
        )
    return Path(top)


def local_tag_commit(root: Path, tag: str) -> str | None:
    """The commit a local tag points at, or None."""
    out = run_git(
        root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}", check=False
    ).strip()
    return out or None


def remote_tags(root: Path, remote: str, pattern: str) -> dict[str, str]:
    """{tag: commit} of the tags matching `pattern` on a git remote (annotated tags peeled)."""
    try:
        out = run_git(
            root,
            "ls-remote",
            "--tags",
            remote,
            f"refs/tags/{pattern}",
            f"refs/tags/{pattern}^{{}}",
            timeout=60,
        )
    except GitError as e:
        raise GitError(
            f"cannot read tags of git remote '{remote}': {e.message}",
            f"check `git remote -v` and the credentials for '{remote}'",
        ) from None
    direct, peeled = {}, {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            direct[name] = sha
    return {name: peeled.get(name, sha) for name, sha in direct.items()}


def create_tag(root: Path, tag: str, commit: str, message: str) -> None:
    """Create an annotated tag with `message` kept verbatim (Markdown headings start with '#')."""
    git_dir = Path(run_git(root, "rev-parse", "--git-dir").strip())
    msg = (git_dir if git_dir.is_absolute() else root / git_dir) / f"REGISTRY_TAG_MSG.{os.getpid()}"
    msg.write_text(message, encoding="utf-8")
    try:
        run_git(root, "tag", "-a", "--cleanup=verbatim", "-F", str(msg), tag, commit)
    finally:
        msg.unlink(missing_ok=True)


def push_tag(root: Path, remote: str, tag: str, commit: str, *, created_here: bool) -> bool:
    """Push one tag without force; the remote's refusal to overwrite a tag settles races.

    Returns:
        True when the tag was pushed now, False when the remote already had it on `commit`.

    Raises:
        GitError: the remote holds the tag on another commit (another publish won); the local tag
            is removed when this run created it, so nothing is left half-done. Or the push failed.
    """
    proc_out = run_git(
        root, "push", "--porcelain", remote, f"refs/tags/{tag}:refs/tags/{tag}", check=False
    )
    flags = [line.split("\t", 1)[0] for line in proc_out.splitlines() if f"refs/tags/{tag}" in line]
    if flags and flags[0] in ("*", " "):
        return True
    if flags and flags[0] == "=":
        return False
    on_remote = remote_tags(root, remote, tag).get(tag)
    if on_remote == commit:
        return False  # another run pushed the same version from the same commit: same outcome
    if on_remote is not None:
        if created_here:
            run_git(root, "tag", "-d", tag, check=False)
        raise GitError(
            f"tag {tag} already exists on git remote '{remote}' at commit {on_remote[:10]}, "
            f"not at {commit[:10]}: another publish of this version won; nothing was moved",
            "publish a new version (raise `version` in the card) if this commit should be released",
        )
    raise GitError(
        f"pushing tag {tag} to git remote '{remote}' failed: {proc_out.strip() or 'no output'}",
        f"check the credentials for '{remote}' and re-run `registry publish` (it resumes)",
    )
