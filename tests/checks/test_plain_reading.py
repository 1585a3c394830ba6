"""`registry check` reads cards and config files in the plain shape without the YAML parser: its
findings (message, hint, file, line, severity, order) are those of the parser's careful path, for
valid folders and hostile ones alike."""

from __future__ import annotations

import json
import os
import random

import pytest
import yaml

from factories import example_card, typed
from registry.cards import config as config_module
from registry.cards import schema
from registry.cards.config import ConfigFileOptions, ConfigSyntaxError, parse_config
from registry.core.errors import CardError

POINTER = "outs:\n- md5: {md5}\n  size: 1234\n  hash: md5\n  path: model.onnx\n"


def card(name: str, extra: str = "", **kw) -> bytes:
    return example_card(name, extra=extra, **kw).encode()


def plain_cards() -> dict[str, bytes]:
    """Cards in the plain shape (read without the parser), some valid, some with field errors."""
    return {
        "plain-valid": card("plain-valid"),
        "plain-published": card("plain-published", version="1.2.0", status="published"),
        "plain-extras": card(
            "plain-extras",
            "# owners and labels\ntags: [edge, 'vision', \"x\"]\nowners:\n  - '@org/team'\n"
            "description: a model # with a comment\nsize: 1234\n",
        ),
        "plain-wrong-name": card("other-name"),
        "plain-typo": card("plain-typo").replace(b"task: ", b"tsk: "),
        "plain-bad-task": card("plain-bad-task").replace(b"classification", b"clasification"),
        "plain-missing": card("plain-missing").replace(b"project: demo\n", b""),
        "plain-bad-metric": card("plain-bad-metric").replace(b"0.93", b"yes"),
        "plain-pct-metric": card("plain-pct-metric").replace(b"0.93", b"93"),
        "plain-bad-version": card("plain-bad-version", version="v1.0", status="published"),
        "plain-null": card("plain-null").replace(b"license: Apache-2.0", b"license: ~"),
        "plain-empty-value": card("plain-empty-value").replace(b"project: demo", b"project:"),
        "plain-int-config": card("plain-int-config").replace(b"config: config.yaml", b"config: 12"),
        "plain-escape": card("plain-escape").replace(
            b"config: config.yaml", b"config: ../../outside.yaml"
        ),
        "plain-targets": card("plain-targets", "targets: [no-such-target]\n"),
        "plain-source-extra": card("plain-source-extra").replace(
            b"  repo: ", b"  branch: main\n  repo: "
        ),
        "plain-metric-extra": card("plain-metric-extra").replace(
            b"    dataset: digits-test", b"    dataset: digits-test\n    datset: x"
        ),
        "plain-missing-config": card("plain-missing-config").replace(
            b"config: config.yaml", b"config: nowhere.yaml"
        ),
        "plain-self-source": card("plain-self-source").replace(
            b"  repo: https://github.com/example/train.git", b"  repo: self"
        ),
    }


def hostile_cards() -> dict[str, bytes]:
    """Cards the parser reads (or refuses): each falls back from the plain reading."""
    bomb = b"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n"
    return {
        "dup-top": card("dup-top") + b"task: detection\n",
        "dup-source": card("dup-source").replace(b"  repo: ", b"  repo: x\n  repo: "),
        "dup-metric": card("dup-metric").replace(
            b"    value: 0.93", b"    value: 0.93\n    value: 0.5"
        ),
        "alias-bomb": card("alias-bomb") + bomb,
        "anchor": card("anchor").replace(b"project: demo", b"project: &p demo\ntags: [*p]"),
        "merge-key": card("merge-key") + b"<<: {x: 1}\n",
        "tabs": card("tabs").replace(b"  repo:", b"\trepo:"),
        "tab-in-value": card("tab-in-value").replace(b"project: demo", b"project: de\tmo"),
        "a-list": b"- name: a-list\n- task: classification\n",
        "a-scalar": b"just words\n",
        "empty": b"",
        "only-comment": b"# nothing here\n",
        "bad-utf8": card("bad-utf8").replace(b"project: demo", b"project: d\xffmo"),
        "oversized": card("oversized") + b"description: " + b"x" * (300 * 1024) + b"\n",
        "deep": card("deep") + b"description: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "deep-block": card("deep-block")
        + b"compress:\n"
        + b"".join(b"  " * (i + 1) + b"k%d:\n" % i for i in range(60)),
        "flow-map": card("flow-map").replace(b"source:\n  repo: ", b"source: {repo: ") + b"}",
        "quoted-escape": card("quoted-escape").replace(
            b"config: config.yaml", b'config: "con\\0fig.yaml"'
        ),
        "block-scalar": card("block-scalar", "description: |\n  two\n  lines\n"),
        "documents": card("documents") + b"---\nname: again\n",
        "crlf": card("crlf").replace(b"\n", b"\r\n"),
        "bom": b"\xef\xbb\xbf" + card("bom"),
        "bool-key": card("bool-key") + b"yes: 1\n",
        "int-key": card("int-key") + b"1: one\n",
        "date": card("date", "description: 2024-01-01\n"),
        "hex-size": card("hex-size", "size: 0x10\n"),
        "exp-metric": card("exp-metric").replace(b"0.93", b"9.3e-1"),
        "indented-root": b"  " + card("indented-root").replace(b"\n", b"\n  "),
        "colon-value": card("colon-value").replace(b"project: demo", b"project: a: b"),
        "nul-escape": card("nul-escape").replace(b"project: demo", b'project: "de\\x00mo"'),
        "nested-list-item": card("nested-list-item", "tags:\n  - - a\n"),
        "third-level": card("third-level", "compress:\n  options:\n    prune: {}\n"),
        "not-a-card": b"\x00\x01\x02",
    }


def configs() -> dict[str, bytes]:
    """Config files, one per model below: plain, parsed and refused ones."""
    return {
        "plain": b"epochs: 3\nlr: 0.01\n",
        "nested": b"optimizer:\n  name: adam\n  betas: [0.9, 0.999]\nlayers:\n  - size: 8\n",
        "empty": b"",
        "comment-only": b"# tuned later\n",
        "empty-map": b"{}\n",
        "dup": b"epochs: 3\nepochs: 4\n",
        "alias": b"a: &x [1, 2]\nb: *x\n",
        "deep": b"a: " + b"[" * 200 + b"]" * 200 + b"\n",
        "two-docs": b"a: 1\n---\nb: 2\n",
        "bad-utf8": b"a: \xff\n",
        "tabs": b"a:\n\tb: 1\n",
        "third-level": b"a:\n  b:\n    c: 1\n",
        "not-yaml": b"a: [1, 2\n",
        "scalar": b"just words\n",
        "date": b"when: 2024-01-01\n",
        "wide": b"k: [" + b", ".join(b"v" for _ in range(300)) + b"]\n",
    }


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """A registry holding every card and config above, and folders that are hostile as folders:
    a linked card, a linked config, a file where a folder should be, a folder where the card
    should be, a linked pointer and a bad pointer."""
    from factories import init_registry

    tmp = tmp_path_factory.mktemp("varied")
    reg = init_registry(tmp / "registry", tmp / "storage")
    files: dict[str, bytes] = {}
    for name, text in (plain_cards() | hostile_cards()).items():
        files[f"models/{name}/model.yaml"] = text
        files[f"models/{name}/config.yaml"] = b"epochs: 3\n"
        files[f"models/{name}/model.onnx.dvc"] = POINTER.format(md5=f"a{len(name):031x}").encode()
    for name, text in configs().items():
        model = f"config-{name}"
        files[f"models/{model}/model.yaml"] = card(model)
        files[f"models/{model}/config.yaml"] = text
    files["models/config-json/model.yaml"] = card("config-json").replace(
        b"config.yaml", b"config.json"
    )
    files["models/config-json/config.json"] = b'{"epochs": 3}\n'
    files["models/bad-pointer/model.yaml"] = card("bad-pointer")
    files["models/bad-pointer/config.yaml"] = b"a: 1\n"
    files["models/bad-pointer/model.onnx.dvc"] = b"outs:\n- md5: nope\n  path: other.onnx\n"
    files["models/card-folder/model.yaml/inner.txt"] = b"a folder named like the card\n"
    for name in ("linked-card", "linked-config", "linked-pointer"):
        files[f"models/{name}/config.yaml"] = b"epochs: 3\n"
        files[f"models/{name}/model.onnx.dvc"] = POINTER.format(md5="b" * 32).encode()
    files["models/linked-config/model.yaml"] = card("linked-config")
    files["models/linked-pointer/model.yaml"] = card("linked-pointer")
    reg.write(files)
    (reg.root / "models" / "a-file").write_text("a file where a model folder should be\n")
    os.symlink("../plain-valid/model.yaml", reg.root / "models" / "linked-card" / "model.yaml")
    (reg.root / "models" / "linked-config" / "config.yaml").unlink()
    os.symlink("../plain-valid/config.yaml", reg.root / "models/linked-config/config.yaml")
    (reg.root / "models" / "linked-pointer" / "model.onnx.dvc").unlink()
    os.symlink("/etc/hostname", reg.root / "models/linked-pointer/model.onnx.dvc")
    reg.commit(message="varied models")
    return reg


def outcome(report) -> list:
    """Everything a reader of the report sees, model by model, in order."""
    return [
        json.loads(m.model_dump_json(include={"name", "findings", "checks_run", "checks_skipped"}))
        for m in report.models
    ]


@pytest.fixture
def careful(monkeypatch):
    """Turn the plain readings off: every card and config goes through the YAML parser."""

    def off():
        monkeypatch.setattr(schema, "read_plain_lines", lambda text: None)
        monkeypatch.setattr(config_module, "read_plain", lambda text: None)

    return off


@pytest.mark.parametrize("head", [None, "HEAD"], ids=["working-tree", "revision"])
def test_check_all_finds_what_the_careful_path_finds(varied, check_models, careful, head):
    fast = check_models(varied, all_models=True, head=head, offline=True, jobs=1)
    careful()
    slow = check_models(varied, all_models=True, head=head, offline=True, jobs=1)

    assert outcome(fast) == outcome(slow)
    by_name = {m.name: m for m in fast.models}
    assert len(by_name) == len(plain_cards()) + len(hostile_cards()) + len(configs()) + 6
    # the report a user reads: refusals name the file and line, plain cards' fields their lines
    typo = [(f.message, f.path, f.line) for f in by_name["plain-typo"].errors]
    assert ("unknown field 'tsk'", "models/plain-typo/model.yaml", 3) in typo
    dup = by_name["dup-metric"].errors[0]
    assert (dup.message, dup.line) == ("key 'value' appears twice", 12)
    assert "anchors and aliases" in by_name["alias-bomb"].errors[0].message
    assert "over the 262,144-byte limit" in by_name["oversized"].errors[0].message
    assert by_name["config-dup"].passed  # YAML 1.1 reads a repeated key in a config: the last wins
    assert "is empty" in by_name["config-comment-only"].errors[0].message
    assert by_name["plain-valid"].passed
    if head is None:
        assert any("symbolic link" in f.message for f in by_name["linked-card"].errors)


def test_plain_cards_are_read_without_the_parser(varied, check_models, monkeypatch):
    """The test above compares two different paths: plain cards do skip the parser."""
    parsed = []
    loader = schema._Loader

    def counting(text):
        parsed.append(text)
        return loader(text)

    monkeypatch.setattr(schema, "_Loader", counting)
    check_models(varied, all_models=True, offline=True, jobs=1)
    assert parsed  # the hostile cards
    assert not any("name: plain-" in text for text in parsed)


def _card_outcome(text: str | bytes):
    try:
        parsed = schema.parse_card_yaml(text)
    except CardError as e:
        return ("refused", e.message, e.hint, e.line)
    return ("read", typed(parsed.data), sorted(parsed.lines.items(), key=repr))


_PIECES = [
    "", "# c", "  # c", "key: v", "name: x", "  - a", "- b", "tags: [a, b]", "tags: []",
    "x: 'q'", 'x: "q"', "x: 1.0", "x: 1e3", "x: yes", "x: ~", "x: null", "x:", "  y: 2",
    "    z: 3", "\t", "x: a #b", "x: &a 1", "y: *a", "<<: {}", "---", "x: [a, [b]]", "x: 0x1F",
    "x: 012", "x: .5", "x: -1", "x: +1", "x: 1_000", "x: 2020-01-01", "x: a: b", "x: a:",
    "metrics:", "  - name: acc", "    value: 0.9", "   dataset: d", "  -  name: z", "x: 'it''s'",
    'x: "a\\tb"', "x: |", "  block", "source:", "  repo: r", "x: 1:30", "x: =", "x: ?a",
    "x: a]", "x: :a", "x : v", "x:v", "1: a", "true: a", "x: [a,b ,c]", "x: [ ]", "x: [,]",
    "x: [a,]", "x: 'a' b", "x:  v  ", " x: v",
]  # fmt: skip


def _mutations(seed: int, count: int, bases: list[str]):
    """Texts near the bases: pieces inserted, lines dropped, repeated or re-indented."""
    rng = random.Random(seed)
    for _ in range(count):
        lines = rng.choice(bases).split("\n")
        for _ in range(rng.randint(1, 3)):
            op, i = rng.random(), rng.randrange(len(lines) + 1)
            j = min(i, len(lines) - 1)
            if op < 0.4:
                lines.insert(i, rng.choice(_PIECES))
            elif op < 0.6 and lines:
                del lines[j]
            elif op < 0.8 and lines:
                lines.insert(i, lines[j])
            elif lines:
                lines[j] = " " * rng.randint(0, 3) + lines[j].lstrip()
        yield "\n".join(lines)


def test_card_text_reads_to_the_same_data_lines_and_refusals(monkeypatch):
    bases = [example_card("m"), example_card("m", version="1.0.0", status="published")]
    texts = list(_mutations(15, 3000, bases))
    fast = [_card_outcome(t) for t in texts]
    monkeypatch.setattr(schema, "read_plain_lines", lambda text: None)
    slow = [_card_outcome(t) for t in texts]

    assert fast == slow
    assert sum(o[0] == "read" for o in fast) > 300  # the plain reading was taken, often
    assert sum(o[0] == "refused" for o in fast) > 300


def _config_outcome(data: bytes, options: ConfigFileOptions | None):
    try:
        return ("read", typed(parse_config(data, "config.yaml", options)))
    except ConfigSyntaxError as e:
        return ("refused", e.message, e.line, e.hint)


def test_config_text_reads_to_the_same_values_and_refusals(monkeypatch):
    bases = ["epochs: 3\nlr: 0.01\n", "a:\n  b: 1\n  c: [x, y]\nd:\n  - e: 1\n    f: 2\n  - g\n"]
    texts = [t.encode() for t in _mutations(16, 1500, bases)] + list(configs().values())
    limits = [None, ConfigFileOptions(max_nodes=5), ConfigFileOptions(max_depth=1)]
    fast = [_config_outcome(t, o) for t in texts for o in limits]
    monkeypatch.setattr(config_module, "read_plain", lambda text: None)
    slow = [_config_outcome(t, o) for t in texts for o in limits]

    assert fast == slow
    assert sum(o[0] == "read" for o in fast) > 500
    assert sum("more than 5 values" in str(o) for o in fast) > 50
    assert sum("nested more than 1 levels" in str(o) for o in fast) > 50


def test_the_data_is_what_pyyaml_reads():
    """The careful path itself agrees with PyYAML on the plain cards (no shared mistake)."""
    for text in plain_cards().values():
        assert typed(schema.parse_card_yaml(text).data) == typed(yaml.safe_load(text))


def test_the_plain_shape_refuses_the_characters_yaml_reads_otherwise():
    """The one-class pattern refuses exactly tabs, other line breaks, a BOM and what PyYAML does
    not print."""
    import re

    from registry.cards import plaincard

    long_form = re.compile(plaincard._UNPLAIN_CHARS)
    for code in [*range(0x11000), *range(0x1F000, 0x1F100), 0x10FFFF]:
        c = chr(code)
        assert bool(plaincard._UNPLAIN.search(c)) == bool(long_form.search(c)), hex(code)


def test_no_resolver_types_a_scalar_by_the_first_characters_read_as_strings():
    from registry.cards import plaincard

    assert not plaincard._STRING_FIRST & set(plaincard._IMPLICIT)
    assert not plaincard._STRING_FIRST & plaincard._INDICATORS
