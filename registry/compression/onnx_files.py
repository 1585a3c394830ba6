"""ONNX file size: what any ONNX file costs beyond its tensors, and making a file compact.

Shared by the chain (`registry.compression.chain`) and the methods (`registry.compression.methods`),
which must not import the chain.
"""

from __future__ import annotations

from pathlib import Path

from registry.core.files import atomic_path

ONNX_OVERHEAD = 64  # bytes any ONNX file needs beyond its tensors (header, one node, i/o)


def compact_model(path: Path) -> None:
    """Shrink an ONNX file without changing what it computes: short internal names, no shape
    annotations.

    Quantizers write long tensor names (`onnx::MatMul_186_quantized_scale`) and value_info; on small
    models that is a tenth of the file. Graph inputs and outputs keep their names.
    """
    import onnx

    model = onnx.load(str(path))
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in names:
            names[name] = f"t{len(names):x}"
        return names[name]

    def rename(graph) -> None:
        for t in graph.initializer:
            t.name = short(t.name)
            t.doc_string = ""
        for t in graph.sparse_initializer:
            t.values.name = short(t.values.name)
        for i, node in enumerate(graph.node):
            node.name = f"n{i:x}"
            node.doc_string = ""
            node.input[:] = [short(x) for x in node.input]
            node.output[:] = [short(x) for x in node.output]
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    rename(a.g)
                for sub in a.graphs:
                    rename(sub)
        for v in graph.input:
            v.name = short(v.name)
        del graph.value_info[:]

    rename(g)
    _topological_sort(g)
    model.doc_string = ""
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def _topological_sort(graph) -> None:
    """Order nodes so each comes after its inputs' producers (converters sometimes append casts
    last)."""
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(x in available for x in n.input)]
        if not ready:  # a cycle or a dangling input: leave the order alone, the checker will say
            return
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        done = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in done]
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)
