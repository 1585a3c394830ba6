"""Standard: the model folder holds plain files only, and every DVC pointer in it is usable.

The folder is resolved once (`registry.cards.model_files`), the same way publish and pull
resolve it:
a symlink anywhere in the folder, a submodule, a pointer that cannot be read, tracks another file
than its name says, records no size or tracks a folder is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.checks import Check, Finding, ModelContext, register


@register
class ModelFilesCheck(Check):
    """No links or submodules in the model folder; every `.dvc` pointer reads and tracks one
    file."""

    name = "model-files"
    description = (
        "the model folder holds regular files only (no symlinks anywhere, no submodules) and every "
        ".dvc pointer in it reads, tracks the file its name says (not a folder) and records a size"
    )
    needs_card = False
    order = 12

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        if ctx.deleted:
            return
        for problem in ctx.files.problems:
            yield self.finding(problem.message, problem.hint, path=problem.path)
