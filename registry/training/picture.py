"""The structure drawn as an SVG: a box per layer with its output shape and parameter count.

The layout and drawing are the graph picture's (`registry.formats.svg`), so a structure in a pull
request looks like a model's graph in the bot's report.
"""

from __future__ import annotations

from registry.training.structure import LayerShape


def _dims(shape) -> str:
    if shape is None:
        return "?"
    return "×".join(str(d) for d in shape[1:]) or "scalar"


def render_structure(name: str, rows: list[LayerShape]) -> str:
    """An SVG of a structure: inputs, one box per layer (name, type, and when traced its output
    shape and parameters), arrows along the connections (skip connections included)."""
    from registry.formats.svg import Box, draw

    boxes: dict[str, Box] = {}
    order: list[Box] = []
    for row in rows:
        for src in row.inputs:
            if src not in boxes:  # a structure input
                b = Box(f"in:{src}", "io", src, "input", f"input {src}")
                boxes[src] = b
                order.append(b)
        params = "?" if row.parameters is None else f"{row.parameters:,}"
        title = (
            f"{row.name} ({row.type}): output "
            f"{['N', *(row.output_shape or [])[1:]] if row.output_shape else '?'}"
            f", {params} parameters"
        )
        label = f"{row.name}: {row.type}" if row.name.lower() != row.type.lower() else row.type
        traced = row.output_shape is not None or row.parameters is not None
        b = Box(
            f"l:{row.name}",
            "op",
            label,
            f"{_dims(row.output_shape)} · {params} params" if traced else "",
            title if traced else f"{row.name} ({row.type})",
            ops=1,
        )
        b.preds = [boxes[s] for s in row.inputs if s in boxes]
        boxes[row.name] = b
        order.append(b)
    for b in order:
        b.layer = 1 + max((p.layer for p in b.preds), default=-1)
    if all(r.parameters is None for r in rows):  # drawn from the file alone, not built
        return draw(order, name)
    total = sum(r.parameters or 0 for r in rows)
    return draw(order, f"{name} ({total:,} parameters)")
