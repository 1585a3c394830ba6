"""The command line's shared machinery (`registry.cli`): the folder a command runs in (`-C`), the
error funnel and `--traceback`, all without process-wide state."""

from __future__ import annotations

import os

from factories import mlp_onnx, registry_cli

NAME = "tiny"


def test_dash_c_runs_in_the_folder_without_changing_directory(registry_repo, capsys):
    cwd = os.getcwd()
    code, _, err = registry_cli(
        registry_repo.root, "schema", "-o", "card.schema.json", capsys=capsys
    )
    assert code == 0, err
    assert os.getcwd() == cwd  # nothing moved the test process
    # a relative path is taken from the folder of -C, as if the command had started there
    assert (registry_repo.root / "card.schema.json").is_file()
    assert "wrote" in err


def test_dash_c_names_a_folder_that_must_exist(tmp_path, capsys):
    code, _, err = registry_cli(tmp_path / "nowhere", "list", capsys=capsys)
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_outside_a_clone_the_command_says_so(tmp_path, capsys):
    code, _, err = registry_cli(tmp_path, "list", capsys=capsys)
    assert code == 2 and "is not inside a clone of the registry" in err


def test_traceback_reaches_the_checks_and_the_funnel(registry_repo, monkeypatch, capsys):
    """Without --traceback, a check that crashes is a finding (exit 1); with it, the error comes
    out of the check as it is and the funnel prints its traceback (exit 70)."""
    from registry.checks.config_file import ConfigFile

    def explode(self, ctx):
        raise RecursionError("maximum recursion depth exceeded")
        yield  # pragma: no cover

    registry_repo.add_model(NAME, mlp_onnx(0))
    monkeypatch.setattr(ConfigFile, "run", explode)

    code, out, err = registry_cli(
        registry_repo.root, "check", NAME, "--offline", "--no-content", capsys=capsys
    )
    assert code == 1 and "could not finish" in out and "Traceback" not in err

    code, _, err = registry_cli(
        registry_repo.root, "--traceback", "check", NAME, "--offline", "--no-content", capsys=capsys
    )
    assert code == 70
    assert "Traceback (most recent call last)" in err and "RecursionError" in err
    assert "REGISTRY_TRACEBACK" not in os.environ  # passed along, never through the environment


def test_an_unexpected_error_is_one_line_and_says_how_to_see_more(
    registry_repo, monkeypatch, capsys
):
    from registry.versions import listing

    def explode(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(listing, "list_models", explode)
    code, _, err = registry_cli(registry_repo.root, "list", capsys=capsys)
    assert code == 70 and "Traceback" not in err
    assert "error: unexpected ZeroDivisionError: division by zero" in err and "--traceback" in err


def test_python_dash_m_beside_a_folder_named_registry(tmp_path):
    """`python -m registry` (README) puts the current folder first on sys.path: run beside a
    registry clone named `registry`, it still runs the installed command, not an empty namespace
    package made of the clone. No PYTHONPATH: the install alone must make it so."""
    import subprocess
    import sys

    (tmp_path / "registry" / "models").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "registry", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("registry, version ")
