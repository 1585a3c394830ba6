"""`registry show` without the card schema: the same text as the full path on every valid card the
index vouches for, and the full path's answer wherever the index does not vouch for the card."""

import pytest

from factories import mlp_onnx, publish_version
from registry.versions.details import render_details, show_model
from registry.versions.index import sync
from registry.versions.plainshow import show_text
from registry.versions.tags import LATEST, parse_version_spec

SOURCE = "source:\n  repo: https://github.com/example/train.git\n"
FILES = "config: config.yaml\nweights: model.onnx\n"
CARDS = {
    # quoted strings, a colon inside quotes, comments
    "quoted": (
        "name: quoted\nstatus: unpublished\ntask: \"detection\"\nproject: 'vision'\n"
        + SOURCE
        + FILES
        + '# who may use it\nlicense: "MIT"\ndescription: "Finds boxes: fast"\n'
        + "owners: [] # none yet\n"
    ),
    # flow lists, a metric with a unit and an integer value, a size with a unit
    "flow": (
        "name: flow\ntask: classification\nproject: demo\n"
        + SOURCE
        + FILES
        + "size: 1.5 KB\nowners: ['@acme/ml', \"@alice\"]\ntags: [small, cpu]\n"
        "metrics:\n  - name: latency_ms\n    value: 12\n    unit: ms\n    dataset: bench\n"
        "  - name: accuracy\n    value: 93.5\n    unit: '%'\n    dataset: digits-test\n"
        "    higher_is_better: true\n"
    ),
    # the optional fields missing: no license, description, size, metrics or owners
    "bare": "name: bare\ntask: ocr\nproject: docs\n" + SOURCE + FILES,
    # training code in the registry itself, targets in both forms
    "inside": (
        "name: inside\ntask: embedding\nproject: search\nsource:\n  repo: self\n"
        "  commit: 0123456789abcdef0123456789abcdef01234567\n  path: scripts/train.py\n"
        + FILES
        + "targets:\n  - linux-x86_64\n  - name: android-arm64\n    quantize: dynamic\n"
        "description: Embeds text.\n"
    ),
}


@pytest.fixture
def indexed(registry_repo):
    """A registry with the models of CARDS, each published twice, and the index written."""
    reg = registry_repo
    for name, card in CARDS.items():
        reg.add_model(name, mlp_onnx(len(name)), card=card)
        publish_version(reg, name, "1.0.0", notes=f"first {name}")
        publish_version(reg, name, "1.1.0", notes=f"second {name}\n\nwith a body")
    sync(reg.root, "main")
    return reg


def full(reg, spec: str) -> str:
    name, version = parse_version_spec(spec)
    return render_details(show_model(reg.root, name, None if version == LATEST else version))


def test_show_without_the_schema_prints_what_the_full_path_prints(indexed):
    for name in CARDS:
        for spec in (name, f"{name}@latest", f"{name}@1.1.0", f"{name}@v1.1.0"):
            text = show_text(indexed.root, spec)
            assert text is not None, f"{spec}: the index vouches for this card"
            assert text == full(indexed, spec)
        proc = indexed.registry("show", name)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == full(indexed, name) + "\n"
    # the card at 1.0.0 has another version and status than the one the index holds
    assert show_text(indexed.root, "flow@1.0.0") is None
    proc = indexed.registry("show", "flow@1.0.0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == full(indexed, "flow@1.0.0") + "\n"
    assert " *1.0.0" in proc.stdout


def test_an_edited_or_invalid_card_is_read_by_the_full_path(indexed):
    card = indexed.root / "models" / "bare" / "model.yaml"
    card.write_text(card.read_text().replace("task: ocr", "task: [oops"))
    assert show_text(indexed.root, "bare") is None
    proc = indexed.registry("show", "bare")
    assert proc.returncode == 0, proc.stderr
    # the full path: invalid at HEAD, the card at the version's tag shown
    assert proc.stdout.startswith("bare  [invalid]\n  task: ocr")
    assert proc.stdout == full(indexed, "bare") + "\n"
    card.write_text(card.read_text().replace("task: [oops", "task: dancing"))
    indexed.commit(message="a bad card on the default branch")
    sync(indexed.root, "main")
    assert show_text(indexed.root, "bare") is None
    proc = indexed.registry("show", "bare")
    assert proc.stdout == full(indexed, "bare") + "\n"
    assert proc.stdout.startswith("bare  [invalid]\n")


def test_without_an_index_or_for_unknown_names_the_full_path_answers(indexed):
    assert show_text(indexed.root, "nobody") is None
    proc = indexed.registry("show", "nobody")
    assert proc.returncode == 2 and "no model named 'nobody'" in proc.stderr
    assert show_text(indexed.root, "flow@9.9.9") is None
    proc = indexed.registry("show", "flow@9.9.9")
    assert proc.returncode == 2 and "has no version 9.9.9" in proc.stderr
    indexed.git("update-ref", "-d", "refs/registry/index")
    assert show_text(indexed.root, "flow") is None
    proc = indexed.registry("show", "flow")
    assert proc.returncode == 0 and proc.stdout == full(indexed, "flow") + "\n"
