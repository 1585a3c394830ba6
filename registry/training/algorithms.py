"""Training procedures: the built-in ones (classification, regression, autoencoder) and custom
files.

A procedure answers three questions for the training loop: the loss of a batch, the metrics of a
held-out split, and which outputs the exported model keeps. The loop itself (optimiser, schedule,
epochs, batches, early stopping) belongs to `registry.training.runner` and is the same for all.

A custom algorithm is `training/algorithms/<name>.py` with a class named `Algorithm`:

    class Algorithm:
        metrics = ["accuracy"]      # names `evaluate` returns; the first ranks instances
        higher_is_better = True     # direction of that first metric

        def loss(self, outputs, inputs, labels):    # outputs: {output name: tensor}
            return torch.nn.functional.cross_entropy(outputs["output"], labels)

        def evaluate(self, outputs, inputs, labels):   # optional; the held-out split at once
            return {"accuracy": float((outputs["output"].argmax(1) == labels).float().mean())}

`inspect_custom_algorithm` reads such a file with `ast` (nothing runs); it is imported only in a
worker or in the sandboxed child.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.training import ALGORITHMS_DIR
from registry.training.files import Algorithm
from registry.training.layers import parse_python

DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse", "autoencoder": "mse"}
DEFAULT_METRICS = {
    "classification": ["accuracy"],
    "regression": ["mse", "mae"],
    "autoencoder": ["reconstruction_mse", "knn_accuracy"],
}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "knn_accuracy": True,
    "mse": False,
    "mae": False,
    "reconstruction_mse": False,
    "loss": False,
}


def metric_direction(name: str) -> bool:
    """Whether a larger value of the metric is better (by its name; error-like names are not)."""
    if name in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[name]
    return not any(w in name for w in ("loss", "mse", "mae", "error", "rmse"))


@dataclass
class CustomAlgorithmInfo:
    """What `ast` tells about a custom algorithm file, without running it."""

    path: str
    line: int | None = None
    methods: list[str] = field(default_factory=list)
    problems: list[tuple[str, str, int | None]] = field(default_factory=list)


def custom_algorithm_path(code: str) -> str:
    """Repository-relative path of a custom algorithm file."""
    return f"{ALGORITHMS_DIR}/{code}"


def inspect_custom_algorithm(source: bytes | str, path: str) -> CustomAlgorithmInfo:
    """Read a custom algorithm file with `ast`: the `Algorithm` class and its methods."""
    info = CustomAlgorithmInfo(path)
    try:
        tree = parse_python(source, path)
    except SyntaxError as e:
        info.problems.append(
            (f"syntax error: {e.msg}", "fix the Python syntax at that line", e.lineno)
        )
        return info
    cls = next(
        (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Algorithm"), None
    )
    if cls is None:
        info.problems.append(
            (
                "no `Algorithm` class: a custom algorithm file defines `class Algorithm` with "
                "a `loss(self, outputs, inputs, labels)` method",
                "see docs/training.md#custom-algorithms",
                1,
            )
        )
        return info
    info.line = cls.lineno
    info.methods = [
        n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    if "loss" not in info.methods:
        info.problems.append(
            (
                "class Algorithm has no `loss` method",
                "add `def loss(self, outputs, inputs, labels)` returning a scalar tensor",
                cls.lineno,
            )
        )
    return info


class Procedure:
    """A training procedure as the loop uses it (built-in or wrapping a custom `Algorithm`)."""

    def __init__(self, spec: Algorithm, custom: Any = None):
        self.spec = spec
        self.custom = custom
        if custom is not None:
            self.metric_names = list(getattr(custom, "metrics", []) or ["loss"])
            self.higher_is_better = bool(
                getattr(custom, "higher_is_better", metric_direction(self.metric_names[0]))
            )
        else:
            self.metric_names = DEFAULT_METRICS[spec.kind]
            self.higher_is_better = metric_direction(self.metric_names[0])

    @property
    def compares_with_training(self) -> bool:
        """Whether `evaluate` needs the training split's outputs (the autoencoder's
        nearest-neighbour accuracy): a forward pass over that split, which the other metrics do
        without."""
        return self.custom is None and self.spec.kind == "autoencoder"

    def output_name(self, outputs: list[str]) -> str:
        """The structure output the loss reads."""
        return self.spec.output or outputs[0]

    def export_names(self, outputs: list[str]) -> list[str]:
        """The structure outputs the exported model keeps."""
        return list(self.spec.export or [self.output_name(outputs)])

    def loss(self, outputs: dict, inputs, labels):
        """The loss of one batch (a scalar tensor)."""
        if self.custom is not None:
            return self.custom.loss(outputs, inputs, labels)
        import torch.nn.functional as F

        out = outputs[self.output_name(list(outputs))]
        name = self.spec.loss or DEFAULT_LOSS[self.spec.kind]
        target = inputs if self.spec.kind == "autoencoder" else labels
        if name == "cross_entropy":
            return F.cross_entropy(out, target.long())
        target = target.to(out.dtype).reshape(out.shape)
        return {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}[name](
            out, target
        )

    def evaluate(
        self, outputs: dict, inputs, labels, train: tuple | None = None
    ) -> dict[str, float]:
        """The metrics of a whole split. `train` = (outputs, inputs, labels) of the training split,
        for metrics that compare with it (the autoencoder's nearest-neighbour accuracy)."""
        import torch

        if self.custom is not None:
            fn = getattr(self.custom, "evaluate", None)
            result = dict(fn(outputs, inputs, labels)) if fn else {}
            return {k: float(v) for k, v in result.items()}
        out = outputs[self.output_name(list(outputs))]
        with torch.no_grad():
            if self.spec.kind == "classification":
                return {"accuracy": float((out.argmax(-1) == labels).float().mean())}
            if self.spec.kind == "regression":
                target = labels.to(out.dtype).reshape(out.shape)
                return {
                    "mse": float(((out - target) ** 2).mean()),
                    "mae": float((out - target).abs().mean()),
                }
            metrics = {"reconstruction_mse": float(((out - inputs.reshape(out.shape)) ** 2).mean())}
            embed = [n for n in outputs if n != self.output_name(list(outputs))]
            if train is not None and embed and labels.dtype in (torch.int64, torch.int32):
                nearest = torch.cdist(
                    outputs[embed[0]].flatten(1), train[0][embed[0]].flatten(1)
                ).argmin(1)
                metrics["knn_accuracy"] = float((train[2][nearest] == labels).float().mean())
            return metrics


def load_procedure(spec: Algorithm, root: Path) -> Procedure:
    """The procedure of an algorithm; a custom one's file is imported (runs its code)."""
    if spec.kind != "custom":
        return Procedure(spec)
    from registry.training.layers import load_python_file

    module = load_python_file(
        Path(root) / custom_algorithm_path(spec.code),
        f"registry_algorithm_{spec.name.replace('-', '_')}",
    )
    cls = getattr(module, "Algorithm", None)
    if not isinstance(cls, type):
        raise LookupError(f"{custom_algorithm_path(spec.code)} has no `Algorithm` class")
    return Procedure(spec, cls())


def make_optimizer(spec: Algorithm, parameters):
    """The optimiser the algorithm names."""
    import torch

    o = spec.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(
            parameters, lr=o.learning_rate, momentum=o.momentum, weight_decay=o.weight_decay
        )
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(parameters, lr=o.learning_rate, weight_decay=o.weight_decay)


def make_schedule(spec: Algorithm, optimizer):
    """The learning-rate schedule (stepped once per epoch), or None for a constant rate."""
    import torch

    s = spec.schedule
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.epochs)
    return None


def apply_hyperparameters(
    spec: Algorithm, hyper: dict[str, Any]
) -> tuple[Algorithm, dict[str, Any]]:
    """The algorithm with the instance's hyperparameters set; return it and the ones left
    (structure params)."""
    from registry.training.files import ALGORITHM_HYPERPARAMETERS

    data = spec.model_dump()
    rest = {}
    for key, value in hyper.items():
        where = ALGORITHM_HYPERPARAMETERS.get(key)
        if where is None:
            rest[key] = value
            continue
        target = data
        for part in where[:-1]:
            target = target[part]
        target[where[-1]] = value
    return Algorithm.model_validate(data), rest
