"""A model's config file (`config:` in the card): parsed safely, as YAML or JSON, within limits.

The bot checks it (`registry.checks.config_file`) and release notes diff it
(`registry.publishing.notes`); both read it through `parse_config`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from registry.cards.plaincard import read_plain
from registry.core.bounded import BoundedParseError, decode, parse_json, parse_yaml


class ConfigFileOptions(BaseModel):
    """Limits of the config-file check."""

    max_bytes: int = Field(
        1024 * 1024, description="largest config file accepted (configs are small and live in git)"
    )
    max_nodes: int = Field(200_000, description="most YAML/JSON values accepted in one config")
    max_depth: int = Field(
        100, description="deepest nesting of lists and mappings accepted in one config"
    )


_DEFAULTS = ConfigFileOptions()


class ConfigSyntaxError(ValueError):
    """A config file that does not parse; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


def parse_config(data: bytes, name: str, options: ConfigFileOptions | None = None) -> Any:
    """Parse a config file as YAML (`.yaml`/`.yml`) or JSON (`.json`), safely and within limits.

    YAML is read with a safe loader; anchors and aliases are refused (they allow exponential
    "billion laughs" documents), and so are files over `max_bytes`, with more than `max_nodes`
    values or nested deeper than `max_depth` (`registry.core.bounded`).

    Raises:
        ConfigSyntaxError: with the 1-based line of the problem when there is one.
    """
    options = options or _DEFAULTS
    if len(data) > options.max_bytes:
        raise ConfigSyntaxError(
            f"{len(data):,} bytes, over the {options.max_bytes:,}-byte limit for config files",
            hint="keep the config small; large data belongs in DVC, not in the config",
        )
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    limits = dict(
        what="config file",
        max_bytes=options.max_bytes,
        max_nodes=options.max_nodes,
        max_depth=options.max_depth,
    )
    try:
        if suffix == "json":
            return parse_json(data, **limits)
        if suffix in ("yaml", "yml"):
            plain = read_plain(decode(data, options.max_bytes, "config file"))
            if plain is not None and _within(plain, options):
                return plain  # the plain shape: what the bounded parser returns, sooner
            return parse_yaml(data, **limits)
    except BoundedParseError as e:
        raise ConfigSyntaxError(e.message, e.line, e.hint) from None
    raise ConfigSyntaxError(
        f"unknown config format '.{suffix}'" if suffix else "the config file has no extension",
        None,
        "use a .yaml, .yml or .json config file",
    )


def _within(data: Any, options: ConfigFileOptions) -> bool:
    """Whether a document read in the plain shape stays within the limits as the bounded parser
    counts them (a value for each key and each value, a level for each list and mapping)."""
    nodes, deepest, todo = 0, 0, [(data, 1)]
    while todo:
        value, depth = todo.pop()
        nodes += 1
        if isinstance(value, dict):
            deepest = max(deepest, depth)
            nodes += len(value)  # the keys
            todo += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            deepest = max(deepest, depth)
            todo += [(v, depth + 1) for v in value]
    return nodes <= options.max_nodes and deepest <= options.max_depth
