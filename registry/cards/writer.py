"""Writing model cards: the one writer of `model.yaml`, for new cards and for edits.

`render_card` writes a new card from a `ModelCard` (or its fields as a dict) in the documented
field order (`ModelCard`'s, which docs/model-card.md's table follows), with the comments people
and editors read: the `$schema` line for the YAML language server, what the file is, and a note
on a few fields. `edit_card_text` changes fields of an existing card and keeps the author's
comments, key order and indentation; `update_card_text` edits an existing card into a given
`ModelCard` the same way. Every scalar is written by `yaml_scalar`, so it reads back as the same
value.
"""

from __future__ import annotations

import io
import os
import re
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from registry.cards.schema import ModelCard, load_card, parse_card_yaml
from registry.core.errors import CardError, RegistryError

SCHEMA_FILE = "docs/model-card.schema.json"
HEADER = (
    "The model card: edit it in a pull request; `registry check {name}` validates it.",
    "Fields are described in docs/model-card.md.",
)
# End-of-line comments on a few fields of a new card: what a reader could not guess.
FIELD_NOTES = {
    "size": "bytes, as DVC recorded them",
    "pytorch": "PyTorch source for the native mobile runtimes",
}
EMPTY_METRICS_NOTE = "add {name, value, dataset} entries, e.g. accuracy on your test set"


def yaml_scalar(value: Any) -> str:
    """`value` (text, number, boolean or None) as one line of YAML that reads back as the same
    value: quoted where YAML would read it as something else, escaped in double quotes when it
    holds a line break."""
    if isinstance(value, Enum):
        value = value.value
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True)
    text = text.removesuffix("\n").removesuffix("\n...").strip()
    if "\n" in text:
        text = yaml.safe_dump(value, default_style='"', width=10**9, allow_unicode=True).strip()
    return text


# --------------------------------------------------------------------------- new cards


def schema_reference(folder: str | os.PathLike, root: str | os.PathLike) -> str:
    """The `$schema` value for a card in `folder`: the registry's committed schema, relative to
    the card."""
    return os.path.relpath(Path(root) / SCHEMA_FILE, folder).replace(os.sep, "/")


def card_data(card: ModelCard) -> dict[str, Any]:
    """The fields a card file writes, in the documented order: unset and empty fields left out
    (but `status` and `metrics` always written), nested values without their defaults."""
    data: dict[str, Any] = {}
    for key in ModelCard.model_fields:
        value = getattr(card, key)
        if value is None or (value == [] and key != "metrics"):
            continue
        data[key] = _plain(value)
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def render_card(
    card: ModelCard | dict[str, Any], *, schema: str | None = None, note: str | None = None
) -> str:
    """The text of a new `model.yaml`.

    Args:
        card: the card, or its fields (validated into a `ModelCard` first).
        schema: the `$schema` reference editors validate against (relative to the card's folder).
        note: one more comment line, on who wrote the card.
    Raises:
        CardError: `card` is a dict that is not a valid card.
        RegistryError: the text would not read back as the card (a bug of this writer).
    """
    if not isinstance(card, ModelCard):
        try:
            card = ModelCard.model_validate(card)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "card"
            raise CardError(
                f"cannot write the card: '{where}': {err['msg']}",
                "correct that field and run the command again",
            ) from None
    comments = [f"yaml-language-server: $schema={schema}"] if schema else []
    comments += [note] if note else []
    lines = [f"# {c}" for c in [*comments, *(h.format(name=card.name) for h in HEADER)]]
    for key, value in card_data(card).items():
        if key == "metrics" and not value:
            lines.append(f"metrics: []  # {EMPTY_METRICS_NOTE}")
            continue
        start = len(lines)
        _emit(key, value, 0, lines)
        if key in FIELD_NOTES and not (key == "size" and isinstance(value, str)):
            lines[start] += f"  # {FIELD_NOTES[key]}"
    text = "\n".join(lines) + "\n"
    written = load_card(text).card
    if written is None or written.model_dump_json() != card.model_dump_json():  # NaN != NaN
        raise RegistryError(
            f"the card writer wrote a card for '{card.name}' that reads back differently",
            "report this to the registry's maintainers",
        )
    return text


def _emit(key: Any, value: Any, indent: int, lines: list[str]) -> None:
    """`key: value` at `indent`, nested values in block style, two spaces per level."""
    head = " " * indent + yaml_scalar(str(key)) + ":"
    if isinstance(value, (dict, list)) and value:
        lines.append(head)
        if isinstance(value, dict):
            for k, v in value.items():
                _emit(k, v, indent + 2, lines)
        else:
            for item in value:
                _item(item, indent + 2, lines)
    else:
        lines.append(f"{head} {_flow(value)}")


def _item(item: Any, indent: int, lines: list[str]) -> None:
    """One list item: `- scalar`, or `- key: value` with the item's other keys aligned under it."""
    pad = " " * indent
    if isinstance(item, dict) and item:
        for i, (k, v) in enumerate(item.items()):
            start = len(lines)
            _emit(k, v, indent + 2, lines)
            if i == 0:
                lines[start] = pad + "- " + lines[start][indent + 2 :]
    elif isinstance(item, list) and item:
        lines.append(pad + "-")
        for sub in item:
            _item(sub, indent + 2, lines)
    else:
        lines.append(f"{pad}- {_flow(item)}")


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return yaml_scalar(value)


# --------------------------------------------------------------------------- edits


def _round_trip(text: str):
    """A ruamel round-trip YAML for `text`, writing with the indentation its author used most."""
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    mapping, offset = _layout(text)
    y.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return y


def _layout(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) most used by the author, so a rewrite keeps the
    layout; the writer's own (2, 2) where the text does not show one."""
    lines = text.splitlines()
    mappings, offsets = Counter(), Counter()
    for i, line in enumerate(lines[:-1]):
        m = re.match(r"^( *)(?:- )?[^\s#-][^:]*:\s*(#.*)?$", line)
        if not m:
            continue
        nxt = next((x for x in lines[i + 1 :] if x.strip() and not x.strip().startswith("#")), "")
        indent = len(nxt) - len(nxt.lstrip(" "))
        if indent <= len(m[1]):
            continue
        (offsets if nxt.lstrip().startswith("- ") else mappings)[indent - len(m[1])] += 1
    mapping = mappings.most_common(1)[0][0] if mappings else 2
    offset = offsets.most_common(1)[0][0] if offsets else 2
    return mapping, offset


def _edit_line(lines: list[str], line_of: dict, path: tuple, value: object) -> bool:
    """Replace one scalar in place (`key: old  # comment` → `key: new  # comment`); False if it
    can't."""
    line_no = line_of.get(path)
    if isinstance(value, (list, dict)) or line_no is None or not isinstance(path[-1], str):
        return False
    line = lines[line_no - 1]
    m = re.match(rf"^(\s*(?:- )?{re.escape(path[-1])}:[ \t]*)([^#\n]*?)([ \t]+#.*)?$", line)
    block_or_flow = ("|", ">", "[", "{", "&", "*", "!")
    if not m or not m[2] or m[2].endswith(":") or m[2].startswith(block_or_flow):
        return False
    lines[line_no - 1] = m[1] + yaml_scalar(value) + (m[3] or "")
    return True


def edit_card_text(
    text: str, updates: dict[tuple, object], removals: tuple[tuple, ...] = ()
) -> str:
    """Apply key-path updates to card YAML, keeping comments, order and indentation.

    Single-line scalars are replaced in place (the rest of the file is untouched byte for byte);
    anything else (a new nested key, a list value) goes through a round-trip YAML editor that keeps
    comments and key order and writes with the indentation the author used most.

    Args:
        text: the card as written.
        updates: e.g. {('source', 'commit'): 'abc1234', ('metrics', 0, 'value'): 0.95,
            ('version',): '1.1.0'}. A new top-level `version` is placed right after `name`.
        removals: key paths to delete.
    """
    if not removals:
        try:
            parsed = parse_card_yaml(text)
        except CardError:
            parsed = None
        if parsed is not None:
            lines = text.split("\n")
            pending = dict(updates)
            new_version = "version" not in parsed.data and ("name",) in parsed.lines
            if ("version",) in pending and new_version:
                v = yaml_scalar(pending.pop(("version",)))
                lines.insert(parsed.lines[("name",)], f"version: {v}")
                parsed = parse_card_yaml("\n".join(lines))
            done = [
                p
                for p in list(pending)
                if _path_exists(parsed.data, p) and _edit_line(lines, parsed.lines, p, pending[p])
            ]
            for p in done:
                pending.pop(p)
            if not pending:
                return "\n".join(lines)
            text = "\n".join(lines)
            updates = pending
    y = _round_trip(text)
    data = y.load(text)
    for path, value in updates.items():
        node = data
        for key in path[:-1]:
            node = node[key]
        if path == ("version",) and "version" not in data:
            keys = list(data.keys())
            data.insert(keys.index("name") + 1 if "name" in keys else 0, "version", value)
        else:
            node[path[-1]] = value
    for path in removals:
        node = data
        for key in path[:-1]:
            node = node[key]
        if path[-1] in node:
            del node[path[-1]]
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def _path_exists(data: object, path: tuple) -> bool:
    node = data
    for key in path:
        if (
            isinstance(key, int)
            and isinstance(node, list)
            and key < len(node)
            or isinstance(key, str)
            and isinstance(node, dict)
            and key in node
        ):
            node = node[key]
        else:
            return False
    return not isinstance(node, (list, dict))


def update_card_text(text: str, card: ModelCard) -> str:
    """An existing card's text edited so that it reads as `card`: the fields that differ are
    changed, added or removed (`edit_card_text`), everything else (comments included) is kept.

    Raises:
        CardError: `text` is not a valid card (write a new one with `render_card` instead).
    """
    before = load_card(text).require("the existing card is invalid: ")
    parsed = parse_card_yaml(text).data
    updates: dict[tuple, object] = {}
    removals: list[tuple] = []
    _changes(before, card, parsed, (), updates, removals)
    if not (updates or removals):
        return text
    return edit_card_text(text, updates, tuple(removals))


def _changes(
    before: BaseModel,
    after: BaseModel,
    present: dict,
    path: tuple,
    updates: dict[tuple, object],
    removals: list[tuple],
) -> None:
    """Key paths where `after` differs from `before`, as written in `present` (the parsed text)."""
    written = card_data(after) if isinstance(after, ModelCard) else _plain(after)
    for key in type(after).model_fields:
        old, new = getattr(before, key), getattr(after, key)
        if old == new:
            continue
        here = present.get(key)
        if isinstance(old, BaseModel) and isinstance(new, BaseModel) and isinstance(here, dict):
            _changes(old, new, here, path + (key,), updates, removals)
        elif (
            isinstance(old, list)
            and isinstance(new, list)
            and isinstance(here, list)
            and len(old) == len(new) == len(here)
            and all(isinstance(x, BaseModel) and isinstance(h, dict) for x, h in zip(new, here))
        ):
            for i, (o, n, h) in enumerate(zip(old, new, here)):
                if o != n:
                    _changes(o, n, h, path + (key, i), updates, removals)
        elif key in written:
            updates[path + (key,)] = written[key]
        elif key in present:
            removals.append(path + (key,))
