"""Builders the tests share: real temporary registries, real ONNX models, example cards.

Imported by tests as `from factories import …` (tests/ is on pytest's pythonpath).
"""

from __future__ import annotations

import contextlib
import os
import random
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


def run(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
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

    def registry(
        self, *args: str, env: dict | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Run the real `registry` command line (a subprocess, as users and workflows do)."""
        full_env = {**os.environ, **(env or {})}
        return run(
            [sys.executable, "-m", "registry", *args], cwd or self.root, check=False, env=full_env
        )

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

    def add_model(
        self,
        name: str,
        weights: bytes,
        card: str | None = None,
        *,
        weights_file: str = "model.onnx",
        push: bool = True,
        commit: bool = True,
        **fields,
    ) -> Path:
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


def two_commit_clone(path: Path) -> Path:
    """A bare-bones git clone at `path` (branch main) with two commits changing one file."""
    path.mkdir()
    run(["git", "init", "-q", "-b", "main"], path)
    for n in (1, 2):
        (path / "f").write_text(str(n))
        run(["git", "add", "f"], path)
        run(["git", "commit", "-q", "-m", f"c{n}"], path)
    return path


def example_card(
    name: str,
    *,
    weights_file: str = "model.onnx",
    size: int | None = None,
    version: str | None = None,
    status: str = "unpublished",
    source_repo: str = "https://github.com/example/train.git",
    extra: str = "",
) -> str:
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


def mlp_onnx(
    seed: int = 0, hidden: int = 16, inputs: int = 8, classes: int = 3, opset: int = 17
) -> bytes:
    """A small real classifier (Gemm → Relu → Gemm → Softmax) with fixed random weights."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((inputs, hidden)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, classes)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.standard_normal(classes).astype(np.float32), "b2")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", inputs])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        initializer=[w1, b1, w2, b2],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="registry-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def conv_onnx(seed: int = 0, channels: int = 8, classes: int = 5, size: int = 16) -> bytes:
    """A small real CNN (Conv → Relu → Conv → Relu → GlobalAveragePool → Flatten → Gemm), NCHW."""
    rng = np.random.default_rng(seed)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv", ["image", "c1w", "c1b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"
            ),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            helper.make_node("Conv", ["r1", "c2w", "c2b"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
            helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
            helper.make_node("GlobalAveragePool", ["r2"], ["pool"], name="pool"),
            helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
            helper.make_node("Gemm", ["flat", "fcw", "fcb"], ["logits"], transB=1, name="fc"),
        ],
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=[
            init("c1w", channels, 3, 3, 3),
            init("c1b", channels),
            init("c2w", channels, channels, 3, 3),
            init("c2b", channels),
            init("fcw", classes, channels),
            init("fcb", classes),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="registry-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write_package_source(
    folder: Path,
    weights: bytes,
    targets_yaml: str,
    *,
    name: str = "mlp",
    version: str = "1.0.0",
    files: dict[str, bytes] | None = None,
    pytorch: bytes | None = None,
) -> tuple[Path, Path]:
    """A local model folder for `registry package --model --card`: weights, card, config, extra
    files, and the PyTorch source as model.pt2 (`pytorch:` in the card) when given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(weights)
    (folder / "config.yaml").write_text("epochs: 3\n")
    extra = "targets:\n" + textwrap.dedent(targets_yaml)
    if pytorch is not None:
        (folder / "model.pt2").write_bytes(pytorch)
        extra = "pytorch: model.pt2\n" + extra
    card = example_card(name, version=version, status="published", extra=extra)
    (folder / "model.yaml").write_text(card)
    for rel, data in (files or {}).items():
        (folder / rel).write_bytes(data)
    return folder / "model.onnx", folder / "model.yaml"


def torch_sources(
    module=None,
    example=None,
    *,
    seed: int = 0,
    input_name: str = "input",
    output_name: str = "probabilities",
    dynamic_batch: bool = False,
) -> tuple[bytes, bytes]:
    """One real PyTorch model exported twice, as a card with `pytorch:` holds it: ONNX (the
    weights, batch dimension symbolic) and a `.pt2` ExportedProgram (torch.export.save).

    Default: a small classifier (Linear → ReLU → Linear → Softmax) on 8 features, seeded weights.
    The `.pt2` fixes the example's batch unless `dynamic_batch` (the ONNX always leaves it free).
    """
    import io
    import tempfile

    import torch

    torch.manual_seed(seed)
    if module is None:
        module = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3), torch.nn.Softmax(-1)
        )
        example = torch.randn(1, 8)
    module = module.eval()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            module,
            (example,),
            str(onnx_path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        onnx_bytes = onnx_path.read_bytes()
    buf = io.BytesIO()
    if dynamic_batch:  # torch fixes a dimension of size 1: export on a batch of 2
        pair = torch.cat([example, example])
        batch = {0: torch.export.Dim("batch", min=1, max=1024)}
        program = torch.export.export(module, (pair,), dynamic_shapes=(batch,))
    else:
        program = torch.export.export(module, (example,))
    torch.export.save(program, buf)
    return onnx_bytes, buf.getvalue()


# Fast benchmark settings for tests: correctness of the choice, not meaningful figures.
FAST = {"repeats": 3, "warmup": 1, "threads": [1]}


def publish_version(
    reg: Registry,
    name: str,
    version: str,
    *,
    weights: bytes | None = None,
    notes: str | None = None,
    date: str | None = None,
    **card_fields,
) -> str:
    """Test fixture doing what a merged publish does, without the publish command: set the card's
    version and status (published, or updated after a first version) and commit, copy the weights
    object from the staging folder to the public folder, and make the annotated tag
    `<name>@v<version>` whose message is the notes. Returns the tagged commit."""
    import shutil

    from registry.cards.writer import edit_card_text
    from registry.core.storage import parse_pointer

    folder = reg.root / "models" / name
    card_path = folder / "model.yaml"
    text = card_path.read_text()
    import yaml as _yaml

    current = _yaml.safe_load(text)
    if weights is not None:
        reg.track(f"models/{name}/{current['weights']}", weights)
        card_fields["size"] = len(weights)
    status = "published" if current.get("status", "unpublished") == "unpublished" else "updated"
    updates = {("version",): version, ("status",): status}
    updates.update({(k,): v for k, v in card_fields.items()})
    card_path.write_text(edit_card_text(text, updates))
    commit = reg.commit(message=f"publish {name} {version}")
    pointer = parse_pointer((folder / f"{current['weights']}.dvc").read_text())
    rel = Path("files") / "md5" / pointer.md5[:2] / pointer.md5[2:]
    (reg.storage / "public" / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reg.storage / "staging" / rel, reg.storage / "public" / rel)
    env = {**os.environ, **({"GIT_COMMITTER_DATE": date} if date else {})}
    run(
        ["git", "tag", "-a", f"{name}@v{version}", "-m", notes or f"{name} {version}", commit],
        reg.root,
        env=env,
    )
    return commit


def withdraw_version(reg: Registry, name: str, version: str, counter: int = 1) -> str:
    """Test fixture: the GTO deregistration tag `<name>@v<version>!#<n>` that withdraws a
    version."""
    tag = f"{name}@v{version}!#{counter}"
    commit = reg.git("rev-list", "-n", "1", f"{name}@v{version}")
    reg.git("tag", "-a", tag, "-m", f"withdraw {name} {version}", commit)
    return tag


def init_registry(root: Path, storage: Path) -> Registry:
    """An empty registry in `root`: git + DVC, remotes `staging` and `public` as folders under
    `storage`."""
    root.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    (root / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = public\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
        f"['remote \"public\"']\n    url = {storage / 'public'}\n"
    )
    return Registry(root, storage)


def _build_published(tmp: Path) -> Registry:
    """The registry behind `published_registry`, built in `tmp`."""
    reg = init_registry(tmp / "registry", tmp / "storage")
    reg.write({"models/.gitkeep": ""})
    reg.commit(message="empty registry")
    reg.add_model("digits", mlp_onnx(1), extra="description: Handwritten digits\n")
    publish_version(reg, "digits", "1.0.0", notes="first release", date="2026-01-01T10:00:00+00:00")
    publish_version(
        reg,
        "digits",
        "1.1.0",
        weights=mlp_onnx(2),
        notes="better weights",
        date="2026-02-01T10:00:00+00:00",
    )
    reg.add_model("draft", mlp_onnx(3))
    return reg


@contextlib.contextmanager
def isolated_env(home: Path):
    """The environment `isolated_home` gives a test, for fixtures built once per module or
    session."""
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            mp.setenv(var, "Registry Tests")
        for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            mp.setenv(var, "tests@registry.invalid")
        mp.setenv("DVC_NO_ANALYTICS", "1")
        mp.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.delenv("GITHUB_STEP_SUMMARY", raising=False)
        mp.delenv("GITHUB_OUTPUT", raising=False)
        yield


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """`rclone serve s3` on 127.0.0.1 over a local folder (each top-level folder is a bucket)."""

    ACCESS, SECRET = "registry-test-key", "registry-test-secret"

    def __init__(self, root: Path, read_only: bool = False):
        import time
        import urllib.error
        import urllib.request

        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(BIN / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--auth-key",
            f"{self.ACCESS},{self.SECRET}",
            "--config",
            "/dev/null",
            str(root),
        ]
        if read_only:
            cmd.append("--read-only")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rclone serve s3 exited: {self.proc.stderr.read().decode()}")
            try:
                urllib.request.urlopen(self.url, timeout=1)
                return
            except urllib.error.HTTPError:
                return  # answering (403 without credentials): it is up
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("rclone serve s3 did not start within 20 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def use_s3_remote(reg: Registry, remote: str, server_url: str, bucket_path: str) -> None:
    """Point one of the registry's DVC remotes at an S3 server; keys go to .dvc/config.local."""
    reg.dvc("remote", "modify", remote, "url", f"s3://{bucket_path}")
    reg.dvc("remote", "modify", remote, "endpointurl", server_url)
    reg.dvc("remote", "modify", "--local", remote, "access_key_id", S3Server.ACCESS)
    reg.dvc("remote", "modify", "--local", remote, "secret_access_key", S3Server.SECRET)


def registry_cli(root: Path, *args: str, capsys) -> tuple[int, str, str]:
    """Run the real command line in-process through its error funnel: (exit code, stdout,
    stderr)."""
    from registry.cli import main

    try:
        main(["-C", str(root), *args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


# Seconds a hostile-file run may take before it counts as hung: a guard, not a speed claim (the
# bot's speed on those files is measured by benchmarks/hostile_bench.py, quoted in
# docs/security.md).
HANG = 60


def run_bounded(
    cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 60
) -> tuple[int, str, str, float, int]:
    """Run a command and measure it: (exit code, stdout, stderr, seconds, peak resident bytes).

    The peak is the child's own (`wait4`), so a test can show that a hostile file is answered
    within a time and memory budget.
    """
    import tempfile
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=err, env={**os.environ, **(env or {})}
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
            usage.ru_maxrss * 1024,
        )


def typed(value):
    """A value with its types spelled out (1, 1.0 and True are equal in Python, not in a card)."""
    if isinstance(value, dict):
        return {"dict": [(typed(k), typed(v)) for k, v in value.items()]}
    if isinstance(value, list):
        return {"list": [typed(v) for v in value]}
    return (type(value).__name__, value)


# ---- damaged inputs: what a careless or hostile pull request can make of a valid file

# Values a pull request could put anywhere: empty, nested, huge, non-finite, typed, links, control
# characters, YAML's own syntax, paths that climb out, and (for the Python files) hostile code.
ATOMS = [
    "", "null", "~", "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: 1}}}", "1e999", ".nan", "-.inf",
    "0x1F", "9" * 400, "'\\u0000'", '"\\x00"', "é🙂", "!!binary aGVsbG8=", "2001-12-14", "yes",
    "&a x", "*a", "? complex", "|\n  block", "../../etc/passwd", "/abs/path", "model.onnx/..",
    "-", ":", "'", '"', "#", "@", "%", "\t", "\x85", "\u2028", "[N, 8]", "[-1]", "[0, 0]",
    "{type: Linear}", "Linear", "digits", "def f(:", "raise SystemExit", "while True: pass",
    "__import__('os')", "OUTPUT_SHAPE = [1, 2]", "OUTPUT_SHAPE = None",
]  # fmt: skip


def mutate(text: str, rnd: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rnd.randint(1, 4)):
        op, i = rnd.randrange(6), rnd.randrange(len(lines)) if lines else 0
        if op == 0 and lines:
            del lines[i]
        elif op == 1 and lines:
            lines.insert(i, lines[rnd.randrange(len(lines))])
        elif op == 2 and lines and ":" in lines[i]:
            lines[i] = f"{lines[i].split(':', 1)[0]}: {rnd.choice(ATOMS)}"
        elif op == 3 and lines:
            lines[i] = "  " * rnd.randint(0, 5) + lines[i].lstrip()
        elif op == 4:
            lines.insert(i, rnd.choice(ATOMS))
        elif lines:
            j = rnd.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:j] + rnd.choice(ATOMS) + lines[i][j:]
    return "\n".join(lines)


def damaged(text: str, rnd: random.Random) -> bytes:
    data = mutate(text, rnd).encode("utf-8", "surrogatepass")
    if rnd.random() < 0.1:  # and now and then a few bytes flipped (not UTF-8 any more)
        raw = bytearray(data)
        for _ in range(3):
            if raw:
                raw[rnd.randrange(len(raw))] = rnd.randrange(256)
        data = bytes(raw)
    return data
