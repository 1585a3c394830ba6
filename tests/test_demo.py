"""scripts/demo runs the whole story end to end on a throw-away copy of this repository, on a
machine whose floating-point results differ from the one that committed the examples.

`--seed 7` changes every byte any training in the demo produces (the examples' retraining and the
demo's own model), as another CPU, BLAS or thread count would: nothing in the story may depend on
those bytes. The default seed runs the same code with the committed examples' seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_runs_end_to_end_on_another_machine_and_the_bot_catches_then_passes(tmp_path):
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/demo.py"), "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TMPDIR": str(env_tmp)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    steps = [line for line in out.splitlines() if line.startswith("==> [")]
    assert steps[0].startswith("==> [1/") and steps[-1].endswith("Build the public catalog")
    catalog = out.split("Build the public catalog")[1]
    assert (
        "catalog of" in catalog
        and "site/index.html" in catalog
        and "registry catalog serve" in catalog
    )
    fetched = out.split("Fetch the example weights")[1].split("==> [")[0]
    assert (
        "3 models checked: 3 passed, 0 failed; 0 errors, 0 warnings" in fetched
    )  # no network, no --offline
    retrained = out.split("Retrain the examples and compare")[1].split("==> [")[0]
    assert retrained.count("other bytes") == 3  # the simulation took: every retrained file differs
    assert (
        "metrics within tolerance" in retrained
        and "$ git status --short\n  (no changes" in retrained
    )
    # training: the bot passes the training files, then one instance trains in its worker
    trained = out.split("Train one instance of a training task")[1].split("==> [")[0]
    assert "PASS  training files" in trained
    assert "$ registry train wine-mlp --instance mlp-hidden-16" in trained
    assert "[mlp-hidden-16] done: accuracy" in trained
    # the pull requests touch only the new model: the bot never re-checks the examples
    for report in out.split("$ registry check --base")[1:]:
        checked = report.split("$ ")[0]
        assert "digits-mlp" in checked and not any(
            name in checked for name in ("digits-cnn", "wine-mlp")
        )
    first_run = out.split("Run the bot on the pull request")[1].split("==> [")[0]
    assert "FAIL digits-mlp" in first_run and "unknown field 'licence'" in first_run
    assert "did you mean 'license'?" in first_run and "(exit code 1, as expected)" in first_run
    fixing = out.split("Fix what the bot found")[1].split("==> [")[0]
    assert "-licence: MIT" in fixing and "+license: MIT" in fixing
    assert "PASS digits-mlp" in fixing.split("$ registry check")[-1]  # the last run passes
    assert "Merge add-digits-mlp" in out.split("Merge the pull request")[1].split("==> [")[0]
    # publish: the tags exist, with notes; the second version's notes show the model's diff
    first = out.split("Publish version 1.0.0")[1].split("==> [")[0]
    assert "digits-mlp@v1.0.0" in first and "created, pushed" in first
    notes = out.split("Read the release notes")[1].split("==> [")[0]
    assert "Changes since v1.0.0" in notes and "Parameters: 2,410 → 4,810" in notes
    # the consumer got exactly what the tags record, from public
    pulled = out.split("A consumer pulls both versions")[1].split("==> [")[0]
    assert pulled.count("= what digits-mlp@v") == 2 and "from public" in pulled
    package = out.split("Build a device package")[1].split("==> [")[0]
    assert "passed" in package and "uploaded, verified md5+size" in package
    assert "from public" in package and "probabilities float32 [1, 10]" in package
    compressed = out.split("Compress the model to a size target")[1].split("==> [")[0]
    assert "<- result" in compressed
    withdrawn = out.split("pulling a withdrawn version warns")[-1]
    assert "warning: digits-mlp@1.0.0 was withdrawn" in withdrawn and "offline" in withdrawn
    assert list(env_tmp.glob("registry-demo-*")) == []  # the throw-away copy is gone
