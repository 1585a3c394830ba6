"""The catalog built from real registries: what a visitor of the site and a script reading its JSON
see."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from factories import example_card, mlp_onnx, publish_version, registry_cli, withdraw_version
from registry.catalog.site import STATE_FILE, build_catalog
from registry.core.errors import UsageError


def page(site, name: str) -> str:
    return (site / "models" / name / "index.html").read_text()


def model_json(site, name: str) -> dict:
    return json.loads((site / "models" / name / "model.json").read_text())


def parsed_tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of a page with its attributes, as a browser's parser sees them."""
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = []

        def handle_starttag(self, tag, attrs):
            self.found.append((tag, attrs))

    parser = Tags()
    parser.feed(html)
    return parser.found


def add_published(reg, name: str, *, seed: int, extra: str = "", versions=("1.0.0",)) -> None:
    reg.add_model(name, mlp_onnx(seed), extra=extra)
    for i, v in enumerate(versions):
        publish_version(
            reg, name, v, notes=f"{name} notes {v}", date=f"2026-03-0{i + 1}T10:00:00+00:00"
        )


def test_index_lists_published_models_with_their_facts_and_not_unpublished_ones(
    published_registry, tmp_path
):
    site = tmp_path / "site"

    report = build_catalog(published_registry.root, site)

    assert (report.models, report.live, report.withdrawn) == (1, 1, 0)
    index = (site / "index.html").read_text()
    assert 'href="models/digits/"' in index
    assert "draft" not in index  # unpublished: not listed
    for shown in (
        "updated",
        "1.1.0",
        "classification",
        "demo",
        "Apache-2.0",
        "2026-02-01",
        "accuracy 0.93",
        "Handwritten digits",
    ):
        assert shown in index, shown
    data = json.loads((site / "index.json").read_text())
    assert data["catalog_format"] == 1
    assert data["generated_from"] == published_registry.git("rev-parse", "HEAD")
    [entry] = data["models"]
    assert entry["name"] == "digits" and entry["latest"] == "1.1.0" and entry["versions"] == 2
    assert entry["headline"] == {
        "name": "accuracy",
        "dataset": "digits-test",
        "value": 0.93,
        "unit": None,
        "higher_is_better": None,
    }
    assert entry["json_url"] == "models/digits/model.json"
    assert not (site / "models" / "draft").exists()
    schema = json.loads((site / "catalog.schema.json").read_text())
    import jsonschema

    jsonschema.validate(data, schema["index"])  # the documented schema is the one the files follow
    jsonschema.validate(model_json(site, "digits"), schema["model"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "models": [{"name": "x"}]}, schema["index"])


def test_model_page_has_every_version_with_notes_a_chart_the_graph_and_pull_commands(
    published_registry, tmp_path
):
    site = tmp_path / "site"
    build_catalog(published_registry.root, site)

    html = page(site, "digits")
    assert html.index('id="v1.1.0"') < html.index('id="v1.0.0"')  # newest first
    assert "better weights" in html and "first release" in html
    assert "2026-01-01" in html and "2026-02-01" in html
    assert html.count('<svg class="chart"') == 1 and "accuracy on digits-test" in html
    repo = str(published_registry.root.resolve())
    for cmd in (
        f"registry pull digits@1.1.0 --repo {repo}",
        f"dvc artifacts get {repo} digits --rev v1.1.0",
        "git checkout digits@v1.1.0 &amp;&amp; dvc pull -R models/digits",
    ):
        assert cmd in html, cmd
    # the weights are on the local public remote: picture and summary of the graph
    assert (site / "models" / "digits" / "graph.svg").read_text().startswith("<svg")
    assert "Gemm × 2" in html and "input: float[batch, 8]" in html
    data = model_json(site, "digits")
    assert [v["version"] for v in data["versions"]] == ["1.1.0", "1.0.0"]
    assert [v["state"] for v in data["versions"]] == ["latest", "release"]
    assert data["versions"][0]["notes"] == "better weights"
    assert data["graph"]["available"] and data["graph"]["parameters"] == 195


def test_a_model_whose_weights_are_not_local_says_so(published_registry, tmp_path):
    import shutil

    shutil.rmtree(published_registry.root / ".dvc" / "cache")
    shutil.rmtree(published_registry.storage / "public")
    site = tmp_path / "site"
    build_catalog(published_registry.root, site)

    assert "No graph picture: the weights are not available locally" in page(site, "digits")
    assert not (site / "models" / "digits" / "graph.svg").exists()
    assert model_json(site, "digits")["graph"]["available"] is False


def test_withdrawn_versions_are_marked_and_withdrawn_models_hidden_from_the_index(
    published_registry, tmp_path
):
    reg, site = published_registry, tmp_path / "site"
    withdraw_version(reg, "digits", "1.1.0")
    build_catalog(reg.root, site)

    data = model_json(site, "digits")
    assert data["latest"] == "1.0.0"
    assert (
        data["versions"][0]["state"] == "withdrawn"
        and data["versions"][0]["withdrawn_by"] == "digits@v1.1.0!#1"
    )
    assert "Withdrawn (digits@v1.1.0!#1)" in page(site, "digits")

    card = reg.root / "models" / "digits" / "model.yaml"
    card.write_text(card.read_text().replace("status: updated", "status: offline"))
    reg.commit(message="unpublish digits")
    build_catalog(reg.root, site)

    assert 'href="models/digits/"' not in (site / "index.html").read_text()
    assert 'href="models/digits/"' in (site / "withdrawn.html").read_text()
    [entry] = json.loads((site / "index.json").read_text())["models"]
    assert entry["withdrawn"] is True and entry["state"] == "offline" and entry["latest"] is None
    assert "Every version of digits is withdrawn" in page(site, "digits")


def test_rebuild_after_one_publish_rewrites_only_that_model(published_registry, tmp_path):
    reg, site = published_registry, tmp_path / "site"
    add_published(reg, "wine", seed=7)
    first = build_catalog(reg.root, site)
    assert sorted(first.rewritten) == ["digits", "wine"]
    wine_page = site / "models" / "wine" / "index.html"
    before = wine_page.stat().st_mtime_ns

    publish_version(
        reg,
        "digits",
        "1.2.0",
        weights=mlp_onnx(9),
        notes="even better",
        date="2026-04-01T10:00:00+00:00",
    )
    second = build_catalog(reg.root, site)

    assert second.rewritten == ["digits"]
    assert wine_page.stat().st_mtime_ns == before
    assert "even better" in page(site, "digits")
    assert json.loads((site / "index.json").read_text())["models"][0]["latest"] == "1.2.0"
    assert build_catalog(reg.root, site).rewritten == []
    assert build_catalog(reg.root, site, force=True).rewritten == ["digits", "wine"]

    # a model that is no longer listed loses its pages
    reg.git("tag", "-d", "wine@v1.0.0")
    third = build_catalog(reg.root, site)
    assert third.removed == ["wine"] and not (site / "models" / "wine").exists()
    assert "wine" not in (site / "index.html").read_text()
    assert "wine" not in json.loads((site / STATE_FILE).read_text())["models"]


def files_of(site) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_the_site_is_the_same_bytes_however_it_is_built(published_registry, tmp_path, monkeypatch):
    import registry.catalog.site as site_module

    monkeypatch.setattr(site_module, "CHUNK", 1)  # one model per task: workers render them
    reg = published_registry
    add_published(reg, "wine", seed=7, versions=("1.0.0", "1.1.0"))
    alone, workers = tmp_path / "alone", tmp_path / "workers"
    build_catalog(reg.root, alone, jobs=1)
    build_catalog(reg.root, workers, jobs=2)
    built = files_of(alone)
    assert "models/digits/graph.svg" in built and "models/wine/index.html" in built
    assert files_of(workers) == built

    # over an existing site, a forced rebuild puts back what was damaged and changes nothing else
    (alone / "models" / "digits" / "index.html").write_text("damaged")
    (alone / "models" / "digits" / "graph.svg").unlink()
    (alone / "models" / "wine" / "stray.html").write_text("left alone")
    assert sorted(build_catalog(reg.root, alone, force=True).rewritten) == ["digits", "wine"]
    assert files_of(alone) == {**built, "models/wine/stray.html": b"left alone"}


def test_many_models_are_rendered_by_workers_and_paged_without_javascript(
    registry_repo, tmp_path, monkeypatch
):
    import registry.catalog.site as site_module

    monkeypatch.setattr(site_module, "PAGE_SIZE", 2)
    monkeypatch.setattr(
        site_module, "CHUNK", 1
    )  # one model per task: the worker processes render them
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        add_published(registry_repo, name, seed=i, versions=("1.0.0", "1.1.0"))
    site = tmp_path / "site"
    report = build_catalog(registry_repo.root, site, jobs=2)
    assert sorted(report.rewritten) == ["alpha", "beta", "gamma"]
    assert "gamma notes 1.1.0" in page(site, "gamma") and "alpha notes 1.0.0" in page(site, "alpha")

    first, second = (site / "index.html").read_text(), (site / "list" / "2.html").read_text()
    assert "alpha" in first and "beta" in first and "gamma" not in first
    assert 'href="list/2.html"' in first
    assert (
        "gamma" in second
        and 'href="../index.html"' in second
        and 'href="../models/gamma/"' in second
    )


def test_lineage_links_a_derived_model_and_its_parent(published_registry, tmp_path):
    reg, site = published_registry, tmp_path / "site"
    add_published(reg, "digits-int8", seed=4, extra="derived_from: digits@1.1.0\n")
    build_catalog(reg.root, site)

    assert 'Derived from <a href="../digits/">digits@1.1.0</a>' in page(site, "digits-int8")
    assert 'Variant: <a href="../digits-int8/">digits-int8</a>' in page(site, "digits")
    assert model_json(site, "digits")["lineage"]["variants"] == ["digits-int8"]


def digits_package_index(commit: str):
    """The package index of digits 1.1.0 with one linux-x86_64 package, verified on the device."""
    from registry.packaging.index import PackageEntry, PackageIndex

    return PackageIndex(
        model="digits@1.1.0",
        tag="digits@v1.1.0",
        commit=commit,
        packages={
            "linux-x86_64": PackageEntry(
                target="linux-x86_64",
                file="digits-1.1.0-linux-x86_64.tar.gz",
                md5="0" * 32,
                sha256="1" * 64,
                size=123_456,
                engine="onnxruntime-cpu",
                verified_on_device=True,
            )
        },
    )


def test_device_packages_are_listed_per_target_with_their_pull_command(
    published_registry, tmp_path
):
    from registry.core.storage import Storage
    from registry.packaging.index import index_key

    reg, site = published_registry, tmp_path / "site"
    build_catalog(reg.root, site)
    assert "No device packages were published for 1.1.0" in page(site, "digits")
    commit = reg.git("rev-parse", "digits@v1.1.0^{commit}")
    index = digits_package_index(commit)
    Storage(reg.root).remote("public").write_key(index_key("digits", "1.1.0"), index.dump())

    report = build_catalog(reg.root, site)

    assert report.rewritten == ["digits"]  # a package pushed after the tag changes the page
    html = page(site, "digits")
    assert "linux-x86_64" in html and "onnxruntime-cpu" in html and "on device" in html
    assert f"registry pull digits@1.1.0 --target linux-x86_64 --repo {reg.root.resolve()}" in html
    [pkg] = model_json(site, "digits")["versions"][0]["packages"]
    assert pkg["size"] == 123_456 and pkg["sha256"] == "1" * 64


HOSTILE = (
    """\
description: |
  <script>alert("card")</script> Click [here](javascript:alert(1)) or [there](JaVaScRiPt:alert(2)).
  <img src=x onerror=alert(3)> **bold** and [a real link](https://example.org/docs).

  """
    + "A very long description. " * 2500
    + "\n"
)


def test_a_hostile_card_renders_inert(registry_repo, tmp_path):
    reg, site = registry_repo, tmp_path / "site"
    reg.add_model(
        "evil",
        mlp_onnx(5),
        card=example_card("evil", size=len(mlp_onnx(5)))
        .replace("project: demo", 'project: "<b onmouseover=alert(4)>p</b>"')
        .replace("dataset: digits-test", 'dataset: "<svg onload=alert(5)>"')
        + HOSTILE
        + 'tags: ["</td><script>x</script>"]\n',
    )
    publish_version(
        reg, "evil", "1.0.0", notes='<script>alert("notes")</script> [x](javascript:alert(6))'
    )
    report = build_catalog(reg.root, site)
    assert report.models == 1

    for html in (page(site, "evil"), (site / "index.html").read_text()):
        assert re.findall(r"<script\b[^>]*>", html) == [
            re.search(r'<script src="[./]*static/catalog.js" defer>', html).group(0)
        ]
        tags = parsed_tags(html)
        assert not [
            (t, a) for t, attrs in tags for a, _ in attrs if a.startswith("on")
        ]  # no event handler
        assert not [
            v
            for _, attrs in tags
            for a, v in attrs
            if a in ("href", "src") and "script:" in (v or "").lower()
        ]
        assert [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed")] == (
            ["script"] + (["img"] if 'class="graph"' in html else [])
        )
        assert "Content-Security-Policy" in html
    html = page(site, "evil")
    assert "&lt;script&gt;alert(&#34;card&#34;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#34;notes&#34;)&lt;/script&gt;" in html
    assert (
        '<a href="https://example.org/docs" rel="nofollow noopener noreferrer">a real link</a>'
        in html
    )
    assert "<strong>bold</strong>" in html
    assert "The description is longer than the catalog shows" in html
    assert len(html) < 100_000
    summary = json.loads((site / "index.json").read_text())["models"][0]["summary"]
    assert len(summary) <= 200


def test_cli_builds_and_serves_the_catalog(published_registry, tmp_path, capsys):
    site = tmp_path / "site"
    code, out, err = registry_cli(
        published_registry.root, "catalog", "build", "-o", str(site), capsys=capsys
    )
    assert code == 0, err
    assert (
        "catalog of 1 models (1 published, 0 withdrawn)" in out and "1 model pages written" in out
    )
    code, out, _ = registry_cli(
        published_registry.root,
        "catalog",
        "build",
        "-o",
        str(site),
        "--format",
        "json",
        capsys=capsys,
    )
    assert code == 0 and json.loads(out)["rewritten"] == []

    from catalog.browser import serve_site

    with serve_site(site) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "models/digits/model.json") as r:
            assert (
                r.headers["Content-Type"] == "application/json" and json.load(r)["name"] == "digits"
            )
        with urllib.request.urlopen(url) as r:
            assert b"digits" in r.read()


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    code, _, err = registry_cli(
        tmp_path, "catalog", "build", "-o", str(tmp_path / "site"), capsys=capsys
    )
    assert code == 2 and "error:" in err and "Traceback" not in err
    code, _, err = registry_cli(
        tmp_path, "catalog", "serve", "-d", str(tmp_path / "nothing"), capsys=capsys
    )
    assert code == 2 and "holds no built catalog" in err and "registry catalog build" in err


def test_the_site_cannot_be_built_into_the_models_folder(published_registry):
    with pytest.raises(UsageError, match="inside the registry's models/ folder"):
        build_catalog(published_registry.root, published_registry.root / "models" / "site")


def test_building_the_catalog_imports_no_packaging_compression_or_training(
    published_registry, tmp_path
):
    import subprocess
    import sys

    code = (
        "import sys; from registry.catalog.site import build_catalog; "
        f"build_catalog({str(published_registry.root)!r}, {str(tmp_path / 'site')!r}); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('registry', "
        "'torch'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(proc.stdout.split())
    assert "registry.formats.svg" in loaded  # the weights were local: the graph was drawn
    forbidden = {
        "registry.packaging.build",
        "registry.compression.chain",
        "registry.compression.methods",
        "registry.packaging.targets",
        "registry.packaging.converters",
        "registry.compression.evaluation",
        "torch",
    }
    assert not loaded & forbidden, loaded & forbidden


# --------------------------------------------------------------------------- datasets and tasks


def build_with_training(root, site, **kw):
    from registry.api.catalog import CatalogBuildRequest, build

    return build(CatalogBuildRequest(root=root, output=site, **kw))


def local_links(site, rel: str) -> list[str]:
    """The site-relative targets of a page's local links and pictures, each checked to exist."""
    page_dir = (site / rel).parent
    targets = []
    for _, attrs in parsed_tags((site / rel).read_text()):
        for a, v in attrs:
            if a in ("href", "src") and v and not v.startswith(("http", "#")):
                target = (page_dir / v.split("#")[0]).resolve()
                if v.endswith("/"):
                    target = target / "index.html"
                assert target.is_file(), f"{rel} links to {v}, which is not in the site"
                targets.append(target.relative_to(site.resolve()).as_posix())
    return targets


def test_datasets_and_training_tasks_get_a_page_linking_the_models_they_made(
    published_registry, tmp_path
):
    from catalog.training_files import add_training

    reg, site = published_registry, tmp_path / "site"
    add_training(reg)

    build_with_training(reg.root, site)

    index = local_links(site, "index.html")
    assert "datasets/index.html" in index and "training/index.html" in index
    assert "datasets/digits/index.html" in local_links(site, "datasets/index.html")
    assert "training/digits-cnn/index.html" in local_links(site, "training/index.html")

    task = (site / "training/digits-cnn/index.html").read_text()
    links = local_links(site, "training/digits-cnn/index.html")
    assert "models/digits-cnn/index.html" in links  # the model it made
    assert "datasets/digits/index.html" in links
    assert "training/digits-cnn/structure-digits-cnn.svg" in links  # the structure picture
    picture = (site / "training/digits-cnn/structure-digits-cnn.svg").read_text()
    assert picture.startswith("<svg") and "conv1: Conv2d" in picture and "classifier" in picture
    assert "0.9712 (done, best)" in task  # the base instance's committed results
    assert "no results here" in task  # the grid's instances were not run
    assert "<code>c1=16</code>" in task and "Project</dt><dd>examples" in task

    dataset = (site / "datasets/digits/index.html").read_text()
    links = local_links(site, "datasets/digits/index.html")
    assert {"training/digits-cnn/index.html", "models/digits-cnn/index.html"} <= set(links)
    assert "<code>image</code>: float32, shape [1, 8, 8]" in dataset and "10 classes" in dataset
    assert "CC-BY-4.0" in dataset and "npz" in dataset

    # the model's lineage names the task that made it; a model from elsewhere names none
    assert "training/digits-cnn/index.html" in local_links(site, "models/digits-cnn/index.html")
    assert "Made by the training task" not in page(site, "digits")

    data = json.loads((site / "index.json").read_text())
    assert data["datasets"] == [
        {
            "name": "digits",
            "task": "classification",
            "url": "datasets/digits/",
            "json_url": "datasets/digits/dataset.json",
            "models": ["digits-cnn"],
        }
    ]
    assert [(t["name"], t["models"]) for t in data["tasks"]] == [("digits-cnn", ["digits-cnn"])]
    task_json = json.loads((site / "training/digits-cnn/task.json").read_text())
    base = task_json["instances"][0]
    assert (base["name"], base["dataset"], base["structure"]) == ("base", "digits", "digits-cnn")
    assert base["result"]["value"] == pytest.approx(0.9712) and base["result"]["best"]
    assert task_json["structures"] == {"digits-cnn": "structure-digits-cnn.svg"}
    assert model_json(site, "digits-cnn")["lineage"]["training_task"] == "digits-cnn"
    dataset_json = json.loads((site / "datasets/digits/dataset.json").read_text())
    assert dataset_json["tasks"] == ["digits-cnn"] and dataset_json["input"]["shape"] == [1, 8, 8]
    schema = json.loads((site / "catalog.schema.json").read_text())
    assert {"index", "model", "dataset", "task"} <= set(schema)
    assert "datasets" in schema["index"]["properties"]


def test_a_hostile_dataset_description_renders_inert(published_registry, tmp_path):
    from catalog.training_files import add_training

    reg, site = published_registry, tmp_path / "site"
    add_training(
        reg,
        dataset_description='<script>alert("data")</script> <img src=x onerror=alert(1)> '
        "[x](javascript:alert(2)) [docs](https://example.org/data)",
        model=None,
    )
    text = (reg.root / "datasets/digits/dataset.yaml").read_text()
    reg.commit(
        {"datasets/digits/dataset.yaml": text.replace("source: https", "source: javascript:x//")}
    )

    build_with_training(reg.root, site)

    html = (site / "datasets/digits/index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="../../static/catalog.js" defer>']
    tags = parsed_tags(html)
    assert not [a for _, attrs in tags for a, _ in attrs if a.startswith("on")]
    assert not [
        v
        for _, attrs in tags
        for a, v in attrs
        if a in ("href", "src") and ":" in (v or "") and not v.startswith("https://")
    ]
    assert "img" not in [t for t, _ in tags]
    assert "&lt;script&gt;alert(&#34;data&#34;)&lt;/script&gt;" in html
    assert '<a href="https://example.org/data" rel="nofollow noopener noreferrer">docs</a>' in html
    assert "<dt>Source</dt><dd>javascript:x//" in html  # shown as text, not a link


def test_rebuild_rewrites_only_the_training_pages_whose_files_changed(published_registry, tmp_path):
    from catalog.training_files import add_training

    reg, site = published_registry, tmp_path / "site"
    add_training(reg)
    build_with_training(reg.root, site)
    pages = {
        rel: (site / rel).stat().st_mtime_ns
        for rel in (
            "datasets/digits/index.html",
            "datasets/digits/dataset.json",
            "training/digits-cnn/index.html",
            "training/digits-cnn/structure-digits-cnn.svg",
        )
    }

    again = build_with_training(reg.root, site)
    assert again.files_written == 0 and again.rewritten == []
    assert {rel: (site / rel).stat().st_mtime_ns for rel in pages} == pages

    task = reg.root / "training/digits-cnn/task.yaml"
    task.write_text(task.read_text().replace("description: Handwritten", "description: Small"))
    reg.commit(message="describe the task")
    build_with_training(reg.root, site)

    now = {rel: (site / rel).stat().st_mtime_ns for rel in pages}
    assert now["training/digits-cnn/index.html"] != pages["training/digits-cnn/index.html"]
    assert "Small digit classifier" in (site / "training/digits-cnn/index.html").read_text()
    for unchanged in ("datasets/digits/index.html", "datasets/digits/dataset.json"):
        assert now[unchanged] == pages[unchanged]
    assert (
        now["training/digits-cnn/structure-digits-cnn.svg"]
        == pages["training/digits-cnn/structure-digits-cnn.svg"]
    )

    # a task that is gone loses its pages, and the model it made its link
    reg.git("rm", "-q", "-r", "training/digits-cnn/task.yaml")
    reg.commit(message="drop the task")
    build_with_training(reg.root, site)
    assert not (site / "training/digits-cnn").exists()
    assert "digits-cnn" not in (site / "training/index.html").read_text()
    # the model it made still names it, without a link that would lead nowhere
    local_links(site, "models/digits-cnn/index.html")
    assert "<code>training/digits-cnn</code> (not in the registry" in page(site, "digits-cnn")


def test_a_rebuild_removes_what_the_registry_no_longer_has(published_registry, tmp_path):
    from catalog.training_files import add_training

    reg, site = published_registry, tmp_path / "site"
    add_training(reg)
    add_published(reg, "wine", seed=7)
    build_with_training(reg.root, site)
    task = site / "training" / "digits-cnn"
    assert (task / "structure-digits-cnn.svg").is_file()

    # the task now uses another structure: the old picture goes, the new one comes
    structure = (reg.root / "training/structures/digits-cnn.yaml").read_text()
    task_file = reg.root / "training/digits-cnn/task.yaml"
    reg.commit(
        {
            "training/structures/digits-cnn-wide.yaml": structure.replace(
                "name: digits-cnn", "name: digits-cnn-wide"
            ),
            "training/digits-cnn/task.yaml": task_file.read_text().replace(
                "structure: digits-cnn", "structure: digits-cnn-wide"
            ),
        },
        message="a wider structure",
    )
    build_with_training(reg.root, site)
    assert sorted(p.name for p in task.glob("*.svg")) == ["structure-digits-cnn-wide.svg"]
    assert local_links(site, "training/digits-cnn/index.html")

    # a model no longer listed loses its pages even when the last build's manifest is gone
    (site / STATE_FILE).unlink()
    reg.git("tag", "-d", "wine@v1.0.0")
    report = build_with_training(reg.root, site)
    assert report.removed == ["wine"] and not (site / "models" / "wine").exists()
    assert "wine" not in (site / "index.html").read_text()

    # ... and when a forced build ignores it
    (site / "models" / "gone").mkdir()
    (site / "models" / "gone" / "index.html").write_text("an old page")
    assert build_with_training(reg.root, site, force=True).removed == ["gone"]
    assert not (site / "models" / "gone").exists()


def test_a_rebuild_reads_the_public_remote_without_dvc_until_its_configuration_changes(
    published_registry, tmp_path
):
    import shutil
    import subprocess
    import sys

    from registry.packaging.index import index_key

    reg, site = published_registry, tmp_path / "site"
    build_catalog(reg.root, site)
    shutil.rmtree(reg.root / ".dvc" / "cache")  # the weights are left in the public remote only
    (site / "models" / "digits" / "graph.svg").unlink()
    code = (
        "import sys; from registry.catalog.site import build_catalog; "
        f"r = build_catalog({str(reg.root)!r}, {str(site)!r}, force=True); "
        "print(r.rewritten, 'dvc' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["['digits']", "False"]
    assert (site / "models" / "digits" / "graph.svg").is_file()

    # the public remote moves, and a package index appears there: the next build follows
    moved = reg.storage / "public-moved"
    shutil.move(reg.storage / "public", moved)
    config = reg.root / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(reg.storage / "public"), str(moved)))
    index = digits_package_index(reg.git("rev-parse", "digits@v1.1.0^{commit}"))
    (moved / index_key("digits", "1.1.0")).parent.mkdir(parents=True)
    (moved / index_key("digits", "1.1.0")).write_bytes(index.dump())
    assert build_catalog(reg.root, site).rewritten == ["digits"]
    assert "onnxruntime-cpu" in page(site, "digits")


# --------------------------------------------------------------------------- the registry index


def site_files(site) -> dict[str, bytes]:
    """The site as a visitor or a script gets it (the build's own manifest left out)."""
    return {
        rel: data for rel, data in files_of(site).items() if not rel.startswith(".catalog-state.")
    }


def test_the_catalog_reads_versions_from_the_registry_index_and_shows_what_the_tags_say(
    published_registry, tmp_path, monkeypatch
):
    from registry.versions import index

    reg = published_registry
    add_published(reg, "wine", seed=7, versions=("1.0.0", "1.1.0"))
    withdraw_version(reg, "wine", "1.1.0")
    from_tags = tmp_path / "from-tags"
    build_catalog(reg.root, from_tags)

    index.sync(reg.root, rebuild=True)
    read = []
    versions_of = index.versions_of
    monkeypatch.setattr(index, "versions_of", lambda e: read.append(e.name) or versions_of(e))
    from_index = tmp_path / "from-index"
    build_catalog(reg.root, from_index, jobs=1)

    assert sorted(read) == ["digits", "wine"]  # every listed model's versions came from the index
    assert site_files(from_index) == site_files(from_tags)
    assert model_json(from_index, "wine")["latest"] == "1.0.0"


def test_a_stale_registry_index_still_gives_the_versions_the_tags_say(published_registry, tmp_path):
    from registry.versions import index

    reg = published_registry
    index.sync(reg.root, rebuild=True)
    # published after the index was written: its tag is not in the index
    publish_version(reg, "digits", "1.2.0", notes="newer", date="2026-04-01T10:00:00+00:00")
    # and a tag made by hand on a commit whose card says another version: never a version
    reg.git("tag", "-a", "digits@v9.0.0", "-m", "by hand")
    site = tmp_path / "site"
    build_catalog(reg.root, site)

    digits = model_json(site, "digits")
    assert digits["latest"] == "1.2.0"
    assert [v["version"] for v in digits["versions"]] == ["1.2.0", "1.1.0", "1.0.0"]
    assert "newer" in page(site, "digits") and "9.0.0" not in page(site, "digits")

    # the same site as with an index brought up to date, and as with none
    index.sync(reg.root, rebuild=True)
    current, none = tmp_path / "current", tmp_path / "none"
    build_catalog(reg.root, current)
    reg.git("update-ref", "-d", index.INDEX_REF)
    build_catalog(reg.root, none)
    assert site_files(current) == site_files(site) == site_files(none)
