"""Every workflow passes actionlint (the real binary), and keeps the shape the project promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_runs import WORKFLOWS, load_workflow, tool, workflow_files  # noqa: E402

PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def test_there_are_workflows():
    names = {p.name for p in workflow_files()}
    assert {"validate.yml", "publish.yml", "release.yml"} <= names, names


@pytest.mark.parametrize("workflow", workflow_files(), ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow):
    proc = actionlint(workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def actionlint(workflow: Path) -> subprocess.CompletedProcess:
    """actionlint with shellcheck (so the shell of every `run:` step is linted too)."""
    return subprocess.run(
        [str(tool("actionlint")), "-no-color", f"-shellcheck={tool('shellcheck')}", str(workflow)],
        capture_output=True,
        text=True,
        cwd=WORKFLOWS.parent.parent,
    )


def test_actionlint_lints_the_shell_of_run_steps(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    steps:\n      - run: rm -rf $FOLDER/*\n"
    )
    proc = actionlint(bad)
    assert proc.returncode != 0 and "SC2086" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("workflow", workflow_files(), ids=lambda p: p.name)
def test_workflow_is_least_privilege_and_pinned(workflow):
    doc = load_workflow(workflow.name)
    assert doc.get("permissions") == {}, f"{workflow.name}: top-level permissions must be {{}}"
    for job_id, job in doc["jobs"].items():
        assert "permissions" in job, (
            f"{workflow.name}: job {job_id} must say which permissions it needs"
        )
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert PINNED.match(uses), (
                    f"{workflow.name}: {job_id} uses {uses}: pin a full commit id"
                )


def test_validate_never_runs_with_a_privileged_trigger():
    doc = load_workflow("validate.yml")
    triggers = doc[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request"}, triggers
    assert doc["concurrency"]["cancel-in-progress"] is True
    jobs = doc["jobs"]
    writers = {j for j, job in jobs.items() if "write" in job["permissions"].values()}
    assert writers == {"comment"}, writers
    # the job that may write runs no code of the repository: only actions
    assert all("run" not in step for step in jobs["comment"]["steps"])


def test_publish_runs_one_at_a_time_and_never_cancels():
    doc = load_workflow("publish.yml")
    assert doc["concurrency"] == {"group": "publish", "cancel-in-progress": False}
    assert doc[True]["push"]["branches"] == ["main"]


def test_release_grants_signing_permissions_to_the_last_job_only():
    jobs = load_workflow("release.yml")["jobs"]
    signing = {
        j for j, job in jobs.items() if {"id-token", "attestations"} & set(job["permissions"])
    }
    assert signing == {"release"}, signing
    assert jobs["release"]["permissions"] == {
        "contents": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert all(
        job["permissions"] == {"contents": "read"} for j, job in jobs.items() if j != "release"
    )


def test_release_verifies_the_tag_with_the_default_branchs_code_before_anything_else():
    jobs = load_workflow("release.yml")["jobs"]
    verify = jobs["verify-tag"]
    assert "needs" not in verify and jobs["plan"]["needs"] == "verify-tag"
    checkout = verify["steps"][0]
    assert checkout["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    assert any("registry verify-tag" in step.get("run", "") for step in verify["steps"])
    assert not any("secrets." in str(step) for step in verify["steps"])
    # the build job runs the tag's code: it gets read-only storage credentials
    build_env = str(jobs["build"]["steps"])
    assert (
        "REGISTRY_PUBLIC_READ_KEY_ID" in build_env
        and "REGISTRY_AWS_SECRET_ACCESS_KEY" not in build_env
    )


def test_validate_forbids_local_source_urls():
    steps = load_workflow("validate.yml")["jobs"]["check"]["steps"]
    assert any("--forbid-local-urls" in step.get("run", "") for step in steps)
