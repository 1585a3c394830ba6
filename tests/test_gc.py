"""`registry gc`: dry run by default; never removes what a version tag (or, on staging, a branch)
refers to."""

from __future__ import annotations

import hashlib
import json

from factories import example_card, mlp_onnx
from registry.core.repo import RegistryRepo
from registry.core.storage import Storage
from registry.versions.tags import tagged_commits

NAME = "tiny-mlp"


def obj(storage, remote, data):
    md5 = hashlib.md5(data).hexdigest()
    return storage / remote / "files" / "md5" / md5[:2] / md5[2:]


def test_gc_keeps_every_tagged_and_branch_object(registry_repo, origin):
    reg = registry_repo
    w1, w2, w3, stray = mlp_onnx(0), mlp_onnx(1), mlp_onnx(2), b"left behind by an abandoned upload"
    reg.add_model(NAME, w1)
    base = reg.git("rev-parse", "HEAD")
    head = reg.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="published", size=len(w1)
            )
        }
    )
    assert reg.registry("publish", "--base", base, "--head", head).returncode == 0
    # v1.0.0 is withdrawn later: its objects must stay for pinned consumers
    offline = reg.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="offline", size=len(w1)
            )
        }
    )
    assert reg.registry("publish", "--base", head, "--head", offline).returncode == 0
    # an open pull request's weights (branch kept) and an abandoned one's (branch deleted)
    for branch, w in (("pr-open", w2), ("pr-gone", w3)):
        reg.git("checkout", "-q", "-b", branch)
        reg.track(f"models/{NAME}/model.onnx", w)
        reg.commit(message=branch)
        reg.git("checkout", "-q", "main")
        reg.dvc("checkout", "-q")
    reg.git("branch", "-q", "-D", "pr-gone")
    Storage(reg.root).remote("public").upload(
        _write(reg.root.parent / "stray", stray), hashlib.md5(stray).hexdigest()
    )

    dry = reg.registry("gc", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert [o["md5"] for o in report["unreferenced"]] == [hashlib.md5(stray).hexdigest()]
    assert report["removed"] == [] and obj(reg.storage, "public", stray).exists()

    applied = reg.registry("gc", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "removed 1" in applied.stdout
    assert not obj(reg.storage, "public", stray).exists()
    assert obj(reg.storage, "public", w1).read_bytes() == w1

    staging = reg.registry(
        "gc", "--remote", "staging", "--apply", "--grace", "0", "--format", "json"
    )
    assert json.loads(staging.stdout)["removed"] == [hashlib.md5(w3).hexdigest()]
    assert obj(reg.storage, "staging", w1).exists() and obj(reg.storage, "staging", w2).exists()
    assert not obj(reg.storage, "staging", w3).exists()

    again = reg.registry("gc")
    assert "0 unreferenced" in again.stdout


def test_gc_refuses_when_a_tagged_pointer_is_unreadable(registry_repo):
    reg = registry_repo
    reg.add_model(NAME, mlp_onnx(0))
    reg.commit({f"models/{NAME}/model.onnx.dvc": "outs: not-a-list\n"}, "broken pointer")
    reg.git("tag", "-a", f"{NAME}@v1.0.0", "-m", "v1")
    proc = reg.registry("gc", "--apply")
    assert proc.returncode == 5
    assert f"models/{NAME}/model.onnx.dvc" in proc.stderr and "refusing" in proc.stderr
    assert obj(reg.storage, "staging", mlp_onnx(0)).exists()
    assert tagged_commits(RegistryRepo(reg.root))[NAME]


def _write(path, data):
    path.write_bytes(data)
    return path
