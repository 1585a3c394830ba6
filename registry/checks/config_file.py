"""Standard: the model's config file is in the pull request, inside the model folder, and parses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from pydantic import BaseModel

from registry.cards.config import ConfigFileOptions, ConfigSyntaxError, parse_config
from registry.checks import Check, Finding, ModelContext, register
from registry.core.repo import PathEscapeError


@register
class ConfigFile(Check):
    """The card's `config` file exists in the head snapshot, stays inside the folder, and parses."""

    name = "config-file"
    description = (
        "the config file exists, stays inside the model folder (symlinks included) and parses "
        "as YAML or JSON, safely and within size limits"
    )
    order = 20
    options_model: ClassVar[type[BaseModel]] = ConfigFileOptions

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        card = ctx.card
        if card is None:  # needs_card: the framework skips these already
            return
        line = ctx.line("config")
        try:
            path = ctx.head.resolve_inside(ctx.folder, card.config)
        except PathEscapeError as e:
            yield self.finding(
                f"config file: {e}",
                "keep the config file itself inside the model folder "
                "(copy it there instead of linking)",
                path=ctx.card_path,
                line=line,
            )
            return
        data = ctx.head.read(path)
        if data is None:
            yield self.finding(
                f"config file {ctx.folder}/{card.config} does not exist in {ctx.head.label}",
                f"commit the config file with git add {ctx.folder}/{card.config}, or fix 'config'",
                path=ctx.card_path,
                line=line,
            )
            return
        try:
            value = parse_config(data, path)
        except ConfigSyntaxError as e:
            yield self.finding(f"config file {path}: {e.message}", e.hint, path=path, line=e.line)
            return
        if value is None or value == {} or value == []:
            yield self.finding(
                f"config file {path} is empty",
                "commit the configuration the model was trained with",
                path=path,
                line=1,
            )
