"""Builders the tests share: real temporary registries, real ONNX models, example cards.

Imported by tests as `from factories import …` (tests/ is on pytest's pythonpath).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parent.parent


BIN = Path(sys.executable).parent


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


def conv_onnx(seed: int = 0, channels: int = 8, classes: int = 5, size: int = 16) -> bytes:
    """A small real CNN (Conv → Relu → Conv → Relu → GlobalAveragePool → Flatten → Gemm), NCHW."""
    rng = np.random.default_rng(seed)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "c1w", "c1b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
         helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
         helper.make_node("Conv", ["r1", "c2w", "c2b"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
         helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
         helper.make_node("GlobalAveragePool", ["r2"], ["pool"], name="pool"),
         helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
         helper.make_node("Gemm", ["flat", "fcw", "fcb"], ["logits"], transB=1, name="fc")],
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=[init("c1w", channels, 3, 3, 3), init("c1b", channels),
                     init("c2w", channels, channels, 3, 3), init("c2b", channels),
                     init("fcw", classes, channels), init("fcb", classes)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="registry-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write_package_source(folder: Path, weights: bytes, targets_yaml: str, *, name: str = "mlp",
                         version: str = "1.0.0", files: dict[str, bytes] | None = None) -> tuple[Path, Path]:
    """A local model folder for `registry package --model --card`: weights, card, config, extra files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(weights)
    (folder / "config.yaml").write_text("epochs: 3\n")
    card = example_card(name, version=version, status="published", extra="targets:\n" + textwrap.dedent(targets_yaml))
    (folder / "model.yaml").write_text(card)
    for rel, data in (files or {}).items():
        (folder / rel).write_bytes(data)
    return folder / "model.onnx", folder / "model.yaml"


# Fast benchmark settings for tests: correctness of the choice, not meaningful figures.
FAST = {"repeats": 3, "warmup": 1, "threads": [1]}
