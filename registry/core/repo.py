"""The registry repository: its files at any revision, read straight from git objects.

A `Snapshot` is the registry as it is in one place: the working tree (`WorkTree`) or a git
revision (`GitRevision`, read from the object database without checking anything out, so the
bot can compare a pull request's base and head side by side). `RegistryRepo` opens a clone and
answers the questions every command asks: which models a diff touches, which versions are tagged.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from registry.core.errors import GitError, UsageError
from registry.core.git import TAG_REF_FORMAT, ObjectReader, run_git
from registry.core.layout import CARD_FILE, MODELS_DIR, NAME_RE

# what `Path.exists` and `Path.is_symlink` read as "no such file" rather than raise
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)

if TYPE_CHECKING:
    import git


class PathEscapeError(ValueError):
    """A path of a card that leads out of its model folder (absolute, '..', or by a symlink)."""


@dataclass(frozen=True)
class TreeEntry:
    """One entry under a folder of a snapshot, as git (or the file system) records it."""

    path: str  # repository-relative
    kind: str  # 'file', 'symlink', 'gitlink' (a submodule) or 'other' (a fifo, a device…)
    link_target: str | None = None


@dataclass(frozen=True)
class FileEntry:
    """A file of a snapshot: its bytes are read lazily by `Snapshot.read`."""

    path: str
    is_symlink: bool = False
    link_target: str | None = None


class Snapshot:
    """The registry's files in one place (working tree or revision)."""

    label: str = ""
    rev: str | None = None

    def read(self, path: str) -> bytes | None:
        """Bytes of a repository-relative file, or None when it does not exist."""
        raise NotImplementedError

    def entry(self, path: str) -> FileEntry | None:
        """The file at `path` (to see whether it is a symlink), or None."""
        raise NotImplementedError

    def list_dir(self, path: str) -> list[str]:
        """Names directly inside a folder (empty when it does not exist)."""
        raise NotImplementedError

    def walk(self, folder: str, limit: int = 10_000) -> list[TreeEntry]:
        """Every entry under `folder`, recursively, without following links, sorted by path;
        at most `limit` entries (a folder with more is cut there)."""
        raise NotImplementedError

    def model_names(self) -> list[str]:
        """Every folder under models/ that holds a model.yaml, sorted."""
        return sorted(
            n
            for n in self.list_dir(MODELS_DIR)
            if self.entry(f"{MODELS_DIR}/{n}/{CARD_FILE}") is not None
        )

    def model_folders(self) -> list[str]:
        """Every folder under models/ (with or without a model.yaml), hidden ones left out,
        sorted."""
        raise NotImplementedError

    def model_listing(self) -> str:
        """The names of `model_folders` as one text, each followed by NUL, in no set order (to
        search 100,000 names without making a string of each)."""
        return "".join(f"{n}\0" for n in self.model_folders())

    def prefetch_listing(self) -> None:
        """Start reading `model_listing` in the background where that saves time (a revision:
        git lists the folders while the caller works); the next `model_listing` waits for it."""

    def blob_id(self, path: str) -> str | None:
        """git's id of the file at `path` where the snapshot knows it without reading the file (a
        revision); None in the working tree, or when there is no such file."""
        return None

    def read_text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def resolve_inside(self, folder: str, rel: str, max_links: int = 16) -> str:
        """The repository path that `folder/rel` really names, following symlinks (committed ones
        or ones on disk) one component at a time, so that no link leads out of `folder`.

        Raises:
            PathEscapeError: `rel` is absolute, climbs out with '..', or passes a symlink that
                leaves `folder` (or loops).
        """
        if rel.startswith(("/", "\\")):
            raise PathEscapeError(f"'{rel}' is absolute; it must be a path inside {folder}/")
        if "/" in rel or "\\" in rel:
            todo = list(PurePosixPath(rel.replace("\\", "/")).parts)
        else:  # one name (the common case): its own only part ('' and '.' are skipped below)
            todo = [rel]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise PathEscapeError(f"'{rel}' climbs out of {folder}/ with '..'")
                done.pop()
                continue
            done.append(part)
            entry = self.entry(f"{folder}/{'/'.join(done)}")
            if entry is None or not entry.is_symlink:
                continue
            hops += 1
            link = f"{folder}/{'/'.join(done)}"
            target = entry.link_target or ""
            if hops > max_links:
                raise PathEscapeError(f"{link} is part of a symlink loop")
            if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
                raise PathEscapeError(f"{link} is a symlink to '{target}', outside {folder}/")
            done.pop()
            depth = len(done)
            for t in PurePosixPath(target).parts:
                if t == "..":
                    depth -= 1
                    if depth < 0:
                        raise PathEscapeError(
                            f"{link} is a symlink to '{target}', outside {folder}/"
                        )
                elif t not in ("", "."):
                    depth += 1
            todo = list(PurePosixPath(target).parts) + todo
        if not done:
            raise PathEscapeError(f"'{rel}' names the model folder itself, not a file in it")
        return f"{folder}/{'/'.join(done)}"


# a folder's times are trusted to show a change only once they are this old (coarser than any file
# system's time stamps: FAT's are 2 s), as `registry.versions.tag_digest` trusts a file's
_SETTLED_NS = 2_000_000_000


class WorkTree(Snapshot):
    """The registry's files on disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root = str(self.root)
        self.label = "working tree"
        self._folders: tuple[tuple, list[str]] | None = None  # (state of models/, its folders)

    def read(self, path: str) -> bytes | None:
        # plain os calls, no Path or file objects: `check --all` reads every card through here
        try:
            fd = os.open(os.path.join(self._root, path), os.O_RDONLY)
        except OSError:  # missing, unreadable
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError:  # a folder
            return None
        finally:
            os.close(fd)

    def entry(self, path: str) -> FileEntry | None:
        # one lstat (no Path objects): a link is reported as one, whether or not its target exists
        full = os.path.join(self._root, path)
        if len(full) > 1 and full.endswith("/"):  # as Path does: the link itself, not its target
            full = full.rstrip("/") or "/"
        try:
            mode = os.lstat(full).st_mode
        except ValueError:  # a NUL in the path: no such file
            return None
        except OSError as e:
            if e.errno in _MISSING:
                return None
            raise
        if stat.S_ISLNK(mode):
            return FileEntry(path, True, os.readlink(full))
        return FileEntry(path)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.root / path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self, folder: str, limit: int = 10_000) -> list[TreeEntry]:
        out: list[TreeEntry] = []
        todo = [folder.strip("/")]
        while todo and len(out) < limit:
            current = todo.pop()
            try:
                with os.scandir(os.path.join(self._root, current)) as scan:
                    entries = list(scan)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            for e in entries:
                rel = f"{current}/{e.name}"
                # the entry's kind as the directory read reported it (no system call per file
                # where the file system says; `check --all` walks 100,000 model folders)
                if e.is_symlink():
                    out.append(TreeEntry(rel, "symlink", os.readlink(e.path)))
                elif e.is_dir(follow_symlinks=False):
                    if e.name == ".git" or os.path.lexists(os.path.join(e.path, ".git")):
                        out.append(TreeEntry(rel, "gitlink"))
                    else:
                        todo.append(rel)
                elif e.is_file(follow_symlinks=False):
                    out.append(TreeEntry(rel, "file"))
                else:
                    out.append(TreeEntry(rel, "other"))
        return sorted(out, key=lambda t: t.path)[:limit]

    def model_folders(self) -> list[str]:
        # a run over the whole registry asks several times (the selection, the name index, the
        # listing its processes share): 100,000 entries are listed once while models/ stays as it
        # was (adding, removing or renaming an entry changes its times), and it has settled
        folder = os.path.join(self._root, MODELS_DIR)
        try:
            st = os.stat(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        state = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        if self._folders is not None and self._folders[0] == state:
            return list(self._folders[1])
        try:
            with os.scandir(folder) as scan:
                names = sorted(e.name for e in scan if e.is_dir() and not e.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []
        settled = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS
        self._folders = (state, names) if settled else None
        return list(names)


class GitRevision(Snapshot):
    """The registry's files at a git revision, read from the object database.

    Args:
        repo: the clone: a `RegistryRepo` (whose git readers the revision shares), a folder of
            the clone, or a gitpython `Repo`.
        rev: a branch, tag, commit id or any revision git understands.

    Raises:
        GitError: `rev` names no commit.
    """

    def __init__(self, repo: RegistryRepo | git.Repo | str | os.PathLike, rev: str):
        if isinstance(repo, RegistryRepo):
            self._cwd, self.objects, self._gitpython = repo.root, repo.objects, None
        elif isinstance(repo, (str, os.PathLike)):
            self._cwd, self._gitpython = Path(repo), None
            self.objects = ObjectReader(self._cwd)
        else:  # a gitpython Repo
            self._cwd = Path(repo.git_dir if repo.bare else (repo.working_dir or "."))
            self.objects, self._gitpython = ObjectReader(self._cwd), repo
        # git resolves the name (a tag is peeled to its commit) through the reader already
        # running: no process per revision
        found = self.objects.header(f"{rev}^{{commit}}")
        if found is None or found[1] != "commit":
            raise GitError(
                f"unknown git revision '{rev}'",
                "give a branch, tag or commit that exists (git fetch first?)",
            )
        self.rev = found[0]
        self.label = f"{rev} ({self.rev[:8]})"
        self._folders: dict[str, str | None] = {}
        self._listing: str | None = None
        self._listing_thread: threading.Thread | None = None

    @cached_property
    def commit(self) -> git.Commit:
        """The revision's commit as gitpython reads it (its dates, message, parents)."""
        import git

        repo = self._gitpython or git.Repo(self._cwd, search_parent_directories=True)
        return repo.commit(self.rev)

    # Paths are resolved by git itself (`<tree>:<name>` through persistent `cat-file` processes)
    # rather than by walking tree objects in Python: models/ holds one entry per model, and
    # parsing that tree for every lookup made one-model checks scale with the registry's size.

    def _spec(self, path: str) -> str | None:
        """The object name git resolves for `path` (None: no such path).

        A path is looked up in its folder's tree, whose id is found once per folder: git searches
        a tree's entries one by one, and `models/` holds one entry per model, so looking every
        path up from the commit (`<rev>:models/NAME/model.yaml`) cost a scan of 100,000 entries
        each time.
        """
        path = path.strip("/")
        if "\n" in path or "\r" in path:
            return None
        folder, _, name = path.rpartition("/")
        if folder and name and not {"", ".", ".."} & set(folder.split("/")):
            tree = self._folder_tree(folder)
            return None if tree is None else f"{tree}:{name}"
        return f"{self.rev}:{path}"

    def _header(self, path: str) -> tuple[str, str] | None:
        """(object id, type) of the object at `path`, or None when there is none."""
        spec = self._spec(path)
        found = self.objects.header(spec) if spec is not None else None
        return None if found is None else (found[0], found[1])

    def blob_id(self, path: str) -> str | None:
        header = self._header(path)
        return header[0] if header is not None and header[1] == "blob" else None

    def _folder_tree(self, folder: str) -> str | None:
        """The tree id of a folder of the revision (None: no such folder), looked up once."""
        if folder not in self._folders:
            header = self._header(folder)
            self._folders[folder] = header[0] if header and header[1] == "tree" else None
        return self._folders[folder]

    def _tree(self, path: str) -> list[tuple[str, str, str]] | None:
        """The entries (mode, name, object id) of a folder (the root for ''), or None."""
        spec = self._spec(path) if path.strip("/") else f"{self.rev}^{{tree}}"
        return self._entries(spec) if spec is not None else None

    def _entries(self, spec: str) -> list[tuple[str, str, str]] | None:
        """The entries of the tree object `spec` names, or None when it names no tree."""
        found = self.objects.read(spec)
        if found is None or found[1] != "tree":
            return None
        return _tree_entries(found[2], len(found[0]) // 2)

    def _link_target(self, object_id: str) -> str:
        """The target a symbolic link's blob holds."""
        found = self.objects.read(object_id)
        return found[2].decode("utf-8", "replace") if found is not None else ""

    def read(self, path: str) -> bytes | None:
        spec = self._spec(path)
        found = self.objects.read(spec) if spec is not None else None
        return found[2] if found is not None and found[1] == "blob" else None

    def entry(self, path: str) -> FileEntry | None:
        parent, _, name = path.strip("/").rpartition("/")
        tree = self._tree(parent) if name else None
        found = next((e for e in tree if e[1] == name), None) if tree is not None else None
        if found is None:
            return None
        if found[0] == "120000":
            return FileEntry(path, True, self._link_target(found[2]))
        return FileEntry(path)

    def list_dir(self, path: str) -> list[str]:
        tree = self._tree(path)
        return [] if tree is None else sorted(e[1] for e in tree)

    def walk(self, folder: str, limit: int = 10_000) -> list[TreeEntry]:
        # The trees are read through the running `cat-file` process, depth first in the order git
        # stores their entries: the order of `git ls-tree -r`, without a git process per folder
        # (`check --all --head REV` walks every model's folder).
        folder = folder.strip("/")
        entries: list[TreeEntry] = []
        if not folder:
            return entries
        stack: list[tuple[str, list[tuple[str, str, str]]]] = []
        top = self._tree(folder)
        if top is not None:
            stack.append((folder, top[::-1]))
        while stack and len(entries) < limit:
            prefix, pending = stack[-1]
            if not pending:
                stack.pop()
                continue
            mode, name, sha = pending.pop()
            path = f"{prefix}/{name}"
            if mode == "40000":
                inner = self._entries(sha)
                if inner is not None:
                    stack.append((path, inner[::-1]))
            elif mode == "120000":
                entries.append(TreeEntry(path, "symlink", self._link_target(sha)))
            elif mode == "160000":
                entries.append(TreeEntry(path, "gitlink"))
            else:
                entries.append(TreeEntry(path, "file"))
        return entries

    def model_folders(self) -> list[str]:
        return sorted(self.model_listing().split("\0")[:-1])

    def model_listing(self) -> str:
        # read once per revision: `check --all --head REV` selects and judges by the same listing
        if self._listing_thread is not None:
            self._listing_thread.join()
            self._listing_thread = None
        if self._listing is None:
            self._listing = self._read_listing()
        return self._listing

    def prefetch_listing(self) -> None:
        if self._listing is None and self._listing_thread is None:
            self._listing_thread = threading.Thread(target=self._fill_listing, daemon=True)
            self._listing_thread.start()

    def _fill_listing(self) -> None:
        try:
            self._listing = self._read_listing()
        except GitError:
            pass  # `model_listing` asks again, and raises it where the caller sees it

    def _read_listing(self) -> str:
        out = run_git(
            self._cwd,
            "ls-tree",
            "-d",
            "-z",
            "--name-only",
            self.rev,
            "--",
            f"{MODELS_DIR}/",
        )
        # paths are models/<name> (one folder level): the prefix goes in one pass over the text
        prefix = f"{MODELS_DIR}/"
        listing = out.replace(f"\0{prefix}", "\0").removeprefix(prefix)
        if listing.startswith(".") or "\0." in listing:  # hidden folders are no models
            listing = "".join(f"{n}\0" for n in listing.split("\0") if n and n[0] != ".")
        return listing

    def model_names(self) -> list[str]:
        out = run_git(
            self._cwd,
            "ls-tree",
            "-r",
            "-z",
            "--name-only",
            self.rev,
            "--",
            f"{MODELS_DIR}/",
        )
        return sorted(
            {
                parts[1]
                for parts in (p.split("/") for p in out.split("\0") if p)
                if len(parts) == 3 and parts[2] == CARD_FILE and not parts[1].startswith(".")
            }
        )


def _tree_entries(data: bytes, id_size: int) -> list[tuple[str, str, str]]:
    """(mode, name, object id) of each entry of a git tree object (`<mode> <name>\\0<id>`)."""
    out, pos = [], 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        out.append(
            (
                data[pos:space].decode(),
                data[space + 1 : nul].decode("utf-8", "surrogateescape"),
                data[nul + 1 : nul + 1 + id_size].hex(),
            )
        )
        pos = nul + 1 + id_size
    return out


def _find_clone(start: Path) -> Path | None:
    """The work tree of the clone holding `start` (the folder with `.git`), found without starting
    git; None where only git can tell (a bare clone, `GIT_DIR` in the environment) or none."""
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return None
    folder = Path(os.path.normpath(os.path.abspath(start)))  # as gitpython names it
    for candidate in (folder, *folder.parents):
        dot = candidate / ".git"
        if dot.is_dir() and (dot / "HEAD").is_file():
            return candidate
        if dot.is_file():
            try:
                text = dot.read_text().strip()
            except (OSError, UnicodeDecodeError):
                return None
            return candidate if text.startswith("gitdir: ") else None
    return None


class RegistryRepo:
    """A clone of the registry repository.

    Args:
        root: any folder inside the clone (default: the current directory).

    Raises:
        UsageError: when `root` is not inside a git repository.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        start = Path(root or os.getcwd())
        self._start = start
        found = _find_clone(start) if start.is_dir() else None
        if found is None:  # only git can tell where this clone is (or that it is none)
            found = Path(self.git.working_tree_dir or start)
        self.root = found
        self.objects = ObjectReader(self.root)
        # answers about two commit ids never change: a pull request's check asks them several times
        self._by_commits: dict[tuple, object] = {}

    @cached_property
    def git(self) -> git.Repo:
        """The clone as a gitpython `Repo` (made on first use: the bot's reads do without it)."""
        import git

        try:
            return git.Repo(getattr(self, "root", self._start), search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise UsageError(
                f"{self._start} is not inside a git repository",
                "run this inside a clone of the model registry, or pass --repo",
            ) from None

    def snapshot(self, rev: str | None = None) -> Snapshot:
        """The working tree (rev None) or the files at a revision."""
        return WorkTree(self.root) if rev is None else GitRevision(self, rev)

    def changed_models(self, base: str, head: str | None) -> list[str]:
        """Names of the models whose folders differ between two revisions (added, changed, deleted).

        Uses the merge base like a pull request diff does, so changes on the base branch since
        the branch point are not blamed on the pull request. `head` None compares with the
        working tree, committed or not (untracked files included).
        """
        b = GitRevision(self, base)
        if head is None:
            out = run_git(
                self.root, "diff", "--name-only", "--no-renames", "-z", b.rev, "--", MODELS_DIR
            )
            out += run_git(
                self.root, "ls-files", "--others", "--exclude-standard", "-z", MODELS_DIR
            )
            return _model_names_of(out)
        prefix = f"{MODELS_DIR}/"
        return _model_names_of(
            "\0".join(p.path for p in self.changed_paths(base, head) if p.path.startswith(prefix))
        )

    def changed_paths(self, base: str, head: str | None) -> list[ChangedPath]:
        """Every path that differs between the merge base of `base` and `head` (or the working tree,
        untracked files included, when `head` is None), with git's modes, as a pull request's
        diff."""
        b = GitRevision(self, base)
        if head is None:
            out = run_git(self.root, "diff", "--raw", "--no-renames", "-z", b.rev)
            extra = run_git(self.root, "ls-files", "--others", "--exclude-standard", "-z")
            paths = _raw_diff(out)
            paths += [ChangedPath(p, "A", "000000", "100644") for p in extra.split("\0") if p]
            return paths
        h = GitRevision(self, head)
        key = ("diff", b.rev, h.rev)
        if key not in self._by_commits:
            start = self.merge_base(b.rev, h.rev)
            self._by_commits[key] = _raw_diff(
                run_git(self.root, "diff", "--raw", "--no-renames", "-z", start, h.rev)
            )
        return list(self._by_commits[key])

    def merge_base(self, base: str, head: str) -> str:
        """The commit a pull request from `head` into `base` branched from (`base` itself when
        none)."""
        b, h = GitRevision(self, base), GitRevision(self, head)
        key = ("merge-base", b.rev, h.rev)
        if key not in self._by_commits:
            found = run_git(self.root, "merge-base", b.rev, h.rev, check=False).split()
            self._by_commits[key] = found[0] if found else b.rev
        return self._by_commits[key]

    @cached_property
    def tag_refs(self) -> str:
        """Every tag ref, one line each in `TAG_REF_FORMAT`, read once (`registry.versions.tags`
        parses them)."""
        return run_git(self.root, "for-each-ref", f"--format={TAG_REF_FORMAT}", "refs/tags")


@dataclass(frozen=True)
class ChangedPath:
    """One path of a diff: git's status letter (A, M, D, T) and the modes on each side."""

    path: str
    status: str
    old_mode: str
    new_mode: str

    @property
    def gitlink(self) -> bool:
        """Whether either side is a submodule (mode 160000)."""
        return "160000" in (self.old_mode, self.new_mode)

    @property
    def symlink(self) -> bool:
        return self.new_mode == "120000"


def _raw_diff(out: str) -> list[ChangedPath]:
    """Parse `git diff --raw -z`: `:old new oldsha newsha STATUS\0path\0` records."""
    fields = out.split("\0")
    paths, i = [], 0
    while i + 1 < len(fields):
        meta, path = fields[i], fields[i + 1]
        i += 2
        if not meta.startswith(":"):
            continue
        old_mode, new_mode, _, _, status = (meta[1:].split(" ") + [""] * 5)[:5]
        paths.append(ChangedPath(path, status[:1], old_mode, new_mode))
    return paths


def _model_names_of(paths: str) -> list[str]:
    """Model folder names of NUL-separated repository paths under models/."""
    names = set()
    for path in filter(None, paths.split("\0")):
        parts = PurePosixPath(path).parts
        if len(parts) >= 3:
            names.add(parts[1])
    return sorted(names)


def valid_model_name(name: str) -> bool:
    """Whether `name` is a legal model folder name."""
    return bool(NAME_RE.fullmatch(name))
