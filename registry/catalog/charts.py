"""Metric charts drawn at build time: one small inline SVG per (metric, dataset) across versions.

The SVG is plain markup (no script, no style attribute): colours come from the site's CSS classes,
so the chart follows the light or dark theme, and each point carries a `<title>` with its version
and value, which browsers show on hover and screen readers read.
"""

from __future__ import annotations

import math

from markupsafe import Markup
from pydantic import BaseModel

from registry.catalog.markdown import escape
from registry.catalog.records import CatalogVersion

WIDTH, HEIGHT = 360, 150
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 30


class MetricSeries(BaseModel):
    """One metric on one dataset across versions, oldest first."""

    name: str
    dataset: str
    unit: str | None = None
    higher_is_better: bool | None = None
    points: list[tuple[str, float]]


def metric_series(versions: list[CatalogVersion]) -> list[MetricSeries]:
    """Every (metric, dataset) of the versions (given newest first), in first-seen order."""
    series: dict[tuple[str, str], MetricSeries] = {}
    for v in reversed(versions):
        for m in v.metrics:
            if not math.isfinite(m.value):
                continue
            key = (m.name, m.dataset)
            if key not in series:
                series[key] = MetricSeries(
                    name=m.name,
                    dataset=m.dataset,
                    unit=m.unit,
                    higher_is_better=m.higher_is_better,
                    points=[],
                )
            series[key].points.append((v.version, m.value))
    return list(series.values())


def _num(v: float) -> str:
    return f"{v:.4g}"


def render_chart(s: MetricSeries) -> Markup:
    """The SVG chart of one series (a single point is drawn as a dot)."""
    values = [v for _, v in s.points]
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(s.points)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        y = TOP + plot_h * (1 - (v - lo) / (hi - lo))
        return x, y

    label = f"{s.name} on {s.dataset}"
    desc = ", ".join(f"v{ver}: {_num(v)}" for ver, v in s.points)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title><desc>{escape(desc)}</desc>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" '
        f'text-anchor="end">{escape(_num(hi))}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" '
        f'text-anchor="end">{escape(_num(lo))}</text>',
    ]
    coords = [(f"{x:.1f}", f"{y:.1f}") for x, y in (xy(i, v) for i, (_, v) in enumerate(s.points))]
    if n > 1:
        path = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(f'<polyline class="line" points="{path}"/>')
    unit = escape(" " + s.unit) if s.unit else ""
    for (ver, v), (x, y) in zip(s.points, coords):  # numbers need no escaping
        parts.append(
            f'<circle class="point" cx="{x}" cy="{y}" r="3.5">'
            f"<title>v{escape(ver)}: {_num(v)}{unit}</title></circle>"
        )
    first, last = s.points[0][0], s.points[-1][0]
    parts.append(
        f'<text class="tick" x="{coords[0][0]}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"v{escape(first)}</text>"
    )
    if n > 1:
        parts.append(
            f'<text class="tick" x="{coords[-1][0]}" y="{HEIGHT - 8}" text-anchor="end">'
            f"v{escape(last)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
