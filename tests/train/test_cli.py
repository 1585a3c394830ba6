"""The `registry train` command line: help with examples, clear errors, the plan matrix."""

from __future__ import annotations

import json
import shutil

import click
import pytest

from factories import registry_cli
from registry.cli import cli


@pytest.mark.parametrize("name", ["run", "results", "check", "plan", "register", "datasets"])
def test_every_train_command_has_help_with_an_example(name):
    command = cli.commands["train"].commands[name]
    assert "Example" in command.help
    assert all(p.help for p in command.params if isinstance(p, click.Option))


def test_registry_train_task_runs_the_run_command(training_registry, capsys):
    code, out, err = registry_cli(training_registry.root, "train", "digit-cnn", capsys=capsys)
    assert (
        code == 2 and "no training task 'digit-cnn'" in err and "did you mean 'digits-cnn'?" in err
    )
    code, out, err = registry_cli(
        training_registry.root, "train", "digits-cnn", "--instance", "bse", capsys=capsys
    )
    assert (
        code == 2
        and "task 'digits-cnn' has no instance 'bse'" in err
        and "did you mean 'base'?" in err
    )


def test_plan_is_the_workflow_matrix(training_registry, capsys):
    code, out, _ = registry_cli(
        training_registry.root, "train", "plan", "wine-mlp", "--format", "json", capsys=capsys
    )
    assert code == 0
    assert json.loads(out) == {
        "include": [{"task": "wine-mlp", "instance": f"mlp-hidden-{h}"} for h in (8, 16, 32)]
    }
    reg = training_registry
    reg.git("switch", "-q", "-c", "change")
    path = reg.root / "training/structures/digits-autoencoder.yaml"
    path.write_text(path.read_text().replace("hidden: 32", "hidden: 24"))
    reg.commit(message="smaller autoencoder")
    code, out, _ = registry_cli(
        reg.root,
        "train",
        "plan",
        "--base",
        "main",
        "--head",
        "HEAD",
        "--format",
        "json",
        capsys=capsys,
    )
    assert code == 0 and json.loads(out) == {
        "include": [{"task": "digits-embedding", "instance": "base"}]
    }


def test_register_without_results_says_what_to_run(training_registry, capsys):
    code, _, err = registry_cli(
        training_registry.root, "train", "register", "wine-mlp", capsys=capsys
    )
    assert code == 2 and "no instance of task 'wine-mlp' has finished training" in err
    assert "registry train wine-mlp" in err


def test_check_reports_findings_with_exit_code_1(training_registry, capsys):
    reg = training_registry
    code, out, _ = registry_cli(reg.root, "train", "check", capsys=capsys)
    assert code == 0 and out.startswith("PASS  training files")
    (reg.root / "training/structures/wine-mlp.yaml").write_text("name: wine-mlp\nlayers: []\n")
    code, out, _ = registry_cli(reg.root, "train", "check", "--format", "json", capsys=capsys)
    report = json.loads(out)
    assert code == 1 and report["passed"] is False
    assert (
        report["findings"][0]["path"] == "training/structures/wine-mlp.yaml"
        and report["findings"][0]["line"] == 2
    )


def test_device_cuda_without_a_gpu_fails_before_any_worker_starts(training_registry, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    code, out, err = registry_cli(
        training_registry.root,
        "train",
        "digits-cnn",
        "--instance",
        "base",
        "--device",
        "cuda",
        capsys=capsys,
    )
    assert code == 2, err
    assert "--device cuda:" in err and "task 'digits-cnn' (instance base)" in err, err
    assert "--device cpu" in err and "Traceback" not in err
    # nothing started: no results folder, no worker's failure line
    assert not (training_registry.root / "training/digits-cnn/results").exists()
    assert "failed" not in err


def test_datasets_lists_and_pulls_only_the_data_the_instances_use(training_registry, capsys):
    root = training_registry.root
    shutil.rmtree(root / ".dvc" / "cache")  # what a fresh clone has: pointers, no data
    (root / "datasets/digits/digits.npz").unlink()
    (root / "datasets/wine/wine.csv").unlink()

    code, out, _ = registry_cli(root, "train", "datasets", "wine-mlp", capsys=capsys)
    assert code == 0
    assert out.splitlines() == [
        "wine: datasets/wine/wine.csv.dvc (not pulled; instances mlp-hidden-8, mlp-hidden-16, "
        "mlp-hidden-32)"
    ]

    code, out, err = registry_cli(
        root, "train", "datasets", "wine-mlp", "--instance", "mlp-hidden-8", "--pull",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "wine: datasets/wine/wine.csv.dvc (pulled from staging" in out
    assert (root / "datasets/wine/wine.csv").stat().st_size > 0
    assert not (root / "datasets/digits/digits.npz").exists()  # the task does not use it

    code, out, _ = registry_cli(
        root, "train", "datasets", "digits-cnn", "--format", "json", capsys=capsys
    )
    assert code == 0
    [digits] = json.loads(out)
    assert digits["name"] == "digits" and digits["present"] is False


def test_datasets_pull_from_a_remote_without_the_data_is_a_clear_error(training_registry, capsys):
    root = training_registry.root
    shutil.rmtree(root / ".dvc" / "cache")
    (root / "datasets/wine/wine.csv").unlink()
    code, _, err = registry_cli(
        root, "train", "datasets", "wine-mlp", "--pull", "--remote", "public", capsys=capsys
    )
    assert code != 0 and "Traceback" not in err
    assert "pulling the data of dataset wine from the 'public' remote failed" in err, err


def test_the_names_a_task_may_not_take_are_the_train_subcommands():
    from registry.training import TRAIN_SUBCOMMANDS

    assert set(TRAIN_SUBCOMMANDS) == set(cli.commands["train"].commands)


def test_a_task_named_like_a_subcommand_is_refused_by_the_bot_and_by_train(
    training_registry, capsys
):
    reg = training_registry
    reg.git("switch", "-q", "-c", "check-task")
    task = (reg.root / "training/wine-mlp/task.yaml").read_text()
    reg.commit({"training/check/task.yaml": task.replace("name: wine-mlp", "name: check")})
    where = "training/check/task.yaml:2: task 'check' is named like the subcommand"

    # the pull request's check (the train workflow's) refuses it, naming the file, line and fix
    code, out, err = registry_cli(
        reg.root, "train", "check", "--base", "main", "--head", "HEAD", "--format", "json",
        capsys=capsys,
    )  # fmt: skip
    report = json.loads(out)
    assert code == 1 and report["passed"] is False
    [found] = [f for f in report["findings"] if f["path"] == "training/check/task.yaml"]
    assert found["line"] == 2 and "`registry train check`" in found["message"]
    assert found["hint"].startswith("rename the task (its folder training/check/")
    # …and the subcommand that runs in the task's place says so too
    assert f"note: {where}" in err and "hint: rename the task" in err

    code, _, err = registry_cli(reg.root, "train", "run", "check", capsys=capsys)
    assert code == 2 and f"error: {where}" in err and "cannot be trained" in err
    assert "hint: rename the task" in err and "Traceback" not in err

    # the train workflow's plan refuses it before a matrix job would run the subcommand
    code, _, err = registry_cli(reg.root, "train", "plan", "check", capsys=capsys)
    assert code == 2 and f"error: {where}" in err
