"""Time and memory of the bot on hostile files; writes its figures to docs/security.md.

Builds a small registry (git + DVC, local remotes, one real ONNX model), then for each hostile
file commits it on a pull-request branch and runs the real command line
`registry check --base main --head pr --format json` in a child process, measuring its wall time
and peak resident memory (`wait4`). The gate's promise is an answer (a finding naming the file,
exit 1) within 10 s and 1 GiB for each.

Usage:
    .venv/bin/python benchmarks/hostile_bench.py [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
BEGIN, END = "<!-- hostile-bench:begin -->", "<!-- hostile-bench:end -->"
BIN = Path(sys.executable).parent

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi")
)
CARD = """name: tiny
status: unpublished
task: classification
project: demo
source:
  repo: https://github.com/example/train.git
config: {config}
weights: model.onnx
metrics:
  - name: accuracy
    value: 0.9
    dataset: test
"""


def sh(cwd: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def tiny_onnx() -> bytes:
    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def registry(tmp: Path) -> Path:
    root = tmp / "registry"
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, str(BIN / "dvc"), "init", "-q")
    (root / ".dvc" / "config").write_text(
        f"[core]\n    analytics = false\n['remote \"staging\"']\n    url = "
        f"{tmp / 'staging'}\n['remote \"public\"']\n    url = {tmp / 'public'}\n"
    )
    folder = root / "models" / "tiny"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(tiny_onnx())
    sh(root, str(BIN / "dvc"), "add", "-q", "models/tiny/model.onnx")
    sh(root, str(BIN / "dvc"), "push", "-q", "-r", "staging", "models/tiny/model.onnx.dvc")
    (folder / "config.yaml").write_text("epochs: 3\n")
    (folder / "model.yaml").write_text(CARD.format(config="config.yaml"))
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "tiny")
    return root


CASES = {
    "YAML alias bomb in a .dvc pointer": {"models/tiny/model.onnx.dvc": ALIAS_BOMB + "outs: *i\n"},
    "YAML alias bomb in dvc.yaml": {"dvc.yaml": ALIAS_BOMB + "artifacts: *i\n"},
    "100,000-deep config.json": {
        "models/tiny/config.json": "[" * 100_000 + "]" * 100_000,
        "models/tiny/model.yaml": CARD.format(config="config.json"),
    },
    "100,000-deep config.yaml": {
        "models/tiny/config.yaml": "x: " + "[" * 100_000 + "]" * 100_000 + "\n"
    },
    "CHANGELOG.md linked to /proc/self/environ": {
        "models/tiny/CHANGELOG.md": Path("/proc/self/environ")
    },
}


def measure(root: Path, files: dict) -> tuple[int, float, int]:
    sh(root, "git", "checkout", "-q", "-B", "pr", "main")
    for rel, content in files.items():
        path = root / rel
        if isinstance(content, Path):
            os.symlink(content, path)
        else:
            path.write_text(content)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "hostile")
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registry",
            "check",
            "--base",
            "main",
            "--head",
            "pr",
            "--format",
            "json",
            "--offline",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    json.loads(out)  # a report, not a crash
    sh(root, "git", "checkout", "-q", "main")
    return os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave docs/security.md alone"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        root = registry(Path(tmp))
        for name, files in CASES.items():
            code, seconds, rss = measure(root, files)
            rows.append(f"| {name} | {code} | {seconds:.2f} s | {rss / 2**20:.0f} MiB |")
    table = "\n".join(
        ["| hostile file | exit | wall time | peak memory |", "| --- | --- | --- | --- |", *rows]
    )
    print(table)
    if not args.no_write:
        text = DOC.read_text()
        block = f"{BEGIN}\n{table}\n{END}"
        DOC.write_text(
            re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        )


if __name__ == "__main__":
    main()
