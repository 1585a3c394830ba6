"""Shared fixtures: real temporary registries (git + DVC with local remotes) and real ONNX models.

Every test runs with HOME and git's global config pointed into its own temporary folder, so no
test reads or writes the developer's settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import (  # noqa: F401
    BIN,
    FAST,
    REPO_ROOT,
    Registry,
    S3Server,
    _build_published,
    conv_onnx,
    example_card,
    free_port,
    init_registry,
    isolated_env,
    mlp_onnx,
    publish_version,
    run,
    use_s3_remote,
    withdraw_version,
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
    reg = init_registry(tmp_path / "registry", tmp_path / "storage")
    reg.write({"models/.gitkeep": ""})
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
    """Run the bot in-process on a test registry: `check_models(reg, "name", base=…, head=…,
    **options)`.

    Content checks are off unless `content=True` is passed; returns the `CheckReport`.
    """
    from registry.checks import CheckOptions, check_revisions
    from registry.core.repo import RegistryRepo

    def run_check(
        reg: Registry,
        *names: str,
        base: str | None = None,
        head: str | None = None,
        all_models: bool = False,
        **options,
    ):
        options.setdefault("content", False)
        return check_revisions(
            RegistryRepo(reg.root),
            names=names,
            all_models=all_models,
            base=base,
            head=head,
            options=CheckOptions(**options),
        )

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


# --------------------------------------------------------------------------- consume: published
# versions


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


@pytest.fixture
def s3_server(tmp_path):
    """An S3 server for one test, with an empty bucket `registry` (made before it starts, so it
    is listed: the server caches folder listings)."""
    (tmp_path / "s3" / "registry").mkdir(parents=True)
    server = S3Server(tmp_path / "s3")
    yield server
    server.stop()
