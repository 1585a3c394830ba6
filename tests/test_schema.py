"""The card's JSON Schema: `registry schema` output, the committed copy editors use, and what it
accepts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from registry.cards.schema import card_json_schema
from registry.cli import main

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "docs" / "model-card.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_current_schema(capsys):
    """docs/model-card.schema.json must be regenerated when the card changes."""
    cwd = os.getcwd()
    try:
        main(["schema"])
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    assert printed == json.dumps(card_json_schema(), indent=2) + "\n"
    assert COMMITTED.read_text() == printed, (
        "docs/model-card.schema.json is stale: run `registry schema -o docs/model-card.schema.json`"
    )


def test_schema_takes_format_json_like_every_command_scripts_read(capsys):
    cwd = os.getcwd()
    try:
        main(["schema", "--format", "json"])
    finally:
        os.chdir(cwd)
    assert json.loads(capsys.readouterr().out) == card_json_schema()


def test_every_card_in_models_validates_against_the_committed_schema(validator):
    cards = sorted((REPO / "models").glob("*/model.yaml"))
    assert cards
    for path in cards:
        text = path.read_text()
        assert text.startswith(
            "# yaml-language-server: $schema=../../docs/model-card.schema.json\n"
        ), path
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
        assert errors == [], f"{path}: {errors}"


def test_schema_flags_what_an_editor_should_underline(validator):
    card = yaml.safe_load((REPO / "models/digits-cnn/model.yaml").read_text())
    card["licence"] = card.pop("license")
    assert any("'licence' was unexpected" in e.message for e in validator.iter_errors(card))
    del card["licence"]
    card["task"] = "clasification"
    assert any("is not one of" in e.message for e in validator.iter_errors(card))
    del card["task"]
    assert any("'task' is a required property" in e.message for e in validator.iter_errors(card))


def test_docs_describe_every_field_and_task():
    """docs/model-card.md stays true: each card field, nested field and task is documented."""
    from registry.cards.schema import Metric, ModelCard, Source, Task

    doc = (REPO / "docs" / "model-card.md").read_text()
    fields = [f"`{n}`" for n in ModelCard.model_fields if n != "source"]
    fields += [f"`source.{n}`" for n in Source.model_fields] + [
        f"`{n}`" for n in Metric.model_fields
    ]
    fields += [f"`{t.value}`" for t in Task]
    assert [f for f in fields if f not in doc] == []
