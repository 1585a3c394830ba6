"""A revision of the registry reads the same files, links and folders as its checkout, straight
from git's objects, with or without gitpython's `Repo` in hand."""

from __future__ import annotations

import os

import pytest

from registry.core.errors import GitError, UsageError
from registry.core.repo import GitRevision, RegistryRepo

FILES = {
    "models/tiny/model.yaml": "name: tiny\n",
    "models/tiny/conf dir/a b.yaml": "x: 1\n",
    "models/other/model.yaml": "name: other\n",
    ".github/CODEOWNERS": "* @org/maintainers\n",
}


@pytest.fixture
def committed(registry_repo):
    registry_repo.write(FILES)
    os.symlink("model.yaml", registry_repo.root / "models/tiny/card-link")
    registry_repo.commit(message="two models")
    return registry_repo


def test_a_revision_reads_what_the_checkout_holds(committed):
    repo = RegistryRepo(committed.root / "models")  # found from a folder inside the clone
    assert repo.root == committed.root
    rev, tree = repo.snapshot("HEAD"), repo.snapshot()
    for snap in (rev, tree):
        for path, text in FILES.items():
            assert snap.read(path) == text.encode(), (snap.label, path)
        assert snap.read("models/tiny/missing.yaml") is None
        assert snap.read("models/missing/model.yaml") is None
        assert snap.read("models/tiny") is None  # a folder is no file
        assert snap.list_dir("models") == [".gitkeep", "other", "tiny"]
        assert snap.list_dir("models/tiny") == ["card-link", "conf dir", "model.yaml"]
        assert snap.list_dir("nowhere") == []
        link = snap.entry("models/tiny/card-link")
        assert (link.is_symlink, link.link_target) == (True, "model.yaml")
        assert not snap.entry("models/tiny/model.yaml").is_symlink
        assert snap.entry("models/tiny/nothing") is None
        assert snap.model_names() == ["other", "tiny"]
    assert rev.rev == committed.git("rev-parse", "HEAD")
    assert rev.commit.hexsha == rev.rev  # gitpython's commit, made when asked for


def test_a_revision_from_gitpythons_repo_reads_the_same(committed):
    import git

    rev = GitRevision(git.Repo(committed.root), "main")
    assert rev.read("models/tiny/model.yaml") == b"name: tiny\n"
    assert rev.entry("models/tiny/card-link").link_target == "model.yaml"


def test_an_unknown_revision_is_named(committed):
    with pytest.raises(GitError, match="unknown git revision 'no-such-branch'"):
        RegistryRepo(committed.root).snapshot("no-such-branch")
    tree = committed.git("rev-parse", "HEAD^{tree}")
    with pytest.raises(GitError, match="unknown git revision"):
        RegistryRepo(committed.root).snapshot(tree)  # a tree is no commit


def test_outside_a_clone_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="is not inside a git repository"):
        RegistryRepo(tmp_path)


def test_a_revision_is_any_name_git_gives_a_commit(committed):
    repo = RegistryRepo(committed.root)
    head = committed.git("rev-parse", "HEAD")
    committed.git("tag", "-a", "tiny@v1.0.0", "-m", "tiny 1.0.0")
    tag_object = committed.git("rev-parse", "tiny@v1.0.0")
    for rev in ("HEAD", "main", head, head[:12], "tiny@v1.0.0", tag_object):
        assert repo.snapshot(rev).rev == head, rev


def test_many_objects_read_at_once_by_path_with_spaces_or_missing(committed):
    """One `git cat-file --batch` answers for every path: a path with a space is read, a missing
    one (even with a space, whose answer also has three words) is None, a commit is not a blob."""
    from registry.core.git import cat_files

    specs = ["HEAD:models/tiny/conf dir/a b.yaml", "HEAD:models/tiny/no such", "HEAD"]
    specs.append("HEAD:models/tiny/model.yaml")
    assert cat_files(committed.root, specs) == [b"x: 1\n", None, None, b"name: tiny\n"]
    assert cat_files(committed.root, ["HEAD"], kinds=(b"commit",))[0].startswith(b"tree ")


def test_a_revision_walks_a_folder_as_git_ls_tree_lists_it(registry_repo):
    """`walk` reads the trees through the running reader (no git process per folder) and lists
    exactly what `git ls-tree -r` lists, in its order: names that sort around a folder's `/`
    (`a.b`, `a/`, `a0`), nesting, spaces, a link, a submodule, and the cut at `limit`."""
    files = {
        "models/deep/model.yaml": "name: deep\n",
        "models/deep/a.b": "1",
        "models/deep/a/x.onnx": "2",
        "models/deep/a/b/c/d.txt": "3",
        "models/deep/a0": "4",
        "models/deep/with space/é.yaml": "5",
        "models/deep/z/z": "6",
        "models/other/model.yaml": "name: other\n",
    }
    registry_repo.write(files)
    os.symlink("../model.yaml", registry_repo.root / "models/deep/a/link")
    sub = registry_repo.git("rev-parse", "HEAD")  # any commit id serves as a submodule's
    registry_repo.git("update-index", "--add", "--cacheinfo", f"160000,{sub},models/deep/vendored")
    registry_repo.commit(message="nested")
    rev = RegistryRepo(registry_repo.root).snapshot("HEAD")
    listed = registry_repo.git("ls-tree", "-r", "-z", "HEAD", "--", "models/deep/").split("\0")
    expected = [(record.split("\t", 1)[1], record.split(" ")[0]) for record in listed if record]
    kinds = {"120000": "symlink", "160000": "gitlink"}
    walked = rev.walk("models/deep")
    assert [(e.path, e.kind) for e in walked] == [
        (path, kinds.get(mode, "file")) for path, mode in expected
    ]
    assert next(e for e in walked if e.kind == "symlink").link_target == "../model.yaml"
    assert [e.path for e in rev.walk("models/deep/", limit=3)] == [p for p, _ in expected[:3]]
    assert rev.walk("models/nowhere") == [] and rev.walk("models/deep/a.b") == []


def test_the_working_tree_lists_its_model_folders_once_and_sees_every_change(tmp_path, monkeypatch):
    """`check --all` asks for the folders of models/ several times: a settled models/ is listed
    once, and adding, removing, renaming or replacing an entry is seen at the next ask."""
    from registry.core.repo import WorkTree

    models = tmp_path / "models"
    for name in ("b", "a", ".hidden"):
        (models / name).mkdir(parents=True)
    (models / "notes.txt").write_text("not a model\n")
    import registry.core.repo as repo_module

    monkeypatch.setattr(repo_module, "_SETTLED_NS", -1)  # as if the last change were long ago
    tree = WorkTree(tmp_path)
    scans = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: scans.append(p) or real(p))
    assert tree.model_folders() == ["a", "b"]
    assert tree.model_folders() == ["a", "b"] and len(scans) == 1  # settled: listed once
    tree.model_folders().append("c")  # a caller's copy: the kept list is not changed
    assert tree.model_folders() == ["a", "b"]

    monkeypatch.setattr(repo_module, "_SETTLED_NS", 10**18)  # from here on: just changed
    (models / "c").mkdir()  # models/ changes: seen at once, listed again while it settles
    assert tree.model_folders() == ["a", "b", "c"]
    os.rename(models / "a", models / "z")
    (models / "b").rmdir()
    (models / "b").write_text("now a file\n")
    assert tree.model_folders() == ["c", "z"]
    assert tree.model_folders() == ["c", "z"] and len(scans) == 4  # not settled: read each time
