"""Standard: the weights (and the PyTorch source, when the card has one) are DVC-tracked, pushed to
the `staging` remote, and the weights are as big as the card says."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from registry.cards.schema import format_size, parse_size
from registry.checks import Check, Finding, ModelContext, Severity, register
from registry.core.git import run_git
from registry.core.repo import PathEscapeError, WorkTree
from registry.core.storage import STAGING, Pointer, PointerError, parse_pointer


@dataclass
class WeightsLocation:
    """Where a model's weights are recorded: the weights path, its `.dvc` pointer, and what it
    says."""

    weights_path: str  # repository-relative path of the weights file (symlinks resolved)
    pointer_path: str  # repository-relative path of its DVC pointer
    pointer: Pointer | None  # None when the pointer is missing or unreadable
    problem: Finding | None  # why `pointer` is None


def locate_weights(
    check: Check, ctx: ModelContext, field: str = "weights"
) -> WeightsLocation | None:
    """Find and read the DVC pointer of the card's weights (or of another DVC-tracked file field,
    e.g. `pytorch`) in the head snapshot.

    Returns None when the card has no usable path there (the finding comes from elsewhere).
    """
    card = ctx.card
    if card is None or not getattr(card, field, None):
        return None
    line = ctx.line(field)
    what = "weights" if field == "weights" else f"'{field}' file"
    try:
        wpath = ctx.head.resolve_inside(ctx.folder, getattr(card, field))
    except PathEscapeError as e:
        problem = check.finding(
            f"{field}: {e}",
            f"keep the {what} inside the model folder",
            path=ctx.card_path,
            line=line,
        )
        return WeightsLocation(f"{ctx.folder}/{getattr(card, field)}", "", None, problem)
    ppath = f"{wpath}.dvc"
    try:  # the pointer may be a link too; read only what stays inside the folder
        ppath = ctx.head.resolve_inside(ctx.folder, ppath[len(ctx.folder) + 1 :])
    except PathEscapeError as e:
        problem = check.finding(
            f"DVC pointer: {e}",
            "keep the .dvc pointer inside the model folder",
            path=ctx.card_path,
            line=line,
        )
        return WeightsLocation(wpath, "", None, problem)
    text = ctx.head.read(ppath)
    if text is None:
        problem = check.finding(
            f"no DVC pointer {ppath} for the {what} in {ctx.head.label}",
            f"track the weights with DVC and push them: dvc add {wpath} && dvc push -r {STAGING} "
            f"{ppath}, "
            f"then git add {ppath}",
            path=ctx.card_path,
            line=line,
        )
        return WeightsLocation(wpath, ppath, None, problem)
    try:
        pointer = parse_pointer(text)
    except PointerError as e:
        problem = check.finding(
            f"DVC pointer {ppath} is unusable: {e}",
            f"recreate it: dvc add {wpath}",
            path=ppath,
            line=None,
        )
        return WeightsLocation(wpath, ppath, None, problem)
    return WeightsLocation(wpath, ppath, pointer, None)


def committed_to_git(ctx: ModelContext, path: str) -> bool:
    """Whether git itself holds the file (in the revision, or staged in the index for the working
    tree)."""
    if isinstance(ctx.head, WorkTree):
        return bool(run_git(ctx.head.root, "ls-files", "-z", "--", path).strip("\0"))
    return ctx.head.entry(path) is not None


@register
class WeightsStorage(Check):
    """The weights' (and PyTorch source's) `.dvc` pointer is committed, the object is in `staging`,
    and sizes agree."""

    name = "weights-storage"
    description = (
        "the weights (and the pytorch .pt2, if any) are tracked by a committed .dvc pointer "
        "(not by git), the object is in the staging remote with the size the pointer records, "
        "and the card's size agrees with the weights"
    )
    reads_content = True
    order = 30

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        yield from self._stored(ctx, "weights")
        yield from self._stored(ctx, "pytorch")
        yield from self._other_pointers(ctx)

    def _other_pointers(self, ctx: ModelContext) -> Iterable[Finding]:
        """Every other `.dvc` pointer of the folder (external data, calibration sets…): publish
        copies
        each one, so each must name an object that staging holds, with the size it records."""
        checked = {
            loc.pointer_path
            for f in ("weights", "pytorch")
            if (loc := locate_weights(self, ctx, f)) is not None and loc.pointer is not None
        }
        for tracked in ctx.files.tracked.values():
            if tracked.pointer_path in checked:
                continue
            remote = ctx.storage.remote(STAGING)
            stored = remote.object_size(tracked.md5)
            if stored is None:
                yield self.finding(
                    f"the object {tracked.md5} of {tracked.pointer_path} is not in the '{STAGING}' "
                    f"remote "
                    f"({remote.url})",
                    f"push it: dvc push -r {STAGING} {tracked.pointer_path}",
                    path=tracked.pointer_path,
                )
            elif stored != tracked.size:
                yield self.finding(
                    f"the '{STAGING}' remote holds {stored:,} bytes for object {tracked.md5}, but "
                    f"{tracked.pointer_path} records {tracked.size:,} bytes",
                    f"re-create the pointer with dvc add and push it: dvc push -r {STAGING} "
                    f"{tracked.pointer_path}",
                    path=tracked.pointer_path,
                )

    def _stored(self, ctx: ModelContext, field: str) -> Iterable[Finding]:
        loc = locate_weights(self, ctx, field)
        if loc is None:
            return
        card = ctx.card
        what = "weights" if field == "weights" else "PyTorch source"
        if loc.pointer_path and committed_to_git(ctx, loc.weights_path):
            belong = "belong" if field == "weights" else "belongs"
            yield self.finding(
                f"the {what} file {loc.weights_path} is committed to git; {what} {belong} in DVC",
                f"git rm --cached {loc.weights_path}, then dvc add {loc.weights_path} && "
                f"dvc push -r {STAGING} {loc.pointer_path}",
                path=loc.weights_path,
            )
        if loc.problem is not None:
            yield loc.problem
            return
        pointer = loc.pointer
        name = PurePosixPath(loc.weights_path).name
        if pointer.is_dir:
            yield self.finding(
                f"DVC pointer {loc.pointer_path} tracks a folder; '{field}' must be one file",
                f"point '{field}' at the model file and dvc add that file",
                path=loc.pointer_path,
            )
            return
        if pointer.path and pointer.path != name:
            yield self.finding(
                f"DVC pointer {loc.pointer_path} tracks '{pointer.path}', not '{name}'",
                f"recreate it: dvc add {loc.weights_path}",
                path=loc.pointer_path,
            )
        remote = ctx.storage.remote(STAGING)  # StorageError (unreachable) stops the run: exit 5
        stored = remote.object_size(pointer.md5)
        if stored is None:
            yield self.finding(
                f"the {what} object {pointer.md5} ({loc.pointer_path}) is not in the '{STAGING}' "
                f"remote "
                f"({remote.url})",
                f"push it: dvc push -r {STAGING} {loc.pointer_path}",
                path=loc.pointer_path,
            )
            return
        if pointer.size is not None and stored != pointer.size:
            yield self.finding(
                f"the '{STAGING}' remote holds {stored:,} bytes for object {pointer.md5}, but "
                f"{loc.pointer_path} records {pointer.size:,} bytes (an incomplete or different "
                f"upload)",
                f"push it again: dvc push -r {STAGING} {loc.pointer_path}",
                path=loc.pointer_path,
            )
            return
        if field == "weights":
            actual = pointer.size if pointer.size is not None else stored
            yield from self._size(ctx, card.size, actual, loc)

    def _size(
        self, ctx: ModelContext, declared: int | str | None, actual: int, loc: WeightsLocation
    ) -> Iterable[Finding]:
        line = ctx.line("size")
        if declared is None:
            yield self.finding(
                f"the card declares no 'size'; {loc.pointer_path} records {actual:,} bytes",
                f"add 'size: {actual}'",
                path=ctx.card_path,
                line=ctx.line("weights"),
                severity=Severity.notice,
            )
            return
        if isinstance(declared, int):
            if declared != actual:
                yield self.finding(
                    f"'size' is {declared:,} bytes but DVC records {actual:,} bytes "
                    f"for {loc.weights_path}",
                    f"set 'size: {actual}'",
                    path=ctx.card_path,
                    line=line,
                )
            return
        try:
            value, tolerance = parse_size(declared)
        except ValueError as e:  # the card validator refuses these already; keep the check total
            yield self.finding(
                f"'size': {e}", f"set 'size: {actual}'", path=ctx.card_path, line=line
            )
            return
        if abs(value - actual) > tolerance:
            yield self.finding(
                f"'size' is '{declared}' ({value:,.0f} bytes) but DVC records {actual:,} bytes "
                f"({format_size(actual)}) for {loc.weights_path}",
                f"set 'size: {actual}' (or '{format_size(actual).replace(' ', '')}')",
                path=ctx.card_path,
                line=line,
            )
