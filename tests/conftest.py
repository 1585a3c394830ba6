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


# ---- publish: a git remote to push tags to, and an S3 server for remotes

@pytest.fixture
def origin(registry_repo) -> Path:
    """A bare repository registered as the registry's `origin`, with `main` pushed to it."""
    bare = registry_repo.root.parent / "origin.git"
    run(["git", "init", "-q", "--bare", str(bare)], registry_repo.root.parent)
    registry_repo.git("remote", "add", "origin", str(bare))
    registry_repo.git("push", "-q", "origin", "main")
    return bare


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
        cmd = [str(BIN / "rclone"), "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
               "--auth-key", f"{self.ACCESS},{self.SECRET}", "--config", "/dev/null",
               str(root)]
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


@pytest.fixture
def s3_server(tmp_path):
    """An S3 server for one test, with an empty bucket `registry` (made before it starts, so it
    is listed: the server caches folder listings)."""
    (tmp_path / "s3" / "registry").mkdir(parents=True)
    server = S3Server(tmp_path / "s3")
    yield server
    server.stop()
