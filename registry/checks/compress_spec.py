"""Standard: the card's `compress:` section names known lightweighting methods with valid settings.

The card schema (`registry.cards`) checks the section's shape only; which methods exist is the
compression package's knowledge, so it is checked here, above both.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError

from registry.checks import Check, Finding, ModelContext, register


def spec_problems(methods: list[str] | None, options: dict) -> list[tuple[tuple, str, str]]:
    """(location in the card, message, hint) for each unknown method name or invalid settings."""
    from registry.compression.methods import load_methods  # imports nothing heavy at module level

    known = load_methods()
    problems = []

    def unknown(loc: tuple, name: str) -> None:
        near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
        problems.append(
            (
                loc,
                f"unknown compression method '{name}'"
                + (f"; did you mean '{near[0]}'?" if near else ""),
                "known methods: " + ", ".join(known) + " (registry compress --list-methods)",
            )
        )

    for i, name in enumerate(methods or []):
        if name not in known:
            unknown(("compress", "methods", i), name)
    for name, settings in (options or {}).items():
        if name not in known:
            unknown(("compress", "options", name), name)
            continue
        try:
            known[name].Config.model_validate(settings or {})
        except ValidationError as e:
            text = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
            )
            problems.append(
                (
                    ("compress", "options", name),
                    f"settings of method '{name}': {text}",
                    f"see the settings of '{name}' with: registry compress --list-methods",
                )
            )
    return problems


@register
class CompressSpec(Check):
    """Every method the card names under `compress:` exists, and its settings are valid."""

    name = "compress-spec"
    description = "methods named under compress: exist, and their options are valid settings"
    order = 1

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        spec = ctx.card.compress if ctx.card is not None else None
        if spec is None:
            return
        for loc, message, hint in spec_problems(spec.methods, spec.options):
            yield self.finding(
                message, hint, path=ctx.card_path, line=ctx.line(*loc) or ctx.line("compress")
            )
