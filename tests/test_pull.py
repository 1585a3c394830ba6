"""`registry pull`: resolve from tags, fetch from `public` only, verify, write atomically, warn."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from factories import mlp_onnx, withdraw_version
from registry.consuming.pull import pull
from registry.core.errors import StorageError, UsageError
from registry.core.storage import parse_pointer


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def object_path(reg, remote: str, digest: str) -> Path:
    return reg.storage / remote / "files" / "md5" / digest[:2] / digest[2:]


@pytest.fixture
def indexed_registry(published_registry):
    """`published_registry` with its registry index written, as `registry publish` leaves it (the
    index is what lets a pull start the download before it checks the card)."""
    from registry.versions.index import sync

    sync(published_registry.root, "main", rebuild=True)
    return published_registry


def test_pull_exact_and_latest_versions(published_registry, tmp_path):
    reg = published_registry
    r1 = pull("digits@1.0.0", tmp_path / "v1", root=reg.root)
    assert (tmp_path / "v1" / "model.onnx").read_bytes() == mlp_onnx(1)
    assert "version: 1.0.0" in (tmp_path / "v1" / "model.yaml").read_text()
    assert (tmp_path / "v1" / "config.yaml").is_file()
    assert r1.tag == "digits@v1.0.0" and not r1.withdrawn and r1.warning is None
    r2 = pull("digits@latest", tmp_path / "v2", root=reg.root)
    assert r2.version == "1.1.0"
    assert md5((tmp_path / "v2" / "model.onnx").read_bytes()) == md5(mlp_onnx(2)) == r2.files[0].md5
    assert r2.remote == str(reg.storage / "public")


def test_pull_reads_only_the_public_remote(published_registry, tmp_path):
    reg = published_registry
    shutil.rmtree(reg.storage / "staging")
    shutil.rmtree(reg.root / ".dvc" / "cache", ignore_errors=True)
    pull("digits@1.1.0", tmp_path / "out", root=reg.root)
    assert (tmp_path / "out" / "model.onnx").read_bytes() == mlp_onnx(2)


def test_an_object_missing_from_public_fails_without_writing(published_registry, tmp_path):
    reg = published_registry
    shutil.rmtree(reg.storage / "public")
    proc = reg.registry("pull", "digits@1.0.0", "-o", str(tmp_path / "out"))
    assert proc.returncode == 5
    assert "is not in remote 'public'" in proc.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()
    assert list((tmp_path / "out").glob(".*")) == []  # no temporary leftovers


def test_corrupt_public_object_is_refused(published_registry, tmp_path):
    reg = published_registry
    digest = md5(mlp_onnx(1))
    object_path(reg, "public", digest).write_bytes(b"not the model")
    with pytest.raises(StorageError, match="corrupt"):
        pull("digits@1.0.0", tmp_path / "out", root=reg.root)
    assert not (tmp_path / "out" / "model.onnx").exists()


@pytest.mark.parametrize("index", [False, True], ids=["from-tags", "prefetched"])
def test_a_byte_corrupted_on_the_way_leaves_nothing_at_the_destination(
    published_registry, tmp_path, monkeypatch, index
):
    """The download is hashed as it lands; a copy that differs from the object is refused before
    the file gets its name, and its temporary file is removed."""
    import os

    if index:
        from registry.versions.index import sync

        sync(published_registry.root, "main", rebuild=True)

    import registry.core.storage as storage

    copy_chunk = storage._copy_chunk

    def flipped(fin, fout, offset, *size):
        n = copy_chunk(fin, fout, offset, *size)
        if offset == 0 and n:
            os.pwrite(fout.fileno(), bytes([os.pread(fin.fileno(), 1, 0)[0] ^ 0xFF]), 0)
        return n

    monkeypatch.setattr(storage, "_copy_chunk", flipped)
    out = tmp_path / "out"
    with pytest.raises(StorageError, match="is corrupt") as e:
        pull("digits@1.0.0", out, root=published_registry.root)
    assert "failed after" not in e.value.message  # refused for its content, not retried
    assert not out.exists() or list(out.iterdir()) == []
    monkeypatch.undo()
    pull("digits@1.0.0", out, root=published_registry.root)
    assert (out / "model.onnx").read_bytes() == mlp_onnx(1)


def test_the_weights_download_once_and_before_the_card_checks(
    indexed_registry, tmp_path, monkeypatch
):
    """The download starts from what the index and git say, beside the checks of the card, and
    the pull takes it over instead of downloading a second time."""
    import threading

    from registry.core.storage import Remote

    calls = []
    download = Remote.download

    def counted(self, *args, **kwargs):
        calls.append(threading.current_thread().name)
        return download(self, *args, **kwargs)

    monkeypatch.setattr(Remote, "download", counted)
    pull("digits@1.0.0", tmp_path / "out", root=indexed_registry.root)
    assert calls == ["registry-prefetch"]
    assert (tmp_path / "out" / "model.onnx").read_bytes() == mlp_onnx(1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "config.yaml",
        "model.onnx",
        "model.yaml",
    ]


def test_a_pull_refused_while_its_weights_download_leaves_nothing(
    indexed_registry, tmp_path, monkeypatch
):
    """A check that fails after the download started stops it and removes its file and the
    folder made for it."""
    import threading

    import registry.versions.resolve as resolve
    from registry.core.errors import CardError
    from registry.core.storage import Remote

    started = []
    download = Remote.download

    def recorded(self, md5, dest, *args):
        started.append(threading.current_thread().name)
        return download(self, md5, dest, *args)

    def refused(*args, **kwargs):
        raise CardError("the card at digits@v1.0.0 is invalid", "fix it")

    monkeypatch.setattr(Remote, "download", recorded)
    monkeypatch.setattr(resolve, "find_version", refused)
    out = tmp_path / "nested" / "out"
    with pytest.raises(CardError, match="is invalid"):
        pull("digits@1.0.0", out, root=indexed_registry.root)
    assert started == ["registry-prefetch"]
    assert not (tmp_path / "nested").exists()
    assert not any(t.name == "registry-prefetch" for t in threading.enumerate())


def test_withdrawn_version_is_fetched_with_a_warning(published_registry, tmp_path):
    reg = published_registry
    tag = withdraw_version(reg, "digits", "1.0.0")
    proc = reg.registry("pull", "digits@1.0.0", "-o", str(tmp_path / "out"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "warning: digits@1.0.0 was withdrawn" in proc.stderr and tag in proc.stderr
    data = json.loads(proc.stdout)
    assert data["withdrawn"] is True and "withdrawn" in data["warning"]
    assert (tmp_path / "out" / "model.onnx").read_bytes() == mlp_onnx(1)
    assert pull("digits@latest", tmp_path / "l", root=reg.root).version == "1.1.0"


def test_latest_of_a_fully_withdrawn_model_is_unavailable_not_a_usage_error(
    published_registry, tmp_path
):
    reg = published_registry
    for version in ("1.0.0", "1.1.0"):
        withdraw_version(reg, "digits", version)
    proc = reg.registry("pull", "digits@latest", "-o", str(tmp_path / "out"))
    assert proc.returncode == 8, proc.stderr
    assert "every version of 'digits' is withdrawn, so there is no latest" in proc.stderr
    assert "digits@1.1.0" in proc.stderr  # the hint names an exact version that still works
    assert not (tmp_path / "out").exists()
    exact = reg.registry("pull", "digits@1.1.0", "-o", str(tmp_path / "exact"))
    assert exact.returncode == 0, exact.stderr


def test_pull_from_any_directory_with_the_repo_url(published_registry, tmp_path, monkeypatch):
    reg = published_registry
    reg.git(
        "config", "uploadpack.allowFilter", "true"
    )  # as on GitHub: a real blobless clone, blobs fetched lazily
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = reg.registry("pull", "digits@1.0.0", "--repo", f"file://{reg.root}", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "digits-1.0.0" / "model.onnx").read_bytes() == mlp_onnx(1)
    monkeypatch.chdir(elsewhere)
    r = pull("digits@latest", repo_url=str(reg.root))
    assert r.version == "1.1.0" and Path(r.out_dir) == elsewhere / "digits-1.1.0"


def test_outside_a_clone_without_repo_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not inside a clone") as e:
        pull("digits@1.0.0", root=tmp_path)
    assert "--repo" in e.value.hint


@pytest.mark.parametrize(
    "spec,code,message",
    [
        ("digits@3.0.0", 2, "no version 3.0.0"),
        ("draft@latest", 2, "'draft' has no published version"),
        ("digits@1.0", 2, "does not name a version"),
    ],
)
def test_pull_errors(published_registry, spec, code, message):
    proc = published_registry.registry("pull", spec)
    assert proc.returncode == code and message in proc.stderr


def test_pulling_again_keeps_a_verified_file_and_replaces_a_damaged_one(
    published_registry, tmp_path
):
    reg = published_registry
    out = tmp_path / "out"
    first = pull("digits@1.1.0", out, root=reg.root)
    assert not first.files[0].kept
    again = pull("digits@1.1.0", out, root=reg.root)
    assert again.files[0].kept  # said so, not downloaded again
    weights = out / "model.onnx"
    weights.write_bytes(b"tampered")
    r = pull("digits@1.1.0", out, root=reg.root)
    assert not r.files[0].kept and weights.read_bytes() == mlp_onnx(2)
    pointer = parse_pointer((reg.root / "models" / "digits" / "model.onnx.dvc").read_text())
    assert r.files[0].md5 == pointer.md5 and r.files[0].size == pointer.size


def test_output_that_is_a_file_is_refused(published_registry, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(UsageError, match="is not a folder"):
        pull("digits@1.0.0", target, root=published_registry.root)
    assert target.read_text() == "keep me"


def test_the_pytorch_source_of_a_version_comes_with_its_weights(registry_repo, tmp_path):
    """A card with `pytorch:` publishes its .pt2 with the weights; a consumer's pull brings both."""
    reg = registry_repo
    pt2 = b"PK\x03\x04 stand-in bytes of an ExportedProgram archive"
    reg.track("models/mlp/model.pt2", pt2)
    reg.add_model("mlp", mlp_onnx(5), extra="pytorch: model.pt2\n")
    base = reg.git("rev-parse", "HEAD")
    text = (reg.root / "models/mlp/model.yaml").read_text()
    reg.commit(
        {
            "models/mlp/model.yaml": text.replace(
                "status: unpublished", "status: published\nversion: 1.0.0"
            )
        },
        "publish mlp 1.0.0",
    )
    assert reg.registry("publish", "--base", base, "--head", "HEAD", "--no-push").returncode == 0
    shutil.rmtree(reg.storage / "staging")
    result = pull("mlp@1.0.0", tmp_path / "out", root=reg.root)
    assert (tmp_path / "out" / "model.pt2").read_bytes() == pt2
    assert (tmp_path / "out" / "model.onnx").read_bytes() == mlp_onnx(5)
    assert {Path(f.path).name: f.md5 for f in result.files if f.source == "public"} == {
        "model.onnx": md5(mlp_onnx(5)),
        "model.pt2": md5(pt2),
    }


def test_pulling_again_says_which_files_were_kept_with_sizes_for_people(
    published_registry, tmp_path
):
    reg = published_registry
    out = str(tmp_path / "out")
    first = reg.registry("pull", "digits@1.1.0", "-o", out)
    assert first.returncode == 0, first.stderr
    line = next(x for x in first.stdout.splitlines() if "model.onnx" in x)
    assert " KB  md5 " in line and "bytes" not in line and "from public" in line
    again = reg.registry("pull", "digits@1.1.0", "-o", out)
    line = next(x for x in again.stdout.splitlines() if "model.onnx" in x)
    assert again.returncode == 0 and "already there, verified (public not contacted)" in line
    data = json.loads(reg.registry("pull", "digits@1.1.0", "-o", out, "--format", "json").stdout)
    onnx_file = next(f for f in data["files"] if f["path"].endswith("model.onnx"))
    assert onnx_file["kept"] is True and isinstance(onnx_file["size"], int)  # bytes in json
