"""`registry publish`: a merge copies the version's objects to public, tags, pushes, writes the
changelog;
and every fault of issue 3 (re-runs, kills, races, missing objects, refusing remotes)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from factories import example_card, mlp_onnx, run
from publish_killed import KILLED, POINTS
from registry.core.errors import GitError
from registry.core.git import push_tag

NAME = "tiny-mlp"
TAG = f"{NAME}@v1.0.0"


def object_file(storage, remote: str, data: bytes):
    md5 = hashlib.md5(data).hexdigest()
    return storage / remote / "files" / "md5" / md5[:2] / md5[2:]


def merge_publishing(
    reg, weights: bytes, version: str = "1.0.0", status: str = "published", extra: str = ""
) -> tuple[str, str]:
    """The model exists unpublished on main; a merge sets status and version. Returns (base,
    head)."""
    if not (reg.root / "models" / NAME).exists():
        reg.add_model(NAME, weights)
    base = reg.git("rev-parse", "HEAD")
    head = reg.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version=version, status=status, size=len(weights), extra=extra
            )
        },
        f"publish {version}",
    )
    return base, head


def publish(reg, base, head, *args, env=None):
    return reg.registry("publish", "--base", base, "--head", head, *args, env=env)


def publish_killed(reg, base, head, point: str):
    """`registry publish` ended abruptly at `point`, as a kill would (tests/publish_killed.py)."""
    driver = Path(__file__).with_name("publish_killed.py")
    return run(
        [sys.executable, str(driver), point, "--base", base, "--head", head], reg.root, check=False
    )


def origin_tags(origin) -> dict[str, str]:
    out = run(["git", "ls-remote", "--tags", str(origin)], origin).stdout
    tags = {}
    for line in out.splitlines():
        sha, ref = line.split("\t")
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            tags[name[:-3]] = sha
        else:
            tags.setdefault(name, sha)
    return tags


@pytest.fixture
def weights():
    return mlp_onnx(0)


def test_publish_copies_verifies_tags_pushes_and_writes_changelog(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    public_obj = object_file(registry_repo.storage, "public", weights)
    assert not public_obj.exists()

    notes_dir = registry_repo.root.parent / "notes"
    proc = publish(registry_repo, base, head, "--format", "json", "--notes-dir", str(notes_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    model = report["models"][0]
    assert (notes_dir / f"{TAG}.md").read_text() == model["notes"]
    assert (model["name"], model["operation"], model["action"]) == (NAME, "publish", "published")
    assert (
        model["objects"][0]["action"] == "copied" and model["objects"][0]["verified"] == "md5+size"
    )
    assert model["tag_created"] and model["tag_pushed"] and model["changelog_updated"]
    assert report["releases"][0]["tag"] == TAG and report["changelog_files"] == [
        f"models/{NAME}/CHANGELOG.md"
    ]

    assert public_obj.read_bytes() == weights
    # the annotated tag is on the merge commit, on origin too, with the notes (headings kept) as
    # message
    assert origin_tags(origin)[TAG] == head
    assert registry_repo.git("rev-parse", f"{TAG}^{{commit}}") == head
    message = registry_repo.git("tag", "-l", "--format=%(contents)", TAG)
    assert message.startswith(f"## {NAME} v1.0.0") and "First release" in message
    assert "### Metrics" in message and "| accuracy ↑ | digits-test | 0.93 |" in message
    changelog = (registry_repo.root / "models" / NAME / "CHANGELOG.md").read_text()
    assert "<!-- version: 1.0.0 -->" in changelog and "First release" in changelog


def test_second_run_changes_nothing_and_says_so(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    assert publish(registry_repo, base, head).returncode == 0
    changelog = (registry_repo.root / "models" / NAME / "CHANGELOG.md").read_text()
    tag_object = registry_repo.git("rev-parse", TAG)

    again = publish(registry_repo, base, head)
    assert again.returncode == 0, again.stderr
    assert "already published" in again.stdout and "nothing changed" in again.stdout
    report = json.loads(publish(registry_repo, base, head, "--format", "json").stdout)
    assert report["changed"] is False and report["models"][0]["action"] == "already-published"
    assert report["models"][0]["objects"][0]["action"] == "present"
    assert registry_repo.git("rev-parse", TAG) == tag_object
    assert (registry_repo.root / "models" / NAME / "CHANGELOG.md").read_text() == changelog


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_any_point_a_rerun_completes(registry_repo, origin, weights, point):
    base, head = merge_publishing(registry_repo, weights)
    killed = publish_killed(registry_repo, base, head, point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    if point in ("after-copy",):
        assert registry_repo.git("tag", "-l", TAG) == ""
    if point in ("after-tag", "before-push"):
        assert registry_repo.git("tag", "-l", TAG) == TAG and TAG not in origin_tags(origin)
    if point == "after-push":
        assert origin_tags(origin)[TAG] == head
        assert not (registry_repo.root / "models" / NAME / "CHANGELOG.md").exists()

    proc = publish(registry_repo, base, head)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert origin_tags(origin)[TAG] == head
    assert object_file(registry_repo.storage, "public", weights).read_bytes() == weights
    changelog = (registry_repo.root / "models" / NAME / "CHANGELOG.md").read_text()
    assert changelog.count("<!-- version: 1.0.0 -->") == 1


def test_tag_whose_objects_vanished_gets_them_back_before_push(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    assert publish_killed(registry_repo, base, head, "after-tag").returncode == KILLED
    public_obj = object_file(registry_repo.storage, "public", weights)
    public_obj.unlink()  # e.g. removed by hand between the runs

    proc = publish(registry_repo, base, head, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["objects"][0]["action"] == "copied"
    assert public_obj.read_bytes() == weights and origin_tags(origin)[TAG] == head


def test_missing_staging_object_stops_with_no_tag(registry_repo, origin, weights):
    registry_repo.add_model(NAME, weights, push=False)  # never pushed to staging
    base = registry_repo.git("rev-parse", "HEAD")
    head = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="published", size=len(weights)
            )
        }
    )
    proc = publish(registry_repo, base, head)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    md5 = hashlib.md5(weights).hexdigest()
    assert f"object {md5} (models/{NAME}/model.onnx) is not in remote 'staging'" in proc.stderr
    assert "hint: push the weights to staging" in proc.stderr
    assert registry_repo.git("tag", "-l") == "" and origin_tags(origin) == {}


def _make_read_only(path) -> bool:
    """Make a folder refuse writes (chmod, plus the immutable flag for root); True when it does."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    try:
        (path / "probe").write_text("x")
    except OSError:
        return True
    (path / "probe").unlink()
    return False


def _make_writable(path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    os.chmod(path, 0o755)


def test_public_remote_refusing_writes_stops_with_no_tag(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    public = registry_repo.storage / "public"
    if not _make_read_only(public):
        _make_writable(public)
        pytest.skip(
            "this machine cannot make a folder read-only (root without chattr); "
            "the S3 read-only test covers the case"
        )
    try:
        proc = publish(registry_repo, base, head)
    finally:
        _make_writable(public)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "remote 'public'" in proc.stderr and "refused" in proc.stderr
    assert registry_repo.git("tag", "-l") == "" and origin_tags(origin) == {}


def test_an_existing_tag_on_another_commit_is_never_moved(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    registry_repo.git("tag", "-a", TAG, "-m", "made elsewhere", base)
    proc = publish(registry_repo, base, head)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"tag {TAG} already exists on commit {base[:10]}" in proc.stderr
    assert "never re-tagged" in proc.stderr
    assert registry_repo.git("rev-parse", f"{TAG}^{{commit}}") == base
    assert origin_tags(origin) == {}


@pytest.fixture
def rival(registry_repo, origin, weights, tmp_path):
    """A second clone of origin whose merge publishes the same version from a different commit."""
    registry_repo.add_model(NAME, weights)
    registry_repo.git("push", "-q", "origin", "main")
    base = registry_repo.git("rev-parse", "HEAD")
    clone = tmp_path / "rival"
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    mine = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME,
                version="1.0.0",
                status="published",
                size=len(weights),
                extra="description: mine\n",
            )
        }
    )
    (clone / "models" / NAME / "model.yaml").write_text(
        example_card(
            NAME,
            version="1.0.0",
            status="published",
            size=len(weights),
            extra="description: theirs\n",
        )
    )
    run(["git", "commit", "-qam", "publish (rival)"], clone)
    theirs = run(["git", "rev-parse", "HEAD"], clone).stdout.strip()
    return base, mine, clone, theirs


def test_two_publishes_racing_one_wins_the_other_fails_cleanly(registry_repo, origin, rival):
    base, mine, clone, theirs = rival
    cmd = [sys.executable, "-m", "registry", "publish", "--base", base, "--head", "HEAD"]
    procs = [
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cwd in (registry_repo.root, clone)
    ]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 4], results
    winner = (mine, theirs)[[rc for rc, _ in results].index(0)]
    loser_dir, loser_err = [
        (d, err) for d, (rc, err) in zip((registry_repo.root, clone), results) if rc == 4
    ][0]
    assert origin_tags(origin)[TAG] == winner
    assert f"tag {TAG} already exists on git remote 'origin'" in loser_err
    assert "Traceback" not in loser_err
    # the loser holds no tag of its own that could be pushed later
    loser_tag = run(["git", "tag", "-l", TAG], loser_dir).stdout.strip()
    assert (
        loser_tag == ""
        or run(["git", "rev-parse", f"{TAG}^{{commit}}"], loser_dir).stdout.strip() == winner
    )


def test_losing_push_is_refused_and_the_local_tag_removed(registry_repo, origin, rival):
    base, mine, clone, theirs = rival
    proc = subprocess.run(
        [sys.executable, "-m", "registry", "publish", "--base", base, "--head", "HEAD"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    # this clone got as far as a local tag before the rival pushed: the push itself must refuse
    registry_repo.git("tag", "-a", TAG, "-m", "mine", mine)
    with pytest.raises(GitError, match="another publish of this version won"):
        push_tag(registry_repo.root, "origin", TAG, mine, created_here=True)
    assert registry_repo.git("tag", "-l", TAG) == ""
    assert origin_tags(origin)[TAG] == theirs


def test_same_commit_already_tagged_elsewhere_is_success(registry_repo, origin, weights, tmp_path):
    base, head = merge_publishing(registry_repo, weights)
    registry_repo.git("push", "-q", "origin", "main")
    clone = tmp_path / "other"
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert (
        registry_repo.registry("publish", "--base", base, "--head", head, cwd=clone).returncode == 0
    )
    proc = publish(registry_repo, base, head, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)["models"][0]
    assert model["tag_pushed"] is False and model["tag_created"] is False
    # the very tag object of origin was taken, not a second one made
    remote_object = run(
        ["git", "ls-remote", str(origin), f"refs/tags/{TAG}"], origin
    ).stdout.split()[0]
    assert registry_repo.git("rev-parse", TAG) == remote_object
    assert registry_repo.git("rev-parse", f"{TAG}^{{commit}}") == head


def test_update_publishes_notes_against_the_previous_version(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    assert publish(registry_repo, base, head).returncode == 0
    w2 = mlp_onnx(1, hidden=32)
    registry_repo.track(f"models/{NAME}/model.onnx", w2)
    card = example_card(NAME, version="1.1.0", status="updated", size=len(w2)).replace(
        "value: 0.93", "value: 0.91"
    )
    head2 = registry_repo.commit({f"models/{NAME}/model.yaml": card}, "v1.1.0")
    proc = publish(registry_repo, head, head2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert object_file(registry_repo.storage, "public", w2).read_bytes() == w2
    message = registry_repo.git("tag", "-l", "--format=%(contents)", f"{NAME}@v1.1.0")
    assert "Changes since v1.0.0" in message and "**⚠ regression**" in message
    assert "Parameters: 195 → 387 (+192)" in message
    changelog = (registry_repo.root / "models" / NAME / "CHANGELOG.md").read_text()
    assert changelog.index("version: 1.1.0") < changelog.index("version: 1.0.0")

    notes = registry_repo.registry("notes", NAME, "--from", "1.0.0", "--to", "v1.1.0")
    assert notes.returncode == 0, notes.stderr
    assert notes.stdout == message.rstrip("\n") + "\n"


def test_unpublish_adds_a_gto_deregistration_tag_and_keeps_objects(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    assert publish(registry_repo, base, head).returncode == 0
    offline = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="offline", size=len(weights)
            )
        },
        "unpublish",
    )
    proc = publish(registry_repo, head, offline, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)["models"][0]
    assert (model["operation"], model["action"], model["tag"]) == (
        "unpublish",
        "deprecated",
        f"{TAG}!#1",
    )
    assert origin_tags(origin)[f"{TAG}!#1"] == head  # on the version's commit, as GTO does it
    assert object_file(registry_repo.storage, "public", weights).read_bytes() == weights

    # the real GTO reads it: the version is registered and no longer active
    gto = os.path.join(os.path.dirname(sys.executable), "gto")
    versions = json.loads(
        run([gto, "show", NAME, "--deprecated", "--json"], registry_repo.root).stdout
    )
    v1 = next(v for v in versions if v["version"] == "v1.0.0")
    assert v1["is_active"] is False
    assert [d["tag"] for d in v1["deregistrations"]] == [f"{TAG}!#1"]
    assert json.loads(run([gto, "show", NAME, "--json"], registry_repo.root).stdout) == []
    again = json.loads(publish(registry_repo, head, offline, "--format", "json").stdout)
    assert again["models"][0]["action"] == "already-deprecated" and again["changed"] is False


def test_unpublish_withdraws_every_version_so_gto_and_registry_agree(
    registry_repo, origin, weights
):
    """Two published versions, then offline: both get a deregistration tag, so `gto show` lists
    no version of the model as current, as `registry show` says."""
    base, v1 = merge_publishing(registry_repo, weights)
    assert publish(registry_repo, base, v1).returncode == 0
    w2 = mlp_onnx(1, hidden=24)
    registry_repo.track(f"models/{NAME}/model.onnx", w2)
    v2 = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.1.0", status="updated", size=len(w2)
            )
        },
        "1.1.0",
    )
    assert publish(registry_repo, v1, v2).returncode == 0
    offline = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.1.0", status="offline", size=len(w2)
            )
        },
        "unpublish",
    )
    proc = publish(registry_repo, v2, offline, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)["models"][0]
    # GTO numbers an artifact's events together: #1, then #2
    assert model["action"] == "deprecated" and model["tag"] == f"{NAME}@v1.1.0!#2"
    assert model["withdrawn"] == [f"{NAME}@v1.0.0!#1", f"{NAME}@v1.1.0!#2"]
    tags = origin_tags(origin)
    assert tags[f"{NAME}@v1.0.0!#1"] == v1 and tags[f"{NAME}@v1.1.0!#2"] == v2
    gto = os.path.join(os.path.dirname(sys.executable), "gto")
    assert json.loads(run([gto, "show", NAME, "--json"], registry_repo.root).stdout) == []
    assert (
        json.loads(run([gto, "show", "--json"], registry_repo.root).stdout)[NAME]["version"] is None
    )
    shown = registry_repo.registry("show", NAME, "--format", "json")
    assert all(v["withdrawn"] for v in json.loads(shown.stdout)["versions"]), shown.stdout
    again = json.loads(publish(registry_repo, v2, offline, "--format", "json").stdout)
    assert again["models"][0]["action"] == "already-deprecated" and again["changed"] is False


def test_a_merge_that_bypassed_the_bot_fails_publish_loudly(registry_repo, origin, weights):
    """offline → published is not a lifecycle step: a direct merge of it is not 'nothing to
    publish'."""
    base, head = merge_publishing(registry_repo, weights)
    assert publish(registry_repo, base, head).returncode == 0
    offline = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="offline", size=len(weights)
            )
        },
        "unpublish",
    )
    assert publish(registry_repo, head, offline).returncode == 0
    back = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="published", size=len(weights)
            )
        },
        "direct push: published again",
    )
    proc = publish(registry_repo, offline, back)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "was not published: the merge asks for a change the lifecycle does not allow" in out
    assert (
        "status cannot go from 'offline' to 'published'" in out and "nothing to publish" not in out
    )


def test_delete_destroys_nothing(registry_repo, origin, weights):
    registry_repo.add_model(NAME, weights)
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.git("rm", "-rq", f"models/{NAME}")
    head = registry_repo.commit(message="delete")
    proc = publish(registry_repo, base, head, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["action"] == "deleted"
    assert object_file(registry_repo.storage, "staging", weights).read_bytes() == weights


def test_corrupt_staging_object_is_caught_on_public_and_not_tagged(registry_repo, origin, weights):
    base, head = merge_publishing(registry_repo, weights)
    staged = object_file(registry_repo.storage, "staging", weights)
    staged.chmod(0o644)
    staged.write_bytes(bytes(reversed(weights)))  # same size, other content
    proc = publish(registry_repo, base, head)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "on remote 'public' does not match after the copy" in proc.stderr
    assert not object_file(registry_repo.storage, "public", weights).exists()
    assert registry_repo.git("tag", "-l") == "" and origin_tags(origin) == {}


def corrupt_in_transit(monkeypatch) -> None:
    """Make every copy between local folders land with one byte changed, as a fault on the way
    (after the source was read) would."""
    import registry.core.storage as storage

    copy_chunk = storage._copy_chunk

    def flipped(fin, fout, offset, *size):
        n = copy_chunk(fin, fout, offset, *size)
        if offset == 0 and n:
            first = os.pread(fin.fileno(), 1, 0)
            os.pwrite(fout.fileno(), bytes([first[0] ^ 0xFF]), 0)
        return n

    monkeypatch.setattr(storage, "_copy_chunk", flipped)


def test_a_byte_corrupted_in_transit_fails_the_publish_before_any_tag(
    registry_repo, origin, weights, monkeypatch
):
    from registry.core.repo import RegistryRepo
    from registry.publishing.publish import PublishOptions
    from registry.publishing.publish import publish as run_publish

    base, head = merge_publishing(registry_repo, weights)
    corrupt_in_transit(monkeypatch)
    report = run_publish(RegistryRepo(registry_repo.root), PublishOptions(base=base, head=head))
    (model,) = report.models
    assert model.error is not None and model.error.exit_code == 5
    assert "on remote 'public' does not match after the copy" in model.error.message
    public = object_file(registry_repo.storage, "public", weights)
    assert not public.exists() and list(public.parent.iterdir()) == []  # no temporary left
    assert registry_repo.git("tag", "-l") == "" and origin_tags(origin) == {}
    assert not (registry_repo.root / "models" / NAME / "CHANGELOG.md").exists()


def test_an_object_of_several_copy_chunks_arrives_whole(registry_repo, origin):
    """Objects are copied and read back a chunk at a time; an odd size spanning chunks must arrive
    whole."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(3).standard_normal((8, 300_001)).astype(np.float32), "w"
    )
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 300_001])],
        initializer=[w],
    )
    weights = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert len(weights) > 2 * (1 << 22) and len(weights) % (1 << 22)
    base, head = merge_publishing(registry_repo, weights)
    proc = publish(registry_repo, base, head, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["objects"][0]["verified"] == "md5+size"
    assert object_file(registry_repo.storage, "public", weights).read_bytes() == weights
    notes = registry_repo.git("tag", "-l", "--format=%(contents)", f"{NAME}@v1.0.0")
    assert "Parameters: 2,400,008" in notes and "File size: 9.60 MB" in notes


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["sendfile", "no-in-kernel-copy"])
def test_copy_with_read_back_returns_the_hash_of_what_arrived(tmp_path, monkeypatch, kernel_copy):
    """Where the file system refuses in-kernel copies (EINVAL), the copy goes through a buffer."""
    import errno

    from registry.core.storage import copy_hashed

    if not kernel_copy:

        def refuse(*args):
            raise OSError(errno.EINVAL, "Invalid argument")

        monkeypatch.setattr(os, "sendfile", refuse)
    data = np.random.default_rng(7).bytes(5 * (1 << 21) + 12345)  # several chunks and a tail
    (tmp_path / "src").write_bytes(data)
    got = copy_hashed(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert got == (hashlib.md5(data).hexdigest(), len(data))
    assert (tmp_path / "dst").read_bytes() == data


def test_a_copy_told_to_stop_stops_between_chunks(tmp_path):
    """A copy whose caller gave it up (a pull refused meanwhile) stops at its next chunk."""
    import threading

    from registry.core.storage import CopyStopped, copy_hashed

    (tmp_path / "src").write_bytes(np.random.default_rng(8).bytes(3 * (1 << 21)))
    stop = threading.Event()
    stop.set()
    with pytest.raises(CopyStopped):
        copy_hashed(str(tmp_path / "src"), str(tmp_path / "dst"), stop)
    assert (tmp_path / "dst").stat().st_size < 3 * (1 << 21)
