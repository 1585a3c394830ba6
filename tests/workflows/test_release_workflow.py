"""release.yml, run by the real act on a version tag against a real registry repository.

The tag of a published version whose card lists the Linux targets must end with one verified
package per target attached to the GitHub Release, a SHA256SUMS file that matches them, a
provenance attestation for each file, and the same packages on the public remote, where
`registry pull NAME@VERSION --target T` finds them from the git repository alone.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_runs import GITHUB_REPOSITORY, Act, example_card, make_project_clone, mlp_onnx, tool  # noqa: E402

pytestmark = pytest.mark.slow
TAG = "tiny-mlp@v1.0.0"
TARGETS = ["linux-x86_64", "linux-aarch64"]


def tag_event(sha: str) -> dict:
    """A `push` event payload for a new tag, as GitHub sends it."""
    owner, name = GITHUB_REPOSITORY.split("/")
    return {
        "ref": f"refs/tags/{TAG}",
        "before": "0" * 40,
        "after": sha,
        "created": True,
        "repository": {
            "full_name": GITHUB_REPOSITORY,
            "name": name,
            "owner": {"login": owner},
            "default_branch": "main",
        },
    }


def manifest_of(package: Path) -> dict:
    with tarfile.open(package) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("manifest.json"))
        return json.load(tar.extractfile(member))


def test_a_version_tag_builds_verifies_and_attaches_a_package_per_target(tmp_path):
    clone = make_project_clone(tmp_path)
    weights = mlp_onnx(seed=5)
    pointer = clone.track("models/tiny-mlp/model.onnx", weights)
    targets = "targets:\n" + "".join(f"  - name: {t}\n" for t in TARGETS)
    card = example_card(
        "tiny-mlp",
        size=len(weights),
        version="1.0.0",
        status="published",
        source_repo=str(clone.root),
        extra=targets,
    )
    sha = clone.branch(
        "main",
        {
            "models/tiny-mlp/model.yaml": card,
            "models/tiny-mlp/config.yaml": "epochs: 3\n",
            "models/tiny-mlp/model.onnx.dvc": pointer,
        },
        message="publish tiny-mlp 1.0.0",
    )
    # what publish.yml leaves behind: the objects on public, the annotated tag, the release
    clone.git("checkout", "-q", sha)
    clone.dvc("pull", "-q", "-r", "staging", "models/tiny-mlp/model.onnx.dvc")
    clone.dvc("push", "-q", "-r", "public", "models/tiny-mlp/model.onnx.dvc")
    clone.git("checkout", "-q", "main")
    clone.git("clean", "-qfdx", "models")
    clone.git("tag", "-a", "-m", "release notes", TAG, sha)
    act = Act(clone, tmp_path)
    act.releases.mkdir()
    (act.releases / f"{TAG}.md").write_text("release notes\n")

    result = act.run("release.yml", "push", tag_event(sha), sha=sha)

    assert result.returncode == 0, result.output
    for target in TARGETS:
        assert result.job_status(f"package {target}") == "succeeded", result.output
    assert result.job_status("attach the packages to the release") == "succeeded", result.output
    assets = act.releases / TAG
    packages = {f"tiny-mlp-1.0.0-{t}.tar.gz": t for t in TARGETS}
    names = sorted(p.name for p in assets.iterdir())
    # each target's benchmark report (timings and advice) is attached beside its package
    reports = [n for n in names if n.endswith(".benchmark.json")]
    assert set(reports) <= {f"tiny-mlp-1.0.0-{t}.benchmark.json" for t in TARGETS}, names
    assert sorted(set(names) - set(reports)) == sorted([*packages, "SHA256SUMS"])
    sums = dict(line.split()[::-1] for line in (assets / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == set(packages) | set(reports)
    for name, target in packages.items():
        assert sums[name] == hashlib.sha256((assets / name).read_bytes()).hexdigest()
        assert manifest_of(assets / name)["target"] == target
    attested = (act.releases / "attestations.txt").read_text()
    assert all(sums[name] in attested for name in packages), attested
    # the same bytes on the public remote, found through the version's index, from a fresh directory
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    for name, target in packages.items():
        proc = subprocess.run(
            [
                str(tool("registry")),
                "pull",
                "tiny-mlp@1.0.0",
                "--target",
                target,
                "--repo",
                str(clone.root),
            ],
            cwd=consumer,
            env=clone.env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert (consumer / "tiny-mlp-1.0.0" / name).read_bytes() == (assets / name).read_bytes()
