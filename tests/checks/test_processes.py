"""A large `check --all` without content checks is shared among processes: the report is the one
a single process writes, model for model, in the same order."""

from __future__ import annotations

import json
import sys

import pytest

from factories import example_card
from registry.checks import SLICE

pytestmark = pytest.mark.skipif(
    sys.platform in ("darwin", "win32"), reason="runs stay in one process there"
)
COUNT = SLICE + 100  # the first models in the parent, the rest in other processes


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A registry of COUNT models; past the first slice, an invalid card and a name collision."""
    from factories import init_registry

    tmp = tmp_path_factory.mktemp("many")
    reg = init_registry(tmp / "registry", tmp / "storage")
    files = {}
    for i in range(COUNT):
        name = f"model-{i:04d}"
        files[f"models/{name}/model.yaml"] = example_card(name)
        files[f"models/{name}/config.yaml"] = "a: 1\n"
    bad = f"model-{SLICE + 7:04d}"
    files[f"models/{bad}/model.yaml"] = example_card(bad).replace("task: ", "tsk: ")
    # sorted first, so checked here; the model it collides with is checked in another process
    twin = f"Model-{SLICE + 50:04d}"
    files[f"models/{twin}/model.yaml"] = example_card(twin.lower())
    files[f"models/{twin}/config.yaml"] = "a: 1\n"
    reg.commit(files, "many models")
    return reg


def outcome(report) -> list:
    return [
        json.loads(m.model_dump_json(include={"name", "findings", "checks_run"}))
        for m in report.models
    ]


@pytest.mark.parametrize("head", [None, "HEAD"], ids=["working-tree", "revision"])
def test_processes_report_what_one_process_reports(many, check_models, head):
    one = check_models(many, all_models=True, head=head, offline=True, jobs=1)
    shared = check_models(many, all_models=True, head=head, offline=True, jobs=2)

    assert outcome(shared) == outcome(one)
    assert len(shared.models) == COUNT + 1
    failed = {m.name: m.errors for m in shared.models if not m.passed}
    twin = f"model-{SLICE + 50:04d}"
    assert set(failed) == {twin.capitalize(), twin, f"model-{SLICE + 7:04d}"}
    assert "collides with models/Model-" in failed[twin][0].message
    assert any("'tsk'" in f.message and f.line for f in failed[f"model-{SLICE + 7:04d}"])


def test_processes_give_the_same_report_in_every_format(many, check_models):
    from registry.checks.report import render_json, render_markdown, render_text

    one = check_models(many, all_models=True, offline=True, jobs=1)
    shared = check_models(many, all_models=True, offline=True, jobs=2)

    for render in (render_text, render_json, render_markdown):
        assert render(shared) == render(one)
    assert shared == one
