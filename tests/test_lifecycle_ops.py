"""Lifecycle requests: the card edited on a new branch, the lifecycle table enforced before anything
is written, the working tree never touched."""

import json

import pytest

from factories import withdraw_version
from registry.core.errors import UsageError
from registry.publishing.lifecycle_ops import (
    request_delete,
    request_edit,
    request_publish,
    request_unpublish,
)


def _state(reg):
    """Everything a failed request must leave as it was: branches, HEAD, index and work tree."""
    return (
        reg.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        reg.git("rev-parse", "HEAD"),
        reg.git("status", "--porcelain"),
    )


def card_at(reg, rev, name):
    return reg.git("show", f"{rev}:models/{name}/model.yaml")


def test_publish_request_commits_version_and_status_on_a_new_branch(published_registry):
    reg = published_registry
    (reg.root / "models" / "draft" / "model.yaml").write_text(
        card_at(reg, "HEAD", "draft").replace("task:", "# reviewed by the vision team\ntask:")
    )
    reg.commit(message="comment")
    before_head, before_status = reg.git("rev-parse", "HEAD"), reg.git("status", "--porcelain")
    proc = reg.registry("publish-request", "draft", "--version", "0.1.0")
    assert proc.returncode == 0, proc.stderr
    assert "registry/publish-draft-0.1.0" in proc.stdout
    assert "gh pr create --base main --head registry/publish-draft-0.1.0" in proc.stdout
    assert "git push -u origin registry/publish-draft-0.1.0" in proc.stdout
    # the user's checkout is untouched
    assert reg.git("rev-parse", "HEAD") == before_head
    assert reg.git("status", "--porcelain") == before_status
    assert reg.git("symbolic-ref", "--short", "HEAD") == "main"
    # the branch holds exactly the card change, comments kept, version right after name
    diff = reg.git("diff", "--stat", "main", "registry/publish-draft-0.1.0")
    assert "models/draft/model.yaml" in diff and "1 file changed" in diff
    card = card_at(reg, "registry/publish-draft-0.1.0", "draft")
    assert card.startswith("name: draft\nversion: 0.1.0\nstatus: published\n")
    assert "# reviewed by the vision team" in card
    log = reg.git("log", "-1", "--format=%s %P", "registry/publish-draft-0.1.0")
    assert log == f"Publish draft 0.1.0 {before_head}"


def test_publishing_a_new_version_of_a_published_model_sets_updated(published_registry):
    r = request_publish(published_registry.root, "digits", "v2.0.0")
    assert r.operation == "update" and r.version == "2.0.0"
    card = card_at(published_registry, r.branch, "digits")
    assert "version: 2.0.0" in card and "status: updated" in card


@pytest.mark.parametrize(
    "version,match",
    [
        ("1.1.0", "not above digits's last published version 1.1.0"),
        ("1.0.9", "not above"),
        ("2.0", "not a SemVer version"),
    ],
)
def test_publish_request_refuses_versions_not_above_the_last_tag(
    published_registry, version, match
):
    reg = published_registry
    before = _state(reg)
    with pytest.raises(UsageError, match=match) as e:
        request_publish(reg.root, "digits", version)
    assert e.value.hint
    assert _state(reg) == before


def test_withdrawn_versions_still_count_for_the_next_version(published_registry):
    withdraw_version(published_registry, "digits", "1.1.0")
    with pytest.raises(UsageError, match="1.1.0"):
        request_publish(published_registry.root, "digits", "1.1.0")


def test_unpublish_then_delete_follow_the_lifecycle_table(published_registry):
    reg = published_registry
    before = _state(reg)
    proc = reg.registry("delete", "digits")
    assert proc.returncode == 2
    assert "cannot delete 'digits'" in proc.stderr and "unpublish it first" in proc.stderr
    assert _state(reg) == before

    r = request_unpublish(reg.root, "digits")
    assert r.branch == "registry/unpublish-digits-1.1.0"
    assert "status: offline" in card_at(reg, r.branch, "digits")

    # on the unpublished branch, the offline model can be deleted but nothing else
    with pytest.raises(UsageError, match="offline"):
        request_publish(reg.root, "digits", "3.0.0", base=r.branch)
    with pytest.raises(UsageError, match="not allowed from .offline."):
        request_edit(reg.root, "digits", ["license=MIT"], base=r.branch)
    d = request_delete(reg.root, "digits", base=r.branch, branch="drop-digits")
    assert d.branch == "drop-digits"
    files = reg.git("ls-tree", "-r", "--name-only", "drop-digits", "models/")
    assert "models/digits/" not in files and "models/draft/model.yaml" in files


def test_unpublish_refuses_an_unpublished_model(published_registry):
    with pytest.raises(UsageError, match="cannot unpublish 'draft'") as e:
        request_unpublish(published_registry.root, "draft")
    assert "allows: publish-request, edit, delete" in e.value.hint


def test_delete_of_unpublished_model_also_drops_its_dvc_artifact(published_registry):
    from registry.cards.artifacts import sync_artifacts

    reg = published_registry
    sync_artifacts(reg.root)
    reg.commit(message="declare artifacts")
    r = request_delete(reg.root, "draft")
    dvc_yaml = reg.git("show", f"{r.branch}:dvc.yaml")
    assert "digits:" in dvc_yaml and "draft:" not in dvc_yaml
    assert "dvc.yaml: artifact 'draft' removed" in r.changes


def test_edit_changes_only_the_named_values_and_keeps_types(published_registry):
    reg = published_registry
    r = request_edit(
        reg.root,
        "digits",
        [
            "description=Digits, 8x8",
            "metrics.0.value=0.95",
            "project=2024",
            "source.commit=abcdef1",
            "tags=[vision, small]",
        ],
    )
    card = card_at(reg, r.branch, "digits")
    assert "description: Digits, 8x8" in card
    assert "    value: 0.95\n" in card  # a number stays a number
    assert "project: '2024'" in card  # text stays text
    assert "  commit: abcdef1" in card
    assert "tags:\n  - vision\n  - small" in card
    old = card_at(reg, "HEAD", "digits").splitlines()
    new = card.splitlines()
    assert old[:4] == new[:4]  # untouched lines stay byte for byte


@pytest.mark.parametrize(
    "assignment,match,hint",
    [
        ("weights=other.onnx", "'weights' identifies digits 1.1.0", "--version 1.2.0"),
        ("source.repo=https://x/y.git", "cannot change once published", "new version"),
        ("config=c2.yaml", "identifies", "publish-request"),
        ("version=9.9.9", "cannot be edited", "publish-request"),
        ("status=offline", "cannot be edited", "unpublish"),
        ("task=cooking", "would be invalid", "allowed"),
        ("metrics.5.value=1", "no 'metrics.5'", "numbered from 0"),
        ("licence=MIT", "would be invalid", "license"),
        ("nonsense", "not key=value", "--set"),
    ],
)
def test_edit_refusals_name_the_reason(published_registry, assignment, match, hint):
    reg = published_registry
    before = _state(reg)
    with pytest.raises(UsageError, match=match) as e:
        request_edit(reg.root, "digits", [assignment])
    assert hint in e.value.hint
    assert _state(reg) == before


def test_identity_fields_of_an_unpublished_model_may_change(published_registry):
    r = request_edit(
        published_registry.root,
        "draft",
        ["config=config.yaml", "weights=model.onnx", "source.repo=https://example.com/new.git"],
    )
    assert "repo: https://example.com/new.git" in card_at(published_registry, r.branch, "draft")


def test_an_existing_branch_is_never_moved(published_registry):
    reg = published_registry
    reg.git("branch", "registry/unpublish-digits-1.1.0")
    before = _state(reg)
    proc = reg.registry("unpublish", "digits", "--format", "json")
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert _state(reg) == before


def test_json_output_carries_the_commands(published_registry):
    proc = published_registry.registry("edit", "digits", "--set", "license=MIT", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["branch"] == "registry/edit-digits-1.1.0"
    assert data["pr_command"].startswith(
        "gh pr create --base main --head registry/edit-digits-1.1.0"
    )


def test_unknown_model(published_registry):
    with pytest.raises(UsageError, match="no model named 'ghost'"):
        request_unpublish(published_registry.root, "ghost")


def test_a_bad_model_name_is_refused_before_git_is_asked(published_registry):
    with pytest.raises(UsageError, match="is not a model name"):
        request_unpublish(published_registry.root, "Digits\nHEAD:x")
