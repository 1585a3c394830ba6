"""`registry list` and `registry show`: states, latest versions, filters, withdrawn marks, notes."""

import json

import pytest

from factories import mlp_onnx, publish_version, withdraw_version
from registry.cards.bulk import read_cards
from registry.core.errors import UsageError
from registry.versions.details import show_model
from registry.versions.listing import list_models


def test_list_shows_state_latest_version_and_task(published_registry):
    proc = published_registry.registry("list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "LATEST", "VERSIONS", "TASK", "PROJECT"]
    assert lines[1].split() == ["digits", "updated", "1.1.0", "2", "classification", "demo"]
    assert lines[2].split() == ["draft", "unpublished", "-", "0", "classification", "demo"]


def test_list_filters_and_json(published_registry):
    reg = published_registry
    proc = reg.registry("list", "--state", "published", "--format", "json")
    assert json.loads(proc.stdout) == []
    proc = reg.registry(
        "list",
        "--state",
        "updated",
        "--task",
        "classification",
        "--project",
        "demo",
        "--format",
        "json",
    )
    assert [r["name"] for r in json.loads(proc.stdout)] == ["digits"]
    assert [r.name for r in list_models(reg.root, task="detection")] == []
    assert [r.name for r in list_models(reg.root, project="demo")] == ["digits", "draft"]
    proc = reg.registry("list", "--state", "gone")
    assert proc.returncode == 2 and "unknown state 'gone'" in proc.stderr


def test_list_reports_invalid_cards_instead_of_failing(published_registry):
    reg = published_registry
    reg.write({"models/broken/model.yaml": "name: broken\ntask: [oops\n"})
    rows = {r.name: r for r in list_models(reg.root)}
    assert rows["broken"].state == "invalid"
    assert rows["digits"].state == "updated"


def test_list_at_a_revision_reads_cards_from_git_objects(published_registry):
    reg = published_registry
    first_publish = reg.git("rev-parse", "digits@v1.0.0^{commit}")
    rows = list_models(reg.root, rev=first_publish)
    assert [(r.name, r.state) for r in rows] == [("digits", "published")]
    assert read_cards(reg.root, first_publish)["digits"].card.version == "1.0.0"


def test_withdrawn_latest_moves_back_and_show_marks_it(published_registry):
    reg = published_registry
    tag = withdraw_version(reg, "digits", "1.1.0")
    assert [r.latest for r in list_models(reg.root) if r.name == "digits"] == ["1.0.0"]
    proc = reg.registry("show", "digits")
    assert proc.returncode == 0, proc.stderr
    assert "1.1.0          2026-02-01 10:00  " in proc.stdout
    assert f"withdrawn ({tag})" in proc.stdout
    assert "release notes of 1.0.0:\n  first release" in proc.stdout


def test_show_prints_card_versions_notes_and_how_to_pull(published_registry):
    reg = published_registry
    proc = reg.registry("show", "digits")
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert out.startswith("digits  [updated]")
    assert "Handwritten digits" in out and "metric: accuracy = 0.93 on digits-test" in out
    assert out.index("1.1.0  ") < out.index("1.0.0  ")  # newest first
    assert "2026-01-01 10:00" in out
    assert "release notes of 1.1.0:\n  better weights" in out
    assert "registry pull digits@1.1.0" in out
    assert "git checkout digits@v1.1.0 && dvc pull -R models/digits" in out
    assert f"dvc artifacts get {reg.root} digits --rev v1.1.0" in out


def test_show_a_version_uses_that_versions_card_and_notes(published_registry):
    d = show_model(published_registry.root, "digits", "1.0.0")
    assert d.shown_version == "1.0.0" and d.latest == "1.1.0"
    assert d.card.version == "1.0.0" and d.card.status.value == "published"
    assert d.notes == "first release"
    proc = published_registry.registry("show", "digits@1.0.0", "--format", "json")
    data = json.loads(proc.stdout)
    assert [v["version"] for v in data["versions"]] == ["1.0.0", "1.1.0"]
    assert data["versions"][0]["date"].startswith("2026-01-01T10:00:00")


def test_show_unpublished_model_has_no_versions(published_registry):
    d = show_model(published_registry.root, "draft")
    assert d.state == "unpublished" and d.versions == [] and d.pull == []
    assert "versions: none published" in published_registry.registry("show", "draft").stdout


def test_show_unknown_model_and_version(published_registry):
    proc = published_registry.registry("show", "ghost")
    assert proc.returncode == 2 and "no model named 'ghost'" in proc.stderr
    with pytest.raises(UsageError, match="no version 7.0.0"):
        show_model(published_registry.root, "digits", "7.0.0")


def test_offline_card_withdraws_every_version_in_the_listing(published_registry):
    reg = published_registry
    card = reg.root / "models" / "digits" / "model.yaml"
    card.write_text(card.read_text().replace("status: updated", "status: offline"))
    rows = {r.name: r for r in list_models(reg.root)}
    assert rows["digits"].state == "offline" and rows["digits"].latest is None
    assert all(v.withdrawn for v in show_model(reg.root, "digits").versions)


@pytest.mark.parametrize(
    "command",
    ["list", "show", "pull", "publish-request", "unpublish", "delete", "edit", "sync-artifacts"],
)
def test_every_consume_command_has_help_with_an_example(command):
    from click.testing import CliRunner

    from registry.cli import cli

    cmd = cli.commands[command]
    assert cmd.help and "Example" in cmd.help
    import click

    assert all(p.help for p in cmd.params if isinstance(p, click.Option))
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_list_at_an_unknown_revision_is_a_git_error(published_registry):
    proc = published_registry.registry("list", "--rev", "no-such-branch")
    assert proc.returncode == 4 and "unknown git revision 'no-such-branch'" in proc.stderr


def test_show_lists_the_device_package_of_each_target_of_the_version(registry_repo):
    reg = registry_repo
    reg.write({"models/.gitkeep": ""})
    reg.add_model("edge", mlp_onnx(1), extra="targets:\n  - linux-x86_64\n  - android-arm64\n")
    publish_version(reg, "edge", "1.0.0")
    d = show_model(reg.root, "edge")
    assert d.pull[-2:] == [
        "registry pull edge@1.0.0 --target linux-x86_64",
        "registry pull edge@1.0.0 --target android-arm64",
    ]


def test_show_prints_sizes_for_people_and_names_training_code_in_the_registry(tmp_path):
    """Sizes as 9.10 KB (9,097 bytes); `repo: self` as this repository, with the path and commit."""
    from registry.cards.schema import load_card
    from registry.versions.details import ModelDetails, render_details

    card = load_card(
        b"name: tiny\ntask: classification\nproject: demo\nsource:\n  repo: self\n"
        b"  commit: 0123456789abcdef0123456789abcdef01234567\n  path: scripts/train.py\n"
        b"config: config.yaml\nweights: model.onnx\nsize: 9097\nmetrics: []\n"
    ).card
    text = render_details(ModelDetails(name="tiny", state="unpublished", card=card))
    assert "size: 9.10 KB (9,097 bytes)" in text
    assert (
        "source: this repository, scripts/train.py @ 0123456789abcdef0123456789abcdef01234567"
        in text
    )
