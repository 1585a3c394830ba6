"""An instance's loss and metric curves as PNG pictures, drawn with Pillow.

`plot_curves` draws one picture per column of a run's history (`loss`, `train_<metric>`,
`validation_<metric>`): the values over the epochs, with a title, axis labels, ticks and a grid.
Pillow draws a picture in a few milliseconds; matplotlib took about 0.2 s a picture, as long as a
small model's whole training. Pictures are drawn at twice their size and scaled down, which
smooths the lines. They are saved with zlib's fastest level: a few kilobytes more than its default
(9 KB instead of 7 KB a picture), a third less time.
"""

from __future__ import annotations

import math
from pathlib import Path

WIDTH, HEIGHT = 450, 288  # pixels of a picture
SCALE = 2  # drawn this much larger, then scaled down (anti-aliasing)
LINE = (31, 119, 180)
GRID = (225, 225, 225)
MARKERS = 60  # a dot on each epoch's value up to this many epochs


def plot_curves(history: list[dict], folder: Path) -> list[Path]:
    """Write `folder/<column>.png` for every column of `history` but `epoch`; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    keys = [k for k in (history[0] if history else {}) if k != "epoch"]
    for key in keys:
        points = [
            (r["epoch"], r[key])
            for r in history
            if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
        ]
        title = "training loss" if key == "loss" else key.replace("_", " ")
        path = folder / f"{key}.png"
        _chart(points, title, key.replace("_", " ")).save(path, compress_level=1)
        written.append(path)
    return written


def _chart(points: list[tuple[float, float]], title: str, ylabel: str):
    """The picture of one curve: values against epochs."""
    from PIL import Image, ImageDraw

    s = SCALE
    img = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(img)
    font, title_font = _font(11 * s), _font(13 * s)
    left, right, top, bottom = 70 * s, (WIDTH - 14) * s, 30 * s, (HEIGHT - 44) * s
    xs = [p[0] for p in points] or [1]
    ys = [p[1] for p in points] or [0.0]
    x0, x1 = _padded(min(xs), max(xs), 0.5)
    y0, y1 = _padded(min(ys), max(ys), 0.05 * (abs(min(ys)) or 1.0))

    def px(v):
        return left + (v - x0) / (x1 - x0) * (right - left)

    def py(v):
        return bottom - (v - y0) / (y1 - y0) * (bottom - top)

    xticks, _ = _ticks(x0, x1, 6, integer=True)
    yticks, ystep = _ticks(y0, y1, 5)
    for t in xticks:
        draw.line([(px(t), top), (px(t), bottom)], fill=GRID, width=s)
        draw.line([(px(t), bottom), (px(t), bottom + 4 * s)], fill="black", width=s)
        draw.text((px(t), bottom + 6 * s), f"{t:g}", fill="black", font=font, anchor="mt")
    for t in yticks:
        draw.line([(left, py(t)), (right, py(t))], fill=GRID, width=s)
        draw.line([(left - 4 * s, py(t)), (left, py(t))], fill="black", width=s)
        draw.text((left - 6 * s, py(t)), _label(t, ystep), fill="black", font=font, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline="black", width=s)
    dots = [(px(x), py(y)) for x, y in points]
    if len(dots) > 1:
        draw.line(dots, fill=LINE, width=2 * s, joint="curve")
    for x, y in dots if len(dots) <= MARKERS else []:
        draw.ellipse([x - 3 * s, y - 3 * s, x + 3 * s, y + 3 * s], fill=LINE)
    draw.text(((left + right) / 2, top - 8 * s), title, fill="black", font=title_font, anchor="md")
    draw.text(((left + right) / 2, (HEIGHT - 6) * s), "epoch", fill="black", font=font, anchor="md")
    label = Image.new("L", (bottom - top, 20 * s), 0)
    ImageDraw.Draw(label).text(
        ((bottom - top) / 2, 10 * s), ylabel, fill=255, font=font, anchor="mm"
    )
    img.paste((0, 0, 0), (6 * s, top), label.rotate(90, expand=True))
    return img.resize((WIDTH, HEIGHT), Image.Resampling.BOX)


def _font(size: int):
    """Pillow's own font (Aileron) at `size` pixels."""
    from PIL import ImageFont

    return ImageFont.load_default(size)


def _padded(lo: float, hi: float, pad: float) -> tuple[float, float]:
    """The range with 5 % room on both sides (`pad` when the values are all equal)."""
    room = (hi - lo) * 0.05 or pad
    return lo - room, hi + room


def _ticks(lo: float, hi: float, most: int, integer: bool = False) -> tuple[list[float], float]:
    """Round tick values inside [lo, hi], about `most` of them, and their step (1, 2, 2.5 or 5
    times a power of ten; at least 1 for `integer`)."""
    raw = (hi - lo) / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, round(step))
    first = math.ceil(lo / step) * step
    count = int((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 12) for i in range(count)], step


def _label(value: float, step: float) -> str:
    """A tick's text with as many decimals as the step needs."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or step < 1e-6:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step * 10**decimals, 6) % 1:  # 2.5, 0.25…
        decimals += 1
    return f"{value:.{decimals}f}"
