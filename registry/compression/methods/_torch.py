"""The PyTorch side of the training methods (prune, distill, train-small).

`sequential_from_onnx` rebuilds a simple ONNX graph (a chain of Gemm/MatMul/Conv layers with
activations, pooling, flatten and softmax: the shape of most MLP and CNN classifiers) as a
`torch.nn.Sequential` holding the same weights, so pruning can fine-tune it. Graphs with branches
or other operators are not rebuilt: the method then reports that it does not apply (an expected
miss, the chain moves on). Students are plain MLPs built here. Everything is exported back to ONNX
with the original's input and output names, and can be int8-quantized afterwards.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from registry.compression.methods import MethodMiss
from registry.core.errors import missing_dependency


def torch_api():
    """The `torch` module with one CPU thread, or an install hint."""
    try:
        import torch
    except ImportError:
        raise missing_dependency("torch", "compress") from None
    torch.set_num_threads(1)
    return torch


def sequential_from_onnx(path: Path):
    """A `torch.nn.Sequential` equal to a chain-shaped ONNX graph.

    Raises:
        MethodMiss: the graph is not a single chain of supported operators.
    """
    import onnx
    from onnx import numpy_helper

    torch = torch_api()
    nn = torch.nn
    model = onnx.load(str(path))
    g = model.graph
    if (
        len(g.input) - len({i.name for i in g.initializer} & {i.name for i in g.input}) != 1
        or len(g.output) != 1
    ):
        raise MethodMiss(
            "the graph has several inputs or outputs; only single-chain MLP/CNN graphs are rebuilt"
        )
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts = {}
    for node in g.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inits.update(consts)
    current = next(i.name for i in g.input if i.name not in inits)
    layers = []
    nodes = [n for n in g.node if n.op_type != "Constant"]
    i = 0
    while i < len(nodes):
        node = nodes[i]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        data_inputs = [x for x in node.input if x and x not in inits]
        if data_inputs != [current]:
            raise MethodMiss(f"node '{node.name or node.op_type}' does not continue a single chain")
        op = node.op_type
        if op == "Gemm":
            if (
                attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0
            ):
                raise MethodMiss("Gemm with transA/alpha/beta is not rebuilt")
            w = inits[node.input[1]]
            w = w if attrs.get("transB", 0) else w.T  # torch Linear keeps (out, in)
            layer = nn.Linear(w.shape[1], w.shape[0], bias=len(node.input) > 2)
            layer.weight.data = torch.tensor(np.ascontiguousarray(w))
            if len(node.input) > 2:
                layer.bias.data = torch.tensor(inits[node.input[2]].reshape(-1))
            layers.append(layer)
        elif op == "MatMul":
            w = inits.get(node.input[1])
            if w is None or w.ndim != 2:
                raise MethodMiss("MatMul without a 2-D weight is not rebuilt")
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            bias = None
            if nxt is not None and nxt.op_type == "Add" and node.output[0] in nxt.input:
                other = [x for x in nxt.input if x != node.output[0]]
                if other and other[0] in inits:
                    bias = inits[other[0]].reshape(-1)
                    node = nxt
                    i += 1
            layer = nn.Linear(w.shape[0], w.shape[1], bias=bias is not None)
            layer.weight.data = torch.tensor(np.ascontiguousarray(w.T))
            if bias is not None:
                layer.bias.data = torch.tensor(bias)
            layers.append(layer)
        elif op == "Conv":
            w = inits[node.input[1]]
            if (
                w.ndim != 4
                or attrs.get("group", 1) != 1
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            ):
                raise MethodMiss("only 2-D, ungrouped, explicitly padded Conv is rebuilt")
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if pads[:2] != pads[2:]:
                raise MethodMiss("asymmetric Conv padding is not rebuilt")
            layer = nn.Conv2d(
                w.shape[1],
                w.shape[0],
                tuple(w.shape[2:]),
                stride=tuple(attrs.get("strides", [1, 1])),
                padding=tuple(pads[:2]),
                dilation=tuple(attrs.get("dilations", [1, 1])),
                bias=len(node.input) > 2,
            )
            layer.weight.data = torch.tensor(w)
            if len(node.input) > 2:
                layer.bias.data = torch.tensor(inits[node.input[2]])
            layers.append(layer)
        elif op in ("Relu", "Sigmoid", "Tanh"):
            layers.append({"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh}[op]())
        elif op in ("MaxPool", "AveragePool"):
            k = tuple(attrs["kernel_shape"])
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            cls = nn.MaxPool2d if op == "MaxPool" else nn.AvgPool2d
            layers.append(cls(k, stride=tuple(attrs.get("strides", k)), padding=tuple(pads[:2])))
        elif op == "GlobalAveragePool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif op == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise MethodMiss("Flatten with axis other than 1 is not rebuilt")
            layers.append(nn.Flatten())
        elif op == "Reshape":
            shape = inits.get(node.input[1])
            if (
                shape is None
                or shape.ndim != 1
                or len(shape) != 2
                or shape[-1] not in (-1,)
                and shape[0] not in (0, -1)
            ):
                raise MethodMiss("only Reshape to (batch, features) is rebuilt")
            layers.append(nn.Flatten())
        elif op == "Softmax":
            if attrs.get("axis", -1) not in (-1, 1):
                raise MethodMiss("Softmax over an axis other than the last is not rebuilt")
            layers.append(nn.Softmax(dim=-1))
        elif op in ("Identity", "Dropout"):
            pass
        else:
            raise MethodMiss(f"operator {op} is not among those the training methods rebuild")
        current = node.output[0]
        i += 1
    if current != g.output[0].name:
        raise MethodMiss("the chain does not end at the model's output")
    return nn.Sequential(*layers)


def io_names(path: Path) -> tuple[str, str]:
    """(input name, output name) of a single-input, single-output ONNX model."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    inputs = [i.name for i in g.input if i.name not in inits]
    return inputs[0], g.output[0].name


def export_onnx(module, example: np.ndarray, path: Path, input_name: str, output_name: str) -> Path:
    """Export a module to ONNX with a dynamic batch axis and the original's i/o names."""
    torch = torch_api()
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.tensor(example[:1]),),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def quantize_int8(src: Path, dest: Path) -> Path:
    """Dynamic int8 quantization of an exported model (the training methods' optional last step)."""
    from registry.compression.methods._quant import named_copy, quantization_api

    q = quantization_api()
    named = dest.with_name(dest.stem + "-named.onnx")
    named_copy(src, named)
    q.quantize_dynamic(str(named), str(dest), weight_type=q.QuantType.QInt8, per_channel=True)
    return dest


def mlp(
    in_features: int, hidden: list[int], out_features: int, softmax: bool, vocab: int | None = None
):
    """A small student: (Flatten | token Embedding + mean pooling), (Linear, ReLU)*, Linear (+
    Softmax).

    Args:
        in_features: flattened input size, or the embedding width when `vocab` is given.
        vocab: number of token ids, for models whose input is a sequence of token ids.

    Returns:
        (module, index of its final Linear): everything before that index gives the features.
    """
    torch = torch_api()
    nn = torch.nn

    class MeanTokens(nn.Module):
        """Mean over the sequence axis (token embeddings -> one vector)."""

        def forward(self, x):
            return x.mean(dim=1)

    layers: list = [nn.Embedding(vocab, in_features), MeanTokens()] if vocab else [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    head = len(layers)
    layers.append(nn.Linear(width, out_features))
    if softmax:
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers), head


def token_vocab(job) -> int:
    """Number of token ids of a token-input model: rows of the embedding table it gathers from."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(job.model_path), load_external_data=False).graph
    inits = {t.name: t for t in g.initializer}
    graph_inputs = {i.name for i in g.input}
    for node in g.node:
        if node.op_type == "Gather" and node.input[0] in inits and node.input[1] in graph_inputs:
            return int(numpy_helper.to_array(inits[node.input[0]]).shape[0])
    x = next(iter(job.train_data.inputs.values()))
    return int(max(x.max(), next(iter(job.eval_data.inputs.values())).max())) + 1


def training_inputs(job) -> tuple[np.ndarray, bool]:
    """(training inputs, whether they are token ids), or a miss saying why training cannot apply."""
    if job.train_data is None:
        raise MethodMiss("needs training data: set compress.train_data in the card")
    if len(job.train_data.inputs) != 1:
        raise MethodMiss("training methods handle single-input models only")
    x = next(iter(job.train_data.inputs.values()))
    if np.issubdtype(x.dtype, np.integer) and x.ndim == 2:
        return x.astype(np.int64), True
    if not np.issubdtype(x.dtype, np.floating):
        raise MethodMiss(
            f"training methods need float inputs or (batch, tokens) integer ids, not {x.dtype}"
        )
    return x.astype(np.float32), False


def float_inputs(job) -> np.ndarray:
    """The training inputs when they are float (what a rebuilt MLP/CNN takes), else a miss."""
    x, tokens = training_inputs(job)
    if tokens:
        raise MethodMiss(
            "the model takes token ids; only MLP/CNN graphs with float inputs are rebuilt"
        )
    return x


def is_classification(job) -> bool:
    """Whether the job's metric is label-class based (accuracy, top-k, F1)."""
    return job.target.metric in ("accuracy", "top-k", "f1")


def param_bytes(module) -> int:
    """fp32 bytes of a module's parameters."""
    return sum(p.numel() * 4 for p in module.parameters())


def fit(
    module,
    x: np.ndarray,
    loss_fn,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    extra_params=(),
) -> None:
    """Train `module` with Adam; `loss_fn(module, xb, idx)` gives the loss of a batch (idx: its
    rows)."""
    torch = torch_api()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    params = list(module.parameters()) + list(extra_params)
    opt = torch.optim.Adam(params, lr=lr)
    xt = torch.tensor(x)
    module.train()
    for _ in range(epochs):
        order = gen.permutation(len(x))
        for s in range(0, len(x), batch_size):
            idx = order[s : s + batch_size]
            opt.zero_grad()
            loss = loss_fn(module, xt[idx], idx)
            loss.backward()
            opt.step()
    module.eval()


def split_softmax(module):
    """(body producing logits, whether a final Softmax was removed)."""
    nn = torch_api().nn
    if len(module) and isinstance(module[-1], nn.Softmax):
        return module[:-1], True
    return module, False


def finish(job, module, x: np.ndarray, workdir: Path, tag: str, quantize: bool):
    """Export a trained module (and int8-quantize it when asked); return (path, metric value)."""
    inp, out = io_names(job.model_path)
    path = export_onnx(module, x, workdir / f"{tag}.onnx", inp, out)
    if quantize:
        path = quantize_int8(path, workdir / f"{tag}-int8.onnx")
    from registry.compression.onnx_files import compact_model

    compact_model(path)  # sizes compared with the target are those of the final file
    return path, job.metric_of(path)


def meets_size_and_drop(job, path: Path, value: float) -> bool:
    """The conditions a method can check cheaply itself (latency is left to the chain)."""
    size_ok = job.target.max_size is None or path.stat().st_size <= job.target.max_size
    return size_ok and job.drop_ok(value)


def student_floor(job, widths: list[list[int]], quantize: bool) -> int | None:
    """Smallest file a student MLP of the given widths can be: its weights at 1 (int8) or 4 bytes
    each."""
    if not widths:
        return None
    x = next(iter(job.eval_data.inputs.values()))
    first = (
        8 if np.issubdtype(x.dtype, np.integer) else int(np.prod(x.shape[1:]))
    )  # token models: 8-wide embedding
    dims = [first, *min(widths, key=sum), int(np.prod(job.reference.shape[1:]))]
    params = sum(a * b for a, b in zip(dims, dims[1:]))
    from registry.compression.onnx_files import ONNX_OVERHEAD

    return ONNX_OVERHEAD + params * (1 if quantize else 4)


class Tries:
    """The candidates a method made, to hand the best one to the report when none meets the
    target."""

    def __init__(self, job):
        self.job = job
        self.seen: list[tuple] = []

    def add(self, candidate, value: float) -> bool:
        """Record a candidate; True when it meets the size and metric bounds."""
        self.seen.append((candidate, value))
        return meets_size_and_drop(self.job, candidate.path, value)

    def best(self):
        """Within the metric bound the smallest, else the one with the smallest drop."""
        ok = [c for c, v in self.seen if self.job.drop_ok(v)]
        if ok:
            return min(ok, key=lambda c: c.path.stat().st_size)
        return min(self.seen, key=lambda cv: self.job.drop_of(cv[1]))[0] if self.seen else None
