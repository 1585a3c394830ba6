"""The card-targets check: unknown targets, bad options and missing data files are reported on
their line."""

from __future__ import annotations

import json

from factories import example_card, mlp_onnx


def _findings(reg, name: str) -> list[dict]:
    proc = reg.registry("check", name, "--offline", "--no-content", "--format", "json")
    report = json.loads(proc.stdout)
    return [f for m in report["models"] for f in m["findings"] if f["check"] == "card-targets"]


def test_valid_targets_pass(registry_repo):
    weights = mlp_onnx()
    registry_repo.add_model(
        "good",
        weights,
        card=example_card(
            "good",
            size=len(weights),
            extra="targets:\n  - linux-x86_64\n  - name: android-arm64\n    quantize: dynamic\n",
        ),
    )
    assert _findings(registry_repo, "good") == []


def test_bad_targets_are_reported_with_lines_and_fixes(registry_repo):
    weights = mlp_onnx()
    extra = (
        "targets:\n"
        "  - linux-x86-64\n"
        "  - name: android-arm64\n"
        "    options: {repeat: 3}\n"
        "  - name: linux-aarch64\n"
        "    quantize: static\n"
        "  - name: windows-x64\n"
        "    inputs: samples.npz\n"
    )
    registry_repo.add_model(
        "bad", weights, card=example_card("bad", size=len(weights), extra=extra)
    )
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
    registry_repo.add_model(
        "nopt", weights, card=example_card("nopt", size=len(weights), extra=extra)
    )
    [f] = _findings(registry_repo, "nopt")
    assert f["message"] == (
        "targets[0] (android-arm64): converter 'executorch' converts the card's PyTorch "
        "source, and the card has no 'pytorch:' field"
    )
    assert "pytorch: model.pt2" in f["hint"]


def test_the_check_reads_declarations_only_and_imports_no_packaging_tools(registry_repo):
    import subprocess
    import sys

    weights = mlp_onnx()
    extra = (
        "targets:\n  - linux-x86_64\n  - name: android-arm64\n    quantize: dynamic\n"
        "    converter: ort-format\n  - name: ios-arm64\n    processing: [{softmax: {}}]\n"
    )
    registry_repo.add_model(
        "light", weights, card=example_card("light", size=len(weights), extra=extra)
    )
    code = (
        "import sys; from registry.checks import CheckOptions, check_revisions; "
        "from registry.core.repo import RegistryRepo; "
        f"report = check_revisions(RegistryRepo({str(registry_repo.root)!r}), "
        "names=['light'], "
        "options=CheckOptions(offline=True, content=False, only=['card-targets'])); "
        "assert report.passed, report; print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(proc.stdout.split())
    # the check did look at the targets and their converters' declarations
    assert {
        "registry.packaging.targets.android_arm64",
        "registry.packaging.converters.ort_format",
        "registry.packaging.plan",
    } <= loaded
    heavy = {
        f"registry.packaging.{m}"
        for m in (
            "build",
            "prepare",
            "archive",
            "run",
            "verify",
            "benchmark",
            "engines",
            "quantization",
        )
    }
    heavy |= {
        "numpy",
        "onnx",
        "onnxruntime",
        "onnxruntime.quantization",
        "torch",
        "executorch",
        "coremltools",
        "openvino",
    }
    assert not loaded & heavy, sorted(loaded & heavy)
