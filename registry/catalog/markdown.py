"""A small, safe Markdown renderer for card descriptions and release notes.

Card text is untrusted. Every character of it is escaped before any markup is added, and the
markup comes only from this module: paragraphs, headings, bullet and numbered lists, pipe tables,
fenced code blocks, inline code, bold, italics, and links whose address is http, https or mailto
(anything else, `javascript:` included, stays plain text). Raw HTML in the text is shown as text.
"""

from __future__ import annotations

import re

from markupsafe import Markup


def escape(text: str) -> str:
    """`text` with every character that means something in HTML escaped: what markupsafe.escape
    does, without making a Markup object per piece (many per page); `&` first."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


MAX_CHARS = 20_000  # longer text is cut (the page says so)

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s{0,3}\d{1,9}[.)]\s+(.*)$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MARKUP_CHARS = re.compile(r"[`\[*_]")
_HTML_CHARS = re.compile(r"[&<>\"']")
_SAFE_URL = re.compile(r"^(https?://|mailto:)[^\s<>\"'`]+$", re.IGNORECASE)
# inline: code spans first (their content is literal), then links, bold, italics
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"
    r"|\[(?P<link_text>[^\]\n]{1,500})\]\((?P<link_url>[^)\s]{1,2000})\)"
    r"|(?P<bold>\*\*|__)(?P<bold_text>.+?)(?P=bold)"
    r"|(?<![\w*])(?P<em>[*_])(?P<em_text>[^*_\s](?:.*?[^*_\s])?)(?P=em)(?![\w*])"
)


def render_markdown(text: str | None, heading_offset: int = 2) -> Markup:
    """Render untrusted Markdown text as safe HTML.

    Args:
        text: the Markdown (None renders nothing).
        heading_offset: added to each heading's level, so a card's `# Title` sits under the page's
            own headings (levels above 6 become 6).
    """
    if not text:
        return Markup("")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    count = len(lines)
    out: list[str] = []
    para: list[str] = []
    i = 0
    while i < count:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            if para:
                out.append("<p>" + "\n".join([_inline(x.strip()) for x in para]) + "</p>")
                para.clear()
            i += 1
            continue
        first = stripped[0]  # each block starts with its own character: try only its pattern
        block = None
        if first in "`~" and (fence := _FENCE.match(line)):
            marker, body = fence.group(1), []
            i += 1
            while i < count and not lines[i].strip().startswith(marker):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end of the text)
            block = "<pre><code>" + escape("\n".join(body)) + "</code></pre>"
        elif first == "#" and (heading := _HEADING.match(line)):
            level = min(6, len(heading.group(1)) + heading_offset)
            block = f"<h{level}>{_inline(heading.group(2))}</h{level}>"
            i += 1
        elif (
            "|" in stripped
            and i + 1 < count
            and "-" in lines[i + 1]
            and _TABLE_RULE.match(lines[i + 1])
        ):
            block, i = _table(lines, i)
        elif first in "-*+" or first.isdigit():
            for pattern, tag in ((_BULLET, "ul"), (_NUMBERED, "ol")):
                if pattern.match(line):
                    items = []
                    while i < count and (m := pattern.match(lines[i])):
                        item = [m.group(1)]
                        i += 1
                        while (
                            i < count
                            and lines[i].startswith(("  ", "\t"))
                            and lines[i].strip()
                            and not _BULLET.match(lines[i])
                            and not _NUMBERED.match(lines[i])
                        ):
                            item.append(lines[i].strip())
                            i += 1
                        items.append("<li>" + " ".join([_inline(x) for x in item]) + "</li>")
                    block = f"<{tag}>" + "".join(items) + f"</{tag}>"
                    break
        if block is None:
            para.append(line)
            i += 1
            continue
        if para:
            out.append("<p>" + "\n".join([_inline(x.strip()) for x in para]) + "</p>")
            para.clear()
        out.append(block)
    if para:
        out.append("<p>" + "\n".join([_inline(x.strip()) for x in para]) + "</p>")
    return Markup("\n".join(out))


def _cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return [c.strip() for c in s.split("|")]


def _table(lines: list[str], i: int) -> tuple[str, int]:
    """The HTML of the pipe table starting at line `i`, and the line after it."""
    head = _cells(lines[i])
    aligns = []
    for rule in _cells(lines[i + 1]):
        aligns.append(
            "right"
            if rule.endswith(":") and not rule.startswith(":")
            else "center"
            if rule.startswith(":") and rule.endswith(":")
            else ""
        )
    width = max(len(head), 1)  # a row's cells beyond the head's are left out
    classes = ([f' class="{align}"' if align else "" for align in aligns] + [""] * width)[:width]
    html = [
        '<div class="table-wrap"><table><thead><tr>'
        + "".join([f"<th{c}>{_inline(t)}</th>" for c, t in zip(classes, head)])
        + "</tr></thead><tbody>"
    ]
    opens = [f"<td{c}>" for c in classes]
    done = _INLINE_DONE.get  # cells repeat: most are marked up already (`_inline`)
    i += 2
    count = len(lines)
    while i < count and "|" in (line := lines[i]) and (s := line.strip()):
        if s[0] == "|":
            s = s[1:]
        if s[-1:] == "|" and s[-2:] != "\\|":
            s = s[:-1]
        html.append(
            "<tr>"
            + "".join(
                [
                    f"{o}{done(t) or _inline(t)}</td>"
                    for o, t in zip(opens, [c.strip() for c in s.split("|")])
                ]
            )
            + "</tr>"
        )
        i += 1
    html.append("</tbody></table></div>")
    return "".join(html), i


def _inline(text: str) -> str:
    """Escape a line and add inline markup; only this function adds tags."""
    done = _INLINE_DONE.get(text)
    if done is not None:
        return done
    html = _markup(text)
    if len(text) <= 200:
        if len(_INLINE_DONE) >= 20_000:
            _INLINE_DONE.clear()
        _INLINE_DONE[text] = html
    return html


# release notes repeat their short pieces (table heads, cells, "Changes since ..."): each is
# marked up once
_INLINE_DONE: dict[str, str] = {}


def _markup(text: str) -> str:
    if not _MARKUP_CHARS.search(text):
        return escape(text) if _HTML_CHARS.search(text) else text
    pieces: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        pieces.append(escape(text[pos : m.start()]))
        pos = m.end()
        if m.group("code"):
            pieces.append(f"<code>{escape(m.group('code_text').strip())}</code>")
        elif m.group("link_text") is not None:
            url, label = m.group("link_url"), m.group("link_text")
            if _SAFE_URL.match(url):
                pieces.append(
                    f'<a href="{escape(url)}" rel="nofollow noopener '
                    f'noreferrer">{_inline(label)}</a>'
                )
            else:  # not a link we allow: show what was written, as text
                pieces.append(escape(m.group(0)))
        elif m.group("bold"):
            pieces.append(f"<strong>{_inline(m.group('bold_text'))}</strong>")
        else:
            pieces.append(f"<em>{_inline(m.group('em_text'))}</em>")
    pieces.append(escape(text[pos:]))
    return "".join(pieces)


def plain_summary(text: str | None, limit: int = 200) -> str:
    """The first paragraph of Markdown text as plain text, at most `limit` characters."""
    if not text:
        return ""
    first = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    first = re.sub(r"[`*_#>|]", "", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", first))
    first = " ".join(first.split())
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
