"""compress-spec: unknown method names and invalid method settings, each on its YAML line."""

from __future__ import annotations

from factories import example_card
from registry.cards.schema import load_card

CARD = "models/tiny/model.yaml"


def card_with_compress(block: str) -> str:
    return example_card("tiny") + "compress:\n" + block


def test_unknown_method_and_bad_settings_are_findings_on_their_lines(registry_repo, check_models):
    text = card_with_compress(
        "  max_metric_drop: 0.01\n  methods: [fp16, dynamic-int9]\n"
        "  options:\n    prune: {amount: 0.5}\n"
    )
    registry_repo.commit({CARD: text, "models/tiny/config.yaml": "epochs: 3\n"})
    report = check_models(registry_repo, "tiny", only=["compress-spec"])
    findings = sorted((f for m in report.models for f in m.findings), key=lambda f: f.line)
    lines = text.splitlines()
    assert [f.message for f in findings] == [
        "unknown compression method 'dynamic-int9'; did you mean 'dynamic-int8'?",
        "settings of method 'prune': amount: Extra inputs are not permitted",
    ]
    assert "dynamic-int9" in lines[findings[0].line - 1]
    assert "prune" in lines[findings[1].line - 1]
    assert all(f.path == CARD for f in findings)
    assert "registry compress --list-methods" in findings[1].hint


def test_known_methods_pass_and_the_card_schema_knows_no_method_names(registry_repo, check_models):
    text = card_with_compress("  max_metric_drop: 0.01\n  methods: [fp16, dynamic-int8]\n")
    registry_repo.commit({CARD: text, "models/tiny/config.yaml": "epochs: 3\n"})
    report = check_models(registry_repo, "tiny", only=["compress-spec"])
    assert [f for m in report.models for f in m.findings] == []
    # The schema (cards layer) checks the shape only: an unknown method is the check's finding.
    assert load_card(card_with_compress("  methods: [nope]\n").encode()).findings == []
