"""`registry compress NAME@VERSION` in a real registry: card at the tag, data from the public
remote."""

from __future__ import annotations

import json
import shutil

import yaml

from registry.cards.schema import load_card
from registry.core.storage import parse_pointer


def publish_digits(registry_repo, digits_cnn):
    """Put the digits CNN in the registry as published version 1.0.0 (weights and data on
    `public`)."""
    reg = registry_repo
    folder = reg.root / "models" / "digits-cnn"
    folder.mkdir(parents=True)
    for f in ("model.yaml", "config.yaml"):
        shutil.copy(digits_cnn / f, folder / f)
    files = [f"models/digits-cnn/{f}" for f in ("model.onnx", "eval.npz", "train.npz")]
    for rel in files:
        shutil.copy(digits_cnn / rel.rsplit("/", 1)[1], reg.root / rel)
    reg.dvc("add", "-q", *files)
    reg.dvc("push", "-q", "-r", "public")
    reg.commit(message="publish digits-cnn 1.0.0")
    reg.git("tag", "-a", "digits-cnn@v1.0.0", "-m", "digits-cnn 1.0.0")
    shutil.rmtree(reg.root / ".dvc" / "cache")  # consumers read from the public remote only
    for f in ("model.onnx", "eval.npz", "train.npz"):
        (folder / f).unlink()
    return reg


def test_compress_a_published_version_into_a_new_entry_pushed_to_staging(
    registry_repo, digits_cnn, tmp_path
):
    reg = publish_digits(registry_repo, digits_cnn)
    proc = reg.registry(
        "compress",
        "digits-cnn@1.0.0",
        "--max-drop",
        "0.01",
        "--max-size",
        "30KB",
        "--push",
        "--report-dir",
        str(tmp_path / "report"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "result: dynamic-int8" in proc.stdout
    out = reg.root / "models" / "digits-cnn-lite"
    card = load_card((out / "model.yaml").read_bytes()).card
    assert card.derived_from == "digits-cnn@1.0.0" and card.status.value == "unpublished"
    pointer = parse_pointer((out / "model.onnx.dvc").read_text())
    assert pointer.size == card.size <= 30_000
    staged = reg.storage / "staging" / "files" / "md5" / pointer.md5[:2] / pointer.md5[2:]
    assert staged.is_file()
    # the evaluation set travels as its pointer, and its object is in staging for the pull request
    eval_md5 = parse_pointer((out / "eval.npz.dvc").read_text()).md5
    assert (reg.storage / "staging" / "files" / "md5" / eval_md5[:2] / eval_md5[2:]).is_file()
    # honest: only the metric measured on the compressed model, on the set it was judged on
    assert [(x.name, x.dataset) for x in card.metrics] == [("accuracy", "digits-eval")]
    text = (out / "model.yaml").read_text()
    source = (reg.root / "models" / "digits-cnn" / "model.yaml").read_text()
    assert ("search:" in text) == ("search:" in source)  # defaults the original left out stay out
    assert "digits-cnn-lite:" in (reg.root / "dvc.yaml").read_text()  # declared, as `new` does
    check = reg.registry("check", "digits-cnn-lite", "--offline", "--no-content")
    assert check.returncode == 0, check.stdout + check.stderr

    proc = reg.registry("compress", "digits-cnn@2.0.0", "--max-drop", "0.01")
    assert proc.returncode == 2
    assert (
        "model 'digits-cnn' has no version 2.0.0 (no version tag digits-cnn@v2.0.0)" in proc.stderr
    )
    assert "published versions: 1.0.0" in proc.stderr


def test_new_version_then_evaluation_data_missing_from_the_remote(
    registry_repo, digits_cnn, tmp_path
):
    reg = publish_digits(registry_repo, digits_cnn)
    proc = reg.registry(
        "compress",
        "digits-cnn@1.0.0",
        "--max-drop",
        "0.01",
        "--as-version",
        "1.1.0",
        "--methods",
        "fp16",
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load((reg.root / "models/digits-cnn/model.yaml").read_text())
    assert (
        data["version"] == "1.1.0"
        and data["status"] == "updated"
        and data["derived_from"] == "digits-cnn@1.0.0"
    )
    assert data["compress"]["methods"] == ["fp16"]
    assert (
        parse_pointer((reg.root / "models/digits-cnn/model.onnx.dvc").read_text()).size
        == data["size"]
    )

    md5 = parse_pointer((reg.root / "models/digits-cnn/eval.npz.dvc").read_text()).md5
    (reg.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    shutil.rmtree(reg.root / ".dvc" / "cache")  # a fresh clone: nothing cached locally
    proc = reg.registry(
        "compress", "digits-cnn@1.0.0", "--max-drop", "0.01", "--report-dir", str(tmp_path / "r")
    )
    assert proc.returncode == 5
    assert (
        f"models/digits-cnn/eval.npz of digits-cnn@v1.0.0: object {md5} is not in remote 'public'"
        in proc.stderr
    )


def test_compressing_an_offline_model_says_so(registry_repo, digits_cnn, tmp_path):
    reg = publish_digits(registry_repo, digits_cnn)
    card = reg.root / "models" / "digits-cnn" / "model.yaml"
    text = card.read_text()
    status = next(line for line in text.splitlines() if line.startswith("status:"))
    card.write_text(text.replace(status, "status: offline"))
    reg.commit(message="digits-cnn offline")
    proc = reg.registry(
        "compress",
        "digits-cnn@1.0.0",
        "--max-drop",
        "0.01",
        "--methods",
        "fp16",
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: digits-cnn@1.0.0 was withdrawn (card status: offline)" in proc.stderr
    assert "a model derived from it inherits that" in proc.stderr


def test_compressing_a_withdrawn_version_says_so(registry_repo, digits_cnn, tmp_path):
    reg = publish_digits(registry_repo, digits_cnn)
    reg.git("tag", "-a", "digits-cnn@v1.0.0!#1", "-m", "withdrawn", "digits-cnn@v1.0.0^{}")
    proc = reg.registry(
        "compress",
        "digits-cnn@1.0.0",
        "--max-drop",
        "0.01",
        "--methods",
        "fp16",
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: digits-cnn@1.0.0 was withdrawn (digits-cnn@v1.0.0!#1)" in proc.stderr


def test_evaluation_data_added_after_publishing_needs_no_new_version(
    registry_repo, digits_cnn, tmp_path
):
    """v1.0.0 was tagged without an evaluation: section; the publisher adds one (and its data) in
    the working tree and compresses the tagged version with it."""
    reg = registry_repo
    folder = reg.root / "models" / "digits-cnn"
    folder.mkdir(parents=True)
    full = (digits_cnn / "model.yaml").read_text()
    tagged = full.split("evaluation:")[0]  # the card as it was published: no evaluation, compress
    shutil.copy(digits_cnn / "config.yaml", folder / "config.yaml")
    shutil.copy(digits_cnn / "model.onnx", folder / "model.onnx")
    (folder / "model.yaml").write_text(tagged)
    reg.dvc("add", "-q", "models/digits-cnn/model.onnx")
    reg.dvc("push", "-q", "-r", "public")
    reg.commit(message="publish digits-cnn 1.0.0")
    reg.git("tag", "-a", "digits-cnn@v1.0.0", "-m", "digits-cnn 1.0.0")

    args = ["compress", "digits-cnn@1.0.0", "--max-drop", "0.01", "--methods", "fp16"]
    proc = reg.registry(*args, "--report-dir", str(tmp_path / "r0"))
    assert proc.returncode == 7 and "has no 'evaluation:' section" in proc.stderr

    shutil.copy(digits_cnn / "eval.npz", folder / "eval.npz")
    reg.dvc("add", "-q", "models/digits-cnn/eval.npz")
    (folder / "model.yaml").write_text(full.replace("  train_data: train.npz\n", ""))
    proc = reg.registry(*args, "--report-dir", str(tmp_path / "r1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "evaluation: models/digits-cnn/model.yaml in the working tree (the card tagged "
        "digits-cnn@v1.0.0 has no evaluation: section)" in proc.stdout
    )
    card = load_card((reg.root / "models" / "digits-cnn-lite" / "model.yaml").read_bytes()).card
    assert card.evaluation.data == "eval.npz" and card.metrics[0].dataset == "digits-eval"
    assert (reg.root / "models" / "digits-cnn-lite" / "eval.npz.dvc").is_file()

    # or named explicitly: any card's evaluation section and data, said so in the report
    other = tmp_path / "judge"
    other.mkdir()
    shutil.copy(digits_cnn / "eval.npz", other / "eval.npz")
    (other / "model.yaml").write_text(full.replace("  train_data: train.npz\n", ""))
    proc = reg.registry(
        *args,
        "--card",
        str(other / "model.yaml"),
        "--output-name",
        "digits-cnn-fp16",
        "--format",
        "json",
        "--report-dir",
        str(tmp_path / "r2"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["evaluation_source"] == f"{other / 'model.yaml'} (--card)"
