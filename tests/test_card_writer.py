"""The card writer (`registry.cards.writer`): new cards read back as the card they were written
from, in the documented order with their comments; edits keep the author's comments and layout."""

from __future__ import annotations

import pytest
import yaml

from registry.cards.schema import ModelCard, load_card
from registry.cards.writer import (
    edit_card_text,
    render_card,
    schema_reference,
    update_card_text,
    yaml_scalar,
)
from registry.core.errors import CardError

MINIMAL = {
    "name": "tiny",
    "task": "classification",
    "project": "demo",
    "source": {"repo": "https://github.com/example/train.git"},
    "config": "config.yaml",
    "weights": "model.onnx",
}

FULL = {
    **MINIMAL,
    "version": "1.2.0",
    "status": "published",
    "size": 9097,
    "description": "Line one: with a colon.\nLine two # not a comment",
    "source": {"repo": "self", "commit": "b7552935", "path": "scripts/train.py"},
    "pytorch": "model.pt2",
    "metrics": [
        {"name": "accuracy", "value": 0.9778, "dataset": "test"},
        {
            "name": "latency_ms",
            "value": 1e-05,
            "dataset": "test",
            "unit": "ms",
            "higher_is_better": False,
        },
    ],
    "owners": ["@example-org/vision"],
    "license": "Apache-2.0",
    "tags": ["yes", "1.0", "null"],
    "targets": [
        "linux-x86_64",
        {
            "name": "android-arm64",
            "quantize": "dynamic",
            "processing": [{"normalize": {"mean": [0.5], "std": [0.25]}}],
            "options": {"repeats": 2},
        },
    ],
    "derived_from": "big@1.0.0",
    "compress": {"max_size": "20KB", "methods": ["fp16"], "options": {"fp16": {"keep_io": True}}},
    "evaluation": {"data": "eval.npz", "metric": "accuracy", "inputs": {"input:0": "x"}},
}


@pytest.mark.parametrize("fields", [MINIMAL, FULL], ids=["minimal", "full"])
def test_a_new_card_loads_back_equal(fields):
    card = ModelCard.model_validate(fields)
    text = render_card(card, schema="../../docs/model-card.schema.json")
    assert load_card(text).card == card
    assert render_card(fields, schema="../../docs/model-card.schema.json") == text  # a dict alike


def test_a_new_card_has_the_documented_order_and_its_comments():
    text = render_card(
        ModelCard.model_validate(FULL),
        schema="../../docs/model-card.schema.json",
        note="written by a test",
    )
    lines = text.splitlines()
    assert lines[:4] == [
        "# yaml-language-server: $schema=../../docs/model-card.schema.json",
        "# written by a test",
        "# The model card: edit it in a pull request; `registry check tiny` validates it.",
        "# Fields are described in docs/model-card.md.",
    ]
    keys = [line.split(":")[0] for line in lines if line[:1].isalpha()]
    assert keys == [k for k in ModelCard.model_fields if k in keys] and len(keys) == len(FULL)
    assert "size: 9097  # bytes, as DVC recorded them" in lines
    minimal = render_card(MINIMAL)
    assert "status: unpublished" in minimal
    assert "metrics: []  # add {name, value, dataset}" in minimal
    assert "version" not in minimal and "owners" not in minimal


def test_an_invalid_card_is_refused_with_the_field():
    with pytest.raises(CardError, match="'version'"):
        render_card({**MINIMAL, "version": "v1"})


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "a: b",
        "a\nb",
        " x",
        "@org/team",
        "yes",
        "1.0",
        "null",
        "#x",
        "é",
        "\x07",
        0.1 + 0.2,
        1e-05,
        12,
        True,
        None,
    ],
)
def test_a_scalar_is_one_line_that_reads_back_as_itself(value):
    text = yaml_scalar(value)
    assert "\n" not in text and yaml.safe_load(f"key: {text}  # comment") == {"key": value}


def test_a_comment_in_a_card_survives_an_edit():
    text = render_card(MINIMAL) + "# a closing note\n"
    text = text.replace("project: demo", "project: demo  # who pays for it")
    out = edit_card_text(
        text, {("project",): "vision", ("source", "commit"): "abc1234", ("tags",): ["a", "b"]}
    )
    assert "project: vision  # who pays for it\n" in out and "\n# a closing note\n" in out
    assert "# The model card: edit it in a pull request" in out
    assert "tags:\n  - a\n  - b\n" in out  # a new list is indented as the writer writes lists
    card = load_card(out).card
    assert card.project == "vision" and card.source.commit == "abc1234" and card.tags == ["a", "b"]


def test_round_trip_editor_keeps_comments_and_the_authors_indentation():
    text = (
        "name: m1  # the name\nstatus: unpublished\nmetrics:\n    - name: acc   # top-1\n"
        "      value: 0.9\n      dataset: d\n"
    )
    out = edit_card_text(
        text, {("version",): "1.0.0", ("metrics", 0, "value"): 0.91, ("tags",): ["a"]}
    )
    assert out.startswith("name: m1  # the name\nversion: 1.0.0\n")
    assert "    - name: acc   # top-1\n      value: 0.91\n" in out
    assert "tags:\n    - a" in out


def test_updating_a_card_changes_only_what_differs_and_keeps_the_comments():
    before = ModelCard.model_validate({**MINIMAL, "license": "MIT", "tags": ["x"]})
    text = render_card(before).replace("license: MIT", "license: MIT  # asked legal")
    after = ModelCard.model_validate(
        {
            **MINIMAL,
            "license": "MIT",
            "version": "1.1.0",
            "status": "updated",
            "derived_from": "tiny@1.0.0",
        }
    )
    out = update_card_text(text, after)
    assert load_card(out).card == after
    assert "license: MIT  # asked legal" in out and "# Fields are described in" in out
    assert "tags" not in out
    assert update_card_text(out, after) == out


def test_the_schema_reference_is_relative_to_the_card(tmp_path):
    reference = schema_reference(tmp_path / "models" / "m", tmp_path)
    assert reference == "../../docs/model-card.schema.json"
