"""Running git: the one wrapper every layer uses, bulk object reads, and finding the clone's root.

Nothing here imports gitpython, so `list`, `show` and `pull` start fast; `registry.core.repo`
builds the richer views (snapshots, diffs) on top of it. Neither `subprocess` nor `pathlib` is
imported when this module is: with the modules they bring (signal, threading, selectors, locale,
re, enum, urllib.parse…) they cost `registry list` about a fifth of its time, so the readers on its
path start git through `GitProcess` and find the clone through `find_clone_root`, and everything
else imports them where it runs git.
"""

from __future__ import annotations

import os

# the signal numbers from the built-in module that `signal` wraps in enums (so imports enum)
try:
    from _signal import SIGKILL, SIGPIPE, SIGXFSZ
except ImportError:  # Windows has none of them: `GitProcess` starts git through subprocess there
    SIGKILL = SIGPIPE = SIGXFSZ = None

from registry.core.errors import GitError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

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
    import subprocess

    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        raise GitError(
            f"git {args[0]} timed out after {timeout:g}s", "check the URL and the network"
        ) from None
    except FileNotFoundError as e:
        if e.filename != "git":
            raise  # the folder `cwd` is missing
        raise cannot_run_git(e) from None
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}",
            "run this inside a clone of the registry",
        )
    return proc.stdout


class GitProcess:
    """A git command started without the `subprocess` module (see above), its output read through
    a pipe: for the few readers on the path of `registry list`.

    Args:
        root: the folder git runs in (`git -C root`, as `run_git`'s `cwd`).
        args: git's arguments.
        stdin: give git a pipe to read `communicate`'s input from (else it inherits ours).
        stderr: keep git's messages for `communicate` (else they are dropped).

    Raises:
        GitError: git cannot be started (not installed, not on PATH).
    """

    def __init__(
        self, root: str | os.PathLike, *args: str, stdin: bool = False, stderr: bool = False
    ):
        # our ends of the pipes (file descriptors) are not inherited (os.pipe): a second git
        # started meanwhile holds none of them open
        self._stdin = self._stdout = self._stderr = None
        self.returncode: int | None = None
        self._popen: subprocess.Popen | None = None
        if not hasattr(os, "posix_spawnp"):  # Windows: the subprocess module does it
            self._start_with_subprocess(root, args, stdin, stderr)
            return
        actions, theirs = [], []
        if stdin:
            theirs_in, self._stdin = os.pipe()
            actions.append((os.POSIX_SPAWN_DUP2, theirs_in, 0))
            theirs.append(theirs_in)
        self._stdout, theirs_out = os.pipe()
        actions.append((os.POSIX_SPAWN_DUP2, theirs_out, 1))
        theirs.append(theirs_out)
        if stderr:
            self._stderr, theirs_err = os.pipe()
            actions.append((os.POSIX_SPAWN_DUP2, theirs_err, 2))
            theirs.append(theirs_err)
        else:
            actions.append((os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0))
        try:
            # SIGPIPE and SIGXFSZ back to their defaults, as subprocess does (Python ignores them)
            self.pid = os.posix_spawnp(
                "git",
                ["git", "-C", os.fspath(root), *args],
                os.environ,
                file_actions=actions,
                setsigdef=(SIGPIPE, SIGXFSZ),
            )
        except OSError as e:
            self.close()
            raise cannot_run_git(e) from None
        finally:
            for fd in theirs:
                os.close(fd)

    def _start_with_subprocess(self, root, args, stdin: bool, stderr: bool) -> None:
        import subprocess

        try:
            self._popen = subprocess.Popen(
                ["git", "-C", os.fspath(root), *args],
                stdin=subprocess.PIPE if stdin else None,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
            )
        except OSError as e:
            raise cannot_run_git(e) from None
        self.pid = self._popen.pid

    def communicate(self, data: bytes = b"") -> tuple[bytes, bytes, int]:
        """Write `data` to git (at most `PIPE_SAFE` bytes: git may answer before it reads it all),
        read all it prints, wait for it to end: (stdout, stderr, exit status)."""
        if self._popen is not None:
            out, err = self._popen.communicate(data if self._popen.stdin else None)
            self.returncode = self._popen.returncode
            return out, err or b"", self.returncode
        if self._stdin is not None:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._stdin, view) :]
            except BrokenPipeError:
                pass  # git stopped early: its exit status and message say why
            os.close(self._stdin)
            self._stdin = None
        out = _read_all(self._stdout)
        err = _read_all(self._stderr) if self._stderr is not None else b""
        self.wait()
        self.close()
        return out, err, self.returncode

    def wait(self) -> int:
        """git's exit status (negative: the signal that ended it), once it has ended."""
        if self.returncode is None:
            if self._popen is not None:
                self.returncode = self._popen.wait()
            else:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self) -> None:
        """End git now, when its answer is not needed after all."""
        if self._popen is not None:
            self._popen.kill()
            self._popen.communicate()  # reaps it and closes the pipes
            self.returncode = self._popen.returncode
            return
        if self.returncode is None:
            try:
                os.kill(self.pid, SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        self.close()

    def close(self) -> None:
        """Close our ends of the pipes."""
        for fd in (self._stdin, self._stdout, self._stderr):
            if fd is not None:
                os.close(fd)
        self._stdin = self._stdout = self._stderr = None


def cannot_run_git(error: OSError) -> GitError:
    """What to tell the user when git cannot be started (not installed, not on the PATH)."""
    return GitError(
        f"cannot run git: {error.strerror}", "install git and make sure it is on the PATH"
    )


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


# bytes written to a child's standard input without waiting for it to read (a pipe holds 64 KiB)
PIPE_SAFE = 16 * 1024


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
    import subprocess

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
        import weakref

        self.cwd = cwd
        self._procs: dict[str, subprocess.Popen] = {}
        weakref.finalize(self, _close_readers, self._procs, os.getpid())

    def _ask(self, mode: str, spec: str) -> tuple[subprocess.Popen, list[bytes]]:
        import subprocess

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
    import subprocess

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
    from pathlib import Path

    top = find_clone_root(start)
    if top is None:
        raise UsageError(
            f"{Path(start or os.getcwd())} is not inside a clone of the registry",
            "run this inside a clone, or pass --repo <registry git URL> (registry pull)",
        )
    return Path(top)


# what moves or bounds git's search for the clone (or changes what it finds): with any of these
# set, git itself is asked
_DISCOVERY_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)


def find_clone_root(start: str | os.PathLike | None = None) -> str | None:
    """The top folder of the work tree containing `start` (default: the current directory), as
    `git rev-parse --show-toplevel` prints it; None outside a clone.

    Git is not started where the answer is plain: the nearest `.git` upwards is a folder of the
    user's own that git would take as it is (`_plain_git_folder`), reached without leaving the
    file system, and nothing in the environment steers git's search. Anything else (a linked
    worktree's or submodule's `.git` file, a folder inside a git folder, a bare clone, another
    owner, `core.worktree`, `GIT_DIR`…) is left to `git rev-parse`.
    """
    folder = os.path.realpath(start) if start else os.getcwd()
    if not os.path.isdir(folder):
        return None
    top = _plain_top(folder)
    if top is None:
        top = run_git(folder, "rev-parse", "--show-toplevel", check=False).strip() or None
    return top


def _plain_top(folder: str) -> str | None:
    """The folder holding the nearest `.git` upwards of `folder` when git would surely find that
    one and take its parent as the top of the work tree; None when unsure."""
    if os.name != "posix" or any(os.environ.get(v) for v in _DISCOVERY_ENV):
        return None
    if ".git" in folder.split(os.sep):
        return None  # inside a git folder: git answers that there is no work tree
    try:
        device = os.stat(folder).st_dev
        while True:
            dot = os.path.join(folder, ".git")
            if os.path.lexists(dot):
                return folder if _plain_git_folder(folder, dot) else None
            if os.path.exists(os.path.join(folder, "HEAD")):
                return None  # maybe a bare clone, which git takes before looking further up
            parent = os.path.dirname(folder)
            if parent == folder or os.stat(parent).st_dev != device:
                return None  # the top, or another file system: git stops there
            folder = parent
    except OSError:
        return None


def _plain_git_folder(top: str, dot: str) -> bool:
    """Whether `dot` is a git folder (not a `.git` file) that git takes as it is, with `top` as its
    work tree: its HEAD, objects and refs in place (else git looks further up), the folders owned by
    this user (else git's `safe.directory` decides), and nothing in its config that sets another
    work tree, a bare clone or an included file."""
    uid = os.geteuid()
    if not os.path.isdir(dot) or os.stat(dot).st_uid != uid or os.stat(top).st_uid != uid:
        return False
    if not (
        os.path.isdir(os.path.join(dot, "objects")) and os.path.isdir(os.path.join(dot, "refs"))
    ):
        return False
    try:
        with open(os.path.join(dot, "HEAD"), "rb") as f:
            head = f.read(256).strip()
        with open(os.path.join(dot, "config"), "rb") as f:
            config = f.read().lower()
    except OSError:
        return False
    if not (head.startswith(b"ref: refs/") or len(head) in (40, 64)):
        return False
    if b"worktree" in config or b"include" in config:
        return False
    for line in config.splitlines():
        key = line.strip().replace(b" ", b"").replace(b"\t", b"")
        if key.startswith(b"bare") and key != b"bare=false":
            return False
    return True


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
    from pathlib import Path

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
