"""A registry holding the repository's own training files and example datasets (DVC-tracked)."""

from __future__ import annotations

import shutil

import pytest
from factories import REPO_ROOT, init_registry


def copy_training_files(root, tasks=("digits-cnn", "digits-embedding", "wine-mlp")) -> None:
    """Copy datasets/*/dataset.yaml + data and training/ (layers, structures, algorithms, the tasks)."""
    for ds in ("digits", "wine"):
        src = REPO_ROOT / "datasets" / ds
        (root / "datasets" / ds).mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "dataset.yaml", root / "datasets" / ds / "dataset.yaml")
    shutil.copy(REPO_ROOT / "datasets/digits/digits.npz", root / "datasets/digits/digits.npz")
    shutil.copy(REPO_ROOT / "datasets/wine/wine.csv", root / "datasets/wine/wine.csv")
    for sub in ("layers", "structures", "algorithms"):
        shutil.copytree(REPO_ROOT / "training" / sub, root / "training" / sub)
    for task in tasks:
        (root / "training" / task).mkdir(parents=True)
        shutil.copy(REPO_ROOT / "training" / task / "task.yaml", root / "training" / task / "task.yaml")
    shutil.copy(REPO_ROOT / "training" / ".gitignore", root / "training" / ".gitignore")


@pytest.fixture
def training_registry(tmp_path):
    """A registry (git + DVC, local staging/public remotes) with the example training files committed
    and the example datasets DVC-tracked and pushed to staging."""
    reg = init_registry(tmp_path / "registry", tmp_path / "storage")
    reg.write({"models/.gitkeep": ""})
    copy_training_files(reg.root)
    reg.dvc("add", "-q", "datasets/digits/digits.npz", "datasets/wine/wine.csv")
    reg.dvc("push", "-q", "-r", "staging", "datasets/digits/digits.npz.dvc", "datasets/wine/wine.csv.dvc")
    reg.commit(message="training files")
    return reg


@pytest.fixture
def training_tree(tmp_path):
    """The example training files and datasets in a plain folder (no git, no DVC): for the static checks."""
    root = tmp_path / "tree"
    root.mkdir()
    copy_training_files(root)
    return root
