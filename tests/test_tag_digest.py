"""The digest of every tag ref that `registry list` checks the index with, kept beside git's files
between runs: reused only while no tag ref changed, loose or packed, in a clone or a worktree."""

import hashlib
import os
import time
from pathlib import Path

import pytest

from factories import run, two_commit_clone
from registry.versions import tag_digest
from registry.versions.index import TagDigest


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo).stdout


def truth(repo: Path) -> str:
    """The digest as git lists the tags now."""
    out = run(["git", "show-ref", "--tags"], repo, check=False).stdout
    return hashlib.sha1(out.encode()).hexdigest()


def make_repo(path: Path, *, packed: bool) -> Path:
    """A clone with two commits and three annotated tags, loose or packed."""
    two_commit_clone(path)
    git(path, "tag", "-a", "m@v1.0.0", "-m", "one", "HEAD~1")
    git(path, "tag", "-a", "m@v1.1.0", "-m", "two", "HEAD")
    git(path, "tag", "-a", "other@v0.1.0", "-m", "three", "HEAD")
    if packed:
        git(path, "pack-refs", "--all")
    return path


def packed_line(repo: Path, ref: str) -> str | None:
    text = (repo / ".git" / "packed-refs").read_text()
    return next((line for line in text.splitlines() if line.endswith(" " + ref)), None)


def move_in_packed_refs(repo: Path) -> None:
    """Point a packed tag at another tag object by rewriting packed-refs in place (same size, same
    file), as nothing but a hand edit would."""
    other = git(repo, "rev-parse", "refs/tags/other@v0.1.0").strip()
    path = repo / ".git" / "packed-refs"
    text = path.read_text()
    line = packed_line(repo, "refs/tags/m@v1.1.0")
    new = text.replace(line, f"{other} refs/tags/m@v1.1.0")
    assert len(new) == len(text)
    with open(path, "r+") as f:
        f.write(new)


CHANGES = {
    "loose tag added": lambda r: git(r, "tag", "-a", "m@v1.2.0", "-m", "new", "HEAD"),
    "loose tag deleted": lambda r: git(r, "tag", "-d", "m@v1.0.0"),
    "loose tag moved": lambda r: git(r, "tag", "-f", "-a", "m@v1.1.0", "-m", "moved", "HEAD~1"),
    "packed tag added": lambda r: (
        git(r, "tag", "-a", "m@v1.2.0", "-m", "new", "HEAD"),
        git(r, "pack-refs", "--all"),
    ),
    "packed tag deleted": lambda r: git(r, "tag", "-d", "m@v1.0.0"),
    "packed tag moved": lambda r: (
        git(r, "tag", "-f", "-a", "m@v1.1.0", "-m", "moved", "HEAD"),
        git(r, "pack-refs", "--all"),
    ),
    "packed-refs edited in place": move_in_packed_refs,
}


@pytest.fixture
def margin(monkeypatch):
    """A shorter wait before a file counts as settled (the mechanism is the same)."""
    monkeypatch.setattr(tag_digest, "MARGIN_S", 0.3)
    return 0.3


def test_every_change_to_the_tag_refs_after_the_digest_was_kept_is_noticed(tmp_path, margin):
    repos = {
        change: make_repo(tmp_path / f"r{i}", packed=change.startswith("packed"))
        for i, change in enumerate(CHANGES)
    }
    time.sleep(margin + 0.1)  # the ref files settle: the digest may be kept
    for change, repo in repos.items():
        before = TagDigest(repo).hexdigest()
        assert before == truth(repo)
        assert (repo / ".git" / "registry" / "tag-digest").is_file(), change
        assert TagDigest(repo).hexdigest() == before  # kept, and the same
        CHANGES[change](repo)
        after = TagDigest(repo).hexdigest()
        assert after == truth(repo) and after != before, change


def test_a_digest_is_not_kept_while_the_ref_files_are_fresh(tmp_path, margin):
    repo = make_repo(tmp_path / "r", packed=True)
    assert TagDigest(repo).hexdigest() == truth(repo)
    assert not (repo / ".git" / "registry" / "tag-digest").exists()
    time.sleep(margin + 0.1)
    TagDigest(repo).hexdigest()
    assert (repo / ".git" / "registry" / "tag-digest").is_file()


def test_a_worktree_shares_the_clone_s_digest_and_sees_its_tags(tmp_path, margin):
    repo = make_repo(tmp_path / "r", packed=True)
    tree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(tree), "HEAD")
    time.sleep(margin + 0.1)
    assert tag_digest.common_dir(tree) == (repo / ".git").resolve()
    assert TagDigest(tree).hexdigest() == truth(repo)
    assert (repo / ".git" / "registry" / "tag-digest").is_file()
    git(tree, "tag", "-a", "m@v2.0.0", "-m", "from the worktree", "HEAD")
    assert TagDigest(repo).hexdigest() == truth(repo) == TagDigest(tree).hexdigest()


def test_an_unusual_git_folder_gets_no_kept_digest_but_the_right_one(tmp_path, margin, monkeypatch):
    repo = make_repo(tmp_path / "r", packed=True)
    time.sleep(margin + 0.1)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert tag_digest.common_dir(repo) is None
    assert TagDigest(repo).hexdigest() == truth(repo)
    assert not (repo / ".git" / "registry").exists()
    monkeypatch.delenv("GIT_DIR")
    (repo / ".git" / "reftable").mkdir()  # another ref store: only git can list it
    assert tag_digest.common_dir(repo) is None


def test_a_kept_digest_that_cannot_be_written_is_no_error(tmp_path, margin):
    repo = make_repo(tmp_path / "r", packed=True)
    time.sleep(margin + 0.1)
    (repo / ".git" / "registry").write_text("not a folder")
    assert TagDigest(repo).hexdigest() == truth(repo)
    assert os.path.isfile(repo / ".git" / "registry")
