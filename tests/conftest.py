"""Shared fixtures: real temporary registries (git + DVC with local remotes) and real ONNX models.

Every test runs with HOME and git's global config pointed into its own temporary folder, so no
test reads or writes the developer's settings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from factories import (  # noqa: F401
    BIN,
    FAST,
    REPO_ROOT,
    Registry,
    conv_onnx,
    example_card,
    mlp_onnx,
    run,
    write_package_source,
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory):
    """A private HOME and git identity for every test."""
    home = tmp_path_factory.mktemp("home")
    with isolated_env(home):
        yield home


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


@pytest.fixture
def onnx_bytes() -> bytes:
    """Bytes of a small valid ONNX classifier."""
    return mlp_onnx()


@pytest.fixture
def project_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def check_models():
    """Run the bot in-process on a test registry: `check_models(reg, "name", base=…, head=…, **options)`.

    Content checks are off unless `content=True` is passed; returns the `CheckReport`.
    """
    from registry.checks import CheckOptions, check_revisions
    from registry.repo import RegistryRepo

    def run_check(reg: Registry, *names: str, base: str | None = None, head: str | None = None,
                  all_models: bool = False, **options):
        options.setdefault("content", False)
        return check_revisions(RegistryRepo(reg.root), names=names, all_models=all_models, base=base,
                               head=head, options=CheckOptions(**options))

    return run_check


@pytest.fixture(scope="session")
def digits_cnn(tmp_path_factory) -> Path:
    """A real digits CNN with card (evaluation + compress sections), eval.npz and train.npz."""
    from compress_models import build_digits_cnn

    return build_digits_cnn(tmp_path_factory.mktemp("digits-cnn"))


@pytest.fixture(scope="session")
def text_embedder(tmp_path_factory) -> Path:
    """A small trained transformer encoder with outlier features, its card and eval.npz."""
    from compress_models import build_text_embedder

    return build_text_embedder(tmp_path_factory.mktemp("text-embedder"))
# --------------------------------------------------------------------------- consume: published versions

def publish_version(reg: Registry, name: str, version: str, *, weights: bytes | None = None,
                    notes: str | None = None, date: str | None = None, **card_fields) -> str:
    """Test fixture doing what a merged publish does, without the publish command: set the card's
    version and status (published, or updated after a first version) and commit, copy the weights
    object from the staging folder to the public folder, and make the annotated tag
    `<name>@v<version>` whose message is the notes. Returns the tagged commit."""
    import shutil

    from registry.lifecycle_ops import edit_card_text
    from registry.storage import parse_pointer

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
    run(["git", "tag", "-a", f"{name}@v{version}", "-m", notes or f"{name} {version}", commit], reg.root, env=env)
    return commit


def withdraw_version(reg: Registry, name: str, version: str, counter: int = 1) -> str:
    """Test fixture: the GTO deregistration tag `<name>@v<version>!#<n>` that withdraws a version."""
    tag = f"{name}@v{version}!#{counter}"
    commit = reg.git("rev-list", "-n", "1", f"{name}@v{version}")
    reg.git("tag", "-a", tag, "-m", f"withdraw {name} {version}", commit)
    return tag


def _build_published(tmp: Path) -> Registry:
    """The registry behind `published_registry`, built in `tmp`."""
    root, storage = tmp / "registry", tmp / "storage"
    root.mkdir()
    run(["git", "init", "-q", "-b", "main"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    (root / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = public\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
        f"['remote \"public\"']\n    url = {storage / 'public'}\n")
    reg = Registry(root, storage)
    reg.write({"models/.gitkeep": ""})
    reg.commit(message="empty registry")
    reg.add_model("digits", mlp_onnx(1), extra="description: Handwritten digits\n")
    publish_version(reg, "digits", "1.0.0", notes="first release", date="2026-01-01T10:00:00+00:00")
    publish_version(reg, "digits", "1.1.0", weights=mlp_onnx(2), notes="better weights",
                    date="2026-02-01T10:00:00+00:00")
    reg.add_model("draft", mlp_onnx(3))
    return reg


import contextlib  # noqa: E402  (kept in this section to leave the shared header alone)


@contextlib.contextmanager
def isolated_env(home: Path):
    """The environment `isolated_home` gives a test, for fixtures built once per module or session."""
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
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


@pytest.fixture(scope="session")
def _published_template(tmp_path_factory) -> Registry:
    with isolated_env(tmp_path_factory.mktemp("template-home")):
        return _build_published(tmp_path_factory.mktemp("published-template"))


@pytest.fixture
def published_registry(_published_template, tmp_path) -> Registry:
    """A registry with model `digits` published at 1.0.0 (notes 'first release') and 1.1.0 (new
    weights, notes 'better weights'), and an unpublished model `draft`. Built once per session and
    copied for each test (remote URLs rewritten to the copy)."""
    import shutil

    src = _published_template
    root, storage = tmp_path / "registry", tmp_path / "storage"
    shutil.copytree(src.root, root, symlinks=True)
    shutil.copytree(src.storage, storage, symlinks=True)
    config = root / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(src.storage), str(storage)))
    return Registry(root, storage)
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
