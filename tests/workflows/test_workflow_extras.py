"""Each workflow job installs the extras its commands need and no others (pyproject.toml), caches
its virtual environment under a key that names them, and gives pip PyTorch's CPU index only where
torch is installed; scripts/bootstrap refuses an extra pyproject.toml does not define."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_runs import REPO_ROOT, load_workflow, workflow_files  # noqa: E402

try:
    import tomllib
except ImportError:  # Python 3.10: pip carries the same parser
    from pip._vendor import tomli as tomllib

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
OWN = re.compile(re.escape(PROJECT["name"]) + r"\[(.+)\]")
# The registry commands (as patterns of their arguments) that need more than the base, and the
# extras they need. A job running none of them installs the base alone.
NEEDS = {
    r"package .*--target": {"package", "mobile"},  # any card's targets: desktop, server, mobile
    r"verify(?![-\w])": {"package", "mobile"},  # runs packages with their engines
    r"compress\b": {"compress"},
    r"train check .*--dynamic": {"train"},  # builds, steps and exports each structure
    r"train (?!check|plan|results|register)": {"train"},  # a training run
}
REGISTRY_RUN = re.compile(r"(?:\.venv/(?:bin|Scripts)/registry|\$REGISTRY)(?: -C \S+)? ([^\n|;&]+)")
BOOTSTRAP_RUN = re.compile(r"^(?:base/)?scripts/bootstrap((?: [\w,-]+)*)$")


def jobs() -> list:
    """(workflow, job id, job) for every job that installs the registry."""
    return [
        pytest.param(path.name, job_id, job, id=f"{path.name}:{job_id}")
        for path in workflow_files()
        for job_id, job in load_workflow(path.name)["jobs"].items()
        if any("scripts/bootstrap" in step.get("run", "") for step in job.get("steps", []))
    ]


def expand(extras: set[str]) -> set[str]:
    """The extras and those they name (`git-model-registry[a,b]`)."""
    out, todo = set(), list(extras)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo += [e for r in EXTRAS[name] if (m := OWN.match(r)) for e in m.group(1).split(",")]
    return out


def needs_torch(extras: set[str]) -> bool:
    return any(re.match(r"torch(?![-\w.])", r) for e in expand(extras) for r in EXTRAS[e])


def installed(job: dict) -> tuple[dict, set[str]]:
    """The job's install step and the extras it names (`base`: none)."""
    (step,) = [s for s in job["steps"] if "scripts/bootstrap" in s.get("run", "")]
    m = BOOTSTRAP_RUN.match(step["run"].strip())
    assert m, f"{step['run']!r}: one command, scripts/bootstrap and the extras"
    words = m.group(1).split()
    assert words, "name the extras (or base): a bare scripts/bootstrap installs all of dev"
    return step, {e for w in words for e in w.split(",")} - {"base"}


def needed(job: dict) -> set[str]:
    """The extras the registry commands of the job need."""
    commands = [
        " ".join(c.split())
        for step in job["steps"]
        for c in REGISTRY_RUN.findall(step.get("run", ""))
    ]
    assert commands, "a job that installs the registry runs it"
    return {
        e
        for c in commands
        for pattern, extras in NEEDS.items()
        if re.match(pattern, c)
        for e in extras
    }


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_a_job_installs_exactly_the_extras_its_commands_need(workflow, job_id, job):
    _, extras = installed(job)
    assert extras <= set(EXTRAS), (
        f"{workflow}:{job_id} installs {extras - set(EXTRAS)}: no such extra"
    )
    assert extras == needed(job), f"{workflow}:{job_id} installs {extras or 'base'}"


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_a_cached_environment_is_keyed_by_its_extras(workflow, job_id, job):
    step, extras = installed(job)
    caches = [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@")]
    # the checkout the install step bootstraps: the workspace, or a folder of it (`base/`)
    checkout = step["run"].split()[0].removesuffix("scripts/bootstrap")
    for cache in caches:
        assert cache["with"]["path"] == f"{checkout}.venv"
        key = cache["with"]["key"]
        named = "-".join(step["run"].split()[1:])
        assert key.startswith("venv-${{ runner.os }}-"), key
        assert "py${{ steps.python.outputs.python-version }}" in key, key
        assert key.endswith(f"-{named}-${{{{ hashFiles('{checkout}pyproject.toml') }}}}"), (
            key,
            named,
        )
    torch_index = "PIP_EXTRA_INDEX_URL" in step.get("env", {})
    assert torch_index == needs_torch(extras), (
        f"{workflow}:{job_id}: PyTorch's CPU index is for the install steps that install torch"
    )


def test_no_workflow_gives_every_job_the_torch_index():
    for path in workflow_files():
        assert "PIP_EXTRA_INDEX_URL" not in load_workflow(path.name).get("env", {}), path.name


def test_dev_holds_every_extra():
    assert expand({"dev"}) == set(EXTRAS)
    assert needs_torch({"dev"}) and not needs_torch({"package"})


def test_bootstrap_refuses_an_unknown_extra(tmp_path):
    """Before it installs anything, with the extras to choose from."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO_ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    shutil.copy2(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)

    proc = subprocess.run(
        [str(tmp_path / "scripts" / "bootstrap"), "packages", "gpu"],
        capture_output=True,
        text=True,
    )

    assert proc.returncode != 0
    assert "no extra gpu, packages in pyproject.toml" in proc.stderr, proc.stderr
    assert "choose base or any of: package, mobile, compress, train, dev" in proc.stderr
    assert (
        "installing" not in proc.stdout
        and not (tmp_path / ".venv" / ".registry-installed").exists()
    )


def test_bootstrap_refuses_an_unknown_installer(tmp_path):
    """uv or pip, said before anything is created or installed."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO_ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    shutil.copy2(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    proc = subprocess.run(
        [str(tmp_path / "scripts" / "bootstrap"), "base"],
        capture_output=True,
        text=True,
        env={**os.environ, "REGISTRY_INSTALLER": "conda"},
    )

    assert proc.returncode == 2
    assert "REGISTRY_INSTALLER is uv or pip, not 'conda'" in proc.stderr, proc.stderr
    assert not (tmp_path / ".venv").exists()
