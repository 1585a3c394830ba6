"""Standard: the card reads as YAML and every field is present, well-typed and known."""

from __future__ import annotations

from collections.abc import Iterable

from registry.checks import Check, Finding, ModelContext, register


@register
class CardFields(Check):
    """Required fields present and well-typed; name equals folder; unknown keys suggest the
    nearest."""

    name = "card-fields"
    description = (
        "required fields present and well-typed, name equals the folder, unknown keys "
        "rejected with the nearest known key, task from the documented list, SemVer version"
    )
    needs_card = False
    order = 0

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        if ctx.head_error is not None:
            e = ctx.head_error
            yield self.finding(e.message, e.hint, path=ctx.card_path, line=e.line)
            return
        if ctx.loaded is None:  # deleted: the lifecycle check judges whether that is allowed
            return
        for f in ctx.loaded.findings:
            yield self.finding(f.message, f.hint, path=ctx.card_path, line=f.line)
        card = ctx.card
        if card is not None and card.name != ctx.name:
            yield self.finding(
                f"'name' is '{card.name}' but the folder is models/{ctx.name}",
                f"set 'name: {ctx.name}' or rename the folder to models/{card.name}",
                path=ctx.card_path,
                line=ctx.line("name"),
            )
