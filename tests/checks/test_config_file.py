"""config-file: the config exists, stays inside the model folder, and parses safely."""

from __future__ import annotations

import os

import pytest

from factories import example_card
from registry.checks import CheckOptions, Finding, run_checks
from registry.core.repo import RegistryRepo

CARD = "models/tiny/model.yaml"


def findings(reg, head: str | None = None, checks=("card-fields", "config-file")) -> list[Finding]:
    """Run the named checks on model 'tiny' of the working tree (or of revision `head`)."""
    repo = RegistryRepo(reg.root)
    report = run_checks(
        ["tiny"], repo.snapshot(head), None, repo, CheckOptions(offline=True, only=list(checks))
    )
    return report.models[0].findings


def card_line(text: str, key: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:"))


@pytest.fixture
def reg(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    return registry_repo


def set_config(reg, value: str) -> str:
    card = example_card("tiny", size=1061).replace("config: config.yaml", f"config: {value}")
    reg.write({CARD: card})
    return card


def test_valid_yaml_config_passes(reg):
    assert findings(reg) == []
    assert findings(reg, head="HEAD") == []


def test_valid_json_config_passes(reg):
    set_config(reg, "train.json")
    reg.commit({"models/tiny/train.json": '{"epochs": 3, "lr": 0.01}\n'})
    assert findings(reg, head="HEAD") == []


@pytest.mark.parametrize(
    "value, says",
    [
        ("../other/config.yaml", "must stay inside the model folder ('..' is not allowed)"),
        ("/etc/passwd", "must be relative to the model folder, not absolute"),
    ],
)
def test_config_path_escaping_the_folder_is_a_card_finding(reg, value, says):
    card = set_config(reg, value)
    [f] = findings(reg)
    assert f.check == "card-fields"
    assert says in f.message and "config" in f.message
    assert (f.path, f.line) == (CARD, card_line(card, "config"))


def test_config_symlink_leaving_the_folder_is_refused(reg):
    (reg.root / "secrets.yaml").write_text("token: hunter2\n")
    cfg = reg.root / "models/tiny/config.yaml"
    cfg.unlink()
    cfg.symlink_to("../../secrets.yaml")
    card = (reg.root / CARD).read_text()
    reg.commit(message="link config out of the folder")
    for head in (None, "HEAD"):  # the working tree and the committed symlink alike
        [f] = findings(reg, head=head)
        assert f.check == "config-file"
        assert f.message == (
            "config file: models/tiny/config.yaml is a symlink to '../../secrets.yaml', "
            "outside models/tiny/"
        )
        assert (f.path, f.line) == (CARD, card_line(card, "config"))


def test_config_behind_a_folder_symlink_leaving_the_folder_is_refused(reg):
    (reg.root / "models/other").mkdir()
    (reg.root / "models/other/config.yaml").write_text("epochs: 1\n")
    (reg.root / "models/tiny/conf").symlink_to("../other")
    card = set_config(reg, "conf/config.yaml")
    reg.commit(message="config through a linked folder")
    for head in (None, "HEAD"):
        [f] = findings(reg, head=head)
        assert (
            f.message
            == "config file: models/tiny/conf is a symlink to '../other', outside models/tiny/"
        )
        assert f.line == card_line(card, "config")


def test_config_symlink_inside_the_folder_is_followed(reg):
    reg.write({"models/tiny/configs/base.yaml": "epochs: 3\n"})
    cfg = reg.root / "models/tiny/config.yaml"
    cfg.unlink()
    cfg.symlink_to("configs/base.yaml")
    reg.commit(message="config linked inside the folder")
    assert findings(reg) == []
    assert findings(reg, head="HEAD") == []


def test_absolute_symlink_is_refused(reg):
    cfg = reg.root / "models/tiny/config.yaml"
    cfg.unlink()
    os.symlink("/etc/hostname", cfg)
    reg.commit(message="absolute link")
    [f] = findings(reg, head="HEAD")
    assert (
        f.message
        == "config file: models/tiny/config.yaml is a symlink to '/etc/hostname', outside "
        "models/tiny/"
    )


def test_symlink_loop_is_refused(reg):
    cfg = reg.root / "models/tiny/config.yaml"
    cfg.unlink()
    cfg.symlink_to("loop.yaml")
    (reg.root / "models/tiny/loop.yaml").symlink_to("config.yaml")
    reg.commit(message="loop")
    [f] = findings(reg, head="HEAD")
    assert "is part of a symlink loop" in f.message


def test_missing_config_file(reg):
    (reg.root / "models/tiny/config.yaml").unlink()
    card = (reg.root / CARD).read_text()
    reg.commit(message="forgot the config")
    [f] = findings(reg, head="HEAD")
    assert f.message.startswith("config file models/tiny/config.yaml does not exist in HEAD")
    assert "git add models/tiny/config.yaml" in f.hint
    assert (f.path, f.line) == (CARD, card_line(card, "config"))


def test_malformed_yaml_points_at_the_config_line(reg):
    reg.commit(
        {"models/tiny/config.yaml": "epochs: 3\nlr: 0.01\noptimizer: {name: adam\nmomentum: 0.9\n"}
    )
    [f] = findings(reg, head="HEAD")
    assert f.message.startswith("config file models/tiny/config.yaml: not valid YAML")
    assert f.path == "models/tiny/config.yaml"
    assert f.line in (4, 5)  # where the unclosed flow mapping is noticed
    assert "syntax" in f.hint


def test_malformed_json_points_at_the_config_line(reg):
    set_config(reg, "train.json")
    reg.commit({"models/tiny/train.json": '{\n  "epochs": 3,\n  "lr": 0.01,\n}\n'})
    [f] = findings(reg, head="HEAD")
    assert f.message.startswith("config file models/tiny/train.json: not valid JSON")
    assert (f.path, f.line) == ("models/tiny/train.json", 4)


def test_yaml_alias_bomb_in_the_config_is_refused(reg):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")
    )
    reg.commit({"models/tiny/config.yaml": bomb})
    [f] = findings(reg, head="HEAD")
    assert f.message == (
        "config file models/tiny/config.yaml: YAML anchors and aliases are not allowed "
        "in a config file"
    )
    assert (f.path, f.line) == ("models/tiny/config.yaml", 2)


def test_python_object_tags_are_refused(reg):
    reg.commit({"models/tiny/config.yaml": "x: !!python/object/apply:os.system ['touch pwned']\n"})
    [f] = findings(reg, head="HEAD")
    assert f.message.startswith("config file models/tiny/config.yaml: not valid YAML")
    assert f.line == 1
    assert not (reg.root / "pwned").exists()


def test_oversized_config_is_refused(reg):
    reg.commit({"models/tiny/config.yaml": "data: '" + "x" * (1024 * 1024) + "'\n"})
    [f] = findings(reg, head="HEAD")
    assert "over the 1,048,576-byte limit for config files" in f.message
    assert f.path == "models/tiny/config.yaml"


def test_unknown_config_extension(reg):
    set_config(reg, "config.txt")
    reg.commit({"models/tiny/config.txt": "epochs=3\n"})
    [f] = findings(reg, head="HEAD")
    assert f.message == "config file models/tiny/config.txt: unknown config format '.txt'"
    assert f.hint == "use a .yaml, .yml or .json config file"


def test_empty_config(reg):
    reg.commit({"models/tiny/config.yaml": "# nothing yet\n"})
    [f] = findings(reg, head="HEAD")
    assert f.message == "config file models/tiny/config.yaml is empty"
