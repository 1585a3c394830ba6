"""The versions part of a model page, built as a string.

A model page lists every version and gives each its section (date, state, release notes, metrics,
commands, packages). Ten versions of ten thousand models make a hundred thousand such sections,
where a template loop spends most of a full build's rendering time; this module writes the same
HTML with plain string formatting. Everything from a card or a tag is escaped here (`escape`) or
rendered by the safe Markdown renderer, as the template does.
"""

from __future__ import annotations

from markupsafe import Markup

from registry.catalog.markdown import escape, render_markdown
from registry.catalog.records import CatalogMetric, CatalogModel


def day(d) -> str:
    """A date as YYYY-MM-DD ('–' when there is none): the `day` filter of the templates."""
    if not d:
        return "–"
    return d[:10] if isinstance(d, str) else d.isoformat()[:10]


def metric_text(x: CatalogMetric) -> str:
    """One metric as text (`metric` filter): name, value, unit and dataset."""
    return f"{x.name} {x.value:.4g}{' ' + x.unit if x.unit else ''} on {x.dataset}"


def _command(cmd: str) -> str:
    return f'<div class="command"><pre><code>{escape(cmd)}</code></pre></div>'


def versions_html(m: CatalogModel) -> Markup:
    """The list of a model's versions and a section per version, newest first."""
    items = []
    sections = []
    for i, v in enumerate(m.versions):
        ver, state, date = escape(v.version), escape(v.state), day(v.date)
        items.append(
            f'<li><a class="version-link" href="#v{ver}">{ver}</a> <span class="muted">{date}'
            f'</span> <span class="badge state-{state}">{state}</span></li>\n'
        )
        notes = render_markdown(v.notes, 3) if v.notes else "No release notes."
        withdrawn = (
            f'<p class="warning" role="note">Withdrawn ({escape(v.withdrawn_by)}).</p>'
            if v.withdrawn_by
            else ""
        )
        metrics = (
            f'<p class="muted">Metrics: {escape("; ".join(map(metric_text, v.metrics)))}</p>'
            if v.metrics
            else ""
        )
        sections.append(
            f'<section class="version" id="v{ver}" aria-labelledby="h-v{ver}">\n'
            f'<h3 id="h-v{ver}"><a href="#v{ver}">{ver}</a> <span class="muted">{date}</span> '
            f'<span class="badge state-{state}">{state}</span></h3>\n'
            f"{withdrawn}<details{' open' if i == 0 else ''}>\n"
            f"<summary>Release notes, commands{', packages' if v.packages else ''}</summary>\n"
            f'<div class="notes">{notes}</div>\n'
            f"{metrics}{''.join(map(_command, v.commands))}"
            f"{''.join(_command(p.pull) for p in v.packages)}</details>\n"
            "</section>\n"
        )
    return Markup('<ol class="version-list">\n' + "".join(items) + "</ol>\n" + "".join(sections))
