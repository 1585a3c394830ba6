"""Release notes: metric deltas with direction and regressions, card changes, the model diff, first
release."""

from __future__ import annotations

import json

from factories import example_card, mlp_onnx
from registry.cards.schema import ModelCard, parse_card_yaml
from registry.checks import CheckOptions, run_checks
from registry.core.repo import RegistryRepo
from registry.core.semver import semver_key
from registry.publishing.changelog import add_entry
from registry.publishing.notes import compare_metrics, metric_direction, previous_version

NAME = "tiny-mlp"


def card(**kw) -> ModelCard:
    data = parse_card_yaml(example_card(NAME, version="1.0.0", status="published", size=1)).data
    data.update(kw)
    return ModelCard.model_validate(data)


def test_metric_direction_from_card_or_name():
    assert metric_direction("accuracy", None) == (True, True)
    assert metric_direction("val_loss", None) == (False, True)
    assert metric_direction("latency_ms", None) == (False, True)
    assert metric_direction("latency_ms", True) == (True, False)


def test_metric_deltas_mark_regressions_by_direction():
    old = card(
        metrics=[
            {"name": "accuracy", "value": 0.90, "dataset": "a"},
            {"name": "latency_ms", "value": 4.0, "dataset": "a"},
            {"name": "f1", "value": 0.5, "dataset": "b"},
        ]
    )
    new = card(
        version="1.1.0",
        metrics=[
            {"name": "accuracy", "value": 0.88, "dataset": "a"},
            {"name": "latency_ms", "value": 3.0, "dataset": "a"},
            {"name": "accuracy", "value": 0.7, "dataset": "c"},
        ],
    )
    d = {(m.name, m.dataset): m for m in compare_metrics(old, new)}
    acc = d[("accuracy", "a")]
    assert (
        acc.verdict == "regressed"
        and round(acc.delta, 6) == -0.02
        and round(acc.percent, 2) == -2.22
    )
    assert d[("latency_ms", "a")].verdict == "improved"
    assert d[("accuracy", "c")].verdict == "added" and d[("f1", "b")].verdict == "removed"


def test_versions_order_semver():
    assert sorted(["1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.9"], key=semver_key) == [
        "0.9.9",
        "1.2.0-rc.1",
        "1.2.0",
        "1.10.0",
    ]
    assert previous_version(["1.0.0", "1.2.0", "2.0.0"], "1.5.0") == "1.2.0"
    assert previous_version(["1.0.0"], "1.0.0") is None


def test_changelog_is_newest_first_and_idempotent(tmp_path):
    path = tmp_path / "CHANGELOG.md"
    assert add_entry(path, NAME, "1.0.0", "## tiny-mlp v1.0.0\n\nfirst\n")
    assert add_entry(path, NAME, "1.2.0", "## tiny-mlp v1.2.0\n\nthird\n")
    assert add_entry(path, NAME, "1.1.0", "## tiny-mlp v1.1.0\n\nsecond\n")
    before = path.read_text()
    assert not add_entry(path, NAME, "1.1.0", "## tiny-mlp v1.1.0\n\nsecond again\n")
    assert path.read_text() == before
    assert before.index("v1.2.0") < before.index("v1.1.0") < before.index("v1.0.0")
    assert before.startswith(f"# Changelog of {NAME}")


def test_notes_command_first_release_and_unknown_version(registry_repo, origin):
    w = mlp_onnx(0)
    registry_repo.add_model(NAME, w)
    base = registry_repo.git("rev-parse", "HEAD")
    head = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME,
                version="1.0.0",
                status="published",
                size=len(w),
                extra="description: digits classifier\n",
            )
        }
    )
    assert registry_repo.registry("publish", "--base", base, "--head", head).returncode == 0
    md = registry_repo.registry("notes", NAME)
    assert md.returncode == 0, md.stderr
    assert "**First release** of `tiny-mlp`" in md.stdout and "digits classifier" in md.stdout
    assert "- Inputs: `input: float[batch, 8]`" in md.stdout
    assert "- Op types: Gemm × 2, Relu × 1, Softmax × 1" in md.stdout
    data = json.loads(registry_repo.registry("notes", NAME, "--format", "json").stdout)
    assert data["first_release"] is True and data["facts"]["parameters"] == 195
    bad = registry_repo.registry("notes", NAME, "--to", "9.9.9")
    assert bad.returncode == 2 and "has no published version 9.9.9" in bad.stderr
    assert "published versions: 1.0.0" in bad.stderr


def test_check_shows_draft_notes_before_merge(registry_repo, origin):
    w1 = mlp_onnx(0)
    registry_repo.add_model(NAME, w1)
    base = registry_repo.git("rev-parse", "HEAD")
    head = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="published", size=len(w1)
            )
        }
    )
    assert registry_repo.registry("publish", "--base", base, "--head", head).returncode == 0
    # a pull request for v1.1.0: new weights (more hidden units), a changed license, a better
    # accuracy
    w2 = mlp_onnx(2, hidden=24)
    registry_repo.track(f"models/{NAME}/model.onnx", w2)
    new_card = (
        example_card(NAME, version="1.1.0", status="updated", size=len(w2))
        .replace("value: 0.93", "value: 0.95")
        .replace("Apache-2.0", "MIT")
    )
    pr = registry_repo.commit({f"models/{NAME}/model.yaml": new_card}, "v1.1.0")
    repo = RegistryRepo(registry_repo.root)
    report = run_checks(
        [NAME],
        repo.snapshot(pr),
        repo.snapshot(head),
        repo,
        CheckOptions(offline=True, only=["release-notes"]),
    )
    draft = report.models[0].artifacts["release_notes_draft"]
    assert report.passed
    assert draft.startswith("## tiny-mlp v1.1.0") and "Changes since v1.0.0" in draft
    assert "| accuracy ↑ | digits-test | 0.93 | 0.95 | improved +0.02 (+2.2%) |" in draft
    assert "- `license`: Apache-2.0 → MIT" in draft
    assert "- Parameters: 195 → 291 (+96)" in draft
    # an edit that publishes nothing drafts nothing
    report = run_checks(
        [NAME],
        repo.snapshot(head),
        repo.snapshot(head),
        repo,
        CheckOptions(offline=True, only=["release-notes"]),
    )
    assert "release_notes_draft" not in report.models[0].artifacts


def test_notes_show_config_changes_exact_values_and_plain_english(registry_repo, origin):
    """lr 0.01 → 0.02 appears; 0.9999999 is not rounded to 1; 'an embedding model'."""
    w1 = mlp_onnx(0)
    registry_repo.add_model(NAME, w1)
    registry_repo.commit(
        {f"models/{NAME}/config.yaml": "optimizer:\n  name: adam\n  lr: 0.01\nepochs: 3\n"}
    )
    base = registry_repo.git("rev-parse", "HEAD")
    first = example_card(NAME, version="1.0.0", status="published", size=len(w1)).replace(
        "task: classification", "task: embedding"
    )
    head = registry_repo.commit({f"models/{NAME}/model.yaml": first})
    assert registry_repo.registry("publish", "--base", base, "--head", head).returncode == 0
    md = registry_repo.registry("notes", NAME)
    assert "**First release** of `tiny-mlp`: an embedding model of project demo." in md.stdout
    second = first.replace("version: 1.0.0", "version: 1.1.0").replace(
        "status: published", "status: updated"
    )
    second = second.replace("value: 0.93", "value: 0.9999999")
    pr = registry_repo.commit(
        {
            f"models/{NAME}/model.yaml": second,
            f"models/{NAME}/config.yaml": "optimizer:\n  name: adam\n  lr: 0.02\nepochs: 3\n"
            "warmup: 100\n",
        },
        "v1.1.0",
    )
    repo = RegistryRepo(registry_repo.root)
    report = run_checks(
        [NAME],
        repo.snapshot(pr),
        repo.snapshot(head),
        repo,
        CheckOptions(offline=True, only=["release-notes"]),
    )
    draft = report.models[0].artifacts["release_notes_draft"]
    assert (
        "### Config changes\n\n- `optimizer.lr`: 0.01 → 0.02\n- `warmup`: (none) → 100\n" in draft
    )
    assert "| accuracy ↑ | digits-test | 0.93 | 0.9999999 | improved +0.07 (+7.5%) |" in draft


def test_exporter_made_dimension_names_show_as_unknown():
    from types import SimpleNamespace as T

    from registry.publishing.notes import _tensor_text

    assert (
        _tensor_text(T(dtype="float", shape=["batch", "Divembedding_dim_1", "s77", 384]))
        == "float[batch, ?, ?, 384]"
    )
    assert (
        _tensor_text(T(dtype="int64", shape=["batch", "sequence", None]))
        == "int64[batch, sequence, ?]"
    )


def test_card_changes_list_only_fields_someone_wrote():
    from registry.publishing.notes import compare_fields

    old = card()
    new = card(
        evaluation={"data": "eval.npz", "metric": "cosine-to-reference"},
        compress={"max_size": "0.26x"},
    )
    changes = {c.field: (c.old, c.new) for c in compare_fields(old, new)}
    assert changes == {
        "evaluation.data": (None, "eval.npz"),
        "evaluation.metric": (None, "cosine-to-reference"),
        "compress.max_size": (None, "0.26x"),
    }  # no evaluation.k: 5, evaluation.labels or compress.search: first nobody wrote
    written = card(evaluation={"data": "eval.npz", "metric": "top-k", "k": 3})
    assert {c.field: (c.old, c.new) for c in compare_fields(written, new)} == {
        "evaluation.metric": ("top-k", "cosine-to-reference"),
        "evaluation.k": ("3", "5"),  # written in one card: its change is real
        "compress.max_size": (None, "0.26x"),
    }
