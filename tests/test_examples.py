"""The example models in models/: their cards pass the bot, and scripts/make-examples rebuilds them exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from factories import registry_cli

from registry.card import load_card
from registry.storage import file_md5, parse_pointer

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.parent.name for p in (REPO / "models").glob("*/model.yaml")
                  if "scripts/make-examples" in (p.parent / "config.yaml").read_text())
GENERATED = ("model.yaml", "config.yaml", "model.onnx.dvc")


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory) -> Path:
    """A fresh registry clone in which `scripts/make-examples --push` ran once (a new process)."""
    base = tmp_path_factory.mktemp("examples")
    root, storage = base / "registry", base / "storage"
    root.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env)
    (root / ".dvc/config").write_text(
        "[core]\n    analytics = false\n    remote = public\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
        f"['remote \"public\"']\n    url = {storage / 'public'}\n")
    proc = subprocess.run([sys.executable, str(REPO / "scripts/make-examples"), "--root", str(root), "--push"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root




def test_there_are_real_examples_of_at_least_two_tasks():
    cards = [load_card((REPO / "models" / n / "model.yaml").read_text()).card for n in EXAMPLES]
    assert len(cards) >= 2 and all(cards)
    assert len({c.task for c in cards}) >= 2


def test_example_cards_pass_the_bot(capsys):
    code, out, _ = registry_cli(REPO, "check", *EXAMPLES, "--no-content", "--offline", capsys=capsys)
    assert code == 0, out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("PASS")] == EXAMPLES


def test_example_weights_are_tracked_by_dvc_not_git():
    for name in EXAMPLES:
        pointer = f"models/{name}/model.onnx.dvc"
        assert subprocess.run(["git", "ls-files", "--error-unmatch", pointer], cwd=REPO,
                              capture_output=True).returncode == 0, f"{pointer} is not committed"
        ignored = subprocess.run(["git", "check-ignore", "-q", f"models/{name}/model.onnx"], cwd=REPO)
        assert ignored.returncode == 0, f"models/{name}/model.onnx is not git-ignored"


@pytest.mark.parametrize("name", EXAMPLES)
def test_make_examples_rebuilds_the_committed_folder_exactly(regenerated, name):
    """A fresh run writes the same card, config and pointer; the ONNX file has the pointer's md5."""
    for file in GENERATED:
        assert (regenerated / "models" / name / file).read_text() == (REPO / "models" / name / file).read_text(), \
            f"models/{name}/{file} differs from what scripts/make-examples writes"
    pointer = parse_pointer((REPO / "models" / name / "model.onnx.dvc").read_text())
    assert file_md5(regenerated / "models" / name / "model.onnx") == pointer.md5
    staged = regenerated.parent / "storage/staging/files/md5" / pointer.md5[:2] / pointer.md5[2:]
    assert staged.is_file() and file_md5(staged) == pointer.md5  # --push put it on staging


def _digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16.0).astype(np.float32), y, test_size=0.25, random_state=0, stratify=y)


def _metric(card, name: str, dataset: str) -> float:
    return next(m.value for m in card.metrics if m.name == name and m.dataset == dataset)


def test_card_metrics_are_what_the_exported_models_score(regenerated):
    """The metrics on the cards are real: onnxruntime on the test split gets the same figures."""
    def session(name):
        return ort.InferenceSession(str(regenerated / "models" / name / "model.onnx"),
                                    providers=["CPUExecutionProvider"])

    def card(name):
        return load_card((REPO / "models" / name / "model.yaml").read_text()).card

    Xtr, Xte, ytr, yte = _digits_split()
    probs = session("digits-cnn").run(None, {"image": Xte.reshape(-1, 1, 8, 8)})[0]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(1) == yte).mean() == pytest.approx(_metric(card("digits-cnn"), "accuracy", "digits-test"),
                                                            abs=1e-4)
    enc = session("digits-embedding")
    etr, ete = (enc.run(None, {"pixels": X})[0] for X in (Xtr, Xte))
    nearest = ((ete[:, None, :] - etr[None, :, :]) ** 2).sum(-1).argmin(1)
    assert (ytr[nearest] == yte).mean() == pytest.approx(
        _metric(card("digits-embedding"), "knn_accuracy", "digits-test"), abs=1e-4)
