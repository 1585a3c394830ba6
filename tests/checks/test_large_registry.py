"""`registry check` on a registry of many models: the findings of a run that reads every card at
once (and shares the models between processes), and of a pull request that reads only what it
touches, are the findings of the plain one-model checks."""

from __future__ import annotations

import itertools
import re

import pytest

from factories import example_card
from registry.checks import SLICE
from registry.core import storage
from registry.core.storage import PointerError, parse_pointer

TEAM = "@org/registry-maintainers"
COUNT = SLICE + 200  # enough models for `--all` (with `jobs`) to use other processes
POINTER = "outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: model.onnx\n"


def model_files(folder: str, name: str | None = None, owners: str = "") -> dict[str, str]:
    extra = f"owners: ['{owners}']\n" if owners else ""
    return {
        f"models/{folder}/model.yaml": example_card(name or folder.lower(), extra=extra),
        f"models/{folder}/config.yaml": "epochs: 3\n",
        f"models/{folder}/model.onnx.dvc": POINTER.format(md5=f"a{len(folder):031x}", size=1234),
    }


def name(i: int) -> str:
    return f"model-{i:04d}"


@pytest.fixture
def big(registry_repo):
    """COUNT models and the CODEOWNERS `registry codeowners` writes, committed on main."""
    reg = registry_repo
    files: dict[str, str] = {}
    for i in range(COUNT):
        files |= model_files(name(i))
    reg.write(files)
    assert reg.registry("codeowners", "--maintainer", TEAM).returncode == 0
    reg.commit(message=f"{COUNT} models")
    return reg


def findings(report, check: str | None = None) -> dict[str, list[tuple]]:
    return {
        m.name: [(f.check, f.message, f.path, f.line) for f in m.findings]
        for m in report.models
        if m.findings and (check is None or any(f.check == check for f in m.findings))
    }


def test_all_finds_a_collision_between_models_far_apart_as_one_process_does(big, check_models):
    far = name(COUNT - 3).replace("-", "_").upper()  # checked by another process than model 3's
    big.write(model_files(far, name=far.lower()) | model_files("Model_0003", name="model_0003"))
    big.commit(message="colliding names")
    shared = check_models(big, all_models=True, offline=True, jobs=2)
    alone = check_models(big, all_models=True, offline=True, jobs=1)
    assert len(shared.models) == len(alone.models) == COUNT + 2
    assert findings(shared) == findings(alone)
    clashes = findings(shared, "unique-name")
    assert set(clashes) == {"model-0003", "Model_0003", name(COUNT - 3), far}
    message = next(f[1] for f in clashes[name(COUNT - 3)] if f[0] == "unique-name")
    assert message.startswith(f"model name '{name(COUNT - 3)}' collides with models/{far} ")


def test_a_pull_request_adding_a_name_taken_far_away_is_told(big, check_models):
    big.git("checkout", "-q", "-b", "pr")
    big.write(model_files("Model_0007", name="model_0007"))
    big.registry("codeowners")
    big.commit(message="add a model")
    report = check_models(big, base="main", head="pr", offline=True)
    assert [m.name for m in report.models] == ["Model_0007"]
    [clash] = [f for f in report.models[0].findings if f.check == "unique-name"]
    assert "collides with models/model-0007" in clash.message
    assert clash.path == "models/Model_0007/model.yaml"


def test_a_pull_request_with_a_stale_codeowners_fails_and_a_regenerated_one_passes(
    big, check_models
):
    big.git("checkout", "-q", "-b", "pr")
    big.write(model_files(name(COUNT - 1), owners="@alice"))
    big.commit(message="a new owner")
    stale = check_models(big, base="main", head="pr", offline=True)
    assert [f.message for m in stale.models for f in m.findings if f.check == "codeowners"] == [
        ".github/CODEOWNERS is out of date with the cards' owners (or edited by hand)"
    ]
    assert big.registry("codeowners").returncode == 0
    assert (
        f"/models/{name(COUNT - 1)}/ @alice {TEAM}" in (big.root / ".github/CODEOWNERS").read_text()
    )
    big.commit(message="regenerate CODEOWNERS")
    fresh = check_models(big, base="main", head="pr", offline=True)
    assert [f for m in fresh.models for f in m.findings if f.check == "codeowners"] == []


def test_a_link_in_one_model_folder_of_the_working_tree_is_found_by_all(big, check_models):
    (big.root / "models" / name(COUNT - 5) / "extra.yaml").symlink_to("/etc/hostname")
    report = check_models(big, all_models=True, offline=True, only=["model-files"], jobs=2)
    failed = {m.name: [f.message for f in m.findings] for m in report.models if not m.passed}
    assert list(failed) == [name(COUNT - 5)]
    assert "is a symbolic link (to '/etc/hostname')" in failed[name(COUNT - 5)][0]


def _read(text):
    try:
        return parse_pointer(text)
    except PointerError as e:
        return str(e)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_pointer_reads_the_same_whether_or_not_it_is_written_as_dvc_writes_it(
    monkeypatch, as_bytes
):
    md5s = ["0" * 32, "1" * 32, "0" * 31 + "a", "00000000000000000000000000000e10", "a" * 31]
    md5s += ["3f3b" + "0123456789abcdef" * 1 + "0" * 12, "A" * 32]
    sizes = ["0", "01", "12", "1_000", "-1", "1.5", "0x10", "99999999999999999"]
    paths = ["model.onnx", "yes", "on.x", "1.0", "_a.b", "null", ".inf", "x-y_z.ONNX", "a b.c"]
    texts = [
        f"outs:\n- md5: {m}\n  size: {s}\n" + ("  hash: md5\n" if h else "") + f"  path: {p}\n"
        for m, s, p, h in itertools.product(md5s, sizes, paths, [True, False])
    ]
    texts += ["outs: &a [1]\n" + "# a pointer over the size dvc add ever writes\n" * 8]
    texts = [t.encode() for t in texts] if as_bytes else texts
    fast = [_read(t) for t in texts]
    monkeypatch.setattr(storage, "_CANONICAL_POINTER", re.compile(r"(?!)"))  # YAML for every one
    assert fast == [_read(t) for t in texts]
    assert sum(isinstance(p, storage.Pointer) for p in fast) > len(texts) // 10
