"""Cards read without the YAML parser: the parser's data, or None so that the parser reads them."""

from __future__ import annotations

import random

import pytest
import yaml

from factories import REPO_ROOT, example_card, typed
from registry.cards.plaincard import read_metrics, read_plain

BENCH_CARD = """\
name: m-00042
version: 1.3.0
status: updated
task: classification
project: project-42
description: Model 42 of project-42, edge fast small robust vision.
source:
  repo: https://github.com/example-org/training-42.git
config: config.yaml
weights: model.onnx
size: 100297
metrics:
  - name: accuracy
    value: 0.8200
    dataset: eval-42
  - name: latency_ms
    value: 10.70
    dataset: eval-42
owners:
  - "@example-org/team-11"
license: MIT
tags: [edge, vision]
"""


def same_as_yaml(text: str):
    """read_plain's answer, checked against PyYAML's: equal data with equal types, or None."""
    got = read_plain(text.encode())
    try:
        want = yaml.safe_load(text)
    except yaml.YAMLError:
        assert got is None, text
        return None
    if got is not None:
        assert typed(got) == typed(want), text
    return got


def same_metrics_as_yaml(text: str):
    """read_metrics's answer, checked against the metrics PyYAML reads (values as the catalog
    takes them, floats), when PyYAML can read the card at all."""
    got = read_metrics(text)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return got  # the catalog reads published cards, which the bot has checked
    want = doc.get("metrics", []) if isinstance(doc, dict) else []
    if got is not None:
        as_read = [{k: float(v) if k == "value" else v for k, v in m.items()} for m in want]
        assert typed(got) == typed(as_read), text
    return got


def test_the_cards_people_write_are_read_as_the_parser_reads_them():
    cards = [p.read_text() for p in sorted((REPO_ROOT / "models").glob("*/model.yaml"))]
    extra = "derived_from: digits@1.0.0\ntags: [a, 'b c', \"d\"]\n"
    cards += [BENCH_CARD, example_card("digits", size=1234, version="1.0.0", extra=extra)]
    assert len(cards) >= 4
    for text in cards:
        assert same_as_yaml(text) is not None, text
    assert read_plain(BENCH_CARD.encode("utf-16")) is None  # not UTF-8: the parser says why
    for text in cards:
        assert same_metrics_as_yaml(text), text
    assert same_metrics_as_yaml("name: x\n") == []


@pytest.mark.parametrize(
    "value",
    [
        "1.0",
        "1.2.0",
        "10.70",
        "0.8200",
        "-3",
        "+4",
        "0",
        "007",
        "010",
        "0x1F",
        "1_000",
        "1e5",
        "1.5e+3",
        ".5",
        "1.",
        "yes",
        "No",
        "TRUE",
        "off",
        "y",
        "null",
        "~",
        "Null value",
        "2026-01-01",
        "2026-01-01 10:00:00",
        "=",
        "<<",
        "b7552935eaed1a08782efea7ceaf79b86328992c",
        "1234567890123456789012345678901234567890",
        "12:30",
        "a: b",
        "a:b",
        "http://x.org/a#b",
        "C# model",
        "x # comment",
        "'quoted # not a comment'",
        '"a"',
        "'a''b'",
        '"a\\tb"',
        '"unclosed',
        "[a, b]",
        "[a, [b]]",
        "[]",
        "[a, 'b, c']",
        "{a: 1}",
        "|",
        ">-",
        "&anchor x",
        "*alias",
        "!tag x",
        "@handle",
        "`tick",
        "%x",
        "- item",
        "-5",
        "-x",
        "? q",
        "fine; it's plain (0-9)",
        "ünïcödé ✓",
    ],
)
def test_a_scalar_is_typed_as_the_parser_types_it(value):
    same_as_yaml(f"name: x\nvalue: {value}\n")
    for key in ("name", "dataset", "unit", "value", "higher_is_better"):
        same_metrics_as_yaml(
            f"metrics:\n  - name: a\n    dataset: d\n    value: 1\n    {key}: {value}\n"
        )
    same_as_yaml(f"name: x\nitems:\n  - {value}\n")
    same_as_yaml(f"name: x\nsource:\n  key: {value}\n")


@pytest.mark.parametrize(
    "text",
    [
        "description: |\n  a block\n  scalar\n",
        "description: a plain scalar\n  continued on the next line\n",
        "source:\n  repo: x\n    deeper: y\n",
        "source:\n  repo:\n    deeper: y\n",
        "tags:\n- at the key's indent\n",
        "metrics:\n  - name: a\n    value: 1\n   dataset: misaligned\n",
        "metrics:\n  -   name: a\n      value: 1\n",
        "metrics:\n  - name: a\n  - b\n",
        "---\nname: x\n",
        "name: x\n...\n",
        "name: x\n\tsize: 1\n",
        "name: x\r\nsize: 1\r\n",
        "\ufeffname: x\n",
        "name: x\nname: y\n",
        "on: x\n",
        "null: x\n",
        "1: x\n",
        "'quoted key': x\n",
        "key : x\n",
        "# only a comment\n",
        "",
        "just a scalar\n",
        "- a list\n",
        "name: x  # trailing comment\nsize: 3 # bytes\n",
        "name: 'x' # quoted and a comment\n",
        "name: x\nempty:\nsource:\n  repo:\n",
        "name: x\x07\n",
        "metrics:\n  - name: a\n    value: 1\n# a comment\n    dataset: d\n",
        "metrics:\n  - name: a\n    value: -0\n    dataset: d\n    unit: '%'\n",
        "metrics:\n  - {name: a, value: 1, dataset: d}\n",
        "metrics: []\n",
    ],
)
def test_any_other_shape_is_left_to_the_parser_or_read_the_same(text):
    same_as_yaml(text)
    same_metrics_as_yaml(text)


def test_edits_of_a_card_never_read_differently_from_the_parser():
    rng = random.Random(14)
    edits = [
        lambda s: s.replace(": ", ":  ", 1),
        lambda s: "  " + s,
        lambda s: s + "  # note",
        lambda s: s.replace(": ", ": '", 1) + "'",
        lambda s: s.replace(": ", ': "', 1) + '"',
        lambda s: s.replace("- ", "-   ", 1),
        lambda s: s.replace("  ", " ", 1),
        lambda s: s + ":",
        lambda s: s.replace(": ", ": [", 1) + "]",
        lambda s: s + " #",
        lambda s: s.replace(":", ""),
        lambda s: s + "\n",
        lambda s: "#" + s,
        lambda s: s.replace("e", ": "),
        lambda s: s + "\t",
    ]
    lines = BENCH_CARD.splitlines()
    plain = metrics = 0
    for _ in range(600):
        edited = list(lines)
        for _ in range(rng.randint(1, 3)):
            n = rng.randrange(len(edited))
            edited[n] = rng.choice(edits)(edited[n])
        plain += same_as_yaml("\n".join(edited) + "\n") is not None
        metrics += same_metrics_as_yaml("\n".join(edited) + "\n") is not None
    assert plain > 100 and metrics > 100  # the plain shape survives many edits


def test_the_copied_typing_rules_are_pyyamls():
    """The plain reader types scalars and refuses characters by a copy of PyYAML's tables."""
    from registry.cards import plaincard

    def table(resolvers):
        return {k: [(tag, p.pattern, p.flags) for tag, p in v] for k, v in resolvers.items()}

    assert table(plaincard._IMPLICIT) == table(yaml.resolver.Resolver.yaml_implicit_resolvers)
    assert yaml.reader.Reader.NON_PRINTABLE.pattern == plaincard._NON_PRINTABLE


@pytest.mark.parametrize(
    "text",
    [
        "name: x\ntask: a\nname: y\n",
        "source:\n  repo: a\n  repo: b\n",
        "metrics:\n  - name: a\n    name: b\n    value: 1\n",
    ],
)
def test_a_key_given_twice_is_left_to_the_card_loader_which_refuses_it(text):
    from registry.cards.schema import load_card
    from registry.core.errors import CardError

    assert read_plain(text.encode()) is None
    with pytest.raises(CardError, match="appears twice"):
        load_card(text.encode())


def test_the_catalog_shows_a_card_with_a_key_given_twice_as_the_bot_judges_it():
    """A YAML parser reads a repeated key as its last value; the bot refuses such a card, and so
    does the catalog's page of the model (the problem, its line and no data from the card)."""
    import dataclasses

    from registry.catalog.collect import ModelSource, catalog_model

    card = BENCH_CARD.replace("license: MIT\n", "license: MIT\nlicense: Apache-2.0\n")
    src = ModelSource("m-00042", card.encode(), [], [], [], {}, [], None, "https://x.invalid", [])
    model, _ = catalog_model(src)
    assert model.state == "invalid" and model.license is None
    line = card.splitlines().index("license: Apache-2.0") + 1
    assert model.card_problem.startswith(f"models/m-00042/model.yaml:{line}: ")
    assert "key 'license' appears twice" in model.card_problem
    # the same card without the repeat is read as it is
    fine, _ = catalog_model(dataclasses.replace(src, head=BENCH_CARD.encode()))
    assert fine.state == "updated" and fine.license == "MIT" and fine.card_problem is None
