"""Plain DVC and GTO read the registry: dvc.yaml artifacts, `git checkout <tag> && dvc pull`,
`dvc artifacts get <url> <name> --rev v<version>`, and `gto show` on our tags."""

import json
import shutil
import subprocess

import pytest

from factories import (
    BIN,
    Registry,
    init_registry,
    isolated_env,
    mlp_onnx,
    run,
)
from registry.cards.artifacts import sync_artifacts
from registry.versions.tags import read_versions


def publish_by_merge(
    reg: Registry, name: str, version: str, weights: bytes | None = None, **fields
):
    """What a merged pull request does, then what the publish workflow runs: the card's new
    version and status committed on main, then `registry publish --base <before> --head HEAD`
    (the real command: it copies staging → public, tags and pushes the tag to `origin`)."""
    from registry.cards.writer import edit_card_text

    base = reg.git("rev-parse", "HEAD")
    card = reg.root / "models" / name / "model.yaml"
    text = card.read_text()
    updates = {(k,): v for k, v in fields.items()}
    if weights is not None:
        reg.track(f"models/{name}/model.onnx", weights)
        updates[("size",)] = len(weights)
    card.write_text(edit_card_text(text, {("version",): version, **updates}))
    reg.commit(message=f"merge: {name} {version}")
    proc = reg.registry("publish", "--base", base, "--head", "HEAD")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def copy_registry(src: Registry, dest) -> Registry:
    """A copy of a registry and its storage, with the DVC remotes pointing at the copy."""
    root, storage = dest / "registry", dest / "storage"
    shutil.copytree(src.root, root, symlinks=True)
    shutil.copytree(src.storage, storage, symlinks=True)
    config = root / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(src.storage), str(storage)))
    return Registry(root, storage)


@pytest.fixture(scope="module")
def compat_registry(tmp_path_factory) -> Registry:
    """A registry published by `registry publish` itself (1.0.0, then 1.1.0 with new weights),
    whose tagged commits declare their artifacts in dvc.yaml, with `staging` and the DVC cache
    emptied afterwards so every fetch below can only come from `public`."""
    tmp = tmp_path_factory.mktemp("compat")
    with isolated_env(tmp_path_factory.mktemp("compat-home")):
        reg = init_registry(tmp / "registry", tmp / "storage")
        root, storage = reg.root, reg.storage
        reg.add_model(
            "digits", mlp_onnx(1), commit=False, extra="description: Handwritten digits\n"
        )
        sync_artifacts(root)
        reg.commit(message="add digits")
        run(["git", "init", "-q", "--bare", str(tmp / "origin.git")], tmp)
        reg.git("remote", "add", "origin", str(tmp / "origin.git"))
        reg.git("push", "-q", "origin", "main")
        publish_by_merge(reg, "digits", "1.0.0", status="published")
        publish_by_merge(reg, "digits", "1.1.0", weights=mlp_onnx(2), status="updated")
        shutil.rmtree(storage / "staging")
        shutil.rmtree(root / ".dvc" / "cache")
    return reg


def test_sync_artifacts_declares_every_model_and_check_catches_drift(published_registry):
    reg = published_registry
    reg.write({"dvc.yaml": "# pipeline of the demo\nstages:\n  noop:\n    cmd: echo hi\n"})
    assert reg.registry("sync-artifacts", "--check").returncode == 1
    proc = reg.registry("sync-artifacts")
    assert proc.returncode == 0 and "added: digits, draft" in proc.stdout
    text = (reg.root / "dvc.yaml").read_text()
    assert text.startswith("# pipeline of the demo\nstages:\n  noop:\n    cmd: echo hi\n")
    assert (
        "  digits:\n    path: models/digits/model.onnx\n    type: model\n    desc: Handwritten "
        "digits\n" in text
    )
    assert "    labels:\n      - classification\n      - demo\n" in text
    check = reg.registry("sync-artifacts", "--check")
    assert check.returncode == 0 and "declares every model" in check.stdout
    shutil.rmtree(reg.root / "models" / "draft")
    check = reg.registry("sync-artifacts", "--check")
    assert check.returncode == 1 and "removed: draft" in check.stdout
    as_json = reg.registry("sync-artifacts", "--check", "--format", "json")
    assert as_json.returncode == 1, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "path": "dvc.yaml",
        "added": [],
        "removed": ["draft"],
        "changed": [],
        "written": False,
        "in_sync": False,
    }
    assert "draft:" in (reg.root / "dvc.yaml").read_text()  # --check writes nothing
    # DVC itself reads the declarations
    from dvc.repo import Repo

    with Repo(str(reg.root)) as repo:
        declared = repo.artifacts.read()["dvc.yaml"]
    assert (
        declared["digits"].path == "models/digits/model.onnx" and declared["digits"].type == "model"
    )


def test_git_checkout_tag_then_dvc_pull_gets_that_version(compat_registry, tmp_path):
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(compat_registry.root), str(clone)], tmp_path)
    for version, seed in (("1.0.0", 1), ("1.1.0", 2)):
        run(["git", "checkout", "-q", f"digits@v{version}"], clone)
        run([str(BIN / "dvc"), "pull", "-q", "-R", "models/digits"], clone)
        assert (clone / "models" / "digits" / "model.onnx").read_bytes() == mlp_onnx(seed)


def test_dvc_artifacts_get_with_the_gto_version(compat_registry, tmp_path):
    for version, seed in (("1.0.0", 1), ("1.1.0", 2)):
        out = tmp_path / f"digits-{version}.onnx"
        run(
            [
                str(BIN / "dvc"),
                "artifacts",
                "get",
                str(compat_registry.root),
                "digits",
                "--rev",
                f"v{version}",
                "-o",
                str(out),
            ],
            tmp_path,
        )
        assert out.read_bytes() == mlp_onnx(seed)


def test_gto_show_lists_our_models_and_honours_an_unpublish(compat_registry, tmp_path):
    reg = copy_registry(compat_registry, tmp_path)

    def gto(*args):
        return json.loads(run([str(BIN / "gto"), "show", *args, "--json"], reg.root).stdout)

    assert gto()["digits"]["version"] == "v1.1.0"
    assert sorted(v["version"] for v in gto("digits")) == ["v1.0.0", "v1.1.0"]
    publish_by_merge(reg, "digits", "1.1.0", status="offline")  # the unpublish, merged
    tags = reg.git("tag", "-l", "digits@*").split()
    withdrawals = {t.split("!#")[0]: int(t.split("!#")[1]) for t in tags if "!#" in t}
    assert sorted(withdrawals) == ["digits@v1.0.0", "digits@v1.1.0"]  # every version withdrawn
    assert sorted(withdrawals.values()) == [1, 2]  # GTO's event counters, one each
    assert "digits" not in gto() or gto()["digits"]["version"] is None  # nothing live for GTO
    assert gto("digits") == []
    ours = read_versions(reg.root)["digits"]
    assert [(v.version, v.withdrawn) for v in ours] == [("1.0.0", True), ("1.1.0", True)]


def test_gto_records_the_same_commits_as_our_versions(compat_registry):
    reg = compat_registry
    proc = subprocess.run(
        [str(BIN / "gto"), "show", "digits", "--json"],
        cwd=reg.root,
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = {v["version"].removeprefix("v"): v["commit_hexsha"] for v in json.loads(proc.stdout)}
    ours = {v.version: v.commit for v in read_versions(reg.root)["digits"]}
    assert (
        theirs
        == ours
        == {
            "1.0.0": reg.git("rev-list", "-n", "1", "digits@v1.0.0"),
            "1.1.0": reg.git("rev-list", "-n", "1", "digits@v1.1.0"),
        }
    )


def test_the_bot_reports_a_model_missing_from_declared_artifacts(published_registry):
    from registry.checks import CheckOptions, run_checks
    from registry.core.repo import RegistryRepo

    reg = published_registry
    repo = RegistryRepo(reg.root)
    only = CheckOptions(only=["dvc-artifact"])

    def findings(name):
        return run_checks([name], repo.snapshot(), None, repo, only).models[0].findings

    assert findings("digits") == []  # no artifacts declared: opted out
    sync_artifacts(reg.root)
    assert findings("digits") == []
    reg.write(
        {
            "models/fresh/model.yaml": (reg.root / "models/draft/model.yaml")
            .read_text()
            .replace("name: draft", "name: fresh")
        }
    )
    (f,) = findings("fresh")
    assert f.severity.value == "error" and "does not declare 'fresh'" in f.message
    assert f.hint == "run `registry sync-artifacts` and commit dvc.yaml" and f.path == "dvc.yaml"
    shutil.rmtree(reg.root / "models" / "draft")
    assert "still declares the deleted model 'draft'" in findings("draft")[0].message
