"""Versions and tags, code owners, and the small holes: each shown refused with a clear message."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from factories import example_card, mlp_onnx, publish_version, run

NAME = "tiny"
CARD = f"models/{NAME}/model.yaml"


def errors(report, check=None):
    return [
        f
        for m in report.models
        for f in m.findings
        if f.severity.value == "error" and (check is None or f.check == check)
    ]


@pytest.fixture
def published(registry_repo):
    reg = registry_repo
    reg.add_model(NAME, mlp_onnx(0))
    publish_version(reg, NAME, "1.0.0")
    reg.git("checkout", "-q", "-b", "pr")
    return reg


# ---- versions and tags


def test_build_metadata_is_not_a_new_version(published, check_models):
    weights = mlp_onnx(1)
    published.track(f"models/{NAME}/model.onnx", weights)
    published.commit(
        {CARD: example_card(NAME, version="1.0.0+rebuild", status="updated", size=len(weights))}
    )
    messages = [
        f.message for f in errors(check_models(published, base="main", head="pr"), "lifecycle")
    ]
    assert any("same SemVer precedence as 1.0.0" in m for m in messages), messages


def test_a_version_whose_tag_git_refuses_fails_the_bot(published, check_models):
    published.commit(
        {CARD: example_card(NAME, version="1.1.0-rc.lock", status="updated", size=len(mlp_onnx(0)))}
    )
    [f] = [
        f
        for f in errors(check_models(published, base="main", head="pr"), "lifecycle")
        if "tag" in f.message
    ]
    assert f"the tag {NAME}@v1.1.0-rc.lock, a name git refuses" in f.message and f.path == CARD


def test_a_hand_pushed_tag_never_becomes_latest(published, tmp_path):
    reg = published
    side = reg.commit({CARD: example_card(NAME, version="9.9.9", status="updated")}, "not reviewed")
    reg.git("tag", "-a", f"{NAME}@v9.9.9", "-m", "by hand", side)
    reg.git("checkout", "-q", "main")
    proc = reg.registry("pull", f"{NAME}@latest", "-o", str(tmp_path / "out"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["version"] == "1.0.0"
    proc = reg.registry("pull", f"{NAME}@9.9.9", "-o", str(tmp_path / "stray"))
    assert proc.returncode == 2
    assert f"tag {NAME}@v9.9.9 is not a published version" in proc.stderr
    assert "not on the default branch" in proc.stderr
    verify = reg.registry("verify-tag", f"{NAME}@v9.9.9", "--branch", "main")
    assert verify.returncode == 4 and "is not a published version" in verify.stderr
    assert reg.registry("verify-tag", f"{NAME}@v1.0.0", "--branch", "main").returncode == 0
    shown = reg.registry("show", NAME)
    assert "versions (latest: 1.0.0)" in shown.stdout
    assert (
        "stray tags (not versions" in shown.stdout and f"{NAME}@v9.9.9: its commit" in shown.stdout
    )
    listed = json.loads(reg.registry("list", "--format", "json").stdout)
    row = next(r for r in listed if r["name"] == NAME)
    assert row["latest"] == "1.0.0" and row["versions"] == 1, row


# ---- code owners


def test_codeowners_is_generated_and_kept_up_to_date(registry_repo, check_models):
    reg = registry_repo
    reg.add_model(NAME, mlp_onnx(0), extra="owners: ['@alice', '@org/vision', 'not an owner']\n")
    proc = reg.registry("codeowners", "--maintainer", "@org/registry-maintainers")
    assert proc.returncode == 0, proc.stderr
    text = (reg.root / ".github/CODEOWNERS").read_text()
    assert "* @org/registry-maintainers\n" in text
    assert f"/models/{NAME}/ @alice @org/vision @org/registry-maintainers\n" in text
    reg.commit(message="code owners")
    reg.git("checkout", "-q", "-b", "pr")
    # a pull request that changes the owners without regenerating the file fails
    reg.commit({CARD: example_card(NAME, extra="owners: ['@mallory']\n")})
    report = check_models(reg, base="main", head="pr")
    [f] = errors(report, "codeowners")
    assert (
        f.path == ".github/CODEOWNERS"
        and "out of date" in f.message
        and "registry codeowners" in f.hint
    )
    # regenerated, it passes (the file is then not a registry-wide change)
    assert reg.registry("codeowners").returncode == 0
    reg.commit(message="regenerate")
    report = check_models(reg, base="main", head="pr")
    assert errors(report, "codeowners") == [] and errors(report, "registry-files") == []
    # a pull request that makes itself a maintainer is a registry-wide change
    (reg.root / ".github/CODEOWNERS").write_text(
        (reg.root / ".github/CODEOWNERS")
        .read_text()
        .replace("@org/registry-maintainers", "@mallory")
    )
    reg.commit(message="take over")
    report = check_models(reg, base="main", head="pr")
    assert errors(report, "codeowners") and errors(report, "registry-files")


# ---- smalls


def test_show_strips_terminal_control_characters(published_registry):
    reg = published_registry
    card = (reg.root / "models/draft/model.yaml").read_text()
    reg.commit(
        {"models/draft/model.yaml": card + 'description: "Digits\\e]0;pwned\\a\\e[2J\\e[31mred"\n'}
    )
    proc = reg.registry("show", "draft")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "Digits" in proc.stdout and "red" in proc.stdout


@pytest.mark.parametrize("value", ["true", "'0.93'", "high"])
def test_metric_values_must_be_numbers(registry_repo, check_models, value):
    reg = registry_repo
    reg.add_model(NAME, mlp_onnx(0), commit=False)
    reg.commit({CARD: example_card(NAME).replace("value: 0.93", f"value: {value}")})
    [f] = errors(check_models(reg, NAME))
    assert "must be a number" in f.message and f.path == CARD


def test_s3_without_credentials_is_a_storage_error(registry_repo, s3_server, monkeypatch):
    reg = registry_repo
    reg.add_model(NAME, mlp_onnx(0))
    reg.dvc("remote", "modify", "staging", "url", "s3://registry/staging")
    reg.dvc("remote", "modify", "staging", "endpointurl", s3_server.url)
    reg.commit(message="staging on S3, no credentials")
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(reg.root / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(reg.root / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    proc = reg.registry("check", NAME, "--only", "weights-storage", "--offline")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "remote 'staging'" in proc.stderr


def test_gc_keeps_young_staging_objects_and_shows_partial_files(registry_repo):
    reg = registry_repo
    reg.track("models/orphan/model.onnx", mlp_onnx(9))  # pushed, referenced by nothing
    md5 = hashlib.md5(mlp_onnx(9)).hexdigest()
    obj = reg.storage / "staging" / "files" / "md5" / md5[:2] / md5[2:]
    partial = obj.with_name(obj.name + ".tmp4242")
    partial.write_bytes(b"half a cop")
    proc = reg.registry("gc", "--remote", "staging", "--apply", "--format", "json")
    report = json.loads(proc.stdout)
    assert [o["md5"] for o in report["kept_young"]] == [md5] and obj.exists()
    assert report["partial"] == [str(partial)] and not partial.exists()
    proc = reg.registry("gc", "--remote", "staging", "--apply", "--grace", "0", "--format", "json")
    assert json.loads(proc.stdout)["removed"] == [md5] and not obj.exists()


def test_publish_never_overwrites_or_removes_an_object_it_did_not_write(registry_repo, origin):
    """A public object that does not match its pointer is reported, never replaced or deleted."""
    reg = registry_repo
    weights = mlp_onnx(0)
    reg.add_model(NAME, weights)
    md5 = hashlib.md5(weights).hexdigest()
    squatter = reg.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"someone else's bytes")
    base = reg.git("rev-parse", "HEAD")
    head = reg.commit(
        {CARD: example_card(NAME, version="1.0.0", status="published", size=len(weights))}
    )
    proc = reg.registry("publish", "--base", base, "--head", head, "--format", "json")
    [m] = json.loads(proc.stdout)["models"]
    assert m["action"] == "failed" and "never overwrites or removes" in m["error"]["message"]
    assert squatter.read_bytes() == b"someone else's bytes"
    assert reg.git("tag", "-l") == ""
    assert run(["git", "ls-remote", "--tags", str(origin)], origin).stdout == ""


def test_publish_cleans_what_a_killed_copy_left(registry_repo, origin):
    reg = registry_repo
    weights = mlp_onnx(0)
    reg.add_model(NAME, weights)
    md5 = hashlib.md5(weights).hexdigest()
    obj = reg.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    left = obj.with_name(obj.name + ".tmp31337")  # what a copy killed half-way, an hour ago, leaves
    left.write_bytes(weights[:100])
    os.utime(left, (time.time() - 3600, time.time() - 3600))
    live = obj.with_name(
        obj.name + ".tmp31338"
    )  # a racing publish's copy, still being written: kept
    live.write_bytes(weights[:50])
    base = reg.git("rev-parse", "HEAD")
    head = reg.commit(
        {CARD: example_card(NAME, version="1.0.0", status="published", size=len(weights))}
    )
    proc = reg.registry("publish", "--base", base, "--head", head)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert obj.read_bytes() == weights and not left.exists() and live.exists()
