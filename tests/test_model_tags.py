"""The tags of one model (`registry.versions.tags.model_tag_refs`), read from the ref files without
listing the other tags: the same lines `git for-each-ref` prints for `refs/tags/<name>@*`, whether
the refs are loose, packed, or both."""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import run, two_commit_clone
from registry.core.git import TAG_REF_FORMAT, ObjectReader
from registry.versions.tags import model_tag_refs, parse_refs, read_model_versions


def git(repo: Path, *args: str, **kw) -> str:
    return run(["git", *args], repo, **kw).stdout


def by_git(repo: Path, name: str) -> str:
    """What git itself lists for the model's tags."""
    return git(repo, "for-each-ref", f"--format={TAG_REF_FORMAT}", f"refs/tags/{name}@*")


def tag(repo: Path, name: str, rev: str = "HEAD", *, annotated: bool = True) -> None:
    if annotated:
        git(repo, "tag", "-a", name, "-m", name, rev)
    else:
        git(repo, "tag", name, rev)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A clone with two commits."""
    return two_commit_clone(tmp_path / "registry")


def test_loose_and_packed_tags_are_read_as_git_lists_them(repo):
    tag(repo, "tiny@v1.0.0", "HEAD~1")
    tag(repo, "tiny@v1.1.0")
    git(repo, "pack-refs", "--all")
    tag(repo, "tiny@v1.2.0")  # loose, beside the packed ones
    tag(repo, "tiny@v1.1.0!#1")  # GTO's withdrawal of 1.1.0
    assert (repo / ".git" / "refs" / "tags" / "tiny@v1.2.0").is_file()
    assert "tiny@v1.0.0" in (repo / ".git" / "packed-refs").read_text()
    out = model_tag_refs(repo, "tiny")
    assert out == by_git(repo, "tiny")
    assert model_tag_refs(repo, "tiny", ObjectReader(repo)) == out  # through a running reader
    versions = read_model_versions(repo, "tiny")
    assert [(v.version, v.withdrawn) for v in versions] == [
        ("1.0.0", False),
        ("1.1.0", True),
        ("1.2.0", False),
    ]
    assert versions[0].commit == git(repo, "rev-parse", "HEAD~1").strip()


def test_a_loose_tag_wins_over_its_packed_copy(repo):
    tag(repo, "tiny@v1.0.0", "HEAD~1")
    git(repo, "pack-refs", "--all")
    git(repo, "tag", "-f", "-a", "tiny@v1.0.0", "-m", "moved", "HEAD")  # written loose
    packed = (repo / ".git" / "packed-refs").read_text()
    assert "refs/tags/tiny@v1.0.0" in packed and (repo / ".git/refs/tags/tiny@v1.0.0").is_file()
    assert model_tag_refs(repo, "tiny") == by_git(repo, "tiny")
    [version] = read_model_versions(repo, "tiny")
    assert version.commit == git(repo, "rev-parse", "HEAD").strip()


def test_a_deleted_packed_tag_is_gone(repo):
    tag(repo, "tiny@v1.0.0", "HEAD~1")
    tag(repo, "tiny@v1.1.0")
    git(repo, "pack-refs", "--all")
    git(repo, "tag", "-d", "tiny@v1.0.0")
    assert model_tag_refs(repo, "tiny") == by_git(repo, "tiny")
    assert [v.version for v in read_model_versions(repo, "tiny")] == ["1.1.0"]


@pytest.mark.parametrize("packed", [False, True])
def test_names_sharing_a_prefix_are_other_models(repo, packed):
    for name in ("aa@v1.0.0", "aab@v1.0.0", "aa-b@v2.0.0", "aa@v1.1.0", "bb@v1.0.0", "@v9.0.0"):
        tag(repo, name)
    if packed:
        git(repo, "pack-refs", "--all")
    for name in ("aa", "aab", "aa-b", "bb", "cc"):
        assert model_tag_refs(repo, name) == by_git(repo, name), name
    assert list(parse_refs(model_tag_refs(repo, "aa"))) == ["aa"]
    assert [v.version for v in read_model_versions(repo, "aa")] == ["1.0.0", "1.1.0"]
    assert model_tag_refs(repo, "cc") == ""


@pytest.mark.parametrize("packed", [False, True])
def test_lightweight_tags_are_listed_but_are_no_version(repo, packed):
    tag(repo, "tiny@v1.0.0", "HEAD~1")
    tag(repo, "tiny@v2.0.0", annotated=False)
    if packed:
        git(repo, "pack-refs", "--all")
    out = model_tag_refs(repo, "tiny")
    assert out == by_git(repo, "tiny")
    assert "tiny@v2.0.0\tcommit\t" in out
    assert [v.version for v in read_model_versions(repo, "tiny")] == ["1.0.0"]


def test_packed_refs_with_the_peeled_header(repo):
    tag(repo, "tiny@v1.0.0", "HEAD~1")
    tag(repo, "tiny@v1.1.0", annotated=False)
    git(repo, "pack-refs", "--all")
    text = (repo / ".git" / "packed-refs").read_text()
    assert text.startswith("# pack-refs with: peeled") and "sorted" in text.splitlines()[0]
    assert "\n^" in text  # the annotated tag's peeled commit follows its line
    assert model_tag_refs(repo, "tiny") == by_git(repo, "tiny")


def test_a_large_sorted_packed_refs_is_searched_for_each_name(repo):
    """Hundreds of packed tags, annotated ones (with their peeled lines) among lightweight ones:
    every model's lines, the first and the last of the file and names between them."""
    commit = git(repo, "rev-parse", "HEAD").strip()
    lines = [f"create refs/tags/m{i:03d}@v1.0.0 {commit}" for i in range(0, 300)]
    git(repo, "update-ref", "--stdin", input="\n".join(lines) + "\n")
    for i in range(0, 300, 7):
        tag(repo, f"m{i:03d}@v2.0.0")
    tag(repo, "zz@v1.0.0")
    git(repo, "pack-refs", "--all")
    assert not list((repo / ".git" / "refs" / "tags").iterdir())
    for name in ("m000", "m001", "m007", "m150", "m298", "m299", "zz", "aa", "m", "m15", "zzz"):
        assert model_tag_refs(repo, name) == by_git(repo, name), name


def test_an_unsorted_packed_refs_is_scanned(repo):
    """A `packed-refs` without the `sorted` trait (older git) is read line by line."""
    tag(repo, "tiny@v1.0.0", "HEAD~1")
    tag(repo, "aa@v1.0.0")
    git(repo, "pack-refs", "--all")
    packed = repo / ".git" / "packed-refs"
    body = [ln for ln in packed.read_text().splitlines() if not ln.startswith("#")]
    packed.write_text("\n".join(reversed([ln for ln in body if not ln.startswith("^")])) + "\n")
    assert model_tag_refs(repo, "tiny") == by_git(repo, "tiny") != ""
    assert model_tag_refs(repo, "aa") == by_git(repo, "aa") != ""


def test_a_symbolic_tag_ref_is_left_to_git(repo):
    tag(repo, "tiny@v1.0.0")
    git(repo, "symbolic-ref", "refs/tags/tiny@v1.0.1", "refs/tags/tiny@v1.0.0")
    assert model_tag_refs(repo, "tiny") == by_git(repo, "tiny")
    assert "tiny@v1.0.1\ttag\t" in model_tag_refs(repo, "tiny")


def test_a_worktree_reads_the_tags_of_its_clone(repo, tmp_path):
    tag(repo, "tiny@v1.0.0")
    git(repo, "pack-refs", "--all")
    tag(repo, "tiny@v1.1.0")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "HEAD~1")
    assert model_tag_refs(tmp_path / "wt", "tiny") == by_git(repo, "tiny")
    assert [v.version for v in read_model_versions(tmp_path / "wt", "tiny")] == ["1.0.0", "1.1.0"]
