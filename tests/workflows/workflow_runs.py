"""Running the real workflows with the real `act`, in host mode, with no network.

Third-party actions are replaced by the small composite actions in `standins/` through act's
`--local-repository`, so a run touches nothing outside the machine: checkout clones the test's
registry repository, setup-python reports this interpreter, cache prepares a venv that sees this
environment's packages (so torch & co. are not installed again) while the workflow still installs
the registry itself from its own checkout, artifacts and pull-request comments are files the test
reads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STANDINS = Path(__file__).resolve().parent / "standins"
BIN = Path(sys.executable).parent
# What the workflows' `uses:` lines name → the stand-in that replaces it under act.
STANDIN_FOR = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "actions/cache": "cache",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
    "peter-evans/find-comment": "find-comment",
    "peter-evans/create-or-update-comment": "create-or-update-comment",
    "stefanzweifel/git-auto-commit-action": "git-auto-commit-action",
    "actions/attest-build-provenance": "attest-build-provenance",
    "actions/upload-pages-artifact": "upload-pages-artifact",
    "actions/deploy-pages": "deploy-pages",
}
GITHUB_REPOSITORY = "example/registry"
# Runner labels the workflows ask for that run on this machine (act's host mode: no containers).
HOST_RUNNERS = ("ubuntu-latest", "ubuntu-24.04-arm")
ACT_TIMEOUT_S = 300


def _shared_builders():
    """tests/conftest.py loaded by its path (its name `conftest` is not unique in the test tree)."""
    spec = importlib.util.spec_from_file_location(
        "registry_tests_shared", REPO_ROOT / "tests" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SHARED = _shared_builders()
example_card = _SHARED.example_card  # a valid card as a publisher writes it
mlp_onnx = _SHARED.mlp_onnx  # bytes of a small real ONNX classifier


def tool(name: str) -> Path:
    """A binary of the test environment; fails (never skips) when it is missing."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/bootstrap (it installs the dev extra)")
    return path


def git_env(home: Path) -> dict[str, str]:
    """Environment for git with an identity and no user or system config."""
    return {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Registry Tests",
        "GIT_AUTHOR_EMAIL": "tests@registry.invalid",
        "GIT_COMMITTER_NAME": "Registry Tests",
        "GIT_COMMITTER_EMAIL": "tests@registry.invalid",
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


class ProjectClone:
    """A real registry repository made from this project's files, with local DVC remotes.

    `main` holds the project as it is in the working tree (committed or not), so the workflows and
    the registry code under test are exactly the ones being developed.
    """

    def __init__(self, root: Path, storage: Path, home: Path):
        self.root, self.storage, self.home = root, storage, home
        self.env = git_env(home)

    def run(self, *cmd: str | Path, check: bool = True) -> str:
        proc = subprocess.run(
            [str(c) for c in cmd], cwd=self.root, env=self.env, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout.strip()

    def git(self, *args: str) -> str:
        return self.run("git", *args)

    def dvc(self, *args: str) -> str:
        return self.run(tool("dvc"), *args)

    def write(self, files: dict[str, str | bytes]) -> None:
        for rel, content in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    def track(self, rel: str, data: bytes) -> str:
        """Push `data` to the staging remote as DVC would for `rel`; return its `.dvc` pointer text.

        Branches commit the pointer; the weights themselves stay out of git, as in a real registry.
        """
        self.write({rel: data})
        self.dvc("add", "-q", rel)
        self.dvc("push", "-q", "-r", "staging", rel + ".dvc")
        pointer = (self.root / (rel + ".dvc")).read_text()
        self.git("clean", "-qfdx", "--", str(Path(rel).parent))
        return pointer

    def branch(
        self,
        name: str,
        files: dict[str, str | bytes],
        *,
        start: str = "main",
        message: str = "change",
    ) -> str:
        """Commit `files` on branch `name` (made from `start`); return the commit id."""
        self.git("checkout", "-q", "-B", name, start)
        self.write(files)
        # A publisher declares new models in dvc.yaml (as `registry new` does), or the bot fails it.
        self.run(tool("registry"), "sync-artifacts")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        sha = self.git("rev-parse", "HEAD")
        self.git("checkout", "-q", "main")
        return sha


def make_project_clone(tmp: Path) -> ProjectClone:
    """Copy the project's tracked and unignored files into a fresh repository at `tmp/origin`."""
    home, root, storage = tmp / "home", tmp / "origin", tmp / "storage"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    clone = ProjectClone(root, storage, home)
    clone.git("init", "-q", "-b", "main")
    # the workflows push tags and the changelog commit back to this repository, as to GitHub
    clone.git("config", "receive.denyCurrentBranch", "updateInstead")
    clone.write(
        {
            ".dvc/config": "[core]\n    analytics = false\n    remote = public\n"
            f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
            f"['remote \"public\"']\n    url = {storage / 'public'}\n",
            "models/.gitkeep": "",
        }
    )
    clone.git("add", "-A")
    clone.git("commit", "-q", "-m", "registry")
    return clone


@dataclass
class ActResult:
    """What a user of the workflow would see: act's exit status and log, artifacts, comments."""

    returncode: int
    output: str
    artifacts: Path
    comments: Path

    def annotations(self, level: str = "error") -> list[str]:
        """The workflow-command annotations (`::error file=…,line=…::…`) the run printed."""
        return re.findall(rf"::{level} [^\n]*", self.output)

    def job_status(self, job_name: str) -> str | None:
        """'succeeded' or 'failed' for the job shown as `job_name`, None if it did not run."""
        # act shows a job as [workflow/name], a matrix job as [workflow/name-N] padded with spaces
        m = re.search(
            rf"\[[^\]/]+/{re.escape(job_name)}(?:-\d+)? *\]\s+🏁\s+Job (succeeded|failed)",
            self.output,
        )
        return m.group(1) if m else None

    def pr_comments(self, number: int) -> dict[str, str]:
        """The comments on pull request `number`, by comment id."""
        folder = self.comments / str(number)
        return (
            {p.stem: p.read_text() for p in sorted(folder.glob("*.md"))} if folder.exists() else {}
        )


class Act:
    """Runs one workflow of a `ProjectClone` with the real act, in host mode, offline."""

    def __init__(self, clone: ProjectClone, tmp: Path):
        self.clone, self.tmp = clone, tmp
        self.artifacts, self.comments = tmp / "artifacts", tmp / "comments"
        self.releases = tmp / "releases"
        # act takes the repository's name from the origin of the folder it starts in (-C), and
        # `github.sha` from that folder's HEAD: a clone whose origin is the GitHub address.
        self.start = tmp / "start"
        subprocess.run(
            ["git", "clone", "-q", "--no-checkout", str(clone.root), str(self.start)],
            check=True,
            env=clone.env,
        )
        subprocess.run(
            ["git", "remote", "rename", "origin", "local"],
            cwd=self.start,
            check=True,
            env=clone.env,
        )
        subprocess.run(
            ["git", "remote", "add", "origin", f"https://github.com/{GITHUB_REPOSITORY}.git"],
            cwd=self.start,
            check=True,
            env=clone.env,
        )

    def local_repositories(self, workflow: Path) -> list[str]:
        """`--local-repository` arguments for every third-party action the workflow uses."""
        args = []
        for uses in sorted(
            set(re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})", workflow.read_text()))
        ):
            repo, ref = uses
            if repo not in STANDIN_FOR:
                pytest.fail(f"{workflow.name} uses {repo}, which has no stand-in in {STANDINS}")
            args += ["--local-repository", f"{repo}@{ref}={STANDINS / STANDIN_FOR[repo]}"]
        return args

    def run(
        self,
        workflow: str,
        event_name: str,
        event: dict,
        *,
        sha: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = ACT_TIMEOUT_S,
    ) -> ActResult:
        """Run `.github/workflows/<workflow>` of the clone for one event; return what it showed.

        `sha` is the run's `github.sha` (a push's `after`); by default the clone's main.
        `timeout`: seconds the whole run may take (a run of several jobs that each install the
        registry and train takes longer than one check).
        """
        for args in (["fetch", "-q", "local"], ["checkout", "-q", "--detach", sha or "local/main"]):
            subprocess.run(["git", *args], cwd=self.start, check=True, env=self.clone.env)
        path = self.clone.root / ".github" / "workflows" / workflow
        event_file = self.tmp / f"event-{event_name}.json"
        event_file.write_text(json.dumps(event))
        standin_env = {
            "REGISTRY_STANDIN_ORIGIN": str(self.clone.root),
            # the interpreter this venv was made from
            "REGISTRY_STANDIN_PYTHON": sys._base_executable,
            "REGISTRY_STANDIN_SITE": sysconfig.get_paths()["purelib"],
            "REGISTRY_STANDIN_ARTIFACTS": str(self.artifacts),
            "REGISTRY_STANDIN_COMMENTS": str(self.comments),
            "REGISTRY_STANDIN_RELEASES": str(self.releases),
            # `gh` is the stand-in CLI in standins/bin
            "PATH": f"{STANDINS / 'bin'}{os.pathsep}{self.clone.env['PATH']}",
            # no network: the prepared packages already satisfy every requirement (so pip installs
            # only the registry, from the checkout), and the editable install builds with their
            # setuptools instead of downloading one.
            "PIP_NO_INDEX": "1",
            "PIP_NO_DEPS": "1",
            "PIP_NO_BUILD_ISOLATION": "0",
            **(env or {}),
        }
        cmd = [
            str(tool("act")),
            event_name,
            "-C",
            str(self.start),
            "-W",
            str(path),
            "-e",
            str(event_file),
            *(arg for label in HOST_RUNNERS for arg in ("-P", f"{label}=-self-hosted")),
            "--action-offline-mode",
            "--no-skip-checkout",
            "--action-cache-path",
            str(self.tmp / "act-cache"),
            "--no-cache-server",
            *self.local_repositories(path),
        ]
        for key, value in standin_env.items():
            cmd += ["--env", f"{key}={value}"]
        # the test registries' training code is a local repository (a repository variable, as an
        # administrator of a one-machine registry would set it)
        cmd += ["--var", "REGISTRY_ALLOW_LOCAL_URLS=true"]
        proc = subprocess.run(
            cmd,
            cwd=self.start,
            env=self.clone.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return ActResult(proc.returncode, proc.stdout + proc.stderr, self.artifacts, self.comments)


def pull_request_event(
    number: int, base: str, head: str, head_ref: str, head_repo: str = GITHUB_REPOSITORY
) -> dict:
    """A `pull_request` event payload as GitHub sends it (the fields the workflow reads)."""
    repo = {
        "full_name": GITHUB_REPOSITORY,
        "name": GITHUB_REPOSITORY.split("/")[1],
        "owner": {"login": GITHUB_REPOSITORY.split("/")[0]},
    }
    return {
        "action": "synchronize",
        "number": number,
        "repository": repo,
        "pull_request": {
            "number": number,
            "base": {"sha": base, "ref": "main", "repo": repo},
            "head": {"sha": head, "ref": head_ref, "repo": {"full_name": head_repo}},
        },
    }


def workflow_files() -> list[Path]:
    """Every workflow of the project."""
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def load_workflow(name: str) -> dict:
    """A workflow file parsed (note: YAML reads the key `on` as True)."""
    return yaml.safe_load((WORKFLOWS / name).read_text())
