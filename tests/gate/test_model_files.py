"""One resolver of a model's files: links, submodules and odd pointers are refused by the bot, and
publish and pull refuse the same folders, so what the bot passes is exactly what ships."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest

from factories import HANG, example_card, mlp_onnx, run_bounded

NAME = "tiny"


@pytest.fixture
def reg(registry_repo):
    registry_repo.add_model(NAME, mlp_onnx(0))
    registry_repo.git("checkout", "-q", "-b", "pr")
    return registry_repo


def errors(report, check=None):
    return [
        f
        for m in report.models
        for f in m.findings
        if f.severity.value == "error" and (check is None or f.check == check)
    ]


def commit_link(reg, rel: str, target: str, message: str = "link") -> str:
    path = reg.root / rel
    if path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return reg.commit(message=message)


def publishing_card(weights: bytes, **kw) -> str:
    return example_card(NAME, version="1.0.0", status="published", size=len(weights), **kw)


def test_changelog_symlink_to_the_environment_is_refused_by_bot_and_publish(
    reg, check_models, origin
):
    weights = mlp_onnx(0)
    reg.write({f"models/{NAME}/model.yaml": publishing_card(weights)})
    head = commit_link(reg, f"models/{NAME}/CHANGELOG.md", "/proc/self/environ")
    report = check_models(reg, base="main", head="pr")
    [f] = errors(report, "model-files")
    assert f.path == f"models/{NAME}/CHANGELOG.md"
    assert "symbolic link" in f.message and "/proc/self/environ" in f.message
    assert not report.passed

    # merged anyway (no branch protection): publish refuses the folder and writes nothing
    base = reg.git("rev-parse", "main")
    proc = reg.registry(
        "publish",
        "--base",
        base,
        "--head",
        head,
        "--format",
        "json",
        env={"REGISTRY_SECRET_PROBE": "do-not-leak"},
    )
    assert proc.returncode != 70, proc.stderr
    out = json.loads(proc.stdout)
    [m] = out["models"]
    assert m["action"] == "failed" and "symbolic link" in m["error"]["message"]
    assert (
        os.readlink(reg.root / f"models/{NAME}/CHANGELOG.md") == "/proc/self/environ"
    )  # not written through
    assert reg.git("tag", "-l") == ""
    assert not any(p.is_file() for p in (reg.storage / "public").rglob("*"))


def test_weights_symlink_with_a_second_pointer_is_refused(reg, check_models):
    """`weights: tiny.onnx` links to real.onnx; tiny.onnx.dvc names something else entirely."""
    good, evil = mlp_onnx(0), b"\x80\x04pickle-payload."
    reg.track(f"models/{NAME}/real.onnx", good)
    reg.write(
        {f"models/{NAME}/model.yaml": example_card(NAME, weights_file="tiny.onnx", size=len(good))}
    )
    evil_md5 = hashlib.md5(evil).hexdigest()
    reg.write(
        {
            f"models/{NAME}/tiny.onnx.dvc": f"outs:\n- md5: {evil_md5}\n  size: {len(evil)}\n  "
            f"hash: md5\n  path: tiny.onnx\n"
        }
    )
    commit_link(reg, f"models/{NAME}/tiny.onnx", "real.onnx")
    report = check_models(
        reg, base="main", head="pr", content=True, only=["model-files", "weights-storage"]
    )
    messages = [f.message for f in errors(report)]
    assert any(f"models/{NAME}/tiny.onnx is a symbolic link" in m for m in messages), messages
    assert any(f"object {evil_md5}" in m and "not in the 'staging'" in m for m in messages), (
        messages
    )


def test_a_pointer_tracking_another_file_is_refused(reg, check_models):
    reg.write(
        {
            f"models/{NAME}/extra.bin.dvc": "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  "
            "size: 3\n  path: other.bin\n"
        }
    )
    reg.commit(message="odd pointer")
    [f] = errors(check_models(reg, base="main", head="pr"), "model-files")
    assert f.path == f"models/{NAME}/extra.bin.dvc"
    assert "tracks 'other.bin', not 'extra.bin'" in f.message


def test_extra_pointer_naming_another_models_object_with_a_wrong_size_fails(reg, check_models):
    """The attack that let publish overwrite (and delete) another model's published object."""
    other = mlp_onnx(5)
    reg.track("models/other/model.onnx", other)
    md5 = hashlib.md5(other).hexdigest()
    reg.write(
        {
            f"models/{NAME}/steal.bin.dvc": f"outs:\n- md5: {md5}\n  size: 7\n  hash: md5\n  path: "
            f"steal.bin\n"
        }
    )
    reg.commit(message="extra pointer")
    report = check_models(reg, base="main", head="pr", content=True, only=["weights-storage"])
    [f] = errors(report)
    assert f.path == f"models/{NAME}/steal.bin.dvc"
    assert (
        f"holds {len(other):,} bytes for object {md5}" in f.message
        and "records 7 bytes" in f.message
    )


def test_folder_outputs_are_refused_at_check_time(reg, check_models):
    reg.write(
        {
            f"models/{NAME}/data.dvc": "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  "
            "size: 30\n  nfiles: 2\n  path: data\n"
        }
    )
    reg.commit(message="folder output")
    [f] = errors(check_models(reg, base="main", head="pr"), "model-files")
    assert f.path == f"models/{NAME}/data.dvc"
    assert "tracks a folder" in f.message and "not supported" in f.message
    assert "dvc add" in f.hint


def test_a_submodule_in_a_model_folder_is_refused(reg, check_models):
    sha = reg.git("rev-parse", "HEAD")
    reg.git("update-index", "--add", "--cacheinfo", f"160000,{sha},models/{NAME}/vendored")
    reg.git("commit", "-q", "-m", "gitlink")
    [f] = errors(check_models(reg, base="main", head="pr"), "model-files")
    assert f.path == f"models/{NAME}/vendored" and "submodule" in f.message


def test_pointers_are_frozen_on_a_published_version(registry_repo, check_models):
    reg = registry_repo
    weights = mlp_onnx(0)
    reg.add_model(NAME, weights, version="1.0.0", status="published")
    reg.track(f"models/{NAME}/calibration.npz", b"calibration-v1")
    reg.commit(message="published with calibration data")
    reg.git("checkout", "-q", "-b", "pr")
    reg.track(f"models/{NAME}/calibration.npz", b"calibration-v2")
    reg.commit(message="swap the calibration data")
    [f] = errors(check_models(reg, base="main", head="pr"), "lifecycle")
    assert f.path == f"models/{NAME}/calibration.npz.dvc"
    assert "changed" in f.message and "version stays 1.0.0" in f.message


# ---- hostile files: a finding naming the file, never exit 70, within 10 s and 1 GiB

GIB = 1 << 30
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi")
)


def bot(reg, *args):
    return run_bounded(
        [
            sys.executable,
            "-m",
            "registry",
            "check",
            "--base",
            "main",
            "--head",
            "pr",
            "--format",
            "json",
            *args,
        ],
        reg.root,
    )


def finding_on(stdout: str, path: str) -> dict:
    report = json.loads(stdout)
    found = [
        f
        for m in report["models"]
        for f in m["findings"]
        if f["path"] == path and f["severity"] == "error"
    ]
    assert found, report
    return found[0]


def test_alias_bomb_in_a_dvc_pointer(reg):
    reg.commit({f"models/{NAME}/model.onnx.dvc": ALIAS_BOMB + "outs: *i\n"})
    code, out, err, seconds, rss = bot(reg, "--no-content")
    assert code == 1, err
    f = finding_on(out, f"models/{NAME}/model.onnx.dvc")
    assert "aliases are not allowed in a DVC pointer" in f["message"]
    assert seconds < HANG and rss < GIB  # no hang; speed is benchmarks/hostile_bench.py's


def test_alias_bomb_in_dvc_yaml(reg):
    reg.commit(
        {
            "dvc.yaml": ALIAS_BOMB + "artifacts: *i\n",
            f"models/{NAME}/model.yaml": example_card(NAME, extra="description: touched\n"),
        }
    )
    code, out, err, seconds, rss = bot(reg, "--no-content")
    assert code == 1, err
    f = finding_on(out, "dvc.yaml")
    assert "aliases are not allowed in a dvc.yaml" in f["message"] and f["line"] == 2
    assert seconds < HANG and rss < GIB  # no hang; speed is benchmarks/hostile_bench.py's


@pytest.mark.parametrize(
    "name,text",
    [
        ("config.json", "[" * 100_000 + "]" * 100_000),
        ("config.yaml", "x: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ],
)
def test_100k_deep_config(reg, name, text):
    reg.write(
        {
            f"models/{NAME}/model.yaml": example_card(NAME, size=len(mlp_onnx(0))).replace(
                "config: config.yaml", f"config: {name}"
            )
        }
    )
    reg.commit({f"models/{NAME}/{name}": text})
    code, out, err, seconds, rss = bot(reg, "--no-content")
    assert code == 1, err
    f = finding_on(out, f"models/{NAME}/{name}")
    assert "nest" in f["message"]
    assert seconds < HANG and rss < GIB  # no hang; speed is benchmarks/hostile_bench.py's


def test_an_unexpected_error_in_a_check_is_a_finding_not_a_crash(reg, check_models, monkeypatch):
    """One hostile file must not take every other model's report down with it (exit 70)."""
    from registry.checks.config_file import ConfigFile

    def explode(self, ctx):
        raise RecursionError("maximum recursion depth exceeded")
        yield  # pragma: no cover

    monkeypatch.setattr(ConfigFile, "run", explode)
    reg.commit({f"models/{NAME}/model.yaml": example_card(NAME, extra="description: x\n")})
    report = check_models(reg, base="main", head="pr")
    [f] = errors(report, "config-file")
    assert f.path == f"models/{NAME}/model.yaml"
    assert "could not finish on this model (RecursionError" in f.message
    # asked for the traceback (`registry --traceback check`), the error comes out as it is
    with pytest.raises(RecursionError):
        check_models(reg, base="main", head="pr", raise_unexpected=True)


def test_pull_refuses_a_version_whose_folder_has_a_link(registry_repo, tmp_path):
    """Pull resolves a tagged folder as the bot does: a version with a link in it is not served."""
    from factories import publish_version

    reg = registry_repo
    reg.add_model(NAME, mlp_onnx(0))
    os.symlink("../../.git/config", reg.root / f"models/{NAME}/notes.md")
    publish_version(reg, NAME, "1.0.0")
    proc = reg.registry("pull", f"{NAME}@1.0.0", "-o", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        f"models/{NAME}/notes.md is a symbolic link" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert not (tmp_path / "out" / "model.onnx").exists()
