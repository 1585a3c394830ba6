"""Real models with their cards and data for `registry compress`: tests and benchmarks build them
here.

`build_digits_cnn` trains a small CNN on sklearn's 8x8 digits; `build_text_embedder` trains a small
transformer encoder that embeds token sequences. Both train in seconds on one CPU thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _torch_onnx_export(
    module, example, path: Path, input_name: str = "input", output_name: str = "probabilities"
):
    import warnings

    import torch

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return path


DIGITS_CARD = """\
name: digits-cnn
version: 1.0.0
status: published
task: classification
project: demo
source:
  repo: https://github.com/example/digits.git
config: config.yaml
weights: model.onnx
metrics:
  - name: accuracy
    value: {accuracy}
    dataset: digits-eval
evaluation:
  data: eval.npz
  metric: accuracy
  dataset: digits-eval
compress:
  train_data: train.npz
"""


def build_digits_cnn(folder: Path) -> Path:
    """A real digits classifier (sklearn's 8x8 digits), a small CNN trained here, with its card and
    data.

    The folder holds model.onnx, model.yaml (evaluation + compress sections), config.yaml,
    eval.npz (inputs, labels) and train.npz.
    """
    import torch
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    torch.manual_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    xtr, ytr, xev, yev = x[:1300], y[:1300], x[1300:], y[1300:]
    nn = torch.nn
    body = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(body.parameters(), lr=3e-3)
    xt, yt = torch.tensor(xtr), torch.tensor(ytr)
    for _ in range(25):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(body(xt[idx]), yt[idx]).backward()
            opt.step()
    model = nn.Sequential(body, nn.Softmax(dim=-1)).eval()
    with torch.no_grad():
        acc = float((model(torch.tensor(xev)).argmax(1).numpy() == yev).mean())
    _torch_onnx_export(model, torch.tensor(xev[:1]), folder / "model.onnx")
    np.savez(folder / "eval.npz", inputs=xev, labels=yev)
    np.savez(folder / "train.npz", inputs=xtr, labels=ytr)
    (folder / "config.yaml").write_text("architecture: cnn\nepochs: 25\n")
    (folder / "model.yaml").write_text(DIGITS_CARD.format(accuracy=round(acc, 4)))
    return folder


EMBEDDER_CARD = """\
name: text-embedder
version: 1.0.0
status: published
task: embedding
project: demo
source:
  repo: https://github.com/example/embedder.git
config: config.yaml
weights: model.onnx
evaluation:
  data: eval.npz
  metric: cosine-to-reference
  dataset: topics-eval
compress:
  train_data: train.npz
"""


def build_text_embedder(folder: Path) -> Path:
    """A small transformer encoder (2 blocks, 4 heads, d=64) trained here to embed token sequences
    by topic.

    Like large trained encoders, it carries outlier features: two channels of its last LayerNorm
    are 100x the others (the head's matching weights are scaled down, so the fp32 function is
    unchanged). Per-tensor dynamic int8 loses those channels' neighbours, which is what the
    fallback chain must notice. The folder holds model.onnx (input `input_ids`, output
    `embedding`), model.yaml, eval.npz and train.npz (`input_ids`, no labels).
    """
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    nn = torch.nn
    V, D, L, H = 512, 64, 16, 4

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
            self.ff1, self.ff2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)

        def forward(self, x):
            n, length, d = x.shape
            q, k, v = self.qkv(x).reshape(n, length, 3, H, d // H).permute(2, 0, 3, 1, 4)
            a = torch.softmax(q @ k.transpose(-1, -2) / (d // H) ** 0.5, dim=-1) @ v
            x = self.ln1(x + self.proj(a.transpose(1, 2).reshape(n, length, d)))
            return self.ln2(x + self.ff2(torch.relu(self.ff1(x))))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(V, D)
            self.pos = nn.Parameter(torch.randn(L, D) * 0.1)
            self.blocks = nn.Sequential(Block(), Block())
            self.head = nn.Linear(D, D)

        def forward(self, ids):
            return self.head(self.blocks(self.tok(ids) + self.pos).mean(dim=1))

    rng = np.random.default_rng(0)

    def batch(n):
        topic = rng.integers(0, 8, n)  # each of 8 topics prefers its own band of the vocabulary
        ids = topic[:, None] * (V // 8) + rng.integers(0, V // 8, (n, L))
        noise = rng.random((n, L)) < 0.3
        ids[noise] = rng.integers(0, V, noise.sum())
        return torch.tensor(ids), torch.tensor(topic)

    enc, clf = Encoder(), nn.Linear(D, 8)
    opt = torch.optim.Adam([*enc.parameters(), *clf.parameters()], lr=2e-3)
    for _ in range(100):
        ids, topic = batch(64)
        opt.zero_grad()
        nn.functional.cross_entropy(clf(enc(ids)), topic).backward()
        opt.step()
    with torch.no_grad():
        ln = enc.blocks[1].ln2
        ln.weight[:2] *= 100.0
        ln.bias[:2] *= 100.0
        enc.head.weight[:, :2] /= 100.0
    enc.eval()
    ids, _ = batch(128)
    _torch_onnx_export(enc, ids[:1], folder / "model.onnx", "input_ids", "embedding")
    np.savez(folder / "eval.npz", input_ids=ids.numpy())
    np.savez(folder / "train.npz", input_ids=batch(1024)[0].numpy())  # unlabelled: for distillation
    (folder / "config.yaml").write_text(
        "architecture: transformer-encoder\nlayers: 2\nd_model: 64\n"
    )
    (folder / "model.yaml").write_text(EMBEDDER_CARD)
    return folder
