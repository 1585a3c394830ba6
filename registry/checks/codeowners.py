"""Standard: `.github/CODEOWNERS` is what `registry codeowners` writes from the pull request's
cards.

Runs once per pull request (`--base`), when the base has a generated CODEOWNERS. The maintainers
are taken from the base's file, never from the pull request's, so a pull request cannot make
itself the owner of the registry. A pull request that changes a model's `owners` carries the
regenerated file; GitHub asks the owners named on the base branch to review it.

Only the cards of the models the pull request touches are read: every other model's line must stay
as the base's file has it, so the check costs the same in a registry of ten models or of a hundred
thousand, and a pull request is not blamed for a line that went stale on the base branch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from registry.cards.codeowners import FILE, is_generated, maintainers_of, render, render_changes
from registry.checks import Check, Finding, ModelContext, register
from registry.core.errors import UsageError


def expected_codeowners(ctx: ModelContext) -> str | None:
    """The CODEOWNERS the head should hold (None when the base has no generated file)."""
    return _expected(ctx)[0]


def _expected(ctx: ModelContext) -> tuple[str | None, str | None]:
    """(the CODEOWNERS the head should hold, the base's), None when the base has none generated."""
    base_text = ctx.base.read_text(FILE) if ctx.base is not None else None
    if not is_generated(base_text):
        return None, base_text
    try:
        if ctx.touched is not None:
            return render_changes(base_text, ctx.head, ctx.touched), base_text
        return render(ctx.head, maintainers_of(base_text)), base_text
    except UsageError:
        return None, base_text


@register
class CodeOwners(Check):
    """CODEOWNERS is up to date with the cards' owners (maintainers from the base)."""

    name = "codeowners"
    description = (
        "when the registry keeps a generated .github/CODEOWNERS, the pull request's copy is what "
        "`registry codeowners` writes from its cards (maintainers as on the base branch)"
    )
    needs_card = False
    scope: ClassVar[str] = "registry"
    order = 6

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        expected, base_text = _expected(ctx)
        if expected is None or ctx.base is None:
            return
        # the file the pull request leaves as it was is the base's text, already read
        base_id = ctx.base.blob_id(FILE)
        same = base_id is not None and ctx.head.blob_id(FILE) == base_id
        if (base_text if same else ctx.head.read_text(FILE)) != expected:
            yield self.finding(
                f"{FILE} is out of date with the cards' owners (or edited by hand)",
                "run `registry codeowners` and commit .github/CODEOWNERS",
                path=FILE,
            )
