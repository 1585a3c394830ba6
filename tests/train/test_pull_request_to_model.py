"""The whole path: a training task arrives in a pull request, the bot checks and draws it (and
fails a broken structure and a hostile algorithm with findings), `registry train --workers 2`
trains it, and `--register` makes a model entry that passes `registry check`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

TASK = """\
# yaml-language-server: $schema=../../docs/training-task.schema.json
name: wine-small
task: classification
description: A small wine classifier, trained in the registry.
project: examples
owners: ["@example/ml"]
model: wine-small
metric: accuracy
license: Apache-2.0
tags: [tabular]
dataset: wine
algorithm: classification
structure: wine-mlp
hyperparameters: {epochs: 6, batch_size: 32, learning_rate: 0.02}
grid:
  prefix: mlp
  hyperparameters:
    hidden: [8, 16]
"""


def _registry(reg, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        cwd=reg.root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_task_goes_from_pull_request_to_a_registered_model(training_registry, tmp_path):
    reg = training_registry
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    reg.git("remote", "add", "origin", str(bare))
    reg.git("push", "-q", "origin", "main")

    # a pull request adds a training task
    reg.git("switch", "-q", "-c", "add-wine-small")
    reg.commit({"training/wine-small/task.yaml": TASK}, message="Add the wine-small training task")
    bot = _registry(
        reg,
        "train",
        "check",
        "--base",
        "main",
        "--head",
        "add-wine-small",
        "--dynamic",
        "--format",
        "github",
        "--artifacts-dir",
        str(tmp_path / "pictures"),
    )
    assert bot.returncode == 0, bot.stdout + bot.stderr
    assert "PASS  training files" in bot.stdout
    svg = (tmp_path / "pictures/wine-mlp.svg").read_text()
    assert "hidden: Linear" in svg and "params" in svg

    # another pull request: a broken structure and a hostile algorithm fail with findings on their
    # lines
    reg.git("switch", "-q", "-c", "bad-change", "main")
    structure = (reg.root / "training/structures/wine-mlp.yaml").read_text()
    reg.commit(
        {
            "training/structures/wine-mlp.yaml": structure.replace(
                "in_features: $hidden", "in_features: 12"
            ),
            "training/algorithms/greedy.yaml": "name: greedy\nkind: custom\ncode: greedy.py\n",
            "training/algorithms/greedy.py": textwrap.dedent("""\
            import os


            class Algorithm:
                metrics = ["accuracy"]

                def loss(self, outputs, inputs, labels):
                    token = os.environ.get("GITHUB_TOKEN")
                    while True:  # hold the bot's runner forever
                        pass
            """),
            "training/greedy/task.yaml": TASK.replace("wine-small", "greedy")
            .replace("structure: wine-mlp", "structure: digits-cnn")
            .replace("dataset: wine", "dataset: digits")
            .replace("algorithm: classification", "algorithm: greedy")
            .replace("hidden: [8, 16]", "c1: [8]"),
        },
        message="a broken structure and a hostile algorithm",
    )
    bad = _registry(
        reg,
        "train",
        "check",
        "--base",
        "main",
        "--head",
        "bad-change",
        "--dynamic",
        "--timeout",
        "10",
        "--format",
        "github",
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr

    def line_of(path: str, text: str) -> int:
        lines = (reg.root / path).read_text().splitlines()
        return next(i for i, ln in enumerate(lines, 1) if text in ln)

    classifier = line_of("training/structures/wine-mlp.yaml", "name: classifier")
    assert re.search(
        rf"::error file=training/structures/wine-mlp.yaml,line={classifier},.*layer 'classifier' "
        r"\(Linear\) cannot take its input: got \[N, 16\], expects \[N, 12\]",
        bad.stdout,
    ), bad.stdout
    # the line the endless loop was stopped on: the `while` or its body
    assert re.search(
        r"::error file=training/algorithms/greedy.py,line=(9|10),.*took longer than 10 s",
        bad.stdout,
    ), bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr

    # the good pull request's task is trained (as its label starts the train workflow) and
    # registered
    reg.git("switch", "-q", "add-wine-small")
    trained = _registry(
        reg, "train", "wine-small", "--workers", "2", "--register", "--progress", "plain"
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "registered models/wine-small from instance mlp-hidden-" in trained.stdout
    assert reg.git("branch", "--show-current") == "train/wine-small"
    card = (reg.root / "models/wine-small/model.yaml").read_text()
    assert "task: classification" in card and "dataset: wine-test" in card
    assert (
        "repo: self" in card and "path: training/wine-small" in card
    )  # confirmed offline by the bot
    assert "pytorch: model.pt2" in card  # the instance's torch.export program, tracked like weights
    assert (reg.root / "models/wine-small/model.pt2.dvc").is_file()
    assert "commit: " + reg.git("rev-parse", "add-wine-small") in card
    assert (
        reg.git("status", "--porcelain", "--", "models", "dvc.yaml") == ""
    )  # committed on the branch
    accuracy = float(re.search(r"name: accuracy\n\s+value: ([0-9.]+)", card).group(1))
    assert 0.8 < accuracy <= 1.0
    # the task's results summary is committed with it: every instance, and the one registered
    summary = json.loads(reg.git("show", "train/wine-small:training/wine-small/results.json"))
    assert summary["task"] == "wine-small" and summary["metric"] == "accuracy"
    assert summary["commit"] == reg.git("rev-parse", "add-wine-small")
    instances = {i["name"]: i for i in summary["instances"]}
    assert set(instances) == {"mlp-hidden-8", "mlp-hidden-16"}
    assert all(i["state"] == "done" and i["epochs_run"] == 6 for i in instances.values())
    [registered] = [n for n, i in instances.items() if "registered" in i]
    assert instances[registered]["registered"] == {"model": "wine-small"}
    assert trained.stdout.count(f"from instance {registered} ") == 1
    assert abs(instances[registered]["metrics"]["accuracy"] - accuracy) < 1e-9
    # the weights are on staging, and the new model passes the bot's model checks
    check = _registry(reg, "check", "--base", "main", "--head", "train/wine-small")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "wine-small" in check.stdout
    # and the training checks, which read the summary
    files = _registry(reg, "train", "check", "--base", "main", "--head", "train/wine-small")
    assert files.returncode == 0, files.stdout + files.stderr
