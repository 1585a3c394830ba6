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


# A BERT-style sentence encoder with the operators of all-MiniLM-L6-v2 (word, position and
# token-type embeddings, a padding attention mask, GELU feed-forward blocks, mean pooling over
# the real tokens and L2 normalisation), written with the same torch calls as Hugging Face's
# BertModel, so ONNX and torch.export see the same graph shapes and operators.
MINILM = {
    "layers": 6,
    "hidden": 384,
    "heads": 12,
    "intermediate": 1536,
    "vocab": 30522,
    "max_len": 512,
}
TINY_BERT = {"layers": 2, "hidden": 32, "heads": 4, "intermediate": 64, "vocab": 1000}


def bert_encoder(
    layers: int, hidden: int, heads: int, intermediate: int, vocab: int, max_len: int = 128
):
    """A sentence encoder module with random weights (BERT's initialisation: normal, std 0.02).

    forward(input_ids, attention_mask, token_type_ids) → (batch, hidden) unit-length embeddings.
    """
    import torch

    nn = torch.nn
    head_dim = hidden // heads

    def dense(n_in, n_out):
        layer = nn.Linear(n_in, n_out)
        nn.init.normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)
        return layer

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value = (dense(hidden, hidden) for _ in range(3))
            self.attn_out, self.attn_norm = dense(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)
            self.inter, self.out = dense(hidden, intermediate), dense(intermediate, hidden)
            self.out_norm = nn.LayerNorm(hidden, eps=1e-12)

        def split(self, x):
            n, length, _ = x.shape
            return x.view(n, length, heads, head_dim).transpose(1, 2)

        def forward(self, x, bias):
            n, length, _ = x.shape
            q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / head_dim**0.5 + bias
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
            ctx = ctx.transpose(1, 2).reshape(n, length, hidden)
            x = self.attn_norm(x + self.attn_out(ctx))
            return self.out_norm(x + self.out(nn.functional.gelu(self.inter(x))))

    class SentenceEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding(vocab, hidden)
            self.position = nn.Embedding(max_len, hidden)
            self.token_type = nn.Embedding(2, hidden)
            for emb in (self.word, self.position, self.token_type):
                nn.init.normal_(emb.weight, std=0.02)
            self.norm = nn.LayerNorm(hidden, eps=1e-12)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))
            self.register_buffer("position_ids", torch.arange(max_len)[None, :], persistent=False)

        def forward(self, input_ids, attention_mask, token_type_ids):
            length = input_ids.shape[1]
            x = self.word(input_ids) + self.token_type(token_type_ids)
            x = self.norm(x + self.position(self.position_ids[:, :length]))
            # the padding mask as transformers builds it: a boolean `&`, then -inf where masked
            keep = attention_mask[:, None, None, :].bool() & torch.ones_like(
                attention_mask[:, None, :, None], dtype=torch.bool
            )
            bias = torch.where(keep, 0.0, torch.finfo(x.dtype).min)
            for layer in self.layers:
                x = layer(x, bias)
            weights = attention_mask[:, :, None].to(x.dtype)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return nn.functional.normalize(pooled, p=2, dim=1)

    return SentenceEncoder().eval()


def sentence_batch(rng, n: int, length: int, vocab: int, min_len: int = 4) -> dict:
    """Tokenised sentences as a tokenizer pads them: [CLS] words [SEP] then padding (id 0, mask
    0); a second segment (token type 1) in every other sample."""
    ids = np.zeros((n, length), np.int64)
    mask = np.zeros((n, length), np.int64)
    types = np.zeros((n, length), np.int64)
    for i in range(n):
        real = int(rng.integers(min_len, length + 1))
        ids[i, :real] = rng.integers(1000 if vocab > 2000 else 3, vocab, real)
        ids[i, 0], ids[i, real - 1] = 1, 2  # [CLS] … [SEP]
        mask[i, :real] = 1
        if i % 2:
            types[i, real // 2 : real] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def export_sentence_encoder(module, folder: Path, length: int = 16, pt2: bool = True) -> Path:
    """Export as a user would: ONNX (opset 17, batch and sequence dynamic) and a `.pt2`
    (torch.export with dynamic batch and sequence), written as model.onnx and model.pt2."""
    import warnings

    import torch

    example = {
        k: torch.tensor(v)
        for k, v in sentence_batch(np.random.default_rng(1), 2, length, 100).items()
    }
    args = (example["input_ids"], example["attention_mask"], example["token_type_ids"])
    names = list(example)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(folder / "model.onnx"),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        if pt2:
            batch = torch.export.Dim("batch", min=1, max=64)
            seq = torch.export.Dim("sequence", min=2, max=module.position_ids.shape[1])
            shapes = {n: {0: batch, 1: seq} for n in names}
            program = torch.export.export(module, args, dynamic_shapes=shapes)
            torch.export.save(program, str(folder / "model.pt2"))
    return folder / "model.onnx"


def build_sentence_encoder(
    folder: Path,
    *,
    dims: dict | None = None,
    length: int = 16,
    eval_samples: int = 64,
    seed: int = 0,
    pt2: bool = True,
) -> Path:
    """A BERT-style sentence encoder with random weights, exported and ready for `registry new`.

    The folder holds model.onnx and model.pt2 (inputs input_ids, attention_mask, token_type_ids;
    output sentence_embedding), config.json (the dims, as a BertConfig would give them) and
    eval.npz (padded token batches).
    """
    import json

    import torch

    dims = dims or TINY_BERT
    torch.manual_seed(seed)
    module = bert_encoder(**dims)
    folder.mkdir(parents=True, exist_ok=True)
    export_sentence_encoder(module, folder, length, pt2=pt2)
    config = {
        "architectures": ["BertModel"],
        "num_hidden_layers": dims["layers"],
        "hidden_size": dims["hidden"],
        "num_attention_heads": dims["heads"],
        "intermediate_size": dims["intermediate"],
        "vocab_size": dims["vocab"],
        "max_position_embeddings": dims.get("max_len", 128),
        "pooling": "mean",
        "normalize": True,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    rng = np.random.default_rng(seed + 1)
    np.savez(folder / "eval.npz", **sentence_batch(rng, eval_samples, length, dims["vocab"]))
    return folder
