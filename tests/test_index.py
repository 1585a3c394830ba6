"""The registry index (refs/registry/index): built by `registry publish`, read by list, show and
pull, verified against the tags, rebuilt from them, and never trusted where it went stale."""

import json
import re
import time

import pytest

from factories import Registry, init_registry, isolated_env, mlp_onnx, run
from registry.cards.artifacts import sync_artifacts
from registry.versions.index import INDEX_REF, VERSIONS_DIR, sync
from test_dvc_gto_compat import copy_registry, publish_by_merge


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Registry:
    """digits 1.0.0 then 1.1.0 published by `registry publish` (tags and index pushed to a bare
    `origin`), and a draft model that was never published."""
    tmp = tmp_path_factory.mktemp("indexed")
    with isolated_env(tmp_path_factory.mktemp("indexed-home")):
        reg = init_registry(tmp / "registry", tmp / "storage")
        reg.add_model("digits", mlp_onnx(1), commit=False)
        sync_artifacts(reg.root)  # dvc.yaml declares it, for `dvc artifacts get`
        reg.commit(message="add digits")
        run(["git", "init", "-q", "--bare", str(tmp / "origin.git")], tmp)
        reg.git("remote", "add", "origin", str(tmp / "origin.git"))
        reg.git("push", "-q", "origin", "main")
        publish_by_merge(reg, "digits", "1.0.0", status="published")
        publish_by_merge(reg, "digits", "1.1.0", weights=mlp_onnx(2), status="updated")
        reg.add_model("draft", mlp_onnx(3), commit=False)
        publish_by_merge(reg, "draft", "0.1.0")  # a draft: no tag, but the index lists it
        reg.git("push", "-q", "origin", "main")
    return reg


@pytest.fixture
def reg(indexed, tmp_path) -> Registry:
    """A copy of the indexed registry (and its origin) that a test may change."""
    copy = copy_registry(indexed, tmp_path)
    origin = tmp_path / "origin.git"
    run(
        ["git", "clone", "-q", "--mirror", indexed.git("remote", "get-url", "origin"), str(origin)],
        tmp_path,
    )
    copy.git("remote", "set-url", "origin", str(origin))
    return copy


def index_file(reg: Registry, path: str) -> str:
    return reg.git("cat-file", "blob", f"{INDEX_REF}:{path}")


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note:")]


def test_publish_writes_the_index_beside_the_tags_and_pushes_it(reg):
    origin = reg.git("remote", "get-url", "origin")
    local = reg.git("rev-parse", INDEX_REF).strip()
    assert run(["git", "ls-remote", origin, INDEX_REF], reg.root).stdout.split()[0] == local
    models = index_file(reg, "models.tsv").splitlines()
    assert models[0].startswith("# registry-index 1\t")
    assert [line.split("\t")[:6] for line in models[1:]] == [
        ["digits", "updated", "classification", "demo", "1.1.0", "2"],
        ["draft", "unpublished", "classification", "demo", "-", "0"],
    ]
    entry = json.loads(index_file(reg, f"{VERSIONS_DIR}/digits.json"))
    assert [v["version"] for v in entry["versions"]] == ["1.0.0", "1.1.0"]
    pointer = reg.git("show", "digits@v1.1.0:models/digits/model.onnx.dvc")
    md5 = re.search(r"md5: (\w+)", pointer)[1]
    assert entry["versions"][1]["objects"] == [
        {"path": "model.onnx", "md5": md5, "size": len(mlp_onnx(2))}
    ]
    assert set(entry["tags"]) == {"refs/tags/digits@v1.0.0", "refs/tags/digits@v1.1.0"}
    proc = reg.registry("index", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agrees with the tags and cards" in proc.stdout


def test_list_show_and_pull_answer_from_the_index_without_a_notice(reg, tmp_path):
    proc = reg.registry("list")
    assert proc.returncode == 0 and notes(proc.stderr) == [], proc.stderr
    assert [line.split() for line in proc.stdout.splitlines()[1:]] == [
        ["digits", "updated", "1.1.0", "2", "classification", "demo"],
        ["draft", "unpublished", "-", "0", "classification", "demo"],
    ]
    proc = reg.registry("show", "digits")
    assert proc.returncode == 0 and notes(proc.stderr) == [], proc.stderr
    assert "versions (latest: 1.1.0)" in proc.stdout and "1.0.0  " in proc.stdout
    proc = reg.registry("pull", "digits@latest", "-o", str(tmp_path / "got"))
    assert proc.returncode == 0 and notes(proc.stderr) == [], proc.stderr
    assert (tmp_path / "got" / "model.onnx").read_bytes() == mlp_onnx(2)


def test_a_card_edited_in_the_working_tree_shows_in_the_list(reg):
    card = reg.root / "models" / "draft" / "model.yaml"
    card.write_text(card.read_text().replace("task: classification", "task: detection"))
    reg.write({"models/fresh/model.yaml": card.read_text().replace("name: draft", "name: fresh")})
    rows = {r["name"]: r for r in json.loads(reg.registry("list", "--format", "json").stdout)}
    assert rows["draft"]["task"] == "detection" and rows["fresh"]["task"] == "detection"
    assert rows["digits"]["latest"] == "1.1.0"


def test_a_tag_pushed_without_the_index_is_noticed_and_read_from_the_tags(reg):
    # a withdrawal made by hand (no publish, so no index update): latest must move back
    reg.git("tag", "-a", "digits@v1.1.0!#3", "-m", "withdraw", "digits@v1.1.0^{commit}")
    # and a version tag made by hand on a commit whose card says another version: a stray
    reg.git("tag", "-a", "digits@v9.0.0", "-m", "by hand", "HEAD")
    proc = reg.registry("list")
    assert "digits  updated  1.0.0" in re.sub(r" +", "  ", proc.stdout)
    assert any("disagrees with the tags of 1 model(s) (digits)" in n for n in notes(proc.stderr))
    proc = reg.registry("show", "digits")
    (note,) = notes(proc.stderr)
    assert "digits@v9.0.0" in note and "digits@v1.1.0!#3" in note and "not in the index" in note
    assert "versions (latest: 1.0.0)" in proc.stdout and "stray tags" in proc.stdout
    proc = reg.registry("pull", "digits@latest", "-o", str(reg.root.parent / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (reg.root.parent / "out" / "model.onnx").read_bytes() == mlp_onnx(1)
    proc = reg.registry("index", "verify")
    assert proc.returncode == 1
    assert "digits: digits@v1.1.0!#3, digits@v9.0.0 not in the index" in proc.stdout
    assert "digits@1.1.0: the index says withdrawn_by None" in proc.stdout
    assert "stray tag digits@v9.0.0 missing from the index" in proc.stdout
    # one command rebuilds it from the tags; then the readers trust it again
    proc = reg.registry("index", "rebuild")
    assert proc.returncode == 0, proc.stderr
    assert reg.registry("index", "verify").returncode == 0
    proc = reg.registry("show", "digits")
    assert notes(proc.stderr) == [] and "digits@v9.0.0: the card at its commit says" in proc.stdout
    assert "withdrawn (digits@v1.1.0!#3)" in proc.stdout


def test_an_index_edited_by_hand_is_reported_by_verify(reg):
    models = index_file(reg, "models.tsv").replace("\t1.1.0\t2\t", "\t1.0.0\t2\t")
    entry = json.loads(index_file(reg, f"{VERSIONS_DIR}/digits.json"))
    entry["versions"][0]["commit"] = "0" * 40
    tree = _tree_with(reg, {"models.tsv": models, f"{VERSIONS_DIR}/digits.json": json.dumps(entry)})
    commit = reg.git("commit-tree", tree, "-p", INDEX_REF, "-m", "edited by hand").strip()
    reg.git("update-ref", INDEX_REF, commit)
    proc = reg.registry("index", "verify")
    assert proc.returncode == 1
    assert "digits: the index says latest '1.0.0', the tags and card say '1.1.0'" in proc.stdout
    assert f"digits@1.0.0: the index says commit '{'0' * 40}'" in proc.stdout
    assert "fix: registry index rebuild --push" in proc.stdout


def _tree_with(reg: Registry, files: dict[str, str]) -> str:
    """The index's tree with some files replaced (as a hand edit would)."""
    import subprocess

    env_index = reg.root / ".git" / "edit-index"
    env = {"GIT_INDEX_FILE": str(env_index)}
    import os

    env = {**os.environ, **env}
    subprocess.run(["git", "read-tree", INDEX_REF], cwd=reg.root, env=env, check=True)
    for path, text in files.items():
        oid = (
            subprocess.run(
                ["git", "hash-object", "-w", "--stdin"],
                cwd=reg.root,
                input=text.encode(),
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        subprocess.run(
            ["git", "update-index", "--add", "--cacheinfo", f"100644,{oid},{path}"],
            cwd=reg.root,
            env=env,
            check=True,
        )
    tree = (
        subprocess.run(
            ["git", "write-tree"], cwd=reg.root, env=env, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    env_index.unlink()
    return tree


@pytest.mark.parametrize("depth", [None, 1])
def test_a_cold_or_shallow_clone_falls_back_with_a_notice_until_it_fetches_the_index(
    reg, tmp_path, depth
):
    origin = reg.git("remote", "get-url", "origin")
    clone = tmp_path / "clone"
    shallow = ["--depth", "1", "--no-single-branch"] if depth else []
    run(["git", "clone", "-q", *shallow, f"file://{origin}", str(clone)], tmp_path)
    if depth:
        run(["git", "fetch", "-q", "--depth", "1", "origin", "+refs/tags/*:refs/tags/*"], clone)
    cold = Registry(clone, reg.storage)
    proc = cold.registry("list")
    assert proc.returncode == 0
    assert "no registry index (refs/registry/index)" in proc.stderr
    assert "registry index fetch" in proc.stderr
    assert "digits" in proc.stdout and "draft" in proc.stdout
    proc = cold.registry("index", "fetch")
    assert proc.returncode == 0 and "fetched from origin" in proc.stdout, proc.stderr
    proc = cold.registry("list")
    assert notes(proc.stderr) == [], proc.stderr
    assert [line.split()[:4] for line in proc.stdout.splitlines()[1:]] == [
        ["digits", "updated", "1.1.0", "2"],
        ["draft", "unpublished", "-", "0"],
    ]
    # later fetches keep it current: the refspec is remembered
    assert INDEX_REF in cold.git("config", "--get-all", "remote.origin.fetch")


def test_pull_from_a_url_reads_the_published_index(reg, tmp_path):
    origin = reg.git("remote", "get-url", "origin")
    proc = reg.registry("pull", "digits@latest", "--repo", origin, "-o", str(tmp_path / "p"))
    assert proc.returncode == 0 and notes(proc.stderr) == [], proc.stderr
    assert (tmp_path / "p" / "model.onnx").read_bytes() == mlp_onnx(2)


def test_sync_only_rewrites_what_changed(reg):
    before = reg.git("rev-parse", INDEX_REF).strip()
    assert sync(reg.root, "main").changed == []
    assert reg.git("rev-parse", INDEX_REF).strip() == before


def test_gto_and_dvc_read_an_indexed_registry_as_before(reg, tmp_path):
    from factories import BIN

    shows = json.loads(run([str(BIN / "gto"), "show", "--json"], reg.root).stdout)
    assert shows["digits"]["version"] == "v1.1.0"  # the index ref is not a tag: GTO ignores it
    out = tmp_path / "digits.onnx"
    run(
        [str(BIN / "dvc"), "artifacts", "get", str(reg.root), "digits", "--rev", "v1.0.0"]
        + ["-o", str(out)],
        tmp_path,
    )
    assert out.read_bytes() == mlp_onnx(1)


def test_an_unpublish_updates_the_index(reg):
    publish_by_merge(reg, "digits", "1.1.0", status="offline")
    proc = reg.registry("list", "--format", "json")
    assert notes(proc.stderr) == [], proc.stderr
    (digits,) = [r for r in json.loads(proc.stdout) if r["name"] == "digits"]
    assert digits["state"] == "offline" and digits["latest"] is None
    assert reg.registry("index", "verify").returncode == 0
    proc = reg.registry("show", "digits")
    assert notes(proc.stderr) == [] and "withdrawn (digits@v1.1.0!#" in proc.stdout


def test_list_at_a_revision_uses_the_index_for_unchanged_cards(reg):
    first = reg.git("rev-parse", "digits@v1.0.0^{commit}")
    proc = reg.registry("list", "--rev", first, "--format", "json")
    assert proc.returncode == 0 and notes(proc.stderr) == [], proc.stderr
    assert [(r["name"], r["state"], r["latest"]) for r in json.loads(proc.stdout)] == [
        ("digits", "published", "1.1.0")
    ]


def test_a_tag_made_after_a_reader_kept_the_tag_digest_is_noticed(reg):
    from registry.versions.tag_digest import CACHE, MARGIN_S

    time.sleep(MARGIN_S + 0.2)  # the copied ref files settle: `list` keeps the digest
    proc = reg.registry("list")
    assert proc.returncode == 0 and notes(proc.stderr) == [], proc.stderr
    assert (reg.root / ".git" / CACHE).is_file()
    # a withdrawal made by hand, loose, then packed: both are seen at once
    reg.git("tag", "-a", "digits@v1.1.0!#3", "-m", "withdraw", "digits@v1.1.0^{commit}")
    for _ in ("loose", "packed"):
        proc = reg.registry("list")
        assert "digits  updated  1.0.0" in re.sub(r" +", "  ", proc.stdout)
        assert any(
            "disagrees with the tags of 1 model(s) (digits)" in n for n in notes(proc.stderr)
        )
        reg.git("pack-refs", "--all")


def test_a_broken_models_tsv_is_named_and_the_list_comes_from_the_cards_and_tags(reg):
    models = index_file(reg, "models.tsv") + "\nbroken\tline\n"  # (the text is stripped)
    tree = _tree_with(reg, {"models.tsv": models})
    reg.git("update-ref", INDEX_REF, reg.git("commit-tree", tree, "-p", INDEX_REF, "-m", "x"))
    proc = reg.registry("list")
    assert proc.returncode == 0
    (note,) = notes(proc.stderr)
    assert "models.tsv:4: expected 7 tab-separated fields, got 2" in note
    assert "registry index rebuild" in note
    assert "digits  updated  1.1.0" in re.sub(r" +", "  ", proc.stdout)


def test_control_characters_in_the_index_never_reach_the_terminal(reg):
    models = index_file(reg, "models.tsv").replace("\tdemo\t", "\tdemo\x1b]0;pwned\x07\x1b[2J\t", 1)
    tree = _tree_with(reg, {"models.tsv": models})
    reg.git("update-ref", INDEX_REF, reg.git("commit-tree", tree, "-p", INDEX_REF, "-m", "x"))
    proc = reg.registry("list")
    assert proc.returncode == 0 and "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "pwned" not in proc.stdout  # the window-title sequence is dropped whole
    assert "digits  updated  1.1.0  2  classification  demo" in re.sub(r" +", "  ", proc.stdout)


@pytest.mark.parametrize("added", [3, 100])
def test_rows_read_again_are_listed_in_name_order_and_filtered_like_the_others(added):
    from registry.versions.listing import ModelSummary, ModelTable

    kept = ModelTable.of(
        [ModelSummary(f"m{i:03d}", "published", "1.0.0", 1, "detection") for i in range(0, 200, 2)]
    )
    again = [ModelSummary(f"m{i:03d}", "unpublished", task="ocr") for i in range(1, 2 * added, 2)]
    table = kept.without({"m000"}).merged(again)
    names = [r.name for r in table]
    assert names == sorted(names) and "m000" not in names and len(names) == 99 + added
    assert json.loads(table.to_json()) == [r.model_dump() for r in table]
    assert [r.name for r in table.where(task="ocr", state="unpublished")] == [r.name for r in again]
    lines = table.render().splitlines()
    assert lines[0].split() == ["NAME", "STATE", "LATEST", "VERSIONS", "TASK", "PROJECT"]
    assert lines[1].split() == ["m001", "unpublished", "-", "0", "ocr", "-"]


def _truth(root, head: str, names: list[str], lines: list[str]) -> dict:
    """What the index must hold for `names`, read the plain way: each card by its path at `head`,
    the versions confirmed by `tags.confirm_versions`, each version's pointers by `git ls-tree`."""
    from registry.cards.bulk import read_cards
    from registry.core.storage import parse_pointer
    from registry.versions.tags import confirm_versions, parse_refs

    table = parse_refs("\n".join(lines))
    kept, stray = confirm_versions(root, [v for n in names for v in table.get(n, [])], head)
    objects = {}
    for v in kept:
        listed = run(["git", "ls-tree", "-r", "--full-tree", v.commit, f"models/{v.name}/"], root)
        found = []
        for line in listed.stdout.splitlines():
            meta, _, path = line.partition("\t")
            mode, kind, oid = meta.split()
            if kind == "blob" and path.endswith(".dvc") and mode != "120000":
                p = parse_pointer(run(["git", "cat-file", "blob", oid], root).stdout.encode())
                folder = path.split("/", 2)[2].rpartition("/")[0]
                path = f"{folder}/{p.path}" if folder else p.path
                found.append({"path": path, "md5": p.md5, "size": p.size})
        objects[v.tag] = found
    cards = read_cards(root, head, names)
    return {
        "kept": sorted((v.tag, v.commit) for v in kept),
        "stray": sorted((s.tag, s.reason) for s in stray),
        "objects": objects,
        "cards": {
            n: (r.card.status.value, r.card.task.value) if r.card else None
            for n, r in cards.items()
        },
    }


@pytest.mark.parametrize("whole_tree", [1, 10**9])
def test_the_index_is_computed_as_each_card_and_tag_read_alone_would_say(
    reg, monkeypatch, whole_tree
):
    from registry.core.git import TAG_REF_FORMAT
    from registry.versions import index as ix

    main = reg.git("rev-parse", "HEAD")
    # a version whose folder holds a second pointer in a subfolder, and a link named like one
    card = reg.root / "models" / "digits" / "model.yaml"
    reg.write(
        {
            "models/digits/extra/labels.txt.dvc": "outs:\n- md5: "
            + "a" * 32
            + "\n  size: 12\n  hash: md5\n  path: labels.txt\n",
        }
    )
    (reg.root / "models" / "digits" / "link.dvc").symlink_to("model.onnx.dvc")
    card.write_text(card.read_text().replace("version: 1.1.0", "version: 2.0.0"))
    v2 = reg.commit(message="digits 2.0.0")
    reg.git("tag", "-a", "digits@v2.0.0", "-m", "2.0.0", v2)
    # stray tags: on a side branch, on a commit whose card says another version, on an invalid
    # card, and for a model with no folder at its commit
    reg.git("checkout", "-q", "-b", "side", main)
    side = reg.commit({"models/digits/notes.txt": "side\n"}, message="side")
    reg.git("tag", "-a", "digits@v3.0.0", "-m", "side", side)
    reg.git("checkout", "-q", "main")
    reg.git("tag", "-a", "digits@v9.0.0", "-m", "by hand", "HEAD")
    draft = reg.root / "models" / "draft" / "model.yaml"
    draft.write_text(draft.read_text().replace("task: classification", "task: not-a-task"))
    broken = reg.commit(message="broken draft")
    reg.git("tag", "-a", "draft@v0.1.0", "-m", "by hand", broken)
    reg.git("tag", "-a", "ghost@v1.0.0", "-m", "by hand", broken)
    head = reg.git("rev-parse", "HEAD")
    lines = reg.git("for-each-ref", f"--format={TAG_REF_FORMAT}", "refs/tags").splitlines()
    names = ["digits", "draft", "ghost"]
    monkeypatch.setattr(ix, "_WHOLE_TREE", whole_tree)
    entries, rows = ix.compute(reg.root, head, names, lines)
    truth = _truth(reg.root, head, names, lines)
    got_kept = sorted((v["tag"], v["commit"]) for e in entries.values() for v in e.versions)
    assert got_kept == truth["kept"] and ("digits@v2.0.0", v2) in got_kept
    assert (
        sorted((s["tag"], s["reason"]) for e in entries.values() for s in e.stray) == truth["stray"]
    )
    assert {s for s, _ in truth["stray"]} == {
        "digits@v3.0.0",
        "digits@v9.0.0",
        "draft@v0.1.0",
        "ghost@v1.0.0",
    }
    objects = {v["tag"]: v["objects"] for e in entries.values() for v in e.versions}
    assert objects == truth["objects"]
    assert [o["path"] for o in objects["digits@v2.0.0"]] == ["extra/labels.txt", "model.onnx"]
    assert {n: (r.state, r.task) for n, r in rows.items()} == {
        n: c if c else ("invalid", None) for n, c in truth["cards"].items()
    }
    assert rows["draft"].state == "invalid" and "ghost" not in rows


def _both(root, spec: str):
    """(the schema-free resolution, the full path's answer or its error), checked to agree
    whenever the first answers."""
    from registry.core.errors import RegistryError
    from registry.versions import plainresolve, resolve

    try:
        full = resolve._resolve_full(root, resolve.parse_reference(spec))
    except RegistryError as e:
        full = e
    fast = plainresolve.locate(root, spec)
    if fast is not None:
        assert not isinstance(full, RegistryError), (spec, full)
        dumped = full.model_dump()
        assert fast.fields() == {k: dumped[k] for k in fast.fields()}
    return fast, full


def test_latest_resolved_without_the_schema_is_the_full_paths_answer_or_steps_aside(reg, tmp_path):
    for spec in ("digits@latest", "digits", "digits@1.0.0", "digits@v1.1.0"):
        fast, full = _both(reg.root, spec)
        assert fast is not None and fast.version == full.version
    # what the full path refuses, the fast one leaves to it
    for spec in ("draft@latest", "nobody@latest", "digits@2.0.0", "digits@x", "Digits@latest"):
        fast, full = _both(reg.root, spec)
        assert fast is None and isinstance(full, Exception)
    # a withdrawal tagged after the index: the index no longer vouches
    reg.git("tag", "-a", "digits@v1.1.0!#3", "-m", "withdraw", "digits@v1.1.0^{commit}")
    fast, full = _both(reg.root, "digits@latest")
    assert fast is None and full.version == "1.0.0"
    # rebuilt, it vouches again; a stray tag asked for by name is left to the full path's refusal
    reg.git("tag", "-a", "digits@v9.0.0", "-m", "by hand", "HEAD")
    assert reg.registry("index", "rebuild").returncode == 0
    fast, full = _both(reg.root, "digits@latest")
    assert fast.version == "1.0.0" and fast.withdrawn is False
    assert _both(reg.root, "digits@1.1.0")[0].withdrawn_by == "digits@v1.1.0!#3"
    fast, full = _both(reg.root, "digits@9.0.0")
    assert fast is None and "not a published version" in str(full)
    # a card on the default branch that asks for offline, or that is not plain, steps aside
    card = reg.root / "models" / "digits" / "model.yaml"
    text = card.read_text()
    reg.commit({"models/digits/model.yaml": text.replace("status: updated", "status: offline")})
    fast, full = _both(reg.root, "digits@latest")
    assert fast is None and "every version of 'digits' is withdrawn" in str(full)
    reg.commit({"models/digits/model.yaml": text + "notes: |\n  a block, offline\n"})
    assert _both(reg.root, "digits@latest")[0] is None
    reg.commit({"models/digits/model.yaml": text + "notes: |\n  a block\n"})
    assert _both(reg.root, "digits@latest")[0].version == "1.0.0"  # cannot say offline
    reg.commit({"models/digits/model.yaml": text})
    assert _both(reg.root, "digits@latest")[0].version == "1.0.0"
    # no index ref: the tags answer
    saved = reg.git("rev-parse", INDEX_REF)
    reg.git("update-ref", "-d", INDEX_REF)
    fast, full = _both(reg.root, "digits@latest")
    assert fast is None and full.version == "1.0.0"
    reg.git("update-ref", INDEX_REF, saved)


def test_a_shallow_clone_resolves_latest_as_the_full_path_does(reg, tmp_path):
    from registry.core.errors import CardError
    from registry.versions.resolve import find_version

    origin = reg.git("remote", "get-url", "origin")
    clone = tmp_path / "shallow"
    run(["git", "clone", "-q", "--depth", "1", f"file://{origin}", str(clone)], tmp_path)
    run(["git", "fetch", "-q", "--depth", "1", "origin", "+refs/tags/*:refs/tags/*"], clone)
    run(["git", "fetch", "-q", "--depth", "1", "origin", f"+{INDEX_REF}:{INDEX_REF}"], clone)
    from registry.versions.plainresolve import locate

    assert locate(clone, "digits@latest", check_card=False).version == "1.1.0"
    if run(["git", "cat-file", "-e", "digits@v1.1.0^{commit}"], clone, check=False).returncode:
        assert locate(clone, "digits@latest") is None
        with pytest.raises(CardError):
            find_version(clone, "digits@latest")
    else:
        full = find_version(clone, "digits@latest")
        assert locate(clone, "digits@latest").version == full.version


def test_folders_added_or_renamed_after_a_list_are_listed(reg):
    reg.git("status")  # the copied clone's file stats refreshed in git's index
    time.sleep(2.2)  # `models/` settles, so the folders a list finds there are kept
    assert reg.registry("list").returncode == 0
    assert (reg.root / ".git" / "registry" / "models-folders").is_file()
    card = (reg.root / "models" / "draft" / "model.yaml").read_text()
    reg.write({"models/fresh/model.yaml": card.replace("name: draft", "name: fresh")})
    proc = reg.registry("list", "--format", "json")
    assert [r["name"] for r in json.loads(proc.stdout)] == ["digits", "draft", "fresh"]
    time.sleep(2.2)
    assert reg.registry("list").returncode == 0  # kept with `fresh`
    (reg.root / "models" / "fresh").rename(reg.root / "models" / "later")
    proc = reg.registry("list", "--format", "json")
    assert [r["name"] for r in json.loads(proc.stdout)] == ["digits", "draft", "later"]


def test_index_entries_read_by_path_or_from_one_listing_are_the_same(reg, monkeypatch):
    from registry.versions import index as ix

    names = ["digits", "draft", "nobody"]
    by_path = ix.read_models(reg.root, names)
    monkeypatch.setattr(ix, "_WHOLE_TREE", 1)
    listed = ix.read_models(reg.root, names)
    assert {n: e and e.to_json() for n, e in listed.items()} == {
        n: e and e.to_json() for n, e in by_path.items()
    }
    assert [v["version"] for v in listed["digits"].versions] == ["1.0.0", "1.1.0"]
    assert listed["nobody"] is None


def test_an_index_fetched_early_never_overwrites_one_another_publish_pushed_meanwhile(reg):
    """Publish fetches the remote's index while it copies the objects; when another publish pushed
    a newer index in between, the push of the stale one is refused and the index is fetched
    again: the other publish's index is kept."""
    from registry.versions.index import publish_index

    origin = reg.git("remote", "get-url", "origin")
    fetched = reg.git("rev-parse", INDEX_REF).strip()
    tree = reg.git("rev-parse", f"{fetched}^{{tree}}").strip()
    theirs = run(
        ["git", "commit-tree", tree, "-p", fetched, "-m", "another publish"], reg.root
    ).stdout.strip()
    run(["git", "push", "-q", origin, f"{theirs}:{INDEX_REF}"], reg.root)
    publish_index(reg.root, reg.git("rev-parse", "main").strip(), "origin", fetched=True)
    assert run(["git", "ls-remote", origin, INDEX_REF], reg.root).stdout.split()[0] == theirs
    assert reg.git("rev-parse", INDEX_REF).strip() == theirs
