"""Training a small model directly on the original training data (no teacher)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from registry.compression.methods import Method, MethodConfig, MethodMiss, MethodResult, register
from registry.compression.methods._torch import (
    Tries,
    finish,
    fit,
    is_classification,
    mlp,
    student_floor,
    token_vocab,
    torch_api,
    training_inputs,
)


class TrainSmallConfig(MethodConfig):
    models: list[list[int]] = Field(
        [[16], [32], [64, 32]], description="hidden layer widths of the MLPs to try, smallest first"
    )
    epochs: int = Field(80, ge=1, description="training epochs")
    lr: float = Field(3e-3, gt=0, description="learning rate (Adam)")
    batch_size: int = Field(64, ge=1, description="batch size")
    quantize: bool = Field(True, description="int8-quantize (dynamic) the trained model")
    token_width: int = Field(64, ge=1, description="embedding width for token-id inputs")


@register
class TrainSmall(Method):
    """A small MLP trained from scratch on the card's training set and labels."""

    name = "train-small"
    summary = "train a small MLP from scratch on the original training data and labels"
    cost = 70
    Config = TrainSmallConfig

    def run(self, job, workdir: Path, progress) -> MethodResult:
        torch = torch_api()
        F = torch.nn.functional
        x, tokens = training_inputs(job)
        labels = job.train_data.labels
        if labels is None or job.target.metric not in ("accuracy", "top-k", "f1", "mse", "mae"):
            raise MethodMiss("training from scratch needs labels and a label-based metric")
        ref_out = job.reference.reshape(len(job.reference), -1)
        out_features = ref_out.shape[1]
        softmax = bool(
            is_classification(job)
            and np.allclose(ref_out.sum(axis=1), 1.0, atol=1e-3)
            and (ref_out >= 0).all()
        )
        cls = is_classification(job)
        y = (
            torch.tensor(np.asarray(labels).reshape(len(x), -1).astype(np.float32))
            if not cls
            else torch.tensor(np.asarray(labels).reshape(-1).astype(np.int64))
        )
        tries = Tries(job)
        for n, hidden in enumerate(self.config.models):
            progress(n / len(self.config.models), f"training {hidden}")
            width = self.config.token_width if tokens else int(np.prod(x.shape[1:]))
            model, _ = mlp(
                width,
                hidden,
                out_features,
                softmax=softmax,
                vocab=token_vocab(job) if tokens else None,
            )
            body = model[:-1] if softmax else model

            def loss_fn(mod, xb, idx, body=body):
                return F.cross_entropy(body(xb), y[idx]) if cls else F.mse_loss(mod(xb), y[idx])

            fit(
                model,
                x,
                loss_fn,
                self.config.epochs,
                self.config.lr,
                self.config.batch_size,
                job.seed,
            )
            path, value = finish(job, model, x, workdir, f"small-{n}", self.config.quantize)
            cand = MethodResult(path, {"models": [hidden]})
            if tries.add(cand, value):
                return cand
        raise MethodMiss("no small model met the size and metric bounds", tries.best())

    def size_floor(self, job) -> int | None:
        return student_floor(job, self.config.models, self.config.quantize)
