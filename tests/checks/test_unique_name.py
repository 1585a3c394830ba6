"""unique-name: collisions across the whole registry, reported on the models a pull request
touches."""

from __future__ import annotations

import pytest

from factories import example_card
from registry.checks.unique_name import normal_name


def add(reg, folder: str, name: str | None = None) -> str:
    return reg.commit(
        {
            f"models/{folder}/model.yaml": example_card(name or folder.lower()),
            f"models/{folder}/config.yaml": "a: 1\n",
        },
        f"add {folder}",
    )


def test_same_name_different_case_is_reported_on_the_touched_model(registry_repo, check_models):
    add(registry_repo, "digits-cnn")
    base = registry_repo.git("rev-parse", "HEAD")
    add(registry_repo, "Digits-CNN", name="digits-cnn")
    report = check_models(registry_repo, base=base, head="HEAD", only=["unique-name"])
    assert [m.name for m in report.models] == ["Digits-CNN"]  # the untouched model is not checked
    [f] = report.models[0].findings
    assert f.message == (
        "model name 'Digits-CNN' collides with models/digits-cnn (names may not differ "
        "only in case or separators)"
    )
    assert f.hint.startswith("rename one of them")
    assert (f.path, f.line) == ("models/Digits-CNN/model.yaml", 1)


def test_separators_collide_too_and_all_reports_both(registry_repo, check_models):
    add(registry_repo, "digits-cnn")
    add(registry_repo, "digits_cnn", name="digits-cnn")
    add(registry_repo, "other")
    report = check_models(registry_repo, all_models=True, only=["unique-name"])
    failed = {m.name: [f.message for f in m.findings] for m in report.models if not m.passed}
    assert set(failed) == {"digits-cnn", "digits_cnn"}
    assert "collides with models/digits_cnn" in failed["digits-cnn"][0]


def test_a_folder_without_a_card_is_reported(registry_repo, check_models):
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.commit({"models/orphan/config.yaml": "a: 1\n"})
    report = check_models(registry_repo, base=base, head="HEAD", only=["unique-name"])
    [f] = report.models[0].findings
    assert f.message == "models/orphan/ has no model.yaml"
    assert f.path == "models/orphan/"
    assert "registry new orphan" in f.hint
    assert not report.passed


def test_distinct_names_pass(registry_repo, check_models):
    add(registry_repo, "digits-cnn")
    add(registry_repo, "digits-cnn-small")
    report = check_models(registry_repo, all_models=True, only=["unique-name"])
    assert report.passed and len(report.models) == 2


@pytest.mark.parametrize(
    "a, b",
    [("Digits-CNN", "digits-cnn"), ("digits_cnn", "digits--cnn"), ("digits.cnn", "DIGITS CNN")],
)
def test_normal_names(a, b):
    assert normal_name(a) == normal_name(b)


def test_the_listing_search_finds_what_the_index_does():
    """The search a pull request's check makes in the listing of models/ finds exactly the folders
    the index of every normal form holds, whatever the case, separators or blanks."""
    from registry.checks.unique_name import _index, sharing_normal_form

    folders = [
        "digits-cnn",
        "Digits_CNN",
        "digits..cnn",
        "-digits-cnn-",
        "digits cnn",
        "digits-cnn-small",
        "my-digits-cnn",
        "digitscnn",
        "cnn-digits",
        "DIGITS.CNN",
        "other",
    ]
    index = _index(sorted(folders))
    for listing in ("".join(f"{f}\0" for f in folders), "".join(f"{f}\0" for f in folders + ["é"])):
        for name in ("digits-cnn", "DIGITS_cnn", "digitscnn", "other", "missing", "cnn-digits"):
            assert sharing_normal_form(listing, name) == index.get(normal_name(name), []), name
