"""What commands print besides their results: third-party noise held back unless --verbose, and
progress of long steps (a bar in a terminal, plain lines in CI logs)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

from factories import torch_sources, write_package_source
from registry.core.console import StageProgress

NOISY = textwrap.dedent("""
    import logging, os, sys, warnings
    from registry.core.console import quiet_third_party
    with quiet_third_party(verbose=sys.argv[1] == "verbose"):
        warnings.warn("old API", FutureWarning)
        logging.getLogger("torchao").warning("Failed to load libfoo.so")
        print("the command's own message", file=sys.stderr)
    warnings.warn("after the command", FutureWarning)
""")


def _noisy(mode: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", NOISY, mode], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_third_party_warnings_logs_and_native_output_are_held_back_by_default():
    err = _noisy("quiet")
    assert err.splitlines()[0] == "the command's own message"
    assert (
        "FutureWarning: after the command" in err
    )  # warnings are shown again once the command ends
    assert "old API" not in err and "libfoo" not in err


def test_verbose_shows_everything_the_libraries_print():
    err = _noisy("verbose")
    for text in ("FutureWarning: old API", "Failed to load libfoo.so", "the command's own message"):
        assert text in err


def test_an_android_package_build_prints_only_the_registry_s_own_lines(tmp_path):
    """The build that printed torchao load failures, FutureWarnings and ExecuTorch's cpuinfo
    lines."""
    onnx_bytes, pt2 = torch_sources(seed=3)
    model, card = write_package_source(
        tmp_path / "src", onnx_bytes, "  - android-arm64\n", pytorch=pt2
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "package",
            "--model",
            str(model),
            "--card",
            str(card),
            "--target",
            "android-arm64",
            "--out",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    noise = [line for line in proc.stderr.splitlines() if not line.startswith(("==> ", "    "))]
    assert noise == [], noise
    for text in ("Warning", "Failed to load", "cpuinfo", "threadpool", "_pytree"):
        assert text not in proc.stderr
    assert "candidate executorch: pte fp32" in proc.stderr and "wrote " in proc.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_stage_in_a_log_says_when_it_started_and_how_long_it_took():
    out = io.StringIO()
    progress = StageProgress(out, after=0.05)
    for done in range(3):
        progress("timing 3 engine settings", done, 3)
        time.sleep(0.1)
    progress("timing 3 engine settings", 3, 3)
    progress("verifying onnx", 0, 1)
    progress("verifying onnx", 1, 1)  # quick: says nothing
    lines = out.getvalue().splitlines()
    assert lines[0] == "    timing 3 engine settings…"
    assert lines[1].startswith("    timing 3 engine settings: done in ") and lines[1].endswith(" s")
    assert len(lines) == 2 and "\r" not in out.getvalue()


def test_a_long_stage_in_a_terminal_is_a_bar_that_goes_away():
    out = Terminal()
    progress = StageProgress(out, after=0.0)
    for done in range(4):
        progress("timing 4 engine settings", done, 4)
    progress.close()
    text = out.getvalue()
    assert "timing 4 engine settings:" in text and "3/4" in text and "\r" in text
    assert "done in" not in text  # the command's own line follows, not a summary
