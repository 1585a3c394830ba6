"""The card-targets check: unknown targets, bad options and missing data files are reported on their line."""

from __future__ import annotations

import json

from factories import example_card, mlp_onnx


def _findings(reg, name: str) -> list[dict]:
    proc = reg.registry("check", name, "--offline", "--no-content", "--format", "json")
    report = json.loads(proc.stdout)
    return [f for m in report["models"] for f in m["findings"] if f["check"] == "card-targets"]


def test_valid_targets_pass(registry_repo):
    weights = mlp_onnx()
    registry_repo.add_model("good", weights, card=example_card(
        "good", size=len(weights), extra="targets:\n  - linux-x86_64\n  - name: android-arm64\n    quantize: dynamic\n"))
    assert _findings(registry_repo, "good") == []


def test_bad_targets_are_reported_with_lines_and_fixes(registry_repo):
    weights = mlp_onnx()
    extra = ("targets:\n"
             "  - linux-x86-64\n"
             "  - name: android-arm64\n"
             "    options: {repeat: 3}\n"
             "  - name: linux-aarch64\n"
             "    quantize: static\n"
             "  - name: windows-x64\n"
             "    inputs: samples.npz\n")
    registry_repo.add_model("bad", weights, card=example_card("bad", size=len(weights), extra=extra))
    found = _findings(registry_repo, "bad")
    text = "\n".join(f"{f['line']}: {f['message']} | {f['hint']}" for f in found)
    assert "no target named 'linux-x86-64'" in text and "did you mean 'linux-x86_64'" in text
    assert "unknown option 'repeat'" in text and "did you mean 'repeats'" in text
    assert "static int8 needs calibration data" in text
    assert "inputs file samples.npz is not in the model folder" in text
    card_lines = (registry_repo.root / "models/bad/model.yaml").read_text().splitlines()
    unknown = next(f for f in found if "linux-x86-64" in f["message"])
    assert "linux-x86-64" in card_lines[unknown["line"] - 1]


def test_a_converter_of_the_pytorch_source_needs_one(registry_repo):
    weights = mlp_onnx()
    extra = "targets:\n  - name: android-arm64\n    converter: executorch\n"
    registry_repo.add_model("nopt", weights, card=example_card("nopt", size=len(weights), extra=extra))
    [f] = _findings(registry_repo, "nopt")
    assert f["message"] == ("targets[0] (android-arm64): converter 'executorch' converts the card's PyTorch "
                            "source, and the card has no 'pytorch:' field")
    assert "pytorch: model.pt2" in f["hint"]
