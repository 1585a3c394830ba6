"""Publishing with S3 remotes served on 127.0.0.1 by `rclone serve s3` (access keys, path-style)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from factories import example_card, free_port, mlp_onnx, run, use_s3_remote
from registry.core.storage import Storage

NAME = "tiny-mlp"
TAG = f"{NAME}@v1.0.0"


@pytest.fixture
def s3_registry(registry_repo, origin, s3_server):
    """The registry with both remotes in one bucket of the S3 server."""
    bucket = "registry"
    use_s3_remote(registry_repo, "staging", s3_server.url, f"{bucket}/staging")
    use_s3_remote(registry_repo, "public", s3_server.url, f"{bucket}/public")
    registry_repo.commit(message="remotes on S3")
    registry_repo.bucket = s3_server.root / bucket
    return registry_repo


def merge(reg, weights):
    reg.add_model(NAME, weights)
    base = reg.git("rev-parse", "HEAD")
    head = reg.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="published", size=len(weights)
            )
        }
    )
    return base, head


def test_publish_over_s3_copies_verifies_and_tags(s3_registry, origin, tmp_path):
    w = mlp_onnx(0)
    base, head = merge(s3_registry, w)
    md5 = hashlib.md5(w).hexdigest()
    assert (s3_registry.bucket / "staging" / "files" / "md5" / md5[:2] / md5[2:]).is_file()

    proc = s3_registry.registry("publish", "--base", base, "--head", head, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    model = json.loads(proc.stdout)["models"][0]
    assert model["objects"][0] | {"path": None} == {
        "path": None,
        "md5": md5,
        "size": len(w),
        "action": "copied",
        "verified": "md5+size",
    }
    assert (s3_registry.bucket / "public" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == w
    assert run(
        ["git", "ls-remote", str(origin), f"refs/tags/{TAG}^{{}}"], origin
    ).stdout.startswith(head)
    # a consumer reads it back from public over S3, hash-checked
    got = Storage(s3_registry.root).remote("public").download(md5, tmp_path / "pulled.onnx")
    assert got.read_bytes() == w
    again = s3_registry.registry("publish", "--base", base, "--head", head, "--format", "json")
    assert json.loads(again.stdout)["changed"] is False


def test_public_s3_refusing_access_stops_with_no_tag(s3_registry, origin):
    w = mlp_onnx(0)
    base, head = merge(s3_registry, w)
    # the server answers public's requests with AccessDenied, as S3 does for a key without rights
    s3_registry.dvc("remote", "modify", "--local", "public", "secret_access_key", "not-the-secret")
    proc = s3_registry.registry("publish", "--base", base, "--head", head)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "remote 'public'" in proc.stderr and "refused access" in proc.stderr
    assert hashlib.md5(w).hexdigest() in proc.stderr and "Traceback" not in proc.stderr
    assert s3_registry.git("tag", "-l") == ""
    assert run(["git", "ls-remote", "--tags", str(origin)], origin).stdout == ""


def test_unreachable_public_is_retried_then_reported(s3_registry, origin):
    w = mlp_onnx(0)
    # publish reads its remotes from the merge's base, so the unreachable URL is committed before it
    use_s3_remote(
        s3_registry,
        "public",
        f"http://127.0.0.1:{free_port()}",
        f"{s3_registry.bucket.name}/public",
    )
    base, head = merge(s3_registry, w)
    started = time.monotonic()
    proc = s3_registry.registry("publish", "--base", base, "--head", head)
    elapsed = time.monotonic() - started
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "remote 'public'" in proc.stderr and hashlib.md5(w).hexdigest() in proc.stderr
    assert "after 4 attempts" in proc.stderr
    assert elapsed > 3.5  # backoff 0.5 + 1 + 2 s between the four attempts
    assert s3_registry.git("tag", "-l") == ""
