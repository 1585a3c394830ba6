"""validate.yml, run by the real act on pull_request events against a real registry repository.

The pull request's story as its author sees it: a first push with an impossible metric fails
with an annotation on the card's exact line and one comment on the pull request; a second push
that fixes it passes and the same comment is updated. A pull request that rewrites the checker to
let everything through is still judged by the base branch's checker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_runs import Act, example_card, make_project_clone, mlp_onnx, pull_request_event  # noqa: E402

pytestmark = pytest.mark.slow
CARD = "models/tiny-mlp/model.yaml"
MARKER = "<!-- registry-check -->"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """This project as a registry repository, and an act runner for it."""
    tmp = tmp_path_factory.mktemp("validate")
    clone = make_project_clone(tmp)
    pointer = clone.track("models/tiny-mlp/model.onnx", mlp_onnx(seed=3))
    return clone, Act(clone, tmp), pointer


def model_files(pointer: str, card: str) -> dict[str, str]:
    """A model folder as its publisher commits it: card, config, DVC pointer to staged weights."""
    return {
        CARD: card,
        "models/tiny-mlp/config.yaml": "epochs: 3\nlr: 0.01\n",
        "models/tiny-mlp/model.onnx.dvc": pointer,
    }


def card_text(clone, accuracy: str = "0.93") -> str:
    weights = mlp_onnx(seed=3)
    return example_card("tiny-mlp", size=len(weights), source_repo=str(clone.root)).replace(
        "value: 0.93", f"value: {accuracy}"
    )


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_failing_pull_request_is_annotated_then_passes_once_fixed(project):
    clone, act, pointer = project
    base = clone.git("rev-parse", "main")
    bad_card = card_text(clone, accuracy="1.2")
    bad = clone.branch("add-tiny-mlp", model_files(pointer, bad_card), message="add tiny-mlp")

    first = act.run(
        "validate.yml", "pull_request", pull_request_event(7, base, bad, "add-tiny-mlp")
    )

    assert first.returncode != 0, first.output
    assert first.job_status("registry check") == "failed", first.output
    errors = first.annotations("error")
    expected = f"::error file={CARD},line={line_of(bad_card, 'value: 1.2')},"
    assert any(a.startswith(expected) and "accuracy" in a for a in errors), (
        "\n".join(errors) or first.output
    )
    assert first.job_status("report on the pull request") == "succeeded", first.output
    comments = first.pr_comments(7)
    assert len(comments) == 1, comments
    (body,) = comments.values()
    assert body.startswith(MARKER) and "tiny-mlp" in body and "1.2" in body, body
    pictures = first.artifacts / "registry-check" / "pictures"
    assert (pictures / "tiny-mlp.svg").read_text().lstrip().startswith(("<svg", "<?xml")), pictures

    fixed = clone.branch(
        "add-tiny-mlp", model_files(pointer, card_text(clone)), start=bad, message="fix accuracy"
    )
    second = act.run(
        "validate.yml", "pull_request", pull_request_event(7, base, fixed, "add-tiny-mlp")
    )

    assert second.returncode == 0, second.output
    assert second.job_status("registry check") == "succeeded"
    assert second.annotations("error") == []
    comments = second.pr_comments(7)
    assert list(comments) == list(first.pr_comments(7)), "the comment must be updated, not added"
    (body,) = comments.values()
    assert body.startswith(MARKER) and "passed" in body and "1.2" not in body, body


def test_a_pull_request_that_rewrites_the_checker_is_still_judged_by_the_base(project):
    clone, act, pointer = project
    base = clone.git("rev-parse", "main")
    card = card_text(clone).replace("project: demo\n", "")  # a required field missing
    checker = "registry/checks/card_fields.py"
    original = (clone.root / checker).read_text()
    lenient = original.replace(
        "    def run(self, ctx: ModelContext) -> Iterable[Finding]:\n",
        "    def run(self, ctx: ModelContext) -> Iterable[Finding]:\n        return\n",
        1,
    )
    assert lenient != original, f"{checker} no longer has the run() this test rewrites"
    head = clone.branch(
        "lenient-checker",
        {**model_files(pointer, card), checker: lenient},
        message="add tiny-mlp and relax card-fields",
    )

    # The head's own card-fields check would let the card through: the rewrite is effective...
    worktree = clone.root.parent / "lenient-head"
    clone.git("worktree", "add", "-q", "--detach", str(worktree), head)
    own = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "check",
            "--base",
            base,
            "--head",
            head,
            "--offline",
            "--only",
            "card-fields",
        ],
        cwd=worktree,
        capture_output=True,
        text=True,
        env={**clone.env, "PYTHONPATH": str(worktree)},
    )
    assert own.returncode == 0, own.stdout + own.stderr

    # ...yet the workflow judges it with the base's checker and fails it on the card's line.
    result = act.run(
        "validate.yml", "pull_request", pull_request_event(8, base, head, "lenient-checker")
    )

    assert result.returncode != 0, result.output
    assert result.job_status("registry check") == "failed", result.output
    assert any(
        a.startswith(f"::error file={CARD},") and "project" in a for a in result.annotations()
    ), result.output
    (body,) = result.pr_comments(8).values()
    assert body.startswith(MARKER) and "project" in body, body
    # and the change to the checker itself is a registry-wide file: a maintainer must review it
    assert "registry/checks/card_fields.py" in body and "registry-wide file" in body, body


def test_a_fork_pull_request_is_checked_but_not_commented_on(project):
    clone, act, pointer = project
    base = clone.git("rev-parse", "main")
    head = clone.branch(
        "fork-model", model_files(pointer, card_text(clone)), message="add tiny-mlp"
    )

    result = act.run(
        "validate.yml",
        "pull_request",
        pull_request_event(9, base, head, "fork-model", head_repo="someone/registry-fork"),
    )

    assert result.returncode == 0, result.output
    assert result.job_status("registry check") == "succeeded", result.output
    assert result.job_status("report on the pull request") is None, result.output
    assert result.pr_comments(9) == {}
