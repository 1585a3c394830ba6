"""codeowners: a pull request's .github/CODEOWNERS is what `registry codeowners` writes, judged
from the cards the pull request touches and the base's file for every other model."""

from __future__ import annotations

import pytest

from factories import example_card
from registry.cards.codeowners import FILE, render, render_changes
from registry.core.repo import RegistryRepo

TEAM = "@org/registry-maintainers"


def model(name: str, owners: str = "") -> dict[str, str]:
    extra = f"owners: [{owners}]\n" if owners else ""
    return {
        f"models/{name}/model.yaml": example_card(name, extra=extra),
        f"models/{name}/config.yaml": "a: 1\n",
    }


@pytest.fixture
def owned(registry_repo):
    """Three models, CODEOWNERS generated and committed on main, a branch `pr` to work on."""
    reg = registry_repo
    reg.write({**model("alpha", "'@alice'"), **model("beta"), **model("gamma", "'@carol'")})
    assert reg.registry("codeowners", "--maintainer", TEAM).returncode == 0
    reg.commit(message="three models and their owners")
    reg.git("checkout", "-q", "-b", "pr")
    return reg


def codeowners_errors(report):
    return [f for m in report.models for f in m.findings if f.check == "codeowners"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(model("beta", "'@bob'"), id="owners-changed"),
        pytest.param(model("delta", "'@dave', '@org/vision'"), id="model-added"),
        pytest.param({"models/gamma/model.yaml": None}, id="model-deleted"),
    ],
)
def test_a_regenerated_file_passes_and_a_stale_one_fails(owned, check_models, change):
    reg = owned
    for path, text in change.items():
        if text is None:
            reg.git("rm", "-q", "-r", path.rpartition("/")[0])
        else:
            reg.write({path: text})
    reg.commit(message="change a model")
    stale = check_models(reg, base="main", head="pr")
    [f] = codeowners_errors(stale)
    assert f.path == FILE and "out of date" in f.message

    assert reg.registry("codeowners").returncode == 0
    reg.commit(message="regenerate CODEOWNERS")
    assert codeowners_errors(check_models(reg, base="main", head="pr")) == []


def test_the_lines_of_the_touched_models_are_what_a_full_render_writes(owned):
    reg = owned
    base_text = (reg.root / FILE).read_text()
    reg.write({**model("alpha", "'@ann', 'no owner'"), **model("delta", "'@dave'")})
    reg.git("rm", "-q", "-r", "models/beta")
    reg.commit(message="edit alpha, add delta, delete beta")
    head = RegistryRepo(reg.root).snapshot("pr")

    text = render_changes(base_text, head, ["alpha", "beta", "delta"])

    assert text == render(head, [TEAM])
    # many touched models (here with names that exist nowhere) take another way to the same text
    absent = [f"absent-{i}" for i in range(40)]
    assert render_changes(base_text, head, ["alpha", "beta", "delta", *absent]) == text
    assert f"/models/alpha/ @ann {TEAM}\n" in text and "/models/beta/" not in text
    assert f"/models/gamma/ @carol {TEAM}\n" in text


def test_a_pull_request_is_not_blamed_for_lines_of_models_it_does_not_touch(owned, check_models):
    reg = owned
    # main's file went stale for gamma (its card changed without a regeneration)
    reg.git("checkout", "-q", "main")
    reg.commit(model("gamma", "'@grace'"), "gamma's owner changes")
    reg.git("checkout", "-q", "-B", "pr")
    reg.commit(model("alpha", "'@alice', '@ann'"), "alpha gets a second owner")
    text = (
        (reg.root / FILE)
        .read_text()
        .replace(f"/models/alpha/ @alice {TEAM}", f"/models/alpha/ @alice @ann {TEAM}")
    )
    reg.commit({FILE: text}, "CODEOWNERS for alpha")

    assert codeowners_errors(check_models(reg, base="main", head="pr")) == []
    # an edit by hand to an untouched model's line is still caught
    reg.commit({FILE: text.replace(f"/models/beta/ {TEAM}", f"/models/beta/ @mallory {TEAM}")})
    [f] = codeowners_errors(check_models(reg, base="main", head="pr"))
    assert "out of date" in f.message and "registry codeowners" in f.hint
