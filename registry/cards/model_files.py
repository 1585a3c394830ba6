"""A model's files, resolved once: the one answer check, publish, pull, package and gc share.

`model_files(snapshot, name)` lists the model's folder once (recursively, links never followed)
and reads every `.dvc` pointer in it with the bounded parser. What the bot passes is then exactly
what publish copies and pull serves: there is no second way to find a version's files.

`ModelFiles.problems` lists what makes a folder unusable as a version, each naming the file:

- a symlink anywhere in the folder (card, config, weights, pointers, CHANGELOG…): the bot would
  judge one file while publish or pull read another, or read outside the repository;
- a submodule (gitlink) or a file that is not a regular file;
- a `.dvc` pointer that cannot be read, that tracks a file other than the one its own name says
  (`tiny.onnx.dvc` must track `tiny.onnx`), that records no size, or that tracks a folder
  (`.dir` outputs are not supported: `dvc add` each file instead);
- more than `MAX_ENTRIES` files.

The bot reports each problem as a finding (check `model-files`); publish and pull refuse a folder
that has any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from registry.cards.schema import MODELS_DIR
from registry.core.errors import CardError
from registry.core.repo import Snapshot, TreeEntry
from registry.core.storage import Pointer, PointerError, parse_pointer

MAX_ENTRIES = 1000
POINTER_SUFFIX = ".dvc"


@dataclass(frozen=True)
class TrackedFile:
    """One DVC-tracked file of a model: the file, its pointer, and what the pointer records."""

    path: str  # repository-relative path of the tracked file
    pointer_path: str  # repository-relative path of its `.dvc` pointer
    pointer: Pointer

    @property
    def md5(self) -> str:
        return self.pointer.md5

    @property
    def size(self) -> int | None:
        return self.pointer.size


@dataclass(frozen=True)
class FolderProblem:
    """Why a model folder cannot be used as a version, naming the file."""

    path: str
    message: str
    hint: str


@dataclass
class ModelFiles:
    """Every file of one model folder in one snapshot, and its DVC pointers."""

    name: str
    folder: str
    entries: list[TreeEntry] = field(default_factory=list)
    tracked: dict[str, TrackedFile] = field(default_factory=dict)  # by tracked path
    problems: list[FolderProblem] = field(default_factory=list)

    def pointer_of(self, rel: str) -> TrackedFile | None:
        """The tracked file at `rel` (relative to the model folder), or None."""
        return self.tracked.get(f"{self.folder}/{PurePosixPath(rel).as_posix()}")

    def require_usable(self, doing: str) -> None:
        """Raise the first problem as a `CardError` (publish and pull stop on any).

        Raises:
            CardError: naming the file and the fix.
        """
        if self.problems:
            p = self.problems[0]
            more = (
                f" (and {len(self.problems) - 1} more problem(s); `registry check {self.name}` "
                f"lists them)"
                if len(self.problems) > 1
                else ""
            )
            raise CardError(f"{doing} {self.name}: {p.message}{more}", p.hint, path=p.path)


def model_files(snapshot: Snapshot, name: str) -> ModelFiles:
    """Resolve the files and pointers of `models/<name>` in `snapshot` (see the module
    docstring)."""
    folder = f"{MODELS_DIR}/{name}"
    entries = snapshot.walk(folder, limit=MAX_ENTRIES + 1)
    files = ModelFiles(name=name, folder=folder, entries=entries[:MAX_ENTRIES])
    if len(entries) > MAX_ENTRIES:
        files.problems.append(
            FolderProblem(
                folder,
                f"{folder} holds more than {MAX_ENTRIES:,} files",
                "keep a model folder to its card, config, pointers and a few "
                "small files; data belongs in DVC (one pointer per file)",
            )
        )
    for entry in files.entries:
        if entry.kind == "symlink":
            files.problems.append(
                FolderProblem(
                    entry.path,
                    f"{entry.path} is a symbolic link (to '{_shown(entry.link_target)}'); "
                    "links are not allowed anywhere in a model folder",
                    f"replace the link with the file itself: git rm {entry.path}, copy the real "
                    f"file there "
                    "(for weights: dvc add it), commit",
                )
            )
        elif entry.kind == "gitlink":
            files.problems.append(
                FolderProblem(
                    entry.path,
                    f"{entry.path} is a git submodule; a model folder holds plain files only",
                    f"remove it: git rm {entry.path}",
                )
            )
        elif entry.kind != "file":
            files.problems.append(
                FolderProblem(
                    entry.path, f"{entry.path} is not a regular file", f"remove it from {folder}"
                )
            )
        elif entry.path.endswith(POINTER_SUFFIX):
            _read_pointer(snapshot, entry.path, files)
    return files


def _read_pointer(snapshot: Snapshot, path: str, files: ModelFiles) -> None:
    tracked = path[: -len(POINTER_SUFFIX)]
    expected = tracked.rpartition("/")[2]  # the walk's paths: plain names joined by '/'
    redo = f"re-create it: dvc add {tracked}, then dvc push -r staging {path}"
    try:
        pointer = parse_pointer(snapshot.read(path) or b"")
    except PointerError as e:
        files.problems.append(FolderProblem(path, f"DVC pointer {path} is unusable: {e}", redo))
        return
    if pointer.path != expected:
        files.problems.append(
            FolderProblem(
                path,
                f"DVC pointer {path} tracks '{pointer.path}', not '{expected}' (a pointer tracks "
                f"the file "
                "its own name says)",
                redo,
            )
        )
        return
    if pointer.is_dir:
        files.problems.append(
            FolderProblem(
                path,
                f"DVC pointer {path} tracks a folder ('{pointer.md5}'); folder outputs are not "
                f"supported",
                f"track each file on its own: dvc add {tracked}/<file> for each file, and remove "
                f"{path}",
            )
        )
        return
    if pointer.size is None:
        files.problems.append(FolderProblem(path, f"DVC pointer {path} records no 'size'", redo))
        return
    files.tracked[tracked] = TrackedFile(tracked, path, pointer)


def _shown(target: str | None) -> str:
    """A link target for a message: printable, and short."""
    text = "".join(c if c.isprintable() else "?" for c in (target or ""))
    return text if len(text) <= 120 else text[:117] + "..."
