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


class FaultyStore:
    """A real S3 server behind a proxy on 127.0.0.1 that misbehaves on object uploads (`PUT`), as
    a broken store or network would: `fault` is "wrong-etag" (answers with an md5 the object
    does not have), "no-etag" (answers without one) or "corrupt" (flips a byte on the way in)."""

    def __init__(self, upstream: str, fault: str):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        self.puts = 0
        store = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers `Expect: 100-continue`, as S3 does

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upload = self.command == "PUT" and "/files/md5/" in self.path
                if upload:
                    store.puts += 1
                if upload and fault == "corrupt" and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                head = self.command == "HEAD"  # its Content-Length is the object's: kept
                for k, v in answer.getheaders():
                    if k.lower() in ("connection", "transfer-encoding"):
                        continue
                    if k.lower() == "content-length" and not head:
                        continue
                    if k.lower() == "etag" and upload and fault == "wrong-etag":
                        v = '"' + "0" * 32 + '"'
                    if k.lower() == "etag" and upload and fault == "no-etag":
                        continue
                    self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def faulty_public(reg, s3_server, fault: str) -> FaultyStore:
    """Point `public` at the S3 server through a FaultyStore (committed: publish reads its remotes
    from the merge's base)."""
    store = FaultyStore(s3_server.url, fault)
    use_s3_remote(reg, "public", store.url, f"{reg.bucket.name}/public")
    reg.commit(message="public through the proxy")
    return store


@pytest.mark.parametrize("fault", ["wrong-etag", "corrupt"])
def test_store_that_does_not_confirm_the_md5_fails_the_publish_before_a_tag(
    s3_registry, origin, s3_server, fault
):
    w = mlp_onnx(0)
    md5 = hashlib.md5(w).hexdigest()
    store = faulty_public(s3_registry, s3_server, fault)
    try:
        base, head = merge(s3_registry, w)
        proc = s3_registry.registry("publish", "--base", base, "--head", head)
    finally:
        store.stop()
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "remote 'public'" in proc.stderr and md5 in proc.stderr
    assert "Traceback" not in proc.stderr
    if fault == "wrong-etag":
        assert "does not match after the upload" in proc.stderr
    assert store.puts >= 1
    # nothing a consumer could fetch, and no version
    assert not (s3_registry.bucket / "public" / "files" / "md5" / md5[:2] / md5[2:]).exists()
    assert s3_registry.git("tag", "-l") == ""
    assert run(["git", "ls-remote", "--tags", str(origin)], origin).stdout == ""


def test_store_without_md5_etag_is_read_back_instead(s3_registry, origin, s3_server):
    w = mlp_onnx(0)
    md5 = hashlib.md5(w).hexdigest()
    store = faulty_public(s3_registry, s3_server, "no-etag")
    try:
        base, head = merge(s3_registry, w)
        proc = s3_registry.registry("publish", "--base", base, "--head", head, "--format", "json")
    finally:
        store.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["models"][0]["objects"][0]["verified"] == "md5+size"
    assert (s3_registry.bucket / "public" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == w
    assert run(["git", "ls-remote", "--tags", str(origin)], origin).stdout.strip()


def big_onnx(mb: int) -> bytes:
    """A real ONNX model with one initializer of about `mb` MB."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    n = mb * 250_000 // 1000
    w = numpy_helper.from_array(np.ones((1000, n), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_published_object_is_read_in_parallel_ranges_by_consumers(s3_registry, origin, tmp_path):
    # over the client's 50 MiB block size: `dvc pull` splits the download into ranged reads side
    # by side; `registry pull` reads one stream and hashes it as it lands
    w = big_onnx(60)
    base, head = merge(s3_registry, w)
    proc = s3_registry.registry("publish", "--base", base, "--head", head)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "pulled"
    pulled = s3_registry.registry("pull", f"{NAME}@1.0.0", "-o", str(out))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert hashlib.md5((out / "model.onnx").read_bytes()).digest() == hashlib.md5(w).digest()
    public = Storage(s3_registry.root).remote("public")
    md5 = hashlib.md5(w).hexdigest()
    public.fs.get_file(public.object_path(md5), str(tmp_path / "ranged"))  # as dvc pull reads
    assert hashlib.md5((tmp_path / "ranged").read_bytes()).hexdigest() == md5
