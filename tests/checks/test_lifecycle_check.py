"""lifecycle: transitions between base and head, frozen identity of a published version, versions,
deletion."""

from __future__ import annotations

import pytest

from factories import example_card

CARD = "models/tiny/model.yaml"


def pointer(md5: str) -> str:
    return f"outs:\n- md5: {md5}\n  size: 1234\n  hash: md5\n  path: model.onnx\n"


MD5_A, MD5_B = "a" * 32, "b" * 32


def line_of(card: str, prefix: str) -> int:
    return next(i for i, ln in enumerate(card.splitlines(), 1) if ln.startswith(prefix))


def model_files(card: str, md5: str = MD5_A, config: str = "epochs: 3\n") -> dict[str, str]:
    return {
        CARD: card,
        "models/tiny/config.yaml": config,
        "models/tiny/model.onnx.dvc": pointer(md5),
    }


def lifecycle_findings(reg, check_models, base: str):
    report = check_models(reg, base=base, head="HEAD", only=["lifecycle"])
    return [f for m in report.models for f in m.findings]


@pytest.fixture
def published(registry_repo):
    """tiny 1.0.0 published (and tagged as the publish workflow would); returns the base commit."""
    card = example_card("tiny", version="1.0.0", status="published")
    base = registry_repo.commit(model_files(card), "publish tiny 1.0.0")
    registry_repo.git("tag", "-a", "tiny@v1.0.0", "-m", "tiny 1.0.0")
    return base


def test_a_new_model_must_start_unpublished(registry_repo, check_models):
    base = registry_repo.git("rev-parse", "HEAD")
    card = example_card("tiny", version="1.0.0", status="published")
    registry_repo.commit(model_files(card))
    [f] = lifecycle_findings(registry_repo, check_models, base)
    assert f.message == (
        "status change not allowed: a new model starts as 'unpublished', not 'published'; "
        "publish it in a later pull request after review"
    )
    assert (f.path, f.line) == (CARD, line_of(card, "status:"))


def test_upload_then_publish_pass(registry_repo, check_models):
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.commit(model_files(example_card("tiny")))
    assert lifecycle_findings(registry_repo, check_models, base) == []
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.commit(model_files(example_card("tiny", version="1.0.0", status="published")))
    assert lifecycle_findings(registry_repo, check_models, base) == []


def test_an_offline_model_cannot_come_back(registry_repo, check_models, published):
    registry_repo.commit(model_files(example_card("tiny", version="1.0.0", status="offline")))
    base = registry_repo.git("rev-parse", "HEAD")
    card = example_card("tiny", version="1.1.0", status="updated")
    registry_repo.commit(model_files(card))
    [f] = lifecycle_findings(registry_repo, check_models, base)
    assert f.message == (
        "status change not allowed: status cannot go from 'offline' to 'updated'; "
        "an offline model can only be deleted"
    )
    assert f.line == line_of(card, "status:")


@pytest.mark.parametrize(
    "change, field, message",
    [
        (
            {"source_repo": "https://github.com/example/other.git"},
            "  repo:",
            "source.repo changed from 'https://github.com/example/train.git' to "
            "'https://github.com/example/other.git' but version stays 1.0.0",
        ),
        (
            {"weights_file": "model-v2.onnx"},
            "weights:",
            "'weights' changed from 'model.onnx' to 'model-v2.onnx' but version stays 1.0.0",
        ),
    ],
)
def test_identity_fields_are_frozen_within_a_version(
    registry_repo, check_models, published, change, field, message
):
    card = example_card("tiny", version="1.0.0", status="published", **change)
    registry_repo.commit(model_files(card))
    [f] = lifecycle_findings(registry_repo, check_models, published)
    assert f.message == message
    assert (
        f.hint
        == "raise 'version' (e.g. to 1.0.1) to publish this as a new version, or revert the change"
    )
    assert (f.path, f.line) == (CARD, line_of(card, field))


def test_new_weights_content_needs_a_new_version(registry_repo, check_models, published):
    card = example_card("tiny", version="1.0.0", status="published")
    registry_repo.commit(model_files(card, md5=MD5_B))
    [f] = lifecycle_findings(registry_repo, check_models, published)
    assert (
        f.message
        == "the weights 'model.onnx' changed (md5 aaaaaaaa… → bbbbbbbb…) but version stays 1.0.0"
    )
    assert (f.path, f.line) == (CARD, line_of(card, "weights:"))


def test_new_config_content_needs_a_new_version(registry_repo, check_models, published):
    card = example_card("tiny", version="1.0.0", status="published")
    registry_repo.commit(model_files(card, config="epochs: 30\n"))
    [f] = lifecycle_findings(registry_repo, check_models, published)
    assert f.message == "the content of config file 'config.yaml' changed but version stays 1.0.0"
    assert f.line == line_of(card, "config:")


def test_a_higher_version_may_change_everything(registry_repo, check_models, published):
    card = example_card(
        "tiny", version="1.1.0", status="updated", source_repo="https://github.com/x/y.git"
    )
    registry_repo.commit(model_files(card, md5=MD5_B, config="epochs: 30\n"))
    assert lifecycle_findings(registry_repo, check_models, published) == []


def test_editing_free_text_of_a_published_version_passes(registry_repo, check_models, published):
    card = example_card(
        "tiny", version="1.0.0", status="published", extra="description: better words\n"
    )
    registry_repo.commit(model_files(card))
    assert lifecycle_findings(registry_repo, check_models, published) == []


def test_the_version_never_goes_down(registry_repo, check_models, published):
    registry_repo.commit(model_files(example_card("tiny", version="1.2.0", status="updated")))
    registry_repo.git("tag", "-a", "tiny@v1.2.0", "-m", "tiny 1.2.0")
    base = registry_repo.git("rev-parse", "HEAD")
    card = example_card("tiny", version="1.1.5", status="updated")
    registry_repo.commit(model_files(card, md5=MD5_B))
    messages = [f.message for f in lifecycle_findings(registry_repo, check_models, base)]
    assert "version goes down from 1.2.0 to 1.1.5" in messages
    assert any(
        m.startswith("the weights 'model.onnx' changed") and "is not higher than 1.2.0" in m
        for m in messages
    )


def test_a_published_tag_is_never_reused(registry_repo, check_models, published):
    # the model went offline and was deleted; a new upload under the same name reuses 1.0.0
    registry_repo.commit(model_files(example_card("tiny", version="1.0.0", status="offline")))
    registry_repo.git("rm", "-rq", "models/tiny")
    registry_repo.commit(message="delete tiny")
    registry_repo.commit(model_files(example_card("tiny")))
    base = registry_repo.git("rev-parse", "HEAD")
    card = example_card("tiny", version="1.0.0", status="published")
    registry_repo.commit(model_files(card))
    [f] = lifecycle_findings(registry_repo, check_models, base)
    assert f.message == "version 1.0.0 is already published (tag tiny@v1.0.0)"
    assert (
        f.hint
        == "published versions are never reused; pick a new version higher than 1.0.0 (e.g. 1.0.1)"
    )
    assert f.line == line_of(card, "version:")


def test_deleting_a_published_model_says_unpublish_first(registry_repo, check_models, published):
    registry_repo.git("rm", "-rq", "models/tiny")
    registry_repo.commit(message="delete tiny")
    [f] = lifecycle_findings(registry_repo, check_models, published)
    assert (
        f.message
        == "model 'tiny' is deleted but it was published (status 'published'; tags v1.0.0)"
    )
    assert f.hint.startswith("unpublish it first: set 'status: offline'")
    assert (f.path, f.line) == (CARD, line_of(example_card("tiny", version="1.0.0"), "status:"))


def test_deleting_a_tagged_model_marked_unpublished_is_refused(
    registry_repo, check_models, published
):
    registry_repo.commit(model_files(example_card("tiny", version="1.0.0", status="unpublished")))
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.git("rm", "-rq", "models/tiny")
    registry_repo.commit(message="delete tiny")
    [f] = lifecycle_findings(registry_repo, check_models, base)
    assert "is deleted but it was published" in f.message


def test_deleting_an_offline_or_never_published_model_passes(
    registry_repo, check_models, published
):
    registry_repo.commit(model_files(example_card("tiny", version="1.0.0", status="offline")))
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.git("rm", "-rq", "models/tiny")
    registry_repo.commit(message="delete tiny")
    assert lifecycle_findings(registry_repo, check_models, base) == []
    base = registry_repo.commit(
        {"models/draft/model.yaml": example_card("draft"), "models/draft/config.yaml": "a: 1\n"}
    )
    registry_repo.git("rm", "-rq", "models/draft")
    registry_repo.commit(message="delete draft")
    report = check_models(registry_repo, base=base, head="HEAD", only=["lifecycle"])
    assert [m.name for m in report.models] == ["draft"] and report.passed


def test_the_pytorch_source_is_part_of_a_version(registry_repo, check_models):
    def files(card: str, md5: str) -> dict[str, str]:
        pt2 = f"outs:\n- md5: {md5}\n  size: 99\n  hash: md5\n  path: model.pt2\n"
        return {**model_files(card), "models/tiny/model.pt2.dvc": pt2}

    card = example_card("tiny", version="1.0.0", status="published", extra="pytorch: model.pt2\n")
    base = registry_repo.commit(files(card, MD5_A), "publish tiny 1.0.0")
    registry_repo.git("tag", "-a", "tiny@v1.0.0", "-m", "tiny 1.0.0")
    registry_repo.commit(files(card, MD5_B))
    [f] = lifecycle_findings(registry_repo, check_models, base)
    assert (
        f.message
        == "the PyTorch source 'model.pt2' changed (md5 aaaaaaaa… → bbbbbbbb…) but version stays "
        "1.0.0"
    )
    assert f.line == line_of(card, "pytorch:")
    registry_repo.commit(model_files(example_card("tiny", version="1.0.0", status="published")))
    [f] = lifecycle_findings(registry_repo, check_models, base)
    assert f.message == "'pytorch' changed from 'model.pt2' to (none) but version stays 1.0.0"
    registry_repo.commit(
        files(
            example_card("tiny", version="1.1.0", status="updated", extra="pytorch: model.pt2\n"),
            MD5_B,
        )
    )
    assert lifecycle_findings(registry_repo, check_models, base) == []
