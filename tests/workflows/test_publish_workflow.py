"""publish.yml, run by the real act on a push to main against a real registry repository.

A merge that publishes a model's first version must leave what its users look for: the weights on
the public remote, the annotated version tag on the merge commit, a GitHub Release with the notes,
the changelog committed back to main by the bot with [skip ci], and the package build started.
Running it again for the same push changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_runs import GITHUB_REPOSITORY, Act, example_card, make_project_clone, mlp_onnx  # noqa: E402

pytestmark = pytest.mark.slow
TAG = "tiny-mlp@v1.0.0"


def push_event(before: str, after: str) -> dict:
    """A `push` event payload for main, as GitHub sends it (the fields the workflow reads)."""
    owner, name = GITHUB_REPOSITORY.split("/")
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "repository": {
            "full_name": GITHUB_REPOSITORY,
            "name": name,
            "owner": {"login": owner},
            "default_branch": "main",
        },
        "head_commit": {"id": after},
    }


def test_a_merge_publishes_tags_releases_and_commits_the_changelog(tmp_path):
    clone = make_project_clone(tmp_path)
    weights = mlp_onnx(seed=5)
    pointer = clone.track("models/tiny-mlp/model.onnx", weights)
    files = {
        "models/tiny-mlp/config.yaml": "epochs: 3\n",
        "models/tiny-mlp/model.onnx.dvc": pointer,
    }
    card = example_card("tiny-mlp", size=len(weights), source_repo=str(clone.root))
    clone.branch("main", {**files, "models/tiny-mlp/model.yaml": card}, message="add tiny-mlp")
    before = clone.git("rev-parse", "main")
    published = card.replace("status: unpublished", "version: 1.0.0\nstatus: published")
    after = clone.branch(
        "main", {"models/tiny-mlp/model.yaml": published}, message="publish tiny-mlp 1.0.0"
    )
    act = Act(clone, tmp_path)
    md5 = pointer.split("md5: ")[1].split()[0]
    public_object = clone.storage / "public" / "files" / "md5" / md5[:2] / md5[2:]
    assert not public_object.exists()

    result = act.run("publish.yml", "push", push_event(before, after), sha=after)

    assert result.returncode == 0, result.output
    assert result.job_status("registry publish") == "succeeded", result.output
    assert public_object.read_bytes() == weights
    assert clone.git("rev-parse", f"{TAG}^{{commit}}") == after
    assert clone.git("cat-file", "-t", TAG) == "tag"  # annotated, as GTO expects
    tag_message = clone.git("tag", "-l", "--format=%(contents)", TAG)
    release_notes = (act.releases / f"{TAG}.md").read_text()
    assert "tiny-mlp" in release_notes and release_notes.strip() == tag_message.strip()
    bot_commit = clone.git("rev-parse", "main")
    assert clone.git("rev-parse", "main^") == after
    assert "[skip ci]" in clone.git("log", "-1", "--format=%s", "main")
    assert clone.git("log", "-1", "--format=%an", "main") == "registry-bot"
    assert clone.git("show", "--name-only", "--format=", "main").split() == [
        "models/tiny-mlp/CHANGELOG.md"
    ]
    assert "1.0.0" in clone.git("show", "main:models/tiny-mlp/CHANGELOG.md")
    # after the publish, the catalog is built from main and deployed to GitHub Pages
    assert result.job_status("build the catalog") == "succeeded", result.output
    assert result.job_status("deploy the catalog") == "succeeded", result.output
    site = act.artifacts / "github-pages"
    assert 'href="models/tiny-mlp/"' in (site / "index.html").read_text()
    page = (site / "models" / "tiny-mlp" / "index.html").read_text()
    assert f"registry pull tiny-mlp@1.0.0 --repo https://github.com/{GITHUB_REPOSITORY}.git" in page
    assert "tiny-mlp" in (site / "index.json").read_text()
    assert not (site / ".catalog-state.json").exists()  # the build's manifest is not published
    assert (act.artifacts / "github-pages.deployed").is_file()

    again = act.run("publish.yml", "push", push_event(before, after), sha=after)

    assert again.returncode == 0, again.output
    assert clone.git("rev-parse", "main") == bot_commit, "a re-run must not commit again"
    assert clone.git("rev-parse", f"{TAG}^{{commit}}") == after
    calls = (act.releases / "calls.log").read_text().splitlines()
    assert len([c for c in calls if c.startswith("gh release create")]) == 1, calls
    # the package build of the new version is started once (a bot's tag push starts nothing)
    assert [c for c in calls if c.startswith("gh workflow")] == [
        f"gh workflow run release.yml --ref {TAG}"
    ]
