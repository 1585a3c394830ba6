"""`GitProcess`, the way `registry list` starts git: the same answers whether it spawns git itself
(POSIX) or, where `os.posix_spawnp` is missing (Windows), through the subprocess module."""

from __future__ import annotations

import os
import subprocess

import pytest

from registry.core.errors import GitError
from registry.core.git import GitProcess


@pytest.fixture(params=["spawn", "subprocess"])
def how(request, monkeypatch):
    if request.param == "subprocess":
        monkeypatch.delattr(os, "posix_spawnp")
    return request.param


@pytest.fixture
def clone(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    (tmp_path / "a.txt").write_text("hello\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return tmp_path, git("rev-parse", "HEAD").strip()


def test_reads_what_git_prints(clone, how):
    root, head = clone
    out, err, code = GitProcess(root, "rev-parse", "HEAD").communicate()
    assert (out.decode().strip(), err, code) == (head, b"", 0)


def test_writes_a_request_and_reads_the_answer(clone, how):
    root, head = clone
    out, _, code = GitProcess(root, "cat-file", "--batch", stdin=True).communicate(
        f"{head}:a.txt\n".encode()
    )
    assert code == 0 and out.endswith(b" blob 6\nhello\n\n")


def test_keeps_git_s_message_and_exit_status(clone, how):
    root, _ = clone
    out, err, code = GitProcess(root, "rev-parse", "no-such-rev", stderr=True).communicate()
    assert code != 0 and b"no-such-rev" in err


def test_kill_ends_a_git_that_waits_for_input(clone, how):
    root, _ = clone
    proc = GitProcess(root, "cat-file", "--batch", stdin=True)
    proc.kill()  # git was waiting on its standard input: kill returns once it has ended
    assert proc.returncode is not None and proc.returncode != 0


def test_a_missing_git_is_one_clear_error(clone, how, monkeypatch):
    root, _ = clone
    monkeypatch.setenv("PATH", str(root / "no-bin"))
    with pytest.raises(GitError, match="cannot run git") as e:
        GitProcess(root, "rev-parse", "HEAD")
    assert "install git" in e.value.hint


def test_run_git_without_git_is_the_same_clear_error(clone, monkeypatch):
    from registry.core.git import run_git

    root, _ = clone
    monkeypatch.setenv("PATH", str(root / "no-bin"))
    with pytest.raises(GitError, match="cannot run git"):
        run_git(root, "rev-parse", "HEAD")
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError):  # a missing folder is not a missing git
        run_git(root / "no-such-folder", "rev-parse", "HEAD")
