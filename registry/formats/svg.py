"""A model's graph drawn as an SVG, with a small layered layout of its own (no graphviz needed).

Owns `render_svg` (an ONNX model's main graph: a box per op, arrows along the data flow, long
chains merged and middle layers left out on big graphs) and the layout and drawing underneath
(`Box`, `draw`), which the training structure's picture (`registry.training.picture`) uses too,
so a structure in a pull request looks like a model's graph in the bot's report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from registry.formats import onnx_wire
from registry.formats.summary import shape_text, tensor_info

if TYPE_CHECKING:  # pragma: no cover
    import onnx

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 40, 24, 36, 20


class Box:
    """One box of a picture: an input or output (`io`), an op, a merged chain (`group`) or the
    layers left out (`gap`), with the boxes that feed it (`preds`); `draw` sets its place."""

    __slots__ = ("key", "kind", "label", "sub", "title", "layer", "x", "y", "preds", "ops")

    def __init__(
        self, key: str, kind: str, label: str, sub: str = "", title: str = "", ops: int = 0
    ):
        self.key, self.kind, self.label, self.sub, self.title, self.ops = (
            key,
            kind,
            label,
            sub,
            title,
            ops,
        )
        self.layer, self.x, self.y = 0, 0.0, 0.0
        self.preds: list[Box] = []


def render_svg(model: onnx.ModelProto, max_boxes: int = 150, max_layers: int = 60) -> str:
    """Draw the model's main graph as an SVG: a box per op (its type), arrows along the data flow.

    Layers run top to bottom (a node sits one layer below its deepest input). Long straight chains
    are merged into one box when the graph has more than `max_boxes` nodes, and when more than
    `max_layers` layers remain the middle ones are replaced by a box saying what was left out.

    Args:
        model: a loaded ONNX model (external data not needed).
    """
    g = model.graph
    inits = {i.name for i in g.initializer}
    boxes: list[Box] = []
    producer: dict[str, Box] = {}
    for v in g.input:
        if v.name not in inits:
            shape = shape_text(tensor_info(onnx_wire.read_value_info(v.SerializeToString())))
            b = Box(f"in:{v.name}", "io", v.name, shape, f"input {v.name}")
            boxes.append(b)
            producer[v.name] = b
    node_boxes: list[Box] = []
    for i, node in enumerate(g.node):
        b = Box(
            f"n:{i}",
            "op",
            node.op_type,
            node.name if node.name != node.op_type else "",
            f"{node.op_type} {node.name}".strip(),
            ops=1,
        )
        b.preds = list(dict.fromkeys(producer[t] for t in node.input if t in producer))
        for t in node.output:
            producer[t] = b
        node_boxes.append(b)
    out_boxes = []
    for v in g.output:
        shape = shape_text(tensor_info(onnx_wire.read_value_info(v.SerializeToString())))
        b = Box(f"out:{v.name}", "io", v.name, shape, f"output {v.name}")
        if v.name in producer:
            b.preds = [producer[v.name]]
        out_boxes.append(b)
    if len(node_boxes) > max_boxes:
        node_boxes = _merge_chains(node_boxes, out_boxes)
    boxes += node_boxes + out_boxes
    for b in boxes:  # ONNX nodes are in topological order, so one pass settles the layers
        b.layer = 1 + max((p.layer for p in b.preds), default=-1)
    last = max((b.layer for b in node_boxes), default=0)
    for b in out_boxes:
        b.layer = last + 1
    boxes = _elide_layers(boxes, max_layers)
    return draw(boxes, g.name or "model")


def _merge_chains(nodes: list[Box], outs: list[Box]) -> list[Box]:
    """Merge runs of nodes where each feeds only the next and the next is fed only by it."""
    consumers: dict[str, list[Box]] = {}
    for b in nodes + outs:
        for p in b.preds:
            consumers.setdefault(p.key, []).append(b)
    merged_into: dict[str, Box] = {}
    result: list[Box] = []
    for b in nodes:
        head = merged_into.get(b.key)
        if head is not None:
            continue
        chain = [b]
        while True:
            nxt = consumers.get(chain[-1].key, [])
            if len(nxt) == 1 and nxt[0].kind == "op" and nxt[0].preds == [chain[-1]]:
                chain.append(nxt[0])
            else:
                break
        if len(chain) == 1:
            result.append(b)
            continue
        ops = [c.label for c in chain]
        label = f"{ops[0]} … {ops[-1]}" if len(ops) > 2 else f"{ops[0]} → {ops[1]}"
        box = Box(b.key, "group", label, f"{len(ops)} ops", " → ".join(ops), ops=len(ops))
        box.preds = b.preds
        for c in chain:
            merged_into[c.key] = box
        result.append(box)
    for b in result + outs:  # point edges at the merged boxes
        b.preds = list(
            dict.fromkeys(merged_into.get(p.key, p) if p.kind == "op" else p for p in b.preds)
        )
        b.preds = [p for p in b.preds if p is not b]
    return result


def _elide_layers(boxes: list[Box], max_layers: int) -> list[Box]:
    top = max((b.layer for b in boxes), default=0)
    if top + 1 <= max_layers:
        return boxes
    keep = max_layers // 2
    cut_from, cut_to = keep, top - keep  # layers [cut_from, cut_to] are left out
    hidden = [b for b in boxes if cut_from <= b.layer <= cut_to]
    n_ops = sum(b.ops for b in hidden)
    gap = Box(
        "elided",
        "gap",
        f"… {n_ops} ops …",
        f"{cut_to - cut_from + 1} layers not drawn",
        f"{n_ops} ops in {cut_to - cut_from + 1} layers are left out of the picture",
        ops=n_ops,
    )
    gap.layer = cut_from
    gap.preds = list(dict.fromkeys(p for b in hidden for p in b.preds if p.layer < cut_from))
    hidden_keys = {b.key for b in hidden}
    shown = []
    for b in boxes:
        if b.key in hidden_keys:
            continue
        if b.layer > cut_to:
            b.layer -= cut_to - cut_from
            if any(p.key in hidden_keys for p in b.preds):
                b.preds = [p for p in b.preds if p.key not in hidden_keys] + [gap]
        shown.append(b)
    return shown + [gap]


def draw(boxes: list[Box], title: str) -> str:
    """The SVG of `boxes` whose `layer` is set: one row per layer, each row ordered by where its
    inputs sit (fewer crossings), arrows from each box's `preds`."""
    layers: dict[int, list[Box]] = {}
    for b in boxes:
        layers.setdefault(b.layer, []).append(b)
    order: dict[str, float] = {}
    for depth in sorted(layers):  # order each layer by where its inputs sit (fewer crossings)
        row = layers[depth]
        row.sort(
            key=lambda b: (
                (sum(order.get(p.key, 0) for p in b.preds) / len(b.preds)) if b.preds else 0
            )
        )
        for i, b in enumerate(row):
            order[b.key] = i
    width = max(len(r) for r in layers.values()) * (BOX_W + GAP_X) - GAP_X + 2 * MARGIN
    height = len(layers) * (BOX_H + GAP_Y) - GAP_Y + 2 * MARGIN + 20
    for depth, row in layers.items():
        row_w = len(row) * (BOX_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for i, b in enumerate(row):
            b.x, b.y = x0 + i * (BOX_W + GAP_X), MARGIN + 20 + depth * (BOX_H + GAP_Y)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
        "</marker></defs>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 4}" font-weight="bold">{escape(title)}</text>',
        '<g class="edges" fill="none" stroke="#555" stroke-width="1.2">',
    ]
    for b in boxes:
        for p in b.preds:
            x1, y1 = p.x + BOX_W / 2, p.y + BOX_H
            x2, y2 = b.x + BOX_W / 2, b.y
            my = (y1 + y2) / 2
            out.append(
                f'<path d="M{x1:.1f},{y1:.1f} C{x1:.1f},{my:.1f} {x2:.1f},{my:.1f} '
                f'{x2:.1f},{y2:.1f}" '
                'marker-end="url(#arrow)"/>'
            )
    out.append("</g>")
    styles = {
        "io": ("#e8f0fe", "#3b6fd8", 16),
        "op": ("#f4f4f4", "#444", 4),
        "group": ("#fff4e0", "#b07000", 4),
        "gap": ("#ffffff", "#999", 4),
    }
    out.append('<g class="nodes">')
    for b in boxes:
        fill, stroke, rx = styles[b.kind]
        dash = ' stroke-dasharray="4 3"' if b.kind == "gap" else ""
        cx = b.x + BOX_W / 2
        out.append(
            f'<g class="node {b.kind}"><title>{escape(b.title)}</title>'
            f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}"{dash}/>'
        )
        if b.sub:
            out.append(
                f'<text x="{cx:.1f}" y="{b.y + 17:.1f}" text-anchor="middle" font-weight="bold">'
                f"{escape(_clip(b.label))}</text>"
                f'<text x="{cx:.1f}" y="{b.y + 32:.1f}" text-anchor="middle" fill="#666" '
                f'font-size="10">'
                f"{escape(_clip(b.sub, 26))}</text></g>"
            )
        else:
            out.append(
                f'<text x="{cx:.1f}" y="{b.y + 25:.1f}" text-anchor="middle" font-weight="bold">'
                f"{escape(_clip(b.label))}</text></g>"
            )
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _clip(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
