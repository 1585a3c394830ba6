"""One published version: `NAME@VERSION` → the version from tags, its card at the tag, and its
files fetched into a folder (git files from git, DVC-tracked ones from the remote, verified)."""

import hashlib
import shutil
from pathlib import Path

import pytest

from factories import example_card, mlp_onnx, publish_version, withdraw_version
from registry.core.errors import CardError, StorageError, UnavailableError, UsageError
from registry.core.storage import ObjectCorruptError, ObjectMissingError
from registry.versions.resolve import VersionRef, fetch_files, find_version, parse_reference


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def public_object(reg, data: bytes) -> Path:
    digest = md5(data)
    return reg.storage / "public" / "files" / "md5" / digest[:2] / digest[2:]


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("digits@1.2.0", VersionRef(name="digits", version="1.2.0")),
        ("digits@v1.2.0", VersionRef(name="digits", version="1.2.0")),
        (" digits@latest ", VersionRef(name="digits", version="latest")),
    ],
)
def test_references_use_the_tag_grammar(spec, expected):
    assert parse_reference(spec) == expected


@pytest.mark.parametrize(
    "spec,message",
    [
        ("digits@latest", "does not name an exact version"),
        ("digits", "does not name an exact version"),
        ("digits@1.2", "does not name a version"),
        ("Digits@1.2.0", "is not a model name"),
    ],
)
def test_an_exact_version_is_required_where_latest_is_not_allowed(spec, message):
    with pytest.raises(UsageError, match=message) as e:
        parse_reference(spec, allow_latest=False)
    assert "latest" not in e.value.hint  # the hint never offers what is refused


def test_a_version_comes_with_its_tag_commit_and_card(published_registry):
    reg = published_registry
    found = find_version(reg.root, "digits@v1.0.0")
    assert (found.name, found.version, found.tag) == ("digits", "1.0.0", "digits@v1.0.0")
    assert found.commit == reg.git("rev-parse", "digits@v1.0.0^{commit}")
    assert found.card.version == "1.0.0" and found.card.size == len(mlp_onnx(1))
    assert not found.withdrawn and found.withdrawn_by is None
    assert find_version(reg.root, "digits@latest").version == "1.1.0"


def test_a_tag_that_does_not_exist(published_registry):
    with pytest.raises(UsageError) as e:
        find_version(published_registry.root, "digits@3.0.0")
    assert e.value.message == "model 'digits' has no version 3.0.0 (no version tag digits@v3.0.0)"
    assert e.value.hint == "published versions: 1.0.0, 1.1.0"
    with pytest.raises(UsageError, match="'draft' has no published version"):
        find_version(published_registry.root, "draft@1.0.0")


def test_latest_when_every_version_is_withdrawn(published_registry):
    reg = published_registry
    withdraw_version(reg, "digits", "1.1.0")
    assert find_version(reg.root, "digits@latest").version == "1.0.0"
    withdraw_version(reg, "digits", "1.0.0", counter=2)
    with pytest.raises(UnavailableError, match="every version of 'digits' is withdrawn") as e:
        find_version(reg.root, "digits@latest")
    assert "digits@1.1.0" in e.value.hint
    pinned = find_version(reg.root, "digits@1.0.0")  # still served when asked for by name
    assert pinned.withdrawn and pinned.withdrawn_by == "digits@v1.0.0!#2"


def test_an_offline_card_on_the_default_branch_withdraws_every_version(published_registry):
    reg = published_registry
    card = reg.root / "models/digits/model.yaml"
    offline = card.read_text().replace("status: updated", "status: offline")
    reg.commit({"models/digits/model.yaml": offline}, "unpublish digits")
    found = find_version(reg.root, "digits@1.1.0")
    assert found.withdrawn and found.withdrawn_by == "card status: offline"
    with pytest.raises(UnavailableError, match="every version of 'digits' is withdrawn"):
        find_version(reg.root, "digits@latest")


def test_a_hand_made_tag_is_not_a_version(published_registry):
    reg = published_registry
    card = example_card("digits", version="9.9.9", status="updated", size=len(mlp_onnx(2)))
    side = reg.commit({"models/digits/model.yaml": card}, "not reviewed")
    reg.git("reset", "-q", "--hard", "HEAD~1")
    reg.git("tag", "-a", "digits@v9.9.9", "-m", "by hand", side)
    with pytest.raises(UsageError, match="digits@v9.9.9 is not a published version: its commit"):
        find_version(reg.root, "digits@9.9.9")
    assert find_version(reg.root, "digits@latest").version == "1.1.0"


def test_git_files_come_from_git_and_tracked_files_from_public(published_registry, tmp_path):
    reg = published_registry
    shutil.rmtree(reg.storage / "staging")
    shutil.rmtree(reg.root / ".dvc" / "cache", ignore_errors=True)
    found = find_version(reg.root, "digits@1.0.0")
    fetched = fetch_files(
        reg.root,
        found,
        ["model.onnx", "model.yaml"],
        tmp_path / "out",
        optional=["config.yaml", "absent.npz"],
    )
    assert [(Path(f.path).name, f.source, f.kept) for f in fetched.files] == [
        ("model.onnx", "public", False),
        ("model.yaml", "git", False),
        ("config.yaml", "git", False),
    ]
    weights = tmp_path / "out" / "model.onnx"
    assert weights.read_bytes() == mlp_onnx(1)
    assert fetched.files[0].md5 == md5(mlp_onnx(1)) and fetched.files[0].size == len(mlp_onnx(1))
    assert "version: 1.0.0" in (tmp_path / "out" / "model.yaml").read_text()  # the tag's card
    assert fetched.remote == str(reg.storage / "public") and fetched.version.tag == "digits@v1.0.0"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["config.yaml", "model.onnx", "model.yaml"]


def test_files_in_subfolders_keep_their_place(registry_repo, tmp_path):
    reg = registry_repo
    calib = b"calibration inputs"
    reg.track("models/mlp/data/calib.npz", calib)
    reg.add_model("mlp", mlp_onnx(4))
    reg.commit({"models/mlp/docs/notes.txt": "small notes in git\n"}, "notes")
    publish_version(reg, "mlp", "1.0.0")  # copies the weights to public; the data goes by hand
    rel = public_object(reg, calib).relative_to(reg.storage / "public")
    (reg.storage / "public" / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reg.storage / "staging" / rel, reg.storage / "public" / rel)
    found = find_version(reg.root, "mlp@1.0.0")
    fetch_files(reg.root, found, ["data/calib.npz", "docs/notes.txt"], tmp_path / "out")
    assert (tmp_path / "out" / "data" / "calib.npz").read_bytes() == calib
    assert (tmp_path / "out" / "docs" / "notes.txt").read_text() == "small notes in git\n"


def test_a_file_the_version_does_not_have_is_refused_unless_optional(published_registry, tmp_path):
    reg = published_registry
    found = find_version(reg.root, "digits@1.0.0")
    with pytest.raises(CardError) as e:
        fetch_files(reg.root, found, ["model.onnx", "calib.npz"], tmp_path / "out")
    assert e.value.message == (
        "models/digits/calib.npz is neither in git nor DVC-tracked at digits@v1.0.0"
    )
    assert not (tmp_path / "out").exists()


def test_a_card_naming_a_path_outside_its_folder(published_registry, tmp_path):
    reg = published_registry
    found = find_version(reg.root, "digits@1.0.0")
    outside = r"models/digits/\.\./draft/config\.yaml at digits@v1\.0\.0 is outside the model"
    with pytest.raises(CardError, match=outside):
        fetch_files(reg.root, found, ["model.yaml", "../draft/config.yaml"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # a card that names such a path is not a valid card, so its tag is no version
    text = (reg.root / "models/digits/model.yaml").read_text()
    text = text.replace("config: config.yaml", "config: ../draft/config.yaml")
    text = text.replace("1.1.0", "1.2.0")
    commit = reg.commit({"models/digits/model.yaml": text}, "escape")
    reg.git("tag", "-a", "digits@v1.2.0", "-m", "by hand", commit)
    with pytest.raises(
        UsageError,
        match="digits@v1.2.0 is not a published version: the card at its commit is not valid",
    ):
        find_version(reg.root, "digits@1.2.0")


def test_a_pointer_whose_object_is_missing_from_the_remote(published_registry, tmp_path):
    reg = published_registry
    public_object(reg, mlp_onnx(1)).unlink()
    found = find_version(reg.root, "digits@1.0.0")
    out = tmp_path / "out"
    with pytest.raises(ObjectMissingError) as e:
        fetch_files(reg.root, found, ["model.yaml", "model.onnx"], out)
    assert e.value.message.startswith("models/digits/model.onnx of digits@v1.0.0: object ")
    assert "is not in remote 'public'" in e.value.message and "dvc push" in e.value.hint
    assert not out.exists()  # not even the card: files are written only once all are fetched


def test_a_file_already_there_with_the_right_md5_is_kept(published_registry, tmp_path):
    reg = published_registry
    found = find_version(reg.root, "digits@1.1.0")
    out = tmp_path / "out"
    assert not fetch_files(reg.root, found, ["model.onnx"], out).files[0].kept
    public_object(reg, mlp_onnx(2)).unlink()  # a second fetch must not need the remote
    again = fetch_files(reg.root, found, ["model.onnx"], out).files[0]
    assert again.kept and again.md5 == md5(mlp_onnx(2)) and again.source == "public"
    assert (out / "model.onnx").read_bytes() == mlp_onnx(2)
    (out / "model.onnx").write_bytes(b"tampered")  # the wrong bytes are fetched again, not kept
    with pytest.raises(ObjectMissingError):
        fetch_files(reg.root, found, ["model.onnx"], out)
    assert (out / "model.onnx").read_bytes() == b"tampered"
    assert [p.name for p in out.iterdir()] == ["model.onnx"]


def test_a_corrupt_object_is_refused_and_nothing_is_left(published_registry, tmp_path):
    reg = published_registry
    public_object(reg, mlp_onnx(1)).write_bytes(b"not the model")
    found = find_version(reg.root, "digits@1.0.0")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ObjectCorruptError) as e:
        fetch_files(reg.root, found, ["model.yaml", "config.yaml", "model.onnx"], out)
    assert isinstance(e.value, StorageError) and "is corrupt" in e.value.message
    assert e.value.message.startswith("models/digits/model.onnx of digits@v1.0.0: ")
    assert list(out.iterdir()) == []  # no card, no config, no temporary or partial file
