"""Parsers of untrusted text with limits: every YAML and JSON file a pull request can carry.

A pull request's `.dvc` pointers, `dvc.yaml`, config files and JSON entries of archives are read
by the bot and by publish. Unbounded, a few hundred bytes can make them build gigabytes (a YAML
"billion laughs" alias bomb) or overflow the interpreter's stack (a 100,000-deep `[[[…]]]`).
These parsers refuse such files before anything large is built:

- more than `max_bytes` bytes, or text that is not UTF-8;
- YAML anchors and aliases (`&a` / `*a`), merge keys included;
- more than `max_nodes` values, or nesting deeper than `max_depth`.

Each refusal is a `BoundedParseError` with the 1-based line where there is one and a hint, so the
caller can turn it into a finding naming the file.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

try:  # the C parser is much faster, and both are safe loaders (no Python objects)
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 100


class BoundedParseError(ValueError):
    """An untrusted YAML/JSON text that was refused or does not parse; `line` is 1-based when
    known."""

    def __init__(self, message: str, line: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


def decode(data: bytes | str, max_bytes: int = MAX_BYTES, what: str = "file") -> str:
    """The text of `data`, refused when over `max_bytes` or not UTF-8.

    Raises:
        BoundedParseError: too large, or not UTF-8 (with the line of the first bad byte).
    """
    if isinstance(data, str):
        size = len(data.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise BoundedParseError(
                f"{size:,} bytes, over the {max_bytes:,}-byte limit for a {what}",
                hint=f"keep the {what} small; large data belongs in DVC",
            )
        return data
    if len(data) > max_bytes:
        raise BoundedParseError(
            f"{len(data):,} bytes, over the {max_bytes:,}-byte limit for a {what}",
            hint=f"keep the {what} small; large data belongs in DVC",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BoundedParseError(
            f"not UTF-8 text (byte {e.start})", line, "save the file as UTF-8"
        ) from None


def parse_yaml(
    data: bytes | str,
    *,
    what: str = "file",
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse one YAML document safely and within limits (see the module docstring).

    The document's events are read first (a streaming parse, nothing built): an alias, too many
    values or too deep a nesting is refused at its line before any object exists.

    Raises:
        BoundedParseError: refused, or not valid YAML (with the line).
    """
    text = decode(data, max_bytes, what)
    nodes = depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise BoundedParseError(
                    f"YAML anchors and aliases are not allowed in a {what}",
                    event.start_mark.line + 1,
                    "write the repeated value out in full",
                )
            if isinstance(
                event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
            ):
                nodes += 1
                if nodes > max_nodes:
                    raise BoundedParseError(
                        f"more than {max_nodes:,} values in a {what}",
                        event.start_mark.line + 1,
                        f"keep the {what} small",
                    )
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > max_depth:
                    raise BoundedParseError(
                        f"nested more than {max_depth} levels deep",
                        event.start_mark.line + 1,
                        f"flatten the {what}",
                    )
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise BoundedParseError(
            f"not valid YAML: {e.problem or e}",
            mark.line + 1 if mark else None,
            "fix the YAML syntax at that line (indentation, quotes, ':' after keys)",
        ) from None
    except yaml.YAMLError as e:
        raise BoundedParseError(f"not valid YAML: {e}", None, "fix the YAML syntax") from None
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except (
        yaml.MarkedYAMLError
    ) as e:  # e.g. a key twice is fine for YAML 1.1, constructors may still refuse
        mark = e.problem_mark or e.context_mark
        raise BoundedParseError(
            f"not valid YAML: {e.problem or e}",
            mark.line + 1 if mark else None,
            "fix the YAML syntax at that line",
        ) from None
    except (yaml.YAMLError, ValueError, TypeError) as e:
        raise BoundedParseError(f"not valid YAML: {e}", None, "fix the YAML syntax") from None
    if len(docs) > 1:
        raise BoundedParseError(
            f"a {what} holds one YAML document, this one has {len(docs)}",
            None,
            "remove the extra '---' documents",
        )
    return docs[0] if docs else None


# a JSON string (escapes included) or one bracket: enough to measure nesting without parsing
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def parse_json(
    data: bytes | str,
    *,
    what: str = "file",
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse JSON safely and within limits: size first, then nesting (measured by a scan of the
    brackets, before the recursive parser runs), then the number of values.

    Raises:
        BoundedParseError: refused, or not valid JSON (with the line).
    """
    text = decode(data, max_bytes, what)
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                raise BoundedParseError(
                    f"nested more than {max_depth} levels deep",
                    text.count("\n", 0, m.start()) + 1,
                    f"flatten the {what}",
                )
        elif c in "]}":
            depth -= 1
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BoundedParseError(
            f"not valid JSON: {e.msg} (column {e.colno})",
            e.lineno,
            "fix the JSON syntax at that line",
        ) from None
    except RecursionError:  # pragma: no cover - the scan above refuses deep nesting first
        raise BoundedParseError("nested too deeply", None, f"flatten the {what}") from None
    if count_values(value) > max_nodes:
        raise BoundedParseError(
            f"more than {max_nodes:,} values in a {what}", None, f"keep the {what} small"
        )
    return value


def count_values(value: Any) -> int:
    """How many values (containers and scalars) a parsed document holds, without recursion."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        n += 1
        if isinstance(v, dict):
            stack += v.values()
        elif isinstance(v, list):
            stack += v
    return n
