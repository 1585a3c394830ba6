"""`registry train`: instances in worker processes, a failing or killed instance reported while the
others finish, DVCLive metrics, plots, ONNX results, Ctrl-C and resuming, `train results`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime as ort
import pytest
import yaml

TINY_TASK = """\
name: tiny
task: classification
project: examples
model: wine-tiny
metric: accuracy
dataset: wine
algorithm: classification
structure: wine-mlp
hyperparameters: {epochs: 4, batch_size: 32, learning_rate: 0.01}
instances:
  - name: first
  - name: twin
  - {name: nan, algorithm: nan}
  - {name: killed, structure: wine-killer}
"""


def _tiny(reg) -> None:
    killer = (
        (reg.root / "training/structures/wine-mlp.yaml")
        .read_text()
        .replace("name: wine-mlp", "name: wine-killer")
    )
    killer = killer.replace("  - {type: ReLU}", "  - {type: ReLU}\n  - {type: killer}")
    reg.commit(
        {
            "training/tiny/task.yaml": TINY_TASK,
            "training/structures/wine-killer.yaml": killer,
            "training/layers/killer.py": textwrap.dedent("""\
            import os
            import signal

            from pydantic import BaseModel
            from torch import nn

            OUTPUT_SHAPE = "same"


            class Config(BaseModel):
                pass


            class Killer(nn.Module):
                def __init__(self, config: Config):
                    super().__init__()

                def forward(self, x):
                    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
                    return x
            """),
            "training/algorithms/nan.yaml": "name: nan\nkind: custom\ncode: nan.py\n",
            "training/algorithms/nan.py": textwrap.dedent("""\
            class Algorithm:
                metrics = ["accuracy"]

                def loss(self, outputs, inputs, labels):
                    return outputs["logits"].sum() * float("nan")
            """),
        },
        message="a tiny task",
    )


def _train(reg, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registry", "train", *args],
        cwd=reg.root,
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_workers_train_in_parallel_and_failures_are_reported_while_the_others_finish(
    training_registry, tmp_path
):
    reg = training_registry
    _tiny(reg)
    summary = tmp_path / "step-summary.md"  # what GitHub Actions shows on the run's page
    proc = _train(
        reg,
        "tiny",
        "--workers",
        "2",
        "--progress",
        "plain",
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert proc.returncode == 1, proc.stderr
    compared = {
        row.split("|")[1].strip(): row for row in summary.read_text().splitlines() if "|" in row
    }
    assert summary.read_text().startswith("### Training task tiny\n")
    assert "| done |" in compared["first"] and "| failed |" in compared["nan"]
    assert "best" in compared["first"] + compared["twin"]
    err = proc.stderr
    assert "[nan] FAILED: the loss became nan at epoch 1, step 1" in err
    assert "[killed] FAILED: the worker stopped (killed by signal 9)" in err
    assert "[first] epoch 4/4 loss" in err and "[twin] done: accuracy" in err
    assert "Traceback" not in err

    results = reg.root / "training/tiny/results"
    first, twin = (
        json.loads((results / n / "metrics.json").read_text()) for n in ("first", "twin")
    )
    assert first["metrics"]["accuracy"] > 0.8
    # the same seed and data give the same result (same machine, same thread count)
    assert first["metrics"]["accuracy"] == pytest.approx(twin["metrics"]["accuracy"], abs=1e-6)
    # DVCLive's layout, so `dvc plots` / `dvc exp show` read it
    live = json.loads((results / "first/dvclive/metrics.json").read_text())
    assert live["test"]["accuracy"] == pytest.approx(first["metrics"]["accuracy"])
    loss_tsv = (results / "first/dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss_tsv[0] == "step\tloss" and len(loss_tsv) == 5
    assert (results / "first/plots/loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (results / "first/plots/train_accuracy.png").is_file()
    assert (results / "first/model.pt2").is_file() and first["pytorch"] == "model.pt2"
    config = yaml.safe_load((results / "first/config.yaml").read_text())
    assert config["algorithm"]["epochs"] == 4 and config["source_commit"] == reg.git(
        "rev-parse", "HEAD"
    )
    assert "epoch 4/4" in (results / "first/train.log").read_text()
    # the exported model runs and does what the metrics say
    from registry.training.data import load_arrays
    from registry.training.files import Dataset

    ds = Dataset.model_validate(
        yaml.safe_load((reg.root / "datasets/wine/dataset.yaml").read_text())
    )
    x, y = load_arrays(reg.root, ds)
    session = ort.InferenceSession(
        str(results / "first/model.onnx"), providers=["CPUExecutionProvider"]
    )
    [probs] = session.run(None, {"features": x})
    assert probs.shape == (178, 3) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert (probs.argmax(1) == y).mean() > 0.8

    listing = subprocess.run(
        [sys.executable, "-m", "registry", "train", "results", "tiny"],
        cwd=reg.root,
        capture_output=True,
        text=True,
    ).stdout
    rows = {ln.split()[0]: ln for ln in listing.splitlines()[1:]}
    assert "done" in rows["first"] and "failed" not in rows["first"]
    assert rows["nan"].split()[1] == "not" and "best" in rows["first"] + rows["twin"]
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "registry", "train", "results", "tiny", "--format", "json"],
            cwd=reg.root,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert [i["state"] for i in data["instances"]] == ["done", "done", "not run", "not run"]


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes_from_the_checkpoint(training_registry, tmp_path):
    reg = training_registry
    reg.commit(
        {
            "training/slow/task.yaml": """\
        name: slow
        task: classification
        project: examples
        model: wine-slow
        metric: accuracy
        dataset: wine
        algorithm: classification
        structure: wine-mlp
        instances:
          - {name: long, hyperparameters: {epochs: 150, batch_size: 8}}
        """
        },
        message="a slow task",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "registry", "train", "slow", "--progress", "jsonl"],
        cwd=reg.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        # a checkpoint after a whole epoch was reported (on a busy machine the first epoch alone
        # may take the checkpoints' interval, and its checkpoint comes before its epoch event)
        if events[-1].get("event") == "checkpoint" and any(
            e.get("event") == "epoch" for e in events
        ):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    events += [json.loads(ln) for ln in out.splitlines()]
    assert proc.returncode == 130, err
    assert events[0]["event"] == "begin" and events[-1]["event"] == "end"
    assert (
        events[-1]["interrupted"] is True and events[-1]["instances"]["long"]["state"] == "stopped"
    )
    assert {"instance", "epoch", "epochs", "loss", "eta_s"} <= set(
        next(e for e in events if e["event"] == "epoch")
    )
    assert "Traceback" not in err
    folder = reg.root / "training/slow/results/long"
    assert (folder / "checkpoint.pt").is_file() and not (folder / "status.json").exists()

    # resume: the same command picks up after the last checkpoint
    saved_at = max(e["epoch"] for e in events if e["event"] == "checkpoint")
    proc = _train(reg, "slow", "--progress", "jsonl")
    resumed = [json.loads(ln) for ln in proc.stdout.splitlines()]
    start = next(e for e in resumed if e["event"] == "start")
    assert start["resumed"] is True and start["epoch"] >= saved_at
    assert proc.returncode == 0 and resumed[-1]["instances"]["long"]["state"] == "done"
    steps = (folder / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]
    assert [int(s.split()[0]) for s in steps] == list(
        range(150)
    )  # one row per epoch, none lost or repeated
    # a finished instance is not trained again
    again = _train(reg, "slow", "--progress", "plain")
    assert again.returncode == 0 and "[long] already trained" in again.stderr
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "train",
            "results",
            "slow",
            "--download",
            str(tmp_path / "out"),
        ],
        cwd=reg.root,
        capture_output=True,
        text=True,
    )
    assert got.returncode == 0 and (tmp_path / "out/long/model.onnx").is_file()
    assert not (tmp_path / "out/long/checkpoint.pt").exists()


def test_workers_start_under_a_deep_temporary_folder(tmp_path):
    """A $TMPDIR too deep for a Unix socket (as pytest's and some CI runners' are) still gets its
    fork server: multiprocessing is given a short folder instead of failing 'AF_UNIX path too
    long'."""
    import subprocess
    import sys

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    code = (
        "import multiprocessing as mp\n"
        "from registry.training.workers import _context\n"
        "ctx = _context(mp)\n"
        "p = ctx.Process(target=print, args=('worker ran',))\n"
        "p.start(); p.join(); raise SystemExit(p.exitcode)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "TMPDIR": str(deep)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "worker ran" in proc.stdout


def test_only_the_fork_server_skips_python_teardown_at_exit():
    """The workers' fork server ends with os._exit (registry.training.preload); imported anywhere
    else, the module leaves how a process ends alone."""
    code = "import registry.training.preload\nraise SystemExit(3)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
