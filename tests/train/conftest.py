"""A registry holding the repository's own training files and example datasets (DVC-tracked)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from factories import REPO_ROOT, init_registry
from registry.core.storage import parse_pointer


def committed_data(rel: str) -> Path:
    """The bytes an example dataset's committed pointer names, from examples/store (as a fresh clone
    has them: the data file itself is not in git)."""
    pointer = parse_pointer((REPO_ROOT / f"{rel}.dvc").read_text())
    stored = REPO_ROOT / "examples" / "store" / "files" / "md5" / pointer.md5[:2] / pointer.md5[2:]
    assert stored.is_file(), f"{rel}: examples/store lacks the object its pointer names"
    return stored


def copy_training_files(root, tasks=("digits-cnn", "digits-embedding", "wine-mlp")) -> None:
    """Copy datasets/*/dataset.yaml + data and training/ (layers, structures, algorithms, the
    tasks)."""
    for ds in ("digits", "wine"):
        src = REPO_ROOT / "datasets" / ds
        (root / "datasets" / ds).mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "dataset.yaml", root / "datasets" / ds / "dataset.yaml")
    for data in ("datasets/digits/digits.npz", "datasets/wine/wine.csv"):
        shutil.copy(committed_data(data), root / data)
    for sub in ("layers", "structures", "algorithms"):
        shutil.copytree(REPO_ROOT / "training" / sub, root / "training" / sub)
    for task in tasks:
        (root / "training" / task).mkdir(parents=True)
        shutil.copy(
            REPO_ROOT / "training" / task / "task.yaml", root / "training" / task / "task.yaml"
        )
    shutil.copy(REPO_ROOT / "training" / ".gitignore", root / "training" / ".gitignore")


@pytest.fixture
def training_registry(tmp_path):
    """A registry (git + DVC, local staging/public remotes) with the example training files
    committed
    and the example datasets DVC-tracked and pushed to staging."""
    reg = init_registry(tmp_path / "registry", tmp_path / "storage")
    reg.write({"models/.gitkeep": ""})
    copy_training_files(reg.root)
    reg.dvc("add", "-q", "datasets/digits/digits.npz", "datasets/wine/wine.csv")
    reg.dvc(
        "push",
        "-q",
        "-r",
        "staging",
        "datasets/digits/digits.npz.dvc",
        "datasets/wine/wine.csv.dvc",
    )
    reg.commit(message="training files")
    return reg


@pytest.fixture
def training_tree(tmp_path):
    """The example training files and datasets in a plain folder (no git, no DVC): for the static
    checks."""
    root = tmp_path / "tree"
    root.mkdir()
    copy_training_files(root)
    return root
