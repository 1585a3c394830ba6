"""Shared fixtures: real temporary registries (git + DVC with local remotes) and real ONNX models.

Every test runs with HOME and git's global config pointed into its own temporary folder, so no
test reads or writes the developer's settings.
"""

from __future__ import annotations

import os
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
