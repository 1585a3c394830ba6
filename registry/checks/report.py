"""Rendering a `CheckReport` for people and machines: text, JSON and Markdown.

Every human-readable form is a Jinja template in `registry/templates/` rendered from the typed
report; this module only prepares what the templates need (colours, links, pictures, fences). A
text report over many models is built directly, to the same bytes as its template.
GitHub's own formats (annotations, outputs) live in `registry.checks.github`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.files import write_atomic

if TYPE_CHECKING:  # the report types import pydantic models only; keep start-up light
    import jinja2

    from registry.checks import CheckReport

COMMENT_MARKER = "<!-- registry-check -->"
Link = Callable[[str, "int | None"], "str | None"]

_COLOURS = {"PASS": "green", "FAIL": "red", "error": "red", "warning": "yellow", "notice": "cyan"}


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("registry", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["md"] = markdown_text
    env.filters["fence"] = fence
    env.filters["oneline"] = one_line
    env.filters["indent_lines"] = _indent_lines
    return env


def _indent_lines(text: object, n: int = 4) -> str:
    return "\n".join(
        (" " * n + ln) if ln.strip() else "" for ln in str(text).rstrip("\n").splitlines()
    )


def markdown_text(text: object) -> str:
    """Untrusted text (card values quoted in messages) made inert in Markdown: no HTML, links or
    tables."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = re.sub(r"([\\`*_\[\]|#~])", r"\\\1", s)
    return s.replace("\r", " ").replace("\n", " ")


def one_line(text: object) -> str:
    """Text on one line: control characters (newlines included) shown as escapes, as in Python."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def fence(text: object, info: str = "text") -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    body = str(text).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{body}\n{ticks}"


def render_text(report: CheckReport, color: bool = False) -> str:
    """The report for people in a terminal: models grouped, PASS/FAIL, `path:line: message` + fix.

    Args:
        color: add ANSI colours (the CLI turns this on only for a terminal).
    """
    import click

    def style(text: str, key: str | None = None) -> str:
        colour = _COLOURS.get(key or text)
        return (
            click.style(text, fg=colour, bold=key in (None, "PASS", "FAIL"))
            if color and colour
            else text
        )

    if len(report.models) >= _PLAIN_FROM:
        return _plain_text(report, style)
    return _environment().get_template("check_report.txt.j2").render(report=report, style=style)


# From this many models the text report is built without the template (the same text, byte for
# byte, several times faster: a run over the whole registry reports on 100,000s).
_PLAIN_FROM = 200


def _plain_text(report: CheckReport, style: Callable[..., str]) -> str:
    """What `check_report.txt.j2` renders for `report`, built directly."""
    out: list[str] = []
    add = out.append
    passed, failed = style("PASS"), style("FAIL")
    severities: dict = {}
    for model in report.models:
        # one_line only where a character needs escaping: most text is printable as it is
        name = model.name if model.name.isprintable() else one_line(model.name)
        add(f"{passed if model.passed else failed} {name}\n")
        for f in model.findings:
            shown = severities.get(f.severity)
            if shown is None:
                shown = severities[f.severity] = style(f.severity.value)
            path, message, hint = f.path, f.message, f.hint
            where = ""
            if path:
                path = path if path.isprintable() else one_line(path)
                where = f"{path}:{f.line}: " if f.line else f"{path}: "
            message = message if message.isprintable() else one_line(message)
            add(f"  {shown}: {where}{message} [{f.check}]\n")
            if hint:
                add(f"    fix: {hint if hint.isprintable() else one_line(hint)}\n")
        artifacts = model.artifacts
        if artifacts:
            for key, title in (
                ("graph_text", "graph"),
                ("release_notes_draft", "release notes draft"),
            ):
                if artifacts.get(key):
                    add(f"  {title}:\n{_indent_lines(artifacts.get(key))}\n")
    if not report.models:
        add("no models to check\n")
    c = report.counts
    add(
        f"{c['models']} model{'' if c['models'] == 1 else 's'} checked: "
        f"{c['models'] - c['failed']} passed, {c['failed']} failed; "
        f"{c['error']} error{'' if c['error'] == 1 else 's'}, "
        f"{c['warning']} warning{'' if c['warning'] == 1 else 's'}\n"
    )
    return "".join(out)


def render_json(report: CheckReport) -> str:
    """The report as JSON (the stable form documented in docs/checks.md)."""
    return report.model_dump_json(indent=2) + "\n"


def render_markdown(
    report: CheckReport,
    *,
    comment: bool = False,
    link: Link | None = None,
    pictures: dict[str, str] | None = None,
    artifacts_url: str | None = None,
) -> str:
    """The report as Markdown: a step summary, or (with `comment`) a pull-request comment body.

    Args:
        comment: start with the hidden marker `<!-- registry-check -->`, by which a workflow finds
            and updates its one comment on re-runs.
        link: maps (path, line) to a URL of that line, when the report is shown on a forge.
        pictures: {model: file name} of graph pictures uploaded as run artifacts.
        artifacts_url: where the run's artifacts can be downloaded.
    """
    return (
        _environment()
        .get_template("check_report.md.j2")
        .render(
            report=report,
            comment=comment,
            marker=COMMENT_MARKER,
            link=link or (lambda p, n: None),
            pictures=pictures or {},
            artifacts_url=artifacts_url,
        )
    )


def write_pictures(report: CheckReport, directory: Path) -> dict[str, str]:
    """Write each model's graph picture (`artifacts["graph_svg"]`) as `<model>.svg` in `directory`.

    Returns:
        {model name: file name} for the pictures written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for model in report.models:
        svg = model.artifacts.get("graph_svg")
        if not svg:
            continue
        name = f"{model.name}.svg"
        write_atomic(directory / name, svg if isinstance(svg, bytes) else str(svg).encode("utf-8"))
        written[model.name] = name
    return written
