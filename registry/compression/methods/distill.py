"""Knowledge distillation into a smaller student: the teacher runs in ONNX Runtime, the student in
PyTorch.

The original model (teacher) is run once over the training inputs with ONNX Runtime, exposing its
logits (the input of a final Softmax) and its features (the input of its last weighted layer). A
small MLP student is then trained with any mix of:
- `logits`: KL divergence between temperature-softened teacher and student distributions
(T^2-scaled);
  for models without a Softmax head, mean squared error to the teacher's output;
- `features`: mean squared error between the teacher's features (standardised per channel) and the
  student's last hidden layer mapped through a learned projection;
- `embedding`: 1 - cosine similarity between student and teacher outputs (embedding models);
- `labels`: cross-entropy with the true labels (when the training set has them).
Student sizes are tried smallest first; the first that meets the size and metric bounds wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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

Loss = Literal["logits", "features", "embedding", "labels"]


class DistillConfig(MethodConfig):
    students: list[list[int]] = Field(
        [[16], [32], [64, 32]],
        description="hidden layer widths of the student MLPs to try, smallest first",
    )
    losses: list[Loss] = Field(
        ["logits", "features", "labels"], description="distillation losses to combine"
    )
    temperature: float = Field(4.0, gt=0, description="softening temperature of the logits loss")
    feature_weight: float = Field(0.5, ge=0, description="weight of the feature-matching loss")
    label_weight: float = Field(0.5, ge=0, description="weight of the label loss")
    epochs: int = Field(60, ge=1, description="training epochs")
    lr: float = Field(3e-3, gt=0, description="learning rate (Adam)")
    batch_size: int = Field(64, ge=1, description="batch size")
    quantize: bool = Field(True, description="int8-quantize (dynamic) the student")
    token_width: int = Field(
        64, ge=1, description="embedding width of the student for token-id inputs"
    )


def teacher_tensors(model_path: Path, data) -> dict[str, np.ndarray]:
    """Run the teacher in ONNX Runtime; return its `output`, `logits` and `features` tensors."""
    import onnx

    from registry.compression.evaluation import session_for

    model = onnx.load(str(model_path))
    g = model.graph
    inits = {t.name for t in g.initializer}
    out_name = g.output[0].name
    producer = {o: n for n in g.node for o in n.output}
    names = {"output": out_name}
    last = producer.get(out_name)
    if last is not None and last.op_type == "Softmax":
        names["logits"] = last.input[0]
    weighted = [n for n in g.node if n.op_type in ("Gemm", "MatMul") and n.input[0] not in inits]
    if weighted:
        names["features"] = weighted[-1].input[0]
    existing = {o.name for o in g.output}
    for tensor in names.values():
        if tensor not in existing:
            g.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
            existing.add(tensor)
    path = model_path.with_name(model_path.stem + "-teacher-taps.onnx")
    onnx.save(model, str(path))
    sess = session_for(path)
    wanted = list(dict.fromkeys(names.values()))
    parts: dict[str, list] = {n: [] for n in wanted}
    for feed in data.batches(256):
        for n, v in zip(wanted, sess.run(wanted, feed)):
            parts[n].append(v)
    path.unlink(missing_ok=True)
    return {
        k: np.concatenate(parts[v]).astype(np.float32).reshape(len(data), -1)
        for k, v in names.items()
    }


@register
class Distill(Method):
    """Knowledge distillation (logits with temperature, features, embeddings, labels) into an MLP
    student."""

    name = "distill"
    summary = (
        "train a small MLP student on the teacher's soft targets and features "
        "(ORT teacher, PyTorch student)"
    )
    cost = 60
    Config = DistillConfig

    def run(self, job, workdir: Path, progress) -> MethodResult:
        torch = torch_api()
        F = torch.nn.functional
        x, tokens = training_inputs(job)
        vocab = token_vocab(job) if tokens else None
        progress(0.05, "teacher outputs")
        work = workdir / "teacher.onnx"
        work.write_bytes(job.model_path.read_bytes())
        t = teacher_tensors(work, job.train_data)
        t_out = torch.tensor(t["output"])
        t_logits = torch.tensor(t["logits"]) if "logits" in t else None
        t_feat = None
        if "features" in t:
            # standardised per channel: outlier channels (100x the rest in large encoders) would
            # otherwise be all the matching loss sees
            f = t["features"]
            t_feat = torch.tensor((f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6))
        labels = job.train_data.labels
        cls = is_classification(job) and labels is not None
        y = torch.tensor(np.asarray(labels).reshape(-1).astype(np.int64)) if cls else None
        losses = set(self.config.losses)
        T = self.config.temperature
        in_features = self.config.token_width if tokens else int(np.prod(x.shape[1:]))
        tries = Tries(job)
        for n, hidden in enumerate(self.config.students):
            progress(0.1 + 0.9 * n / len(self.config.students), f"student {hidden}")
            student, depth = mlp(
                in_features, hidden, t_out.shape[1], softmax=t_logits is not None, vocab=vocab
            )
            proj = (
                torch.nn.Linear(hidden[-1] if hidden else in_features, t_feat.shape[1])
                if t_feat is not None
                else None
            )

            def loss_fn(mod, xb, idx, depth=depth, proj=proj):
                feats = mod[:depth](xb)
                logits = mod[depth](feats)
                total = 0.0
                if "logits" in losses:
                    if t_logits is not None:
                        total = (
                            total
                            + F.kl_div(
                                F.log_softmax(logits / T, -1),
                                F.softmax(t_logits[idx] / T, -1),
                                reduction="batchmean",
                            )
                            * T
                            * T
                        )
                    else:
                        total = total + F.mse_loss(logits, t_out[idx])
                if "embedding" in losses:
                    total = (
                        total
                        + (1 - F.cosine_similarity(mod[depth:](feats), t_out[idx], dim=-1)).mean()
                    )
                if "features" in losses and proj is not None:
                    total = total + self.config.feature_weight * F.mse_loss(
                        proj(feats), t_feat[idx]
                    )
                if "labels" in losses and cls:
                    total = total + self.config.label_weight * F.cross_entropy(logits, y[idx])
                if not isinstance(total, torch.Tensor):
                    raise MethodMiss("none of the chosen distillation losses applies to this model")
                return total

            fit(
                student,
                x,
                loss_fn,
                self.config.epochs,
                self.config.lr,
                self.config.batch_size,
                job.seed,
                extra_params=proj.parameters() if proj is not None else (),
            )
            path, value = finish(job, student, x, workdir, f"student-{n}", self.config.quantize)
            cand = MethodResult(path, {"students": [hidden]})
            if tries.add(cand, value):
                return cand
        raise MethodMiss("no student size met the size and metric bounds", tries.best())

    def size_floor(self, job) -> int | None:
        return student_floor(job, self.config.students, self.config.quantize)
