"""Structured pruning with a short fine-tune: remove the weakest units/channels, then recover in
PyTorch.

The ONNX graph is rebuilt as a torch `Sequential` (simple MLP/CNN chains; other graphs are a miss).
Each hidden layer loses the given fraction of its output units (smallest L1 norm first) and the
next layer loses the matching inputs, so the file really shrinks. The pruned model is fine-tuned on
the training set against the labels and the original model's outputs, exported, and optionally
int8-quantized. Fractions are tried from the most aggressive down; the first that meets the
target's size and metric bounds is the candidate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from registry.compression.methods import Method, MethodConfig, MethodMiss, MethodResult, register
from registry.compression.methods._torch import (
    Tries,
    finish,
    fit,
    float_inputs,
    is_classification,
    sequential_from_onnx,
    split_softmax,
    torch_api,
)


class PruneConfig(MethodConfig):
    amounts: list[float] = Field(
        [0.75, 0.5, 0.25],
        description="fractions of hidden units/channels to remove, tried in order",
    )
    epochs: int = Field(20, ge=0, description="fine-tune epochs over the training set")
    lr: float = Field(2e-3, gt=0, description="fine-tune learning rate (Adam)")
    batch_size: int = Field(64, ge=1, description="fine-tune batch size")
    quantize: bool = Field(True, description="int8-quantize (dynamic) the pruned model")


@register
class Prune(Method):
    """Structured (L1) pruning of hidden units and channels with a short fine-tune."""

    name = "prune"
    summary = "structured L1 pruning of hidden units/channels + short PyTorch fine-tune (+ int8)"
    cost = 50
    Config = PruneConfig

    def run(self, job, workdir: Path, progress) -> MethodResult:
        torch = torch_api()
        x = float_inputs(job)
        original = sequential_from_onnx(job.model_path)
        teacher = job.outputs_of(job.model_path, job.train_data).astype(np.float32)
        tries = Tries(job)
        for n, amount in enumerate(self.config.amounts):
            if not 0 < amount < 1:
                raise MethodMiss(f"prune amount {amount} is not between 0 and 1")
            progress(n / len(self.config.amounts), f"pruning {amount:.0%}")
            module = prune_sequential(original, amount)
            body, _ = split_softmax(module)
            labels = job.train_data.labels
            t_out = torch.tensor(teacher)
            cls = is_classification(job) and labels is not None
            y = torch.tensor(np.asarray(labels).reshape(-1).astype(np.int64)) if cls else None

            def loss_fn(mod, xb, idx, body=body, y=y, t_out=t_out, cls=cls):
                if cls:
                    return torch.nn.functional.cross_entropy(body(xb), y[idx])
                return torch.nn.functional.mse_loss(mod(xb), t_out[idx])

            fit(
                module,
                x,
                loss_fn,
                self.config.epochs,
                self.config.lr,
                self.config.batch_size,
                job.seed,
            )
            path, value = finish(job, module, x, workdir, f"pruned-{n}", self.config.quantize)
            cand = MethodResult(path, {"amounts": [amount]})
            if tries.add(cand, value):
                return cand
        raise MethodMiss("no pruning amount met the size and metric bounds", tries.best())

    def size_floor(self, job) -> int | None:
        return _floor(job, self.config.amounts, self.config.quantize)


def prune_sequential(module, amount: float):
    """A copy of `module` with `amount` of each hidden layer's output units removed (smallest L1
    first).

    Raises:
        MethodMiss: two weighted layers are separated by something pruning cannot see through.
    """
    import copy

    torch = torch_api()
    nn = torch.nn
    layers = [copy.deepcopy(m) for m in module]
    weighted = [i for i, m in enumerate(layers) if isinstance(m, (nn.Linear, nn.Conv2d))]
    passthrough = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten)
    for a, b in zip(weighted, weighted[1:]):
        if not all(isinstance(m, passthrough) for m in layers[a + 1 : b]):
            raise MethodMiss("layers between two weighted layers block structured pruning")
        la, lb = layers[a], layers[b]
        w = la.weight.data
        units = w.shape[0]
        keep_n = max(1, int(round(units * (1 - amount))))
        norms = w.reshape(units, -1).abs().sum(dim=1)
        keep = torch.sort(torch.topk(norms, keep_n).indices).values
        if isinstance(la, nn.Linear):
            new_a = nn.Linear(la.in_features, keep_n, bias=la.bias is not None)
        else:
            new_a = nn.Conv2d(
                la.in_channels,
                keep_n,
                la.kernel_size,
                la.stride,
                la.padding,
                la.dilation,
                bias=la.bias is not None,
            )
        new_a.weight.data = w[keep].clone()
        if la.bias is not None:
            new_a.bias.data = la.bias.data[keep].clone()
        if isinstance(lb, nn.Conv2d):
            cols = keep
            new_b = nn.Conv2d(
                keep_n,
                lb.out_channels,
                lb.kernel_size,
                lb.stride,
                lb.padding,
                lb.dilation,
                bias=lb.bias is not None,
            )
        else:
            if isinstance(
                la, nn.Conv2d
            ):  # conv -> flatten -> linear: each channel owns a block of features
                spatial = lb.in_features // units
                cols = (keep[:, None] * spatial + torch.arange(spatial)[None, :]).reshape(-1)
            else:
                cols = keep
            new_b = nn.Linear(len(cols), lb.out_features, bias=lb.bias is not None)
        new_b.weight.data = lb.weight.data[:, cols].clone()
        if lb.bias is not None:
            new_b.bias.data = lb.bias.data.clone()
        layers[a], layers[b] = new_a, new_b
    return nn.Sequential(*layers)


def _floor(job, amounts: list[float], quantize: bool) -> int | None:
    valid = [a for a in amounts if 0 < a < 1]
    if not valid:
        return None
    from registry.compression.onnx_files import ONNX_OVERHEAD

    n, _ = job.float_params()
    # every weight matrix keeps at least (1 - a)^2 of its entries (rows and columns both pruned)
    return int(ONNX_OVERHEAD + n * (1 - max(valid)) ** 2 * (1 if quantize else 4))
