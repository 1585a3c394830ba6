"""Device packages on the public remote: `registry push-packages` and `registry pull --target`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from factories import (
    FAST,
    S3Server,
    isolated_env,
    mlp_onnx,
    registry_cli,
    use_s3_remote,
    withdraw_version,
    write_package_source,
)
from registry.consuming.pull import pull
from registry.core.repo import RegistryRepo
from registry.core.storage import Storage
from registry.packaging.build import build_package
from registry.packaging.encryption import encrypt, key_id
from registry.packaging.index import index_key
from registry.packaging.source import source_from_files
from registry.publishing.gc import collect_garbage

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """digits@1.0.0's packages for two targets, built once (same weights as the published
    version)."""
    tmp = tmp_path_factory.mktemp("built")
    with isolated_env(tmp_path_factory.mktemp("home")):
        model, card = write_package_source(
            tmp / "src", mlp_onnx(1), "  - linux-x86_64\n  - android-arm64\n", name="digits"
        )
        source = source_from_files(model, card)
        for target in ("linux-x86_64", "android-arm64"):
            build_package(
                source, target, tmp / "dist", overrides={**FAST, "converter": None}, benchmark=False
            )
    return tmp / "dist"


def dist(built: Path, tmp_path: Path, *targets: str) -> Path:
    """A folder with some of the built packages and a SHA256SUMS, as the release job collects
    them."""
    out = tmp_path / "dist"
    out.mkdir(parents=True, exist_ok=True)
    for t in targets:
        shutil.copyfile(built / f"digits-1.0.0-{t}.tar.gz", out / f"digits-1.0.0-{t}.tar.gz")
    (out / "SHA256SUMS").write_text(
        "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
            for p in sorted(out.glob("*.tar.gz*"))
        )
    )
    return out


def push(reg, folder, capsys, ref="digits@1.0.0"):
    code, out, err = registry_cli(
        reg.root, "push-packages", ref, str(folder), "--format", "json", capsys=capsys
    )
    return code, (json.loads(out) if code == 0 else None), err


def index_of(reg) -> dict:
    return json.loads((reg.storage / "public" / index_key("digits", "1.0.0")).read_text())


def test_pushed_packages_are_pulled_by_target_and_verified(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    folder = dist(built, tmp_path, "linux-x86_64", "android-arm64")
    code, report, err = push(reg, folder, capsys)
    assert code == 0, err
    assert report["index_written"] and report["targets"] == ["android-arm64", "linux-x86_64"]
    assert {p["action"] for p in report["packages"]} == {"uploaded"}
    assert {p["verified"] for p in report["packages"]} == {"md5+size"}
    index = index_of(reg)
    assert index["model"] == "digits@1.0.0" and index["tag"] == "digits@v1.0.0"
    assert index["commit"] == reg.git("rev-list", "-n", "1", "digits@v1.0.0")
    entry = index["packages"]["android-arm64"]
    data = (folder / "digits-1.0.0-android-arm64.tar.gz").read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
    # content-addressed, in DVC's own layout
    md5 = entry["md5"]
    assert (reg.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == data

    code, out, err = registry_cli(
        reg.root,
        "pull",
        "digits@1.0.0",
        "--target",
        "android-arm64",
        "-t",
        "linux-x86_64",
        "-o",
        str(tmp_path / "got"),
        "--format",
        "json",
        capsys=capsys,
    )
    assert code == 0, err
    files = json.loads(out)["files"]
    assert [f["target"] for f in files] == ["android-arm64", "linux-x86_64"]
    for f in files:
        got = Path(f["path"])
        assert got.read_bytes() == (folder / got.name).read_bytes()
        assert f["sha256"] == hashlib.sha256(got.read_bytes()).hexdigest()
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == [
        "digits-1.0.0-android-arm64.tar.gz",
        "digits-1.0.0-linux-x86_64.tar.gz",
    ]


def test_pull_by_target_from_anywhere_with_the_repo_url(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    reg.commit(
        message="remotes of this copy"
    )  # a clone made from the URL reads the committed .dvc/config
    assert push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = reg.registry(
        "pull",
        "digits@1.0.0",
        "--target",
        "linux-x86_64",
        "--repo",
        f"file://{reg.root}",
        cwd=elsewhere,
    )
    assert proc.returncode == 0, proc.stderr
    got = elsewhere / "digits-1.0.0" / "digits-1.0.0-linux-x86_64.tar.gz"
    assert got.read_bytes() == (built / got.name).read_bytes()
    assert "sha256 " in proc.stdout


def test_pushing_again_changes_nothing_and_adds_only_new_targets(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    assert push(reg, dist(built, tmp_path / "one", "linux-x86_64"), capsys)[0] == 0
    first = index_of(reg)
    code, report, err = push(
        reg, dist(built, tmp_path / "two", "linux-x86_64", "android-arm64"), capsys
    )
    assert code == 0, err
    actions = {p["entry"]["target"]: (p["action"], p["verified"]) for p in report["packages"]}
    assert actions == {
        "linux-x86_64": ("present", "size"),
        "android-arm64": ("uploaded", "md5+size"),
    }
    second = index_of(reg)
    assert second["packages"]["linux-x86_64"] == first["packages"]["linux-x86_64"]
    before = (reg.storage / "public" / index_key("digits", "1.0.0")).stat().st_mtime_ns
    code, report, _ = push(
        reg, dist(built, tmp_path / "two", "linux-x86_64", "android-arm64"), capsys
    )
    assert code == 0 and report["index_written"] is False
    assert {p["action"] for p in report["packages"]} == {"present"}
    assert (reg.storage / "public" / index_key("digits", "1.0.0")).stat().st_mtime_ns == before


def test_a_different_package_for_a_published_target_is_refused(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    assert push(reg, dist(built, tmp_path / "one", "linux-x86_64"), capsys)[0] == 0
    published = index_of(reg)
    objects = sorted((reg.storage / "public" / "files").rglob("*"))
    # a re-run that rebuilt the target, here encrypted: other bytes for the same target
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()
    plain = (built / "digits-1.0.0-linux-x86_64.tar.gz").read_bytes()
    (rebuilt / "digits-1.0.0-linux-x86_64.tar.gz.enc").write_bytes(encrypt(plain, KEY))
    shutil.copyfile(
        built / "digits-1.0.0-android-arm64.tar.gz", rebuilt / "digits-1.0.0-android-arm64.tar.gz"
    )
    code, _, err = push(reg, rebuilt, capsys)
    assert code == 5
    assert "already has different packages" in err and "linux-x86_64" in err and "immutable" in err
    assert "publish a new version" in err
    assert index_of(reg) == published  # nothing written…
    assert (
        sorted((reg.storage / "public" / "files").rglob("*")) == objects
    )  # …not even the new target


def test_an_encrypted_package_is_indexed_with_its_key_id(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    folder = tmp_path / "enc"
    folder.mkdir()
    plain = (built / "digits-1.0.0-linux-x86_64.tar.gz").read_bytes()
    (folder / "digits-1.0.0-linux-x86_64.tar.gz.enc").write_bytes(encrypt(plain, KEY))
    code, report, err = push(reg, folder, capsys)
    assert code == 0, err
    entry = index_of(reg)["packages"]["linux-x86_64"]
    assert entry["encrypted"] is True and entry["key_id"] == key_id(KEY)
    r = pull("digits@1.0.0", tmp_path / "got", root=reg.root, targets=["linux-x86_64"])
    assert Path(r.files[0].path).name == "digits-1.0.0-linux-x86_64.tar.gz.enc"


@pytest.mark.parametrize(
    "args,message",
    [
        (["digits@3.0.0"], "no version 3.0.0"),
        (["draft@1.0.0"], "'draft' has no published version"),
    ],
)
def test_push_needs_a_published_version(published_registry, built, tmp_path, capsys, args, message):
    code, _, err = registry_cli(
        published_registry.root,
        "push-packages",
        *args,
        str(dist(built, tmp_path, "linux-x86_64")),
        capsys=capsys,
    )
    assert code == 2 and message in err


def test_push_refuses_misnamed_and_foreign_packages(published_registry, built, tmp_path, capsys):
    reg = published_registry
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = push(reg, empty, capsys)
    assert code == 2 and "no package of digits@1.0.0" in err
    typo = tmp_path / "typo"
    typo.mkdir()
    shutil.copyfile(
        built / "digits-1.0.0-linux-x86_64.tar.gz", typo / "digits-1.0.0-linux-x86.tar.gz"
    )
    code, _, err = push(reg, typo, capsys)
    assert (
        code == 2 and "no target named 'linux-x86'" in err and "did you mean 'linux-x86_64'" in err
    )
    # digits@1.0.0's package under digits@1.1.0's name: its manifest says otherwise
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    shutil.copyfile(
        built / "digits-1.0.0-linux-x86_64.tar.gz", foreign / "digits-1.1.0-linux-x86_64.tar.gz"
    )
    code, _, err = push(reg, foreign, capsys, ref="digits@1.1.0")
    assert code == 2 and "holds digits@1.0.0 for linux-x86_64, not digits@1.1.0" in err
    assert not (reg.storage / "public" / "packages").exists()


def test_pull_names_the_targets_that_exist(published_registry, built, tmp_path, capsys):
    reg = published_registry
    assert push(reg, dist(built, tmp_path, "linux-x86_64", "android-arm64"), capsys)[0] == 0
    code, _, err = registry_cli(
        reg.root, "pull", "digits@1.0.0", "--target", "linux-x86", capsys=capsys
    )
    assert code == 2 and "digits@1.0.0 has no package for target 'linux-x86'" in err
    assert (
        "did you mean 'linux-x86_64'?" in err
        and "packages of digits@1.0.0: android-arm64, linux-x86_64" in err
    )
    code, _, err = registry_cli(reg.root, "pull", "digits@1.0.0", "--target", "cuda", capsys=capsys)
    assert (
        code == 2 and "no package for target 'cuda'" in err and "android-arm64, linux-x86_64" in err
    )
    code, _, err = registry_cli(reg.root, "pull", "digits@1.1.0", "--target", "cuda", capsys=capsys)
    assert code == 2 and "digits@1.1.0 has no device packages on remote 'public'" in err
    assert "lists no targets" in err


def test_a_damaged_public_package_is_refused_and_nothing_is_left(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    assert push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)[0] == 0
    md5 = index_of(reg)["packages"]["linux-x86_64"]["md5"]
    obj = reg.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]
    obj.write_bytes(b"not the package")
    out = tmp_path / "out"
    code, _, err = registry_cli(
        reg.root, "pull", "digits@1.0.0", "-t", "linux-x86_64", "-o", str(out), capsys=capsys
    )
    assert code == 5 and "corrupt" in err
    assert list(out.iterdir()) == []
    obj.unlink()
    code, _, err = registry_cli(
        reg.root, "pull", "digits@1.0.0", "-t", "linux-x86_64", "-o", str(out), capsys=capsys
    )
    assert code == 5 and "is missing from remote 'public'" in err
    assert list(out.iterdir()) == []


def test_an_index_entry_that_disagrees_with_the_object_is_refused(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    assert push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)[0] == 0
    path = reg.storage / "public" / index_key("digits", "1.0.0")
    index = json.loads(path.read_text())
    index["packages"]["linux-x86_64"]["sha256"] = "0" * 64
    path.write_text(json.dumps(index))
    code, _, err = registry_cli(
        reg.root,
        "pull",
        "digits@1.0.0",
        "-t",
        "linux-x86_64",
        "-o",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 5 and "does not match its index entry" in err
    assert list((tmp_path / "o").iterdir()) == []


def test_a_withdrawn_version_s_package_comes_with_a_warning(
    published_registry, built, tmp_path, capsys
):
    reg = published_registry
    assert push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)[0] == 0
    tag = withdraw_version(reg, "digits", "1.0.0")
    code, out, err = registry_cli(
        reg.root,
        "pull",
        "digits@1.0.0",
        "-t",
        "linux-x86_64",
        "-o",
        str(tmp_path / "o"),
        capsys=capsys,
    )
    assert code == 0 and "warning: digits@1.0.0 was withdrawn" in err and tag in err
    assert (tmp_path / "o" / "digits-1.0.0-linux-x86_64.tar.gz").is_file()
    # pushing packages of a withdrawn version is allowed (pinned consumers), and said
    code, _, err = push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)
    assert code == 0 and "warning: digits@1.0.0 was withdrawn" in err and "never 'latest'" in err


def test_an_offline_model_s_packages_are_pushed_with_a_warning(
    published_registry, built, tmp_path, capsys
):
    """An offline model (card status on the default branch) keeps serving consumers pinned to
    its versions, so its packages may still be published; the command says it is offline."""
    reg = published_registry
    card = reg.root / "models" / "digits" / "model.yaml"
    card.write_text(card.read_text().replace("status: updated", "status: offline"))
    reg.commit(message="digits offline")
    code, out, err = push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)
    assert code == 0, err
    assert "warning: digits@1.0.0 was withdrawn (card status: offline)" in err
    assert "pinned to it" in err and "never 'latest'" in err


def test_gc_keeps_the_objects_of_indexed_packages(published_registry, built, tmp_path, capsys):
    reg = published_registry
    assert push(reg, dist(built, tmp_path, "linux-x86_64"), capsys)[0] == 0
    md5 = index_of(reg)["packages"]["linux-x86_64"]["md5"]
    report = collect_garbage(RegistryRepo(reg.root), Storage(reg.root), "public")
    assert md5 not in {o.md5 for o in report.unreferenced}
    (reg.storage / "public" / index_key("digits", "1.0.0")).unlink()
    report = collect_garbage(RegistryRepo(reg.root), Storage(reg.root), "public")
    assert md5 in {o.md5 for o in report.unreferenced}


@pytest.mark.slow
def test_push_and_pull_over_s3(published_registry, built, tmp_path, capsys):
    reg = published_registry
    bucket = tmp_path / "s3" / "registry"
    shutil.copytree(reg.storage / "public", bucket / "public")
    server = S3Server(tmp_path / "s3")
    try:
        use_s3_remote(reg, "public", server.url, "registry/public")
        code, report, err = push(
            reg, dist(built, tmp_path, "linux-x86_64", "android-arm64"), capsys
        )
        assert code == 0, err
        assert (bucket / "public" / index_key("digits", "1.0.0")).is_file()
        code, report, err = push(
            reg, dist(built, tmp_path, "linux-x86_64", "android-arm64"), capsys
        )
        assert code == 0 and report["index_written"] is False, err
        r = pull("digits@1.0.0", tmp_path / "got", root=reg.root, targets=["android-arm64"])
        got = Path(r.files[0].path)
        assert got.read_bytes() == (built / got.name).read_bytes()
        with pytest.raises(Exception, match="no package for target 'cuda'"):
            pull("digits@1.0.0", tmp_path / "got", root=reg.root, targets=["cuda"])
    finally:
        server.stop()
