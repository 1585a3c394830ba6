"""Cards in their common plain shape, read without the YAML parser: the same data, sooner.

A full catalog build reads the current card of every model. PyYAML, even with libyaml, spends
about 0.3 ms on a card, most of it building Python objects node by node; this reader spends about
a third of that on the shape `registry new` writes and people keep: `key: value` lines, one level
of nested mapping (`source:`) or list (`tags:`, or of one-level mappings, `metrics:`), plain and
simply quoted scalars, flow lists (`tags: [a, b]`) and comments. Plain scalars are typed by
PyYAML's own resolver table (a copy: this module does not import PyYAML), so `1.0` is a float,
`yes` a bool and `1.2.0` a string exactly as the parser has them. Anything else (block scalars,
multi-line or escaped scalars, anchors, flow mappings, tabs, other number forms, dates, a key
given twice) makes `read_plain` return None, and the caller uses the parser.

`read_plain_lines` also gives the line of every key path, as `registry.cards.schema` records them
for findings, and leaves a card that repeats a key to the parser (which refuses it): the bot reads
every card this way when it can. `registry.cards.config` reads config files in this shape the same
way.

`read_metrics` reads only a card's `metrics:` block by the same rules: the catalog reads the
metrics of every version's card, and nothing else of them.
"""

from __future__ import annotations

import re

# PyYAML's implicit typing of plain scalars (yaml/resolver.py, YAML 1.1): (tag, pattern, flags,
# first characters), in its order. Copied, so that reading a plain card does not import PyYAML
# (about 35 ms); tests/catalog/test_plaincard.py checks the copy against PyYAML's own table.
_YAML = "tag:yaml.org,2002:"
_RESOLVERS = [
    (
        _YAML + "bool",
        r"""^(?:yes|Yes|YES|no|No|NO
                    |true|True|TRUE|false|False|FALSE
                    |on|On|ON|off|Off|OFF)$""",
        re.X,
        "yYnNtTfFoO",
    ),
    (
        _YAML + "float",
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""",
        re.X,
        "-+0123456789.",
    ),
    (
        _YAML + "int",
        r"""^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+
                    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
        re.X,
        "-+0123456789",
    ),
    (_YAML + "merge", r"^(?:<<)$", 0, "<"),
    (
        _YAML + "null",
        r"""^(?: ~
                    |null|Null|NULL
                    | )$""",
        re.X,
        ["~", "n", "N", ""],
    ),
    (
        _YAML + "timestamp",
        r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
                     (?:[Tt]|[ \t]+)[0-9][0-9]?
                     :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
                     (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        re.X,
        "0123456789",
    ),
    (_YAML + "value", r"^(?:=)$", 0, "="),
    (_YAML + "yaml", r"^(?:!|&|\*)$", 0, "!&*"),
]
# first character -> [(tag, compiled pattern)], as `yaml.resolver.Resolver.yaml_implicit_resolvers`
_IMPLICIT: dict[str | None, list[tuple[str, re.Pattern]]] = {}
for _tag_name, _pattern, _flags, _firsts in _RESOLVERS:
    _compiled = re.compile(_pattern, _flags)
    for _first in _firsts:
        _IMPLICIT.setdefault(_first, []).append((_tag_name, _compiled))
del _tag_name, _pattern, _flags, _firsts, _compiled, _first
# the characters PyYAML's reader refuses (`yaml.reader.Reader.NON_PRINTABLE`)
_NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
_STR = "tag:yaml.org,2002:str"
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*))?")
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]+")
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_INDICATORS = set("?:,[]{}#&*!|>'\"%@`")  # a plain scalar cannot start with one of these
_FLOW = set(",[]{}")  # nor contain one of these inside a flow list
# first characters of plain scalars that PyYAML's resolvers never type (no entry in `_IMPLICIT`)
_STRING_FIRST = frozenset("ABCDEGHIJKLMPQRSUVWXZabcdeghijklmpqrsuvwxz_/")
# what YAML reads differently from a plain line-per-value file: other line breaks, a BOM, tabs,
# and the characters it refuses (PyYAML's reader)
_METRICS_KEY = re.compile(r"^metrics[ \t]*:", re.MULTILINE)
_METRICS_BLOCK = re.compile(r"^metrics:[ \t]*\n((?:(?:[ \t]+|- ).*\n?|[ \t]*\n)*)", re.MULTILINE)
_METRIC_LINE = re.compile(r"( *)(- +)?([a-z_]+): (.+)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_UNPLAIN_CHARS = "[\t\r\x85\u2028\u2029\ufeff]|" + _NON_PRINTABLE
# the same characters as one class (what PyYAML prints, less tabs, other line breaks and a BOM):
# a quarter of the time of the alternation on every card; the tests compare the two
_UNPLAIN = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


class _NotPlain(Exception):
    """The text is not in the plain shape: the YAML parser must read it."""


def read_plain(data: bytes | str) -> dict | None:
    """What `yaml.safe_load` makes of a card (or any YAML text) in the plain shape, or None when
    it is not in it."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return _read(data, None)


def read_plain_lines(text: str) -> tuple[dict, dict[tuple, int]] | None:
    """A card's text in the plain shape as `registry.cards.schema.parse_card_yaml` reads it: the
    data `yaml.safe_load` makes of it and the 1-based line of every key path (each key's own line,
    each list item's line, `()` the first field's), or None when the text is not in the plain
    shape or repeats a key (the parser then reads it, and refuses what it must)."""
    lines: dict[tuple, int] = {}
    doc = _read(text, lines)
    return None if doc is None else (doc, lines)


def _read(text: str, where: dict[tuple, int] | None) -> dict | None:
    """The plain-shape reading of `text`; with `where`, the line of each key path goes there."""
    if _UNPLAIN.search(text):
        return None
    lines: list[tuple[int, str, int]] = []  # (indent, content, line number) of each data line
    for number, line in enumerate(text.split("\n"), 1):
        if "#" in line:
            if line.lstrip(" ").startswith("#"):
                continue
            cut = line.find(" #")
            if cut >= 0:
                if "'" in line or '"' in line:  # the # may be inside quotes
                    return None
                line = line[:cut]
        stripped = line.lstrip(" ")
        if stripped:
            lines.append((len(line) - len(stripped), stripped.rstrip(" "), number))
    try:
        doc = _mapping(lines, 0, (), where)
    except _NotPlain:
        return None
    if doc and where is not None:
        where[()] = lines[0][2]
    return doc or None


def read_metrics(text: str) -> list[dict] | None:
    """The `metrics:` list of a card as `yaml.safe_load` has it, when the block is a list of
    metrics (name, dataset, value, unit, higher_is_better) in the plain shape, one item after the
    other; [] when the card has no metrics; None when they are written another way."""
    if not _METRICS_KEY.search(text):
        return []
    block = _METRICS_BLOCK.search(text)
    if block is None or text.startswith("#", block.end()):  # a comment line: the list may go on
        return None
    items: list[dict] = []
    indent = here = -1
    for line in block.group(1).splitlines():
        m = _METRIC_LINE.fullmatch(line)
        if m is None:
            if line.strip():
                return None
            continue
        spaces, dash, key, raw = m.groups()
        raw = raw.strip()
        if dash:
            if indent >= 0 and len(spaces) != indent:
                return None
            indent, here = len(spaces), len(spaces) + len(dash)
            items.append({})
        elif not items or len(spaces) != here:
            return None
        item = items[-1]
        if key in item:
            return None
        if key == "value":
            if not _NUMBER.fullmatch(raw):
                return None
            item[key] = float(raw) if "." in raw else float(int(raw))
        elif key == "higher_is_better":
            if raw not in ("true", "false"):
                return None
            item[key] = raw == "true"
        elif key in ("name", "dataset", "unit") and "#" not in raw:
            try:
                item[key] = _scalar(raw, flow=False)
            except _NotPlain:
                return None
            if not isinstance(item[key], str):
                return None
        else:
            return None
    return items


def _mapping(
    lines: list[tuple[int, str, int]], indent: int, loc: tuple, where: dict | None
) -> dict:
    doc: dict = {}
    i, count = 0, len(lines)
    while i < count:
        at, content, number = lines[i]
        m = _KEY.fullmatch(content)
        if at != indent or m is None or m[1] in doc or not _plain_key(m[1]):
            raise _NotPlain  # a repeated key too: the parser refuses it, naming the line
        i += 1
        start = i
        while i < count and lines[i][0] > indent:
            i += 1
        children = lines[start:i]
        if where is not None:
            where[loc + (m[1],)] = number
        if m[2] is not None:
            if children:  # a scalar continued on the next lines
                raise _NotPlain
            doc[m[1]] = _value(m[2], loc + (m[1],), number, where)
        elif not children:
            doc[m[1]] = None
        elif indent:  # a third level
            raise _NotPlain
        elif children[0][1].startswith("- "):
            doc[m[1]] = _sequence(children, loc + (m[1],), where)
        else:
            doc[m[1]] = _mapping(children, children[0][0], loc + (m[1],), where)
    return doc


def _sequence(lines: list[tuple[int, str, int]], loc: tuple, where: dict | None) -> list:
    items: list = []
    indent, inner = lines[0][0], -1  # inner: the indent of an item mapping's further keys
    for at, content, number in lines:
        if at == indent and content.startswith("- "):
            rest = content[2:].lstrip(" ")
            if where is not None:
                where[loc + (len(items),)] = number
            m = _KEY.fullmatch(rest)
            if m is None:
                items.append(_value(rest, loc + (len(items),), number, where))
                inner = -1
                continue
            items.append({})
            inner = at + len(content) - len(rest)
        elif at == inner:
            m = _KEY.fullmatch(content)
            if m is None:
                raise _NotPlain
        else:
            raise _NotPlain
        if m[1] in items[-1] or not _plain_key(m[1]):
            raise _NotPlain
        if where is not None:
            where[loc + (len(items) - 1, m[1])] = number
        items[-1][m[1]] = (
            None if m[2] is None else _value(m[2], loc + (len(items) - 1, m[1]), number, where)
        )
    return items


def _value(raw: str, loc: tuple, number: int, where: dict | None):
    if raw[0] == "[":
        if raw[-1] != "]":
            raise _NotPlain
        inner = raw[1:-1].strip(" ")
        items = [_scalar(item.strip(" "), flow=True) for item in inner.split(",")] if inner else []
        if where is not None:
            for i in range(len(items)):
                where[loc + (i,)] = number
        return items
    return _scalar(raw, flow=False)


def _scalar(raw: str, flow: bool):
    if not raw:
        raise _NotPlain
    first = raw[0]
    if first in _STRING_FIRST:  # the common case, in short: no resolver reads these as non-strings
        if ": " in raw or raw[-1] == ":" or (flow and not _FLOW.isdisjoint(raw)):
            raise _NotPlain
        return raw
    if first in "\"'":
        if len(raw) < 2 or raw[-1] != first or first in raw[1:-1] or "\\" in raw:
            raise _NotPlain
        return raw[1:-1]
    if (
        first in _INDICATORS
        or (first == "-" and (len(raw) == 1 or raw[1] == " "))
        or ": " in raw
        or raw[-1] == ":"
        or (flow and not _FLOW.isdisjoint(raw))
    ):
        raise _NotPlain
    tag = _tag(raw)
    if tag == _STR:
        return raw
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return _BOOLS[raw.lower()]
    if tag.endswith(":int") and _INT.fullmatch(raw):
        return int(raw)
    if tag.endswith(":float") and _FLOAT.fullmatch(raw):
        return float(raw)
    raise _NotPlain


# key -> whether PyYAML reads it as a string (keys repeat from card to card: each is typed once)
_STRING_KEYS: dict[str, bool] = {}


def _plain_key(key: str) -> bool:
    """Whether a key (as `_KEY` matches them) is a string to PyYAML, not a bool or null."""
    known = _STRING_KEYS.get(key)
    if known is None:
        known = _tag(key) == _STR
        if len(_STRING_KEYS) < 4096:  # hostile cards with many keys do not grow it further
            _STRING_KEYS[key] = known
    return known


def _tag(value: str) -> str:
    """The tag PyYAML gives a (non-empty) plain scalar: what `Resolver.resolve` does."""
    for tag, pattern in _IMPLICIT.get(value[0], ()):
        if pattern.match(value):
            return tag
    for tag, pattern in _IMPLICIT.get(None, ()):
        if pattern.match(value):
            return tag
    return _STR
