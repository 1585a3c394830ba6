"""The example models in models/: their cards pass the bot, the weights their pointers name ship in
examples/store, and scripts/make-examples rebuilds models that behave the same (not the same bytes:
those depend on the CPU)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from factories import registry_cli
from registry.cards.schema import load_card
from registry.core.storage import file_md5, parse_pointer

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    p.parent.name
    for p in (REPO / "models").glob("*/model.yaml")
    if "scripts/make-examples" in (p.parent / "config.yaml").read_text()
)
STORE = REPO / "examples" / "store" / "files" / "md5"
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _stored(md5: str) -> Path:
    return STORE / md5[:2] / md5[2:]


def _pointer(root: Path, name: str):
    return parse_pointer((root / "models" / name / "model.onnx.dvc").read_text())


def _card(root: Path, name: str):
    return load_card((root / "models" / name / "model.yaml").read_text()).card


def _registry(base: Path) -> Path:
    """A new registry (git + DVC) whose staging and public remotes are folders beside it."""
    root, storage = base / "registry", base / "storage"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=ENV)
    (root / ".dvc/config").write_text(
        "[core]\n    analytics = false\n    remote = public\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
        f"['remote \"public\"']\n    url = {storage / 'public'}\n"
    )
    return root


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory) -> Path:
    """A fresh registry in which `scripts/make-examples --push` ran once (a new process)."""
    root = _registry(tmp_path_factory.mktemp("examples"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/make-examples"), "--root", str(root), "--push"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_there_are_real_examples_of_at_least_two_tasks():
    cards = [_card(REPO, n) for n in EXAMPLES]
    assert len(cards) >= 2 and all(cards)
    assert len({c.task for c in cards}) >= 2


def test_example_cards_pass_the_bot_without_the_network(capsys):
    """Their training code is this repository's script, confirmed by commit with no network."""
    code, out, _ = registry_cli(REPO, "check", *EXAMPLES, "--no-content", capsys=capsys)
    assert code == 0, out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("PASS")] == EXAMPLES
    for name in EXAMPLES:
        source = _card(REPO, name).source
        assert (source.repo, source.path) == ("self", "scripts/make-examples")
        shown = subprocess.run(
            ["git", "cat-file", "-e", f"{source.commit}:scripts/make-examples"], cwd=REPO
        )
        assert shown.returncode == 0 or _shallow(), (
            f"{name}: source.commit does not hold the script"
        )


def _shallow() -> bool:
    out = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True
    )
    return out.stdout.strip() == "true"


def test_example_weights_are_tracked_by_dvc_not_git():
    for name in EXAMPLES:
        pointer = f"models/{name}/model.onnx.dvc"
        assert (
            subprocess.run(
                ["git", "ls-files", "--error-unmatch", pointer], cwd=REPO, capture_output=True
            ).returncode
            == 0
        ), f"{pointer} is not committed"
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", f"models/{name}/model.onnx"], cwd=REPO
        )
        assert ignored.returncode == 0, f"models/{name}/model.onnx is not git-ignored"


def test_the_example_store_holds_exactly_what_the_committed_pointers_name():
    """A fresh clone can fetch every example's weights and every example dataset: each pointer's
    object is committed in the store with that md5 and size, and the store holds nothing else."""
    named = set()
    for name in EXAMPLES:
        pointer = _pointer(REPO, name)
        stored = _stored(pointer.md5)
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(stored)], cwd=REPO, capture_output=True
        )
        assert tracked.returncode == 0, f"{stored} (models/{name}) is not committed"
        assert (
            file_md5(stored) == pointer.md5
            and stored.stat().st_size == pointer.size == _card(REPO, name).size
        )
        named.add(stored)
    for pointer_file in sorted((REPO / "datasets").glob("*/*.dvc")):  # the example datasets' data
        pointer = parse_pointer(pointer_file.read_text())
        stored = _stored(pointer.md5)
        assert stored.is_file() and stored.stat().st_size == pointer.size, (
            f"{pointer_file} is not in the store"
        )
        named.add(stored)
    assert set(STORE.glob("*/*")) == named


def test_a_fresh_clone_fetches_the_example_weights_with_dvc(tmp_path):
    """`dvc pull -r examples` in a clone (no network) brings the exact files the pointers name."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "-q", "-r", "examples"],
        cwd=clone,
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in EXAMPLES:
        assert file_md5(clone / "models" / name / "model.onnx") == _pointer(REPO, name).md5


@pytest.mark.parametrize("name", EXAMPLES)
def test_make_examples_rebuilds_an_equivalent_folder(regenerated, name):
    """A fresh run writes the same config and card (bar the measured metrics, within tolerance), a
    pointer to a file of the same size, and puts the file on staging and in its store."""
    assert (regenerated / "models" / name / "config.yaml").read_text() == (
        REPO / "models" / name / "config.yaml"
    ).read_text()
    committed, rebuilt = _card(REPO, name), _card(regenerated, name)
    # the card names the commit of the script that trained its weights: the committed card an
    # earlier one (the script's text may have changed since, not its training), a rebuild the latest
    assert rebuilt.model_dump(exclude={"metrics", "source"}) == committed.model_dump(
        exclude={"metrics", "source"}
    )
    assert (rebuilt.source.repo, rebuilt.source.path) == (
        committed.source.repo,
        committed.source.path,
    )
    latest = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "scripts/make-examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert rebuilt.source.commit == latest
    if not _shallow():
        ancestor = subprocess.run(
            ["git", "merge-base", "--is-ancestor", committed.source.commit, latest], cwd=REPO
        )
        assert ancestor.returncode == 0, f"{name}: source.commit is not in the script's history"
    for old, new in zip(committed.metrics, rebuilt.metrics, strict=True):
        assert (old.name, old.dataset) == (new.name, new.dataset)
        assert new.value == pytest.approx(old.value, abs=0.05, rel=0.25)
    pointer = _pointer(regenerated, name)
    assert pointer.size == _pointer(REPO, name).size
    assert file_md5(regenerated / "models" / name / "model.onnx") == pointer.md5
    staged = regenerated.parent / "storage/staging/files/md5" / pointer.md5[:2] / pointer.md5[2:]
    assert staged.is_file() and file_md5(staged) == pointer.md5  # --push put it on staging
    in_store = regenerated / "examples/store/files/md5" / pointer.md5[:2] / pointer.md5[2:]
    assert in_store.is_file() and file_md5(in_store) == pointer.md5


def test_make_examples_check_fails_when_behaviour_drifts(tmp_path):
    """--check is not a rubber stamp: a committed metric the retrained model cannot reach fails
    it."""
    root = tmp_path / "registry"
    (root / "models").mkdir(parents=True)
    shutil.copytree(REPO / "models" / "wine-mlp", root / "models" / "wine-mlp")
    shutil.copytree(REPO / "examples", root / "examples")
    card = root / "models" / "wine-mlp" / "model.yaml"
    text = card.read_text()
    card.write_text(
        text.replace("value: 1.0\n    dataset: wine-test", "value: 0.5\n    dataset: wine-test", 1)
    )
    assert card.read_text() != text
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/make-examples"),
            "--root",
            str(root),
            "--check",
            "--only",
            "wine-mlp",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "accuracy on wine-test: committed 0.5" in proc.stdout and "OUT OF TOLERANCE" in proc.stdout
    )
    assert "do not behave like the committed ones" in proc.stdout
    assert card.read_text() == text.replace(
        "value: 1.0\n    dataset: wine-test", "value: 0.5\n    dataset: wine-test", 1
    )


def _digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(
        (X / 16.0).astype(np.float32), y, test_size=0.25, random_state=0, stratify=y
    )


def _metric(card, name: str, dataset: str) -> float:
    return next(m.value for m in card.metrics if m.name == name and m.dataset == dataset)


def test_card_metrics_are_what_the_committed_models_score():
    """The metrics on the cards are real: onnxruntime on the test split, on the weights the pointers
    name, gets the same figures (to one test sample: a near tie may break the other way
    elsewhere)."""

    def session(name):
        return ort.InferenceSession(
            str(_stored(_pointer(REPO, name).md5)), providers=["CPUExecutionProvider"]
        )

    Xtr, Xte, ytr, yte = _digits_split()
    one_sample = 1.0 / len(yte) + 1e-9
    probs = session("digits-cnn").run(None, {"image": Xte.reshape(-1, 1, 8, 8)})[0]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(1) == yte).mean() == pytest.approx(
        _metric(_card(REPO, "digits-cnn"), "accuracy", "digits-test"), abs=one_sample
    )
    enc = session("digits-embedding")
    etr, ete = (enc.run(None, {"pixels": X})[0] for X in (Xtr, Xte))
    nearest = ((ete[:, None, :] - etr[None, :, :]) ** 2).sum(-1).argmin(1)
    assert (ytr[nearest] == yte).mean() == pytest.approx(
        _metric(_card(REPO, "digits-embedding"), "knn_accuracy", "digits-test"), abs=one_sample
    )


def test_a_fresh_clone_passes_the_bot_on_every_model_without_the_network(tmp_path, capsys):
    """After the seeding scripts/bootstrap does, `registry check --all` (content and source checks,
    no --offline) passes on a clone, with no warning: nothing needed the network."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run([str(clone / "scripts/seed-examples")], check=True)
    subprocess.run([str(clone / "scripts/seed-examples")], check=True)  # idempotent
    staged = sorted(p.name for p in (clone / "storage/staging/files/md5").glob("*/*"))
    assert staged == sorted(p.name for p in STORE.glob("*/*"))
    code, out, _ = registry_cli(
        clone, "check", "--all", "--forbid-local-urls", "--timeout", "1", capsys=capsys
    )
    assert code == 0, out
    assert (
        f"{len(EXAMPLES)} models checked: {len(EXAMPLES)} passed, 0 failed; 0 errors, 0 warnings"
        in out
    )
