"""scripts/demo runs the whole story end to end on a throw-away copy of this repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_runs_end_to_end_and_the_bot_catches_then_passes(tmp_path):
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    proc = subprocess.run([sys.executable, str(REPO / "scripts/demo.py")], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TMPDIR": str(env_tmp)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    steps = [line for line in out.splitlines() if line.startswith("==> [")]
    assert steps[0].startswith("==> [1/") and steps[-1].endswith("Merge the pull request")
    first_run = out.split("Run the bot on the pull request")[1].split("==> [")[0]
    assert "FAIL digits-mlp" in first_run and "unknown field 'licence'" in first_run
    assert "did you mean 'license'?" in first_run and "(exit code 1, as expected)" in first_run
    fixing = out.split("Fix what the bot found")[1].split("==> [")[0]
    assert "-licence: MIT" in fixing and "+license: MIT" in fixing
    assert "PASS digits-mlp" in fixing.split("$ registry check")[-1]  # the last run passes
    assert "Merge add-digits-mlp" in out.split("Merge the pull request")[-1]
    assert list(env_tmp.glob("registry-demo-*")) == []  # the throw-away copy is gone
