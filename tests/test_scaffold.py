"""`registry new`: scaffolding a model folder from options, from prompts, and refusing bad input."""

from __future__ import annotations

import json
import os
import pickle
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from factories import registry_cli
from registry.cards.scaffold import NewModel, new_model, parse_metric
from registry.cards.schema import load_card
from registry.cli import cli
from registry.core.errors import UsageError
from registry.core.storage import file_md5, parse_pointer
from registry.formats.weights import WeightsFormat, detect_format

REQUIRED = [
    "--task",
    "classification",
    "--project",
    "demo",
    "--source-repo",
    "https://github.com/example/train.git",
]


@pytest.fixture
def inputs(tmp_path, onnx_bytes) -> dict[str, Path]:
    """A weights file and a config file outside the registry, as a publisher has them."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(onnx_bytes)
    (folder / "train.yaml").write_text("epochs: 3\nlr: 0.01\n")
    return {"weights": folder / "model.onnx", "config": folder / "train.yaml"}


def model_files(root: Path) -> list[str]:
    """Everything under models/ (to prove that a refusal wrote nothing)."""
    return sorted(str(p.relative_to(root)) for p in (root / "models").rglob("*"))


def test_new_with_options_writes_card_config_and_tracked_weights(registry_repo, inputs, capsys):
    root = registry_repo.root
    code, out, err = registry_cli(
        root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        "--license",
        "MIT",
        "--metric",
        "accuracy=0.93@digits-test",
        "--push",
        capsys=capsys,
    )
    assert code == 0, err
    folder = root / "models" / "digits-mlp"
    assert "created models/digits-mlp/" in out and "pushed the weights" in out
    assert sorted(p.name for p in folder.iterdir()) == [
        ".gitignore",
        "model.onnx",
        "model.onnx.dvc",
        "model.yaml",
        "train.yaml",
    ]
    text = (folder / "model.yaml").read_text()
    first = text.splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../docs/model-card.schema.json"
    assert (folder / first.split("=", 1)[1]).resolve() == (
        root / "docs/model-card.schema.json"
    ).resolve()
    card = load_card(text).card
    assert card is not None and card.name == "digits-mlp" and card.config == "train.yaml"
    assert card.metrics[0].value == 0.93 and card.license == "MIT"
    pointer = parse_pointer((folder / "model.onnx.dvc").read_text())
    assert card.size == pointer.size == inputs["weights"].stat().st_size
    assert pointer.md5 == file_md5(inputs["weights"])
    assert (folder / ".gitignore").read_text().strip() == "/model.onnx"
    staged = registry_repo.storage / "staging/files/md5" / pointer.md5[:2] / pointer.md5[2:]
    assert staged.read_bytes() == inputs["weights"].read_bytes()
    assert [p.name for p in (root / "models").iterdir() if p.name.startswith(".new-")] == []
    # the card passes the bot's card check as written
    assert (
        registry_repo.registry("check", "digits-mlp", "--offline", "--no-content").returncode == 0
    )


def test_new_json_says_what_was_written_and_what_to_run_next(registry_repo, inputs, capsys):
    import json

    root = registry_repo.root
    code, out, err = registry_cli(
        root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        "--format",
        "json",
        capsys=capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    pointer = parse_pointer((root / data["pointer"]).read_text())
    assert (data["name"], data["folder"], data["weights"]) == (
        "digits-mlp",
        "models/digits-mlp",
        "model.onnx",
    )
    assert (data["md5"], data["size"], data["pushed"]) == (pointer.md5, pointer.size, False)
    assert data["card"]["task"] == "classification" and data["card"]["config"] == "train.yaml"
    assert data["next"] == [
        "dvc push -r staging models/digits-mlp/model.onnx.dvc",
        "registry check digits-mlp",
        "git add models/digits-mlp dvc.yaml",
    ]


def test_new_with_a_pytorch_source_tracks_and_pushes_it(registry_repo, inputs, tmp_path, capsys):
    from factories import torch_sources

    onnx_bytes, pt2 = torch_sources()
    inputs["weights"].write_bytes(onnx_bytes)
    (tmp_path / "work" / "model.pt2").write_bytes(pt2)
    root = registry_repo.root
    code, out, err = registry_cli(
        root,
        "new",
        "mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        "--pytorch",
        str(tmp_path / "work" / "model.pt2"),
        *REQUIRED,
        "--push",
        capsys=capsys,
    )
    assert code == 0, err
    # torch_sources' .pt2 fixes the batch to 1 while the ONNX takes any: said, with the fix
    assert "warning: model.pt2 takes a fixed batch of 1 on input(s) 'input'" in err
    assert "model.onnx takes any batch" in err and "dynamic_shapes=" in err
    folder = root / "models" / "mlp"
    card = load_card((folder / "model.yaml").read_text()).card
    assert card.pytorch == "model.pt2"
    pointer = parse_pointer((folder / "model.pt2.dvc").read_text())
    assert pointer.md5 == file_md5(tmp_path / "work" / "model.pt2")
    staged = registry_repo.storage / "staging/files/md5" / pointer.md5[:2] / pointer.md5[2:]
    assert staged.read_bytes() == pt2
    assert registry_repo.registry("check", "mlp", "--offline").returncode == 0


def test_new_refuses_a_pickled_pytorch_source_and_writes_nothing(
    registry_repo, inputs, tmp_path, capsys
):
    import zipfile

    bad = tmp_path / "work" / "model.pt2"
    with zipfile.ZipFile(bad, "w") as z:  # the legacy layout: a pickled state dict
        z.writestr("archive/serialized_state_dict.pt", pickle.dumps({"w": 1}))
        z.writestr("archive/version", "1")
    code, out, err = registry_cli(
        registry_repo.root,
        "new",
        "mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        "--pytorch",
        str(bad),
        *REQUIRED,
        capsys=capsys,
    )
    assert code == 1, out + err
    assert "model.pt2" in err and "pickle" in err.lower()
    assert model_files(registry_repo.root) == ["models/.gitkeep"]


def test_new_without_terminal_lists_every_missing_required_option(registry_repo, inputs, capsys):
    code, _, err = registry_cli(
        registry_repo.root, "new", "digits-mlp", "--project", "demo", capsys=capsys
    )
    assert code == 2
    assert "missing required options: --weights, --config, --task, --source-repo" in err
    assert "hint:" in err
    assert model_files(registry_repo.root) == ["models/.gitkeep"]


@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("Digits_CNN", "try 'digits-cnn'"),
        ("x", "choose another name"),
        ("lead-", "choose another name"),
    ],
)
def test_new_refuses_an_invalid_name_and_states_the_rule(
    registry_repo, inputs, capsys, name, suggestion
):
    code, _, err = registry_cli(
        registry_repo.root,
        "new",
        name,
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        capsys=capsys,
    )
    assert code == 2
    assert (
        f"'{name}' is not a valid model name" in err and "lowercase letters, digits and '-'" in err
    )
    assert suggestion in err
    assert model_files(registry_repo.root) == ["models/.gitkeep"]


def test_new_never_overwrites_an_existing_model(registry_repo, inputs, onnx_bytes, capsys):
    folder = registry_repo.add_model("digits-mlp", onnx_bytes)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    code, _, err = registry_cli(
        registry_repo.root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        capsys=capsys,
    )
    assert code == 2 and "models/digits-mlp already exists" in err and "never overwrites" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_new_refuses_pickle_based_weights_without_loading_them(
    registry_repo, inputs, tmp_path, capsys
):
    import torch

    checkpoint = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, checkpoint)
    legacy = tmp_path / "model.pkl"
    legacy.write_bytes(pickle.dumps({"w": [0.0, 1.0]}, protocol=4))
    for path, why in ((checkpoint, "a PyTorch checkpoint"), (legacy, "a Python pickle")):
        code, _, err = registry_cli(
            registry_repo.root,
            "new",
            "digits-mlp",
            "--weights",
            str(path),
            "--config",
            str(inputs["config"]),
            *REQUIRED,
            capsys=capsys,
        )
        assert code == 1, err
        assert (
            f"{path.name} is {why}" in err
            and "refuses pickle-based weights" in err
            and "ONNX" in err
        )
    assert model_files(registry_repo.root) == ["models/.gitkeep"]
    assert detect_format(inputs["weights"]) is WeightsFormat.onnx


def test_a_failing_push_leaves_nothing_behind(registry_repo, inputs, capsys):
    root = registry_repo.root
    blocker = registry_repo.storage / "not-a-folder"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the staging remote's folder should be")
    config = (root / ".dvc/config").read_text()
    (root / ".dvc/config").write_text(
        config.replace(str(registry_repo.storage / "staging"), str(blocker / "x"))
    )
    code, _, err = registry_cli(
        root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        "--push",
        capsys=capsys,
    )
    assert code == 5, err
    assert (
        "pushing the weights to the 'staging' remote failed" in err and "nothing was written" in err
    )
    assert model_files(root) == ["models/.gitkeep"]


def test_new_reports_a_bad_field_value_as_a_usage_error(registry_repo, inputs, capsys):
    code, _, err = registry_cli(
        registry_repo.root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        "--version",
        "v1.0",
        capsys=capsys,
    )
    assert code == 2 and "'version': write the version without a leading 'v': 1.0" in err
    new = (
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
    )
    code, _, err = registry_cli(
        registry_repo.root, *new, *REQUIRED, "--source-commit", "HEAD", capsys=capsys
    )
    assert code == 2 and "'source.commit': must be a commit id" in err and "Traceback" not in err
    code, _, err = registry_cli(
        registry_repo.root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        *REQUIRED,
        "--metric",
        "accuracy=high",
        capsys=capsys,
    )
    assert code == 2 and "is not NAME=VALUE@DATASET" in err
    bad_config = inputs["config"].with_name("bad.yaml")
    bad_config.write_text("epochs: [3\n")
    code, _, err = registry_cli(
        registry_repo.root,
        "new",
        "digits-mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(bad_config),
        *REQUIRED,
        capsys=capsys,
    )
    assert code == 2 and f"config file {bad_config} does not parse" in err
    assert model_files(registry_repo.root) == ["models/.gitkeep"]


def test_parse_metric_reads_percent_as_the_unit():
    m = parse_metric("accuracy=93.5%@digits-test")
    assert (m.name, m.value, m.unit, m.dataset) == ("accuracy", 93.5, "%", "digits-test")
    with pytest.raises(UsageError, match="not a number"):
        parse_metric("loss=low@x")


def test_interactive_mode_asks_for_the_missing_fields(registry_repo, inputs):
    answers = (
        "\n".join(
            [
                str(inputs["weights"]),
                str(inputs["config"]),
                "detection",
                "vision",
                "https://github.com/example/det.git",
                "1.0.0",
                "a detector",
                "Apache-2.0",
                "map=0.5@coco-val",
                "nonsense",
                "",
            ]
        )
        + "\n"
    )
    result = CliRunner().invoke(
        cli, ["-C", str(registry_repo.root), "new", "tiny-det", "--interactive"], input=answers
    )
    assert result.exit_code == 0, result.output
    for prompt in (
        "weights file",
        "config file",
        "task",
        "project",
        "source repo",
        "version",
        "metric",
    ):
        assert prompt in result.output
    assert "is not NAME=VALUE@DATASET" in result.output  # a bad answer is explained and asked again
    card = load_card((registry_repo.root / "models/tiny-det/model.yaml").read_text()).card
    assert (card.task.value, card.project, card.version, card.description) == (
        "detection",
        "vision",
        "1.0.0",
        "a detector",
    )
    assert [(m.name, m.value, m.dataset) for m in card.metrics] == [("map", 0.5, "coco-val")]


def test_a_real_terminal_gets_prompts_without_any_flag(registry_repo, inputs):
    """Standard input a pty: `registry new` decides by itself to ask."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registry",
            "new",
            "term-model",
            "--weights",
            str(inputs["weights"]),
            "--config",
            str(inputs["config"]),
        ],
        cwd=registry_repo.root,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    answers = iter(
        ["classification", "demo", "https://github.com/example/train.git", "", "", "", ""]
    )
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if chunk.rstrip().endswith(b":"):  # a prompt is waiting for an answer
                os.write(master, (next(answers, "") + "\n").encode())
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "task" in text and "project" in text and "created models/term-model/" in text
    card = load_card((registry_repo.root / "models/term-model/model.yaml").read_text()).card
    assert card.project == "demo" and card.version is None and card.metrics == []


def test_python_api_scaffolds_without_the_cli(registry_repo, inputs):
    result = new_model(
        registry_repo.root,
        NewModel(
            name="api-model",
            weights=inputs["weights"],
            config=inputs["config"],
            task="embedding",
            project="demo",
            source_repo="https://github.com/example/train.git",
        ),
    )
    assert result.folder == (registry_repo.root / "models/api-model").resolve()
    assert result.card.size == inputs["weights"].stat().st_size and not result.pushed
    assert result.pointer.is_file()


def test_new_with_a_dynamic_batch_pytorch_source_warns_of_nothing(
    registry_repo, inputs, tmp_path, capsys
):
    from factories import torch_sources

    onnx_bytes, pt2 = torch_sources(dynamic_batch=True)
    inputs["weights"].write_bytes(onnx_bytes)
    (tmp_path / "work" / "model.pt2").write_bytes(pt2)
    code, out, err = registry_cli(
        registry_repo.root,
        "new",
        "mlp",
        "--weights",
        str(inputs["weights"]),
        "--config",
        str(inputs["config"]),
        "--pytorch",
        str(tmp_path / "work" / "model.pt2"),
        *REQUIRED,
        "--format",
        "json",
        capsys=capsys,
    )
    assert code == 0, err
    assert "warning" not in err and json.loads(out)["warnings"] == []
