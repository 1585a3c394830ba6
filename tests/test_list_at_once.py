"""`registry list` answered before click is loaded prints exactly what the click command prints:
the same rows, notices, errors and exit codes (`registry --traceback list …` always takes the
click path, so the two are compared side by side)."""

import json
import os
import subprocess
import sys

import pytest

from factories import REPO_ROOT


def both(reg, *args: str, cwd=None) -> tuple[subprocess.CompletedProcess, ...]:
    fast = reg.registry(*args, cwd=cwd)
    full = reg.registry("--traceback", *args, cwd=cwd)
    assert fast.returncode == full.returncode
    assert (fast.stdout, fast.stderr) == (full.stdout, full.stderr)
    return fast, full


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("list", "--format", "json"),
        ("list", "--format=json", "--state", "updated"),
        ("list", "--task", "classification", "--project", "demo", "--state", "unpublished"),
        ("list", "--rev", "HEAD~1"),
        ("list", "--state", "bogus"),
        ("list", "--rev", "no-such-revision"),
        ("list", "--format", "yaml"),
        ("list", "--task"),
        ("list", "--task", "a", "--task", "b"),
        ("list", "--state", "\x1b[31mred"),
        ("list", "--help"),
    ],
)
def test_list_prints_the_same_with_or_without_click(published_registry, args):
    both(published_registry, *args)  # no registry index: from the cards and tags
    assert published_registry.registry("index", "rebuild").returncode == 0
    both(published_registry, *args)


def test_unusual_registries_list_the_same_with_or_without_click(published_registry, tmp_path):
    reg = published_registry
    assert reg.registry("index", "rebuild").returncode == 0
    # a card edited in the working tree, a folder git does not know, a tag added by hand
    card = reg.root / "models" / "draft" / "model.yaml"
    card.write_text(card.read_text().replace("task: classification", "task: detection"))
    reg.write({"models/fresh/model.yaml": card.read_text().replace("name: draft", "name: fresh")})
    reg.git("tag", "-a", "digits@v9.0.0", "-m", "by hand", "HEAD")
    fast, _ = both(reg, "list", "--format", "json")
    assert {r["name"]: r["task"] for r in json.loads(fast.stdout)}["fresh"] == "detection"
    # no index at all: a notice, every card and tag read
    reg.git("update-ref", "-d", "refs/registry/index")
    fast, _ = both(reg, "list")
    assert "note:" in fast.stderr and "digits" in fast.stdout
    # outside a clone: the funnel's error
    fast, _ = both(reg, "list", cwd=tmp_path)
    assert fast.returncode != 0 and fast.stderr.startswith("error: ")


def test_a_plain_list_loads_neither_click_nor_the_card_schema(published_registry):
    assert published_registry.registry("index", "rebuild").returncode == 0
    published_registry.git("status")  # the copied clone's file stats refreshed in git's index
    code = (
        "import sys; from registry.cli import main; main(['list']); "
        "print('click' in sys.modules, 'pydantic' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=published_registry.root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "digits" in proc.stdout and proc.stderr.strip().endswith("False False")


def test_list_finds_the_clone_wherever_git_would(published_registry, tmp_path):
    """The clone is found without git where its `.git` folder is plain; a subfolder, a linked
    worktree and a git folder named by `GIT_DIR` list the same models as the clone's top."""
    reg = published_registry
    assert reg.registry("index", "rebuild").returncode == 0
    at_top, _ = both(reg, "list")
    assert "digits" in at_top.stdout and not at_top.stderr
    from_models, _ = both(reg, "list", cwd=reg.root / "models" / "digits")
    assert from_models.stdout == at_top.stdout
    tree = tmp_path / "linked"
    reg.git("worktree", "add", "-q", "--detach", str(tree), "HEAD")
    in_worktree, _ = both(reg, "list", cwd=tree / "models")
    assert in_worktree.stdout == at_top.stdout
    env = {"GIT_DIR": str(reg.root / ".git"), "GIT_WORK_TREE": str(reg.root)}
    fast = reg.registry("list", env=env, cwd=tmp_path)
    full = reg.registry("--traceback", "list", env=env, cwd=tmp_path)
    assert fast.returncode == full.returncode == 0, fast.stderr
    assert fast.stdout == full.stdout == at_top.stdout


def test_list_outside_a_clone_or_without_git_says_so_in_one_line(published_registry, tmp_path):
    reg = published_registry
    outside, _ = both(reg, "list", cwd=tmp_path)
    assert outside.returncode == 2
    assert "is not inside a clone of the registry" in outside.stderr
    assert "Traceback" not in outside.stderr
    inside_git_folder, _ = both(reg, "list", cwd=reg.root / ".git")
    assert inside_git_folder.returncode == 2
    # no git on the PATH: one clear line, whichever reader found git missing first
    no_git = {"PATH": str(tmp_path)}
    for index in ("without", "with"):
        if index == "with":
            assert reg.registry("index", "rebuild").returncode == 0
        listed = reg.registry("list", env=no_git)
        assert listed.returncode == 4 and not listed.stdout, index
        assert listed.stderr.startswith("error: cannot run git"), listed.stderr
        assert "install git" in listed.stderr and "Traceback" not in listed.stderr
