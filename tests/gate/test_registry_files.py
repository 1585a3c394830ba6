"""Registry-wide files are the maintainers': a pull request that changes them fails the bot with a
finding that asks for a maintainer's review; publish takes its remotes from the merge's base."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from factories import HANG, example_card, mlp_onnx, run_bounded

NAME = "tiny"


@pytest.fixture
def reg(registry_repo):
    registry_repo.add_model(NAME, mlp_onnx(0))
    registry_repo.commit(
        {
            "dvc.yaml": "artifacts:\n  tiny:\n    path: models/tiny/model.onnx\n    type: model\n"
            "  other:\n    path: models/other/model.onnx\n    type: model\n"
        },
        "declare artifacts",
    )
    registry_repo.git("checkout", "-q", "-b", "pr")
    return registry_repo


def registry_findings(report):
    return [f for m in report.models if m.name == "(registry)" for f in m.findings]


@pytest.mark.parametrize(
    "path,content,words",
    [
        (
            ".dvc/config",
            "[core]\n    remote = public\n['remote \"public\"']\n    url = /tmp/elsewhere\n",
            "the DVC configuration",
        ),
        (".github/workflows/evil.yml", "on: pull_request_target\n", "the workflows"),
        (".gitattributes", "*.onnx filter=evil\n", ".gitattributes changes how git treats files"),
        (
            "models/tiny/.gitattributes",
            "* filter=evil\n",
            ".gitattributes changes how git treats files",
        ),
        ("registry/__init__.py", "import os\n", "a registry-wide file"),
        ("pyproject.toml", "[project]\n", "a registry-wide file"),
    ],
)
def test_registry_wide_change_needs_a_maintainer(reg, check_models, path, content, words):
    reg.commit(
        {path: content, f"models/{NAME}/model.yaml": example_card(NAME, extra="description: x\n")}
    )
    report = check_models(reg, base="main", head="pr")
    [f] = registry_findings(report)
    assert f.path == path and words in f.message
    assert "a maintainer must review this change" in f.hint
    assert not report.passed


def test_a_change_of_models_alone_passes_the_registry_check(reg, check_models):
    reg.commit(
        {
            f"models/{NAME}/model.yaml": example_card(NAME, extra="description: x\n"),
            "datasets/d/dataset.yaml": "name: d\n",
            "training/t/task.yaml": "name: t\n",
        }
    )
    report = check_models(reg, base="main", head="pr", offline=True)
    assert registry_findings(report) == []
    assert report.passed, [f.message for m in report.models for f in m.errors]


def test_a_submodule_anywhere_is_refused(reg, check_models):
    sha = reg.git("rev-parse", "HEAD")
    reg.git("update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/lib")
    reg.git("commit", "-q", "-m", "gitlink")
    [f] = registry_findings(check_models(reg, base="main", head="pr"))
    assert f.path == "vendor/lib" and "submodule" in f.message


def test_a_link_in_place_of_a_model_folder_is_refused(reg, check_models):
    import os

    os.symlink("../.git", reg.root / "models/evil")
    reg.commit(message="a model folder that is a link")
    [f] = registry_findings(check_models(reg, base="main", head="pr"))
    assert f.path == "models/evil" and "symbolic link" in f.message


def test_dvc_yaml_may_change_only_in_the_prs_own_models_entries(reg, check_models):
    text = (reg.root / "dvc.yaml").read_text()
    reg.commit(
        {
            "dvc.yaml": text.replace(
                "  tiny:\n    path: models/tiny/model.onnx",
                "  tiny:\n    path: models/tiny/model.onnx\n    desc: mine",
            ),
            f"models/{NAME}/model.yaml": example_card(NAME, extra="description: mine\n"),
        }
    )
    assert registry_findings(check_models(reg, base="main", head="pr")) == []
    reg.commit({"dvc.yaml": text.replace("models/other/model.onnx", "models/tiny/model.onnx")})
    [f] = registry_findings(check_models(reg, base="main", head="pr"))
    assert (
        f.path == "dvc.yaml"
        and "more than the artifacts entries of its own models (tiny)" in f.message
    )


def test_alias_bomb_in_dvc_yaml_alone_is_answered(reg):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")
    )
    reg.commit({"dvc.yaml": bomb + "artifacts: *i\n"})
    code, out, err, seconds, rss = run_bounded(
        [
            sys.executable,
            "-m",
            "registry",
            "check",
            "--base",
            "main",
            "--head",
            "pr",
            "--format",
            "json",
        ],
        reg.root,
    )
    assert code == 1, err
    [model] = json.loads(out)["models"]
    assert model["name"] == "(registry)"
    [f] = model["findings"]
    assert (
        f["path"] == "dvc.yaml"
        and "aliases are not allowed in a dvc.yaml" in f["message"]
        and f["line"] == 2
    )
    assert seconds < HANG and rss < 1 << 30  # no hang; speed is benchmarks/hostile_bench.py's


def test_publish_takes_remotes_from_the_merges_base(reg, origin, tmp_path):
    """A merged pull request that also re-points `public` cannot send the weights anywhere new."""
    weights = mlp_onnx(0)
    elsewhere = tmp_path / "attacker-store"
    base = reg.git("rev-parse", "main")
    config = (
        (reg.root / ".dvc/config").read_text().replace(str(reg.storage / "public"), str(elsewhere))
    )
    head = reg.commit(
        {
            ".dvc/config": config,
            f"models/{NAME}/model.yaml": example_card(
                NAME, version="1.0.0", status="published", size=len(weights)
            ),
        },
        "publish and re-point",
    )
    proc = reg.registry("publish", "--base", base, "--head", head, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md5 = hashlib.md5(weights).hexdigest()
    assert (reg.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == weights
    assert not elsewhere.exists()


def test_the_first_model_of_a_registry_may_create_dvc_yaml(tmp_path, check_models):
    """No dvc.yaml on the base: a pull request whose dvc.yaml holds only its own model's entry
    passes."""
    from factories import init_registry

    fresh = init_registry(tmp_path / "fresh", tmp_path / "fresh-storage")
    fresh.commit({"models/.gitkeep": ""}, "empty registry")
    fresh.git("checkout", "-q", "-b", "pr")
    fresh.commit(
        {
            f"models/{NAME}/model.yaml": example_card(NAME),
            f"models/{NAME}/config.yaml": "epochs: 3\n",
            "dvc.yaml": f"artifacts:\n  {NAME}:\n    path: models/{NAME}/model.onnx\n    type: "
            f"model\n",
        }
    )
    assert registry_findings(check_models(fresh, base="main", head="pr", offline=True)) == []
    fresh.commit(
        {
            "dvc.yaml": f"artifacts:\n  {NAME}:\n    path: models/{NAME}/model.onnx\n"
            "stages:\n  evil:\n    cmd: curl example.invalid\n"
        }
    )
    [f] = registry_findings(check_models(fresh, base="main", head="pr", offline=True))
    assert f.path == "dvc.yaml" and f.message.startswith(
        "the pull request changes more than the artifacts"
    )
