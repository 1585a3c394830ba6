"""Shared fixtures: real temporary registries (git + DVC with local remotes) and real ONNX models.

Every test runs with HOME and git's global config pointed into its own temporary folder, so no
test reads or writes the developer's settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """A private HOME and git identity for every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(var, "Registry Tests")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(var, "tests@registry.invalid")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    return home


def run(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


class Registry:
    """A throw-away registry clone: git repo + DVC with local `staging` and `public` remotes."""

    def __init__(self, root: Path, storage: Path):
        self.root = root
        self.storage = storage

    def git(self, *args: str, check: bool = True) -> str:
        return run(["git", *args], self.root, check=check).stdout.strip()

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(BIN / "dvc"), *args], self.root, check=check)

    def registry(self, *args: str, env: dict | None = None, cwd: Path | None = None
                 ) -> subprocess.CompletedProcess:
        """Run the real `registry` command line (a subprocess, as users and workflows do)."""
        full_env = {**os.environ, **(env or {})}
        return run([sys.executable, "-m", "registry", *args], cwd or self.root, check=False, env=full_env)

    def write(self, files: dict[str, str | bytes]) -> None:
        for rel, content in files.items():
            p = self.root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(textwrap.dedent(content))

    def commit(self, files: dict[str, str | bytes] | None = None, message: str = "change") -> str:
        """Write files (if given), stage everything and commit; return the new commit id."""
        if files:
            self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def track(self, rel: str, data: bytes, push: bool = True) -> None:
        """Write a weights file, `dvc add` it and (by default) push it to the staging remote."""
        self.write({rel: data})
        self.dvc("add", "-q", rel)
        if push:
            self.dvc("push", "-q", "-r", "staging", rel + ".dvc")

    def add_model(self, name: str, weights: bytes, card: str | None = None, *,
                  weights_file: str = "model.onnx", push: bool = True, commit: bool = True,
                  **fields) -> Path:
        """Create models/<name> with a valid card, a config and DVC-tracked weights."""
        folder = f"models/{name}"
        self.track(f"{folder}/{weights_file}", weights, push=push)
        self.write({f"{folder}/config.yaml": "epochs: 3\nlr: 0.01\n"})
        if card is None:
            card = example_card(name, weights_file=weights_file, size=len(weights), **fields)
        self.write({f"{folder}/model.yaml": card})
        if commit:
            self.commit(message=f"add {name}")
        return self.root / folder


def example_card(name: str, *, weights_file: str = "model.onnx", size: int | None = None,
                 version: str | None = None, status: str = "unpublished",
                 source_repo: str = "https://github.com/example/train.git",
                 extra: str = "") -> str:
    """A valid card as a publisher would write it."""
    lines = [f"name: {name}"]
    if version:
        lines.append(f"version: {version}")
    lines += [
        f"status: {status}",
        "task: classification",
        "project: demo",
        "source:",
        f"  repo: {source_repo}",
        "config: config.yaml",
        f"weights: {weights_file}",
    ]
    if size is not None:
        lines.append(f"size: {size}")
    lines += [
        "metrics:",
        "  - name: accuracy",
        "    value: 0.93",
        "    dataset: digits-test",
        "license: Apache-2.0",
    ]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def registry_repo(tmp_path) -> Registry:
    """An empty registry: git + DVC, remotes `staging` and `public` in local folders."""
    root = tmp_path / "registry"
    storage = tmp_path / "storage"
    root.mkdir()
    run(["git", "init", "-q", "-b", "main"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    (root / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = public\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
        f"['remote \"public\"']\n    url = {storage / 'public'}\n")
    (root / "models").mkdir()
    (root / "models" / ".gitkeep").write_text("")
    reg = Registry(root, storage)
    reg.commit(message="empty registry")
    return reg


def mlp_onnx(seed: int = 0, hidden: int = 16, inputs: int = 8, classes: int = 3, opset: int = 17) -> bytes:
    """A small real classifier (Gemm → Relu → Gemm → Softmax) with fixed random weights."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((inputs, hidden)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, classes)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.standard_normal(classes).astype(np.float32), "b2")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
         helper.make_node("Relu", ["h"], ["hr"]),
         helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", inputs])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        initializer=[w1, b1, w2, b2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="registry-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


@pytest.fixture
def onnx_bytes() -> bytes:
    """Bytes of a small valid ONNX classifier."""
    return mlp_onnx()


@pytest.fixture
def project_root() -> Path:
    return REPO_ROOT


# --------------------------------------------------------------------------- compress fixtures

def _torch_onnx_export(module, example, path: Path, input_name: str = "input", output_name: str = "probabilities"):
    import warnings

    import torch

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}}, opset_version=17,
                          dynamo=False)
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


@pytest.fixture(scope="session")
def digits_cnn(tmp_path_factory) -> Path:
    """A real digits classifier (sklearn's 8x8 digits), a small CNN trained here, with its card and data.

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
    body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(body.parameters(), lr=3e-3)
    xt, yt = torch.tensor(xtr), torch.tensor(ytr)
    for _ in range(25):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(body(xt[idx]), yt[idx]).backward()
            opt.step()
    model = nn.Sequential(body, nn.Softmax(dim=-1)).eval()
    with torch.no_grad():
        acc = float((model(torch.tensor(xev)).argmax(1).numpy() == yev).mean())
    folder = tmp_path_factory.mktemp("digits-cnn")
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
"""


@pytest.fixture(scope="session")
def text_embedder(tmp_path_factory) -> Path:
    """A small transformer encoder (2 blocks, 4 heads, d=64) trained here to embed token sequences by topic.

    Like large trained encoders, it carries outlier features: two channels of its last LayerNorm
    are 100x the others (the head's matching weights are scaled down, so the fp32 function is
    unchanged). Per-tensor dynamic int8 loses those channels' neighbours, which is what the
    fallback chain must notice. The folder holds model.onnx (input `input_ids`, output
    `embedding`), model.yaml and eval.npz (`input_ids`).
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
            n, l, d = x.shape
            q, k, v = self.qkv(x).reshape(n, l, 3, H, d // H).permute(2, 0, 3, 1, 4)
            a = torch.softmax(q @ k.transpose(-1, -2) / (d // H) ** 0.5, dim=-1) @ v
            x = self.ln1(x + self.proj(a.transpose(1, 2).reshape(n, l, d)))
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
    folder = tmp_path_factory.mktemp("text-embedder")
    _torch_onnx_export(enc, ids[:1], folder / "model.onnx", "input_ids", "embedding")
    np.savez(folder / "eval.npz", input_ids=ids.numpy())
    (folder / "config.yaml").write_text("architecture: transformer-encoder\nlayers: 2\nd_model: 64\n")
    (folder / "model.yaml").write_text(EMBEDDER_CARD)
    return folder
