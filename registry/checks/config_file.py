"""Standard: the model's config file is in the pull request, inside the model folder, and parses."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Iterable

import yaml
from pydantic import BaseModel, Field

from registry.checks import Check, Finding, ModelContext, register
from registry.repo import PathEscapeError

try:  # the C loader is much faster, and both are safe loaders (no Python objects)
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class ConfigFileOptions(BaseModel):
    """Limits of the config-file check."""

    max_bytes: int = Field(1024 * 1024, description="largest config file accepted (configs are small and live in git)")
    max_nodes: int = Field(200_000, description="most YAML/JSON values accepted in one config")


class ConfigSyntaxError(ValueError):
    """A config file that does not parse; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


def parse_config(data: bytes, name: str, options: ConfigFileOptions | None = None) -> Any:
    """Parse a config file as YAML (`.yaml`/`.yml`) or JSON (`.json`), safely.

    YAML is read with a safe loader; anchors and aliases are refused (they allow exponential
    "billion laughs" documents), and so are files over `max_bytes` or with more than `max_nodes` values.

    Raises:
        ConfigSyntaxError: with the 1-based line of the problem when there is one.
    """
    options = options or ConfigFileOptions()
    if len(data) > options.max_bytes:
        raise ConfigSyntaxError(f"{len(data):,} bytes, over the {options.max_bytes:,}-byte limit for config files",
                                hint="keep the config small; large data belongs in DVC, not in the config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigSyntaxError(f"not UTF-8 text (byte {e.start})", line, "save the file as UTF-8") from None
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigSyntaxError(f"not valid JSON: {e.msg} (column {e.colno})", e.lineno,
                                    "fix the JSON syntax at that line") from None
        if _count(value) > options.max_nodes:
            raise ConfigSyntaxError(f"more than {options.max_nodes:,} values", None, "keep the config small")
        return value
    if suffix in ("yaml", "yml"):
        return _parse_yaml(text, options)
    raise ConfigSyntaxError(f"unknown config format '.{suffix}'" if suffix else "the config file has no extension",
                            None, "use a .yaml, .yml or .json config file")


def _parse_yaml(text: str, options: ConfigFileOptions) -> Any:
    try:  # events first: an alias is refused where it is used, before anything is built
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise ConfigSyntaxError("YAML anchors and aliases are not allowed in a config file",
                                        event.start_mark.line + 1, "write the repeated value out in full")
    except yaml.YAMLError:
        pass  # reported with its line by the loader below
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        seen: set[int] = set()
        stack = [node]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                raise ConfigSyntaxError("YAML anchors and aliases are not allowed in a config file",
                                        n.start_mark.line + 1, "write the repeated value out in full")
            seen.add(id(n))
            if len(seen) > options.max_nodes:
                raise ConfigSyntaxError(f"more than {options.max_nodes:,} values", n.start_mark.line + 1,
                                        "keep the config small")
            if isinstance(n, yaml.MappingNode):
                for k, v in n.value:
                    stack += [k, v]
            elif isinstance(n, yaml.SequenceNode):
                stack += n.value
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigSyntaxError(f"not valid YAML: {e.problem or e}", mark.line + 1 if mark else None,
                                "fix the YAML syntax at that line (indentation, quotes, ':' after keys)") from None
    except yaml.YAMLError as e:
        raise ConfigSyntaxError(f"not valid YAML: {e}", None, "fix the YAML syntax") from None
    finally:
        loader.dispose()


def _count(value: Any) -> int:
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        n += 1
        if isinstance(v, dict):
            stack += v.values()
        elif isinstance(v, list):
            stack += v
    return n


@register
class ConfigFile(Check):
    """The card's `config` file exists in the head snapshot, stays inside the folder, and parses."""

    name = "config-file"
    description = ("the config file exists, stays inside the model folder (symlinks included) and parses "
                   "as YAML or JSON, safely and within size limits")
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
            yield self.finding(f"config file: {e}", "keep the config file itself inside the model folder "
                               "(copy it there instead of linking)", path=ctx.card_path, line=line)
            return
        data = ctx.head.read(path)
        if data is None:
            yield self.finding(f"config file {ctx.folder}/{card.config} does not exist in {ctx.head.label}",
                               f"commit the config file with git add {ctx.folder}/{card.config}, or fix 'config'",
                               path=ctx.card_path, line=line)
            return
        try:
            value = parse_config(data, path)
        except ConfigSyntaxError as e:
            yield self.finding(f"config file {path}: {e.message}", e.hint, path=path, line=e.line)
            return
        if value is None or value == {} or value == []:
            yield self.finding(f"config file {path} is empty",
                               "commit the configuration the model was trained with", path=path, line=1)
