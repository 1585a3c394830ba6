"""Benchmark: `registry publish` of one 100 MB model vs a plain `dvc push` of the same object.

Both write the same object to the same empty local `public` remote. `registry publish` also
reads the object back to verify it, summarises the model for the release notes, tags, pushes the
tag to a local bare repository and writes the changelog. Each command runs as a user runs it (a
fresh process); the median of --repeat runs is reported and written to docs/benchmarks.md under
`## registry publish`.

    .venv/bin/python benchmarks/publish_bench.py [--size-mb 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECTION = "## registry publish"
NAME = "big-model"


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


def big_onnx(size_mb: int) -> bytes:
    """A real ONNX model (MatMul with one large initializer) of about `size_mb` MB."""
    n = size_mb * 1_000_000 // 4 // 1000
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((1000, n)).astype(np.float32), "w"
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def card(version: str | None, status: str, size: int) -> str:
    return (
        f"name: {NAME}\n"
        + (f"version: {version}\n" if version else "")
        + f"status: {status}\ntask: classification\nproject: bench\nsource:\n"
        f"  repo: https://github.com/example/train.git\nconfig: config.yaml\nweights: model.onnx\n"
        f"size: {size}\nmetrics:\n  - name: accuracy\n    value: 0.9\n    dataset: test\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@registry.invalid",
        "GIT_COMMITTER_EMAIL": "bench@registry.invalid",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        tmp = Path(tmp)
        repo, storage, origin = tmp / "registry", tmp / "storage", tmp / "origin.git"
        repo.mkdir()
        sh(["git", "init", "-q", "-b", "main"], repo, env)
        sh(["git", "init", "-q", "--bare", str(origin)], tmp, env)
        sh([str(BIN / "dvc"), "init", "-q"], repo, env)
        (repo / ".dvc" / "config").write_text(
            "[core]\n    analytics = false\n    remote = public\n"
            f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
            f"['remote \"public\"']\n    url = {storage / 'public'}\n"
        )
        folder = repo / "models" / NAME
        folder.mkdir(parents=True)
        data = big_onnx(args.size_mb)
        (folder / "model.onnx").write_bytes(data)
        (folder / "config.yaml").write_text("epochs: 1\n")
        sh([str(BIN / "dvc"), "add", "-q", "models/big-model/model.onnx"], repo, env)
        sh([str(BIN / "dvc"), "push", "-q", "-r", "staging"], repo, env)
        (folder / "model.yaml").write_text(card(None, "unpublished", len(data)))
        sh(["git", "add", "-A"], repo, env)
        sh(["git", "commit", "-qm", "add"], repo, env)
        sh(["git", "remote", "add", "origin", str(origin)], repo, env)
        sh(["git", "push", "-q", "origin", "main"], repo, env)
        base = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        (folder / "model.yaml").write_text(card("1.0.0", "published", len(data)))
        sh(["git", "commit", "-qam", "publish"], repo, env)

        publish_cmd = [
            sys.executable,
            "-m",
            "registry",
            "publish",
            "--base",
            base,
            "--head",
            "HEAD",
        ]
        push_cmd = [
            str(BIN / "dvc"),
            "push",
            "-q",
            "-r",
            "public",
            "models/big-model/model.onnx.dvc",
        ]
        times: dict[str, list[float]] = {"registry publish": [], "dvc push": []}
        for _ in range(args.repeat):
            for label, cmd in (("registry publish", publish_cmd), ("dvc push", push_cmd)):
                shutil.rmtree(storage / "public", ignore_errors=True)
                subprocess.run(
                    ["git", "tag", "-d", f"{NAME}@v1.0.0"], cwd=repo, capture_output=True
                )
                subprocess.run(
                    ["git", "push", "-q", "origin", f":refs/tags/{NAME}@v1.0.0"],
                    cwd=repo,
                    capture_output=True,
                )
                (folder / "CHANGELOG.md").unlink(missing_ok=True)
                start = time.perf_counter()
                sh(cmd, repo, env)
                times[label].append(time.perf_counter() - start)
                assert (storage / "public" / "files" / "md5").is_dir(), f"{label} wrote nothing"
        # the parts `dvc push` does not have, timed alone: the copy with its read-back
        # verification, and the model summary of the release notes
        from registry.core.transfer import _copy_reading_back
        from registry.formats.summary import summarize

        obj = next(p for p in (storage / "public" / "files" / "md5").rglob("*") if p.is_file())
        start = time.perf_counter()
        _copy_reading_back(str(obj), str(tmp / "copy"))
        verify_s = time.perf_counter() - start
        start = time.perf_counter()
        summarize(obj, md5="0" * 32)
        summary_s = time.perf_counter() - start
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["registry publish"] / med["dvc push"]
    size = len(data) / 1e6
    lines = [
        SECTION,
        "",
        f"One {size:.0f} MB ONNX model, local-folder remotes, median of {args.repeat} runs, each a "
        f"fresh process.",
        "`registry publish` copies staging → public, reads the object back to verify md5 and size, "
        "builds the",
        "release notes (graph summary), tags, pushes the tag to a local bare repository and writes "
        "CHANGELOG.md;",
        "`dvc push -r public` copies the same object from the DVC cache to the same empty remote.",
        "",
        "| command | median s | runs (s) |",
        "| --- | ---: | --- |",
        *[
            f"| `{k}` | {med[k]:.2f} | {', '.join(f'{t:.2f}' for t in v)} |"
            for k, v in times.items()
        ],
        "",
        f"Ratio publish / dvc push: **{ratio:.2f}×** (target ≤ 1.2×"
        + (", met)." if ratio <= 1.2 else ", not met)."),
        "",
        "What publishing does beyond the copy: the object is copied in the kernel a chunk at a "
        "time while a",
        "second thread reads each chunk back from `public` and hashes it (copy and verification "
        "together:",
        f"{verify_s:.2f} s alone; the object gets its name only after the md5 matches); the "
        f"release notes'",
        "model summary reads the ONNX structure from the protobuf wire format, skipping the "
        "tensors' bytes",
        f"({summary_s * 1000:.1f} ms alone for this model); the notes' imports and template are "
        f"loaded in a thread",
        "while the copy runs; then the tag, `git push` of the tag, and CHANGELOG.md. Start-up and "
        "exit are",
        "kept short: metric names need no numpy, the summary needs no onnx, and the objects alive "
        "at the end",
        "are frozen out of the collector so the interpreter's last sweep skips them.",
        "",
        f"Command: `.venv/bin/python benchmarks/publish_bench.py --size-mb {args.size_mb} --repeat "
        f"{args.repeat}`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    doc = ROOT / "docs" / "benchmarks.md"
    old = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    new = (
        pattern.sub(lambda _: text + "\n", old)
        if pattern.search(old)
        else old.rstrip("\n") + "\n\n" + text
    )
    doc.write_text(new.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
