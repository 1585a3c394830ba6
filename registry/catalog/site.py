"""Building the site: model pages, index pages, static JSON, incrementally.

`build_catalog` scans the registry (`collect.scan_registry`), works out which models' inputs
changed since the last build from a manifest of content hashes kept in the output folder
(`.catalog-state.json`), renders and writes only those models' pages and JSON (in worker
processes when there are many), removes the pages of models no longer listed, and rewrites the
shared files (index pages, `index.json`, the search index) only where their bytes changed.

Everything is rendered by Jinja templates with autoescaping on; card text reaches a page only
escaped or through the safe Markdown renderer, and every page carries a Content-Security-Policy
that allows the site's own script and style and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, Field

from registry import __version__
from registry.cards.schema import format_size
from registry.catalog import CATALOG_FORMAT
from registry.catalog.charts import metric_series, render_chart
from registry.catalog.collect import (
    RegistryScan,
    catalog_model,
    fingerprint,
    read_models,
    scan_registry,
)
from registry.catalog.markdown import plain_summary, render_markdown
from registry.catalog.records import (
    CatalogDataset,
    CatalogIndex,
    CatalogModel,
    CatalogTask,
    IndexEntry,
    PageLink,
    TrainingCatalog,
)
from registry.catalog.versionlist import day, versions_html
from registry.core.errors import UsageError
from registry.core.files import write_atomic

PAGE_SIZE = 100  # models per index page
STATE_FILE = ".catalog-state.json"
ROWS_FILE = (
    ".catalog-state.rows"  # the listed models' index entries and search rows (`_save_state`)
)
SEARCH_FIELDS = [
    "name",
    "state",
    "withdrawn",
    "latest",
    "date",
    "task",
    "project",
    "owners",
    "license",
    "tags",
    "metric",
    "metric_value",
    "metric_dataset",
    "summary",
]
CHUNK = 200  # models per task handed to a worker process


class BuildReport(BaseModel):
    """What `registry catalog build` did."""

    output: str = Field(description="the site's folder")
    models: int = Field(description="models listed (withdrawn included)")
    live: int = Field(description="models with a live version (listed on the index pages)")
    withdrawn: int
    datasets: int = Field(0, description="datasets given a page")
    tasks: int = Field(0, description="training tasks given a page")
    rewritten: list[str] = Field(
        default_factory=list, description="models whose page and JSON were written"
    )
    removed: list[str] = Field(default_factory=list, description="models whose pages were removed")
    files_written: int = Field(0, description="shared files (index pages, JSON, assets) written")
    index_bytes: int = Field(0, description="size of index.html")
    seconds: float = 0.0


# --------------------------------------------------------------------------- templates


@functools.cache
def _environment():
    import jinja2

    try:  # templates compiled once for this code, kept in Jinja's private folder in the temp one
        compiled = jinja2.FileSystemBytecodeCache(
            pattern=f"registry-catalog-{_code_key()[:16]}-%s.cache"
        )
    except (OSError, RuntimeError):  # no safe folder: compile them each time
        compiled = None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("registry.catalog", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=compiled,
        auto_reload=False,  # the templates are package data: they do not change during a build
    )
    env.filters["md"] = render_markdown
    env.filters["size"] = format_size
    env.filters["day"] = day
    env.filters["num"] = lambda v: "–" if v is None else f"{v:.4g}"
    env.filters["weblink"] = lambda url: (
        url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    )
    return env


def _assets() -> dict[str, bytes]:
    """The static files shipped with the package: name -> bytes."""
    folder = resources.files("registry.catalog") / "static"
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.is_file() and not p.name.startswith(".")
    }


@functools.cache
def _code_key() -> str:
    """A hash of what makes the pages: templates, assets, the package's code, the registry's and
    Jinja's versions."""
    import jinja2

    h = hashlib.sha256(f"{CATALOG_FORMAT}\0{__version__}\0{jinja2.__version__}".encode())
    folder = resources.files("registry.catalog")
    for sub in ("templates", "static"):
        for p in sorted((folder / sub).iterdir(), key=lambda p: p.name):
            if p.is_file():
                h.update(p.name.encode() + b"\0" + p.read_bytes())
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if p.name.endswith(".py"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _settings_key(repo_url: str, packages: bool, tasks: frozenset[str] = frozenset()) -> str:
    """A hash of what every page depends on besides its model: the code that makes it, options,
    and the training tasks that have a page (a model's lineage links to its task's only then)."""
    names = "\0".join(sorted(tasks))
    return hashlib.sha256(f"{_code_key()}\0{repo_url}\0{packages}\0{names}".encode()).hexdigest()


# --------------------------------------------------------------------------- one model


def entry_of(model: CatalogModel) -> IndexEntry:
    """A model's row in the index."""
    return IndexEntry(
        name=model.name,
        state=model.state,
        withdrawn=model.withdrawn,
        latest=model.latest,
        versions=len(model.versions),
        date=model.date,
        task=model.task,
        project=model.project,
        owners=model.owners,
        license=model.license,
        tags=model.tags,
        headline=model.headline,
        summary=plain_summary(model.description),
        url=f"models/{model.name}/",
        json_url=f"models/{model.name}/model.json",
    )


class Listed(NamedTuple):
    """A listed model as the shared files and the manifest know it: its content hash, what the
    index pages sort and filter by, and its `index.json` entry and search row as JSON text.

    `index.json` and the search index are these texts joined, so the models an incremental build
    does not render cost it no JSON work, and the manifest keeps them as text.
    """

    key: str
    withdrawn: bool
    state: str
    task: str | None
    project: str | None
    license: str | None
    training: str | None  # the training task that made it
    entry: str
    search_row: str


def _json(data) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _listed(key: str, entry: dict, training: str | None) -> Listed:
    """A rendered model's `Listed` from its index entry (`IndexEntry` as plain data)."""
    e, h = entry, entry["headline"]
    row = [
        e["name"],
        e["state"],
        e["withdrawn"],
        e["latest"],
        (e["date"] or "")[:10] or None,
        e["task"],
        e["project"],
        e["owners"],
        e["license"],
        e["tags"],
        *((h["name"], h["value"], h["dataset"]) if h else (None, None, None)),
        e["summary"],
    ]
    return Listed(
        key,
        e["withdrawn"],
        e["state"],
        e["task"],
        e["project"],
        e["license"],
        training,
        _json(e),
        _json(row),
    )


def render_model_page(model: CatalogModel, tasks: frozenset[str] = frozenset()) -> str:
    """The HTML of a model's page; `tasks` are the training tasks that have a page."""
    charts = [
        (s, render_chart(s), ", ".join([f"v{ver} {value:.4g}" for ver, value in s.points]))
        for s in metric_series(model.versions)
    ]
    latest = model.latest
    current = next((v for v in model.versions if v.version == latest), None) if latest else None
    return (
        _environment()
        .get_template("model.html.j2")
        .render(
            m=model,
            current=current,
            charts=charts,
            versions=versions_html(model),
            root="../../",
            tasks=tasks,
        )
    )


@dataclass
class _Build:
    """What rendering a model needs besides its name (worker processes inherit it)."""

    scan: RegistryScan
    variants: dict[str, list[str]]  # model -> the models derived from it
    keys: dict[str, str]  # model -> content hash (`collect.fingerprint`)
    out: Path
    tasks: frozenset[str] = frozenset()  # training tasks that have a page


def _render_models(build: _Build, names: list[str]) -> list[tuple[str, Listed]]:
    """Read, render and write the pages and JSON of some models; returns (name, `Listed`) of
    each (models without an annotated version tag have none)."""
    results = []
    models_dir = os.path.join(build.out, "models")
    for src in read_models(build.scan, names, build.variants):
        model, svg = catalog_model(src)
        files = {
            "index.html": render_model_page(model, build.tasks).encode(),
            "model.json": model.model_dump_json().encode(),
        }
        if svg:
            files["graph.svg"] = svg.encode()
        folder = os.path.join(models_dir, model.name)
        try:
            os.mkdir(folder)
        except FileExistsError:  # pages from an earlier build: replace only what changed
            for name, data in files.items():
                _write_if_changed(Path(folder, name), data)
            if not svg:
                Path(folder, "graph.svg").unlink(missing_ok=True)
        else:
            # a folder this build made holds nothing a reader could be shown half-written, and
            # an interrupted build leaves no manifest that names it: plain writes are enough
            for name, data in files.items():
                _write_new(os.path.join(folder, name), data)
        entry = entry_of(model).model_dump(mode="json")
        listed = _listed(build.keys[model.name], entry, model.lineage.training_task)
        results.append((model.name, listed))
    return results


_NEW_FILE = (
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def _write_new(path: str, data: bytes) -> None:
    """Write a file with plain system calls (open, write, close): a buffered file object costs a
    few more per file, and a full build writes tens of thousands."""
    fd = os.open(path, _NEW_FILE, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write a file (atomically, its folder created) unless it already holds these bytes."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_atomic(path, data)
    return True


# --------------------------------------------------------------------------- the build


def _workers(jobs: int | None) -> int:
    if jobs:
        return max(1, jobs)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_inherited: _Build | None = None  # in a worker process: the build it works for


def _start_worker(build: _Build) -> None:
    global _inherited
    _inherited = build
    gc.freeze()  # what it inherited stays as it is (`_few_collections` in the parent)


@contextlib.contextmanager
def _few_collections():
    """Let the cyclic garbage collector run rarely during a build: the build makes millions of
    short-lived objects that reference counting frees (a collection finds almost nothing, and
    each full one walks every object the build holds), and what existed before is moved out of
    its reach (`gc.freeze`). The collector's settings are restored after."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _render_chunk(names: list[str]) -> list[tuple[str, Listed]]:
    """`_render_models` in a worker process: only the names travel, the rest was inherited."""
    return _render_models(_inherited, names)


def _render_all(build: _Build, names: list[str], jobs: int) -> list[tuple[str, Listed]]:
    chunks = [names[i : i + CHUNK] for i in range(0, len(names), CHUNK)]
    if jobs <= 1 or len(chunks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [r for chunk in chunks for r in _render_models(build, chunk)]
    # what the workers share is read before they start, and inherited rather than sent to them
    build.scan.history()
    _environment().get_template("model.html.j2")
    results = []
    with multiprocessing.get_context("fork").Pool(jobs, _start_worker, (build,)) as pool:
        for part in pool.imap(_render_chunk, chunks):
            results += part
    return results


def _save_state(
    out: Path,
    settings: str,
    pages: dict[str, str],
    models: dict[str, Listed],
    scan: RegistryScan,
) -> None:
    """Write the manifest: the index page hashes, per model its hash and facts, and what the next
    scan may reuse (`collect.scan_registry`): where the public remote was found and the cards
    seen. The models' entries and search rows go beside it (`ROWS_FILE`), one line per model as
    they are, JSON text that holds no tab or line break: read back without decoding them, they
    cost a fraction of the same texts as JSON strings; the manifest names their hash."""
    rows = "".join(f"{m.entry}\t{m.search_row}\n" for m in models.values()).encode()
    write_atomic(out / ROWS_FILE, rows)
    state = {
        "catalog_format": CATALOG_FORMAT,
        "settings": settings,
        "public_remote": scan.public_remote,
        "code": _code_key(),
        "cards": "\n".join(
            f"{n}\t{key}\t{parent or ''}" for n, (key, parent) in scan.cards.items()
        ),
        "pages": pages,
        "models": {name: m[:7] for name, m in models.items()},
        "rows": hashlib.sha1(rows).hexdigest(),
    }
    write_atomic(out / STATE_FILE, _json(state).encode())


def _known_cards(state: dict) -> dict[str, tuple[str, str | None]]:
    """The cards the last build saw (`RegistryScan.cards`), when the same code read them."""
    text = state.get("cards")
    if state.get("code") != _code_key() or not isinstance(text, str):
        return {}
    known = {}
    for line in text.split("\n"):
        fields = line.split("\t")
        if len(fields) == 3:
            known[fields[0]] = (fields[1], fields[2] or None)
    return known


def _read_state(out: Path) -> dict:
    """The manifest of the last build into `out` as it was written ({} when there is none)."""
    try:
        state = json.loads((out / STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _load_state(out: Path, state: dict, settings: str) -> tuple[dict[str, Listed], dict[str, str]]:
    """The listed models and index page hashes of the last build into `out` (its manifest
    `state`), when it was made with the same settings (else nothing: every page is rendered)."""
    try:
        if state["settings"] != settings:
            return {}, {}
        models = state["models"]
        data = (out / ROWS_FILE).read_bytes()
        if hashlib.sha1(data).hexdigest() != state["rows"]:
            return {}, {}
        lines = data.decode().split("\n")[:-1]
        if len(models) != len(lines):
            return {}, {}
        listed = {
            name: Listed(*facts, *line.split("\t"))
            for (name, facts), line in zip(models.items(), lines)
        }
        return listed, dict(state["pages"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, {}


def build_catalog(
    root: str | Path,
    out: str | Path,
    *,
    repo_url: str | None = None,
    packages: bool = True,
    force: bool = False,
    jobs: int | None = None,
    training: TrainingCatalog | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> BuildReport:
    """Build (or bring up to date) the static catalog of a registry clone in `out`.

    Args:
        root: a clone of the registry (its working tree is what is published).
        out: the site's folder (created; files of models no longer listed are removed).
        repo_url: the registry's git URL for the pull commands (default: the clone's origin).
        packages: read the device package indexes from the public remote.
        force: rebuild every model's page, ignoring the manifest of the last build.
        jobs: worker processes for model pages (default: the CPUs this process may use).
        training: the datasets and training tasks to give a page each (the API reads them from
            the clone); None: no such pages.
        log: called with a line of progress now and then.

    Raises:
        UsageError: `root` is not a clone, or `out` is a file or lies inside `models/`.
        StorageError: the public remote cannot be read (pass packages=False to build without it).
    """
    with _few_collections():
        return _build(root, out, repo_url, packages, force, jobs, training, log)


def _build(
    root: str | Path,
    out: str | Path,
    repo_url: str | None,
    packages: bool,
    force: bool,
    jobs: int | None,
    training: TrainingCatalog | None,
    log: Callable[[str], None],
) -> BuildReport:
    """`build_catalog`."""
    started = time.perf_counter()
    root, out = Path(root), Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"{out} is a file, not a folder", "give a folder for the site, e.g. -o site/"
        )
    state = _read_state(out) if out.is_dir() else {}
    known_remote = state.get("public_remote")
    scan = scan_registry(
        root,
        repo_url=repo_url,
        packages=packages,
        public_remote=known_remote if isinstance(known_remote, dict) else None,
        known_cards=_known_cards(state),
    )
    if out.resolve().is_relative_to((root / "models").resolve()):
        raise UsageError(
            f"{out} is inside the registry's models/ folder",
            "build the site somewhere else, e.g. -o site/",
        )
    out.mkdir(parents=True, exist_ok=True)
    training = training or TrainingCatalog()
    tasks = frozenset(t.name for t in training.tasks)
    settings = _settings_key(scan.repo_url, packages, tasks)
    previous, previous_pages = ({}, {}) if force else _load_state(out, state, settings)
    listed = scan.listed()
    listed_set = set(listed)
    variants: dict[str, list[str]] = {}
    for child, parent in sorted(scan.parents().items()):
        if child in listed_set:
            variants.setdefault(parent, []).append(child)
    keys = {n: fingerprint(scan, n, variants.get(n, []), settings) for n in listed}
    (out / "models").mkdir(exist_ok=True)
    pages_dir = f"{out}/models"
    known = {
        n: previous[n]
        for n in listed
        if n in previous
        and previous[n].key == keys[n]
        and os.path.isfile(f"{pages_dir}/{n}/index.html")
    }
    changed = [n for n in listed if n not in known]
    log(f"{len(listed)} models listed, {len(changed)} to render")
    known.update(_render_all(_Build(scan, variants, keys, out, tasks), changed, _workers(jobs)))
    empty = [n for n in changed if n not in known]  # its tags are not versions
    if empty:
        listed = [n for n in listed if n in known]
        listed_set -= set(empty)
        changed = [n for n in changed if n in known]
    removed = _remove_unlisted(out / "models", set(previous), listed_set)
    models = {n: known[n] for n in listed}
    training = _link_models(training, models)
    written, pages = _write_shared(out, models, scan, previous_pages, training)
    written += _write_training(out, training, settings, previous_pages, pages)
    _save_state(out, settings, pages, models, scan)
    live = sum(not m.withdrawn for m in models.values())
    return BuildReport(
        output=str(out),
        models=len(models),
        live=live,
        withdrawn=len(models) - live,
        datasets=len(training.datasets),
        tasks=len(training.tasks),
        rewritten=changed,
        removed=removed,
        files_written=written,
        index_bytes=(out / "index.html").stat().st_size,
        seconds=round(time.perf_counter() - started, 3),
    )


def _remove_unlisted(folder: Path, previous: set[str], listed: set[str]) -> list[str]:
    """Remove the pages of models no longer listed: those the last build's manifest names and any
    other model folder left in the site (an earlier build whose manifest was lost or ignored).
    Returns their names, sorted."""
    try:
        with os.scandir(folder) as entries:
            present = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        present = set()
    removed = sorted((previous | present) - listed)
    for name in removed:
        shutil.rmtree(folder / name, ignore_errors=True)
    return removed


def _write_shared(
    out: Path,
    models: dict[str, Listed],
    scan: RegistryScan,
    previous: dict[str, str],
    training: TrainingCatalog,
) -> tuple[int, dict[str, str]]:
    """Index pages, withdrawn page, index.json, search index, schema and assets.

    An index page is rendered only when the hash of what it shows (its models' hashes, the counts
    and the filter choices) differs from `previous` (page path -> hash) or the file is missing.
    Returns (files written, the hashes of the index pages now).
    """
    env = _environment()
    live = [n for n, m in models.items() if not m.withdrawn]
    gone = [n for n, m in models.items() if m.withdrawn]
    rows = models.values()
    facets = {
        "tasks": sorted({m.task for m in rows if m.task}),
        "projects": sorted({m.project for m in rows if m.project}),
        "licenses": sorted({m.license for m in rows if m.license}),
        "states": sorted({m.state for m in rows}),
    }
    count = max(1, -(-len(live) // PAGE_SIZE))
    common = {
        "pages": count,
        "live_count": len(live),
        "withdrawn_count": len(gone),
        "facets": facets,
    }
    listing = env.get_template("index.html.j2")
    files: dict[Path, bytes] = {}
    hashes: dict[str, str] = {}
    plans = [
        (
            out / "index.html" if n == 1 else out / "list" / f"{n}.html",
            live[(n - 1) * PAGE_SIZE : n * PAGE_SIZE],
            {"page": n, "root": "" if n == 1 else "../", "withdrawn_page": False},
        )
        for n in range(1, count + 1)
    ]
    plans.append(
        (out / "withdrawn.html", gone, {"page": 1, "root": "", "withdrawn_page": True, "pages": 1})
    )
    for path, names, context in plans:
        context = {**common, **context}
        rel = path.relative_to(out).as_posix()
        digest = hashlib.sha256(
            (json.dumps(context, sort_keys=True) + "".join(models[n].key for n in names)).encode()
        ).hexdigest()
        hashes[rel] = digest
        if previous.get(rel) != digest or not path.is_file():
            entries = [json.loads(models[n].entry) for n in names]
            files[path] = listing.render(entries=entries, **context).encode()
    # each file is its JSON with an empty list, cut after the list's "[", and the models' texts
    head = _json(
        {
            "catalog_format": CATALOG_FORMAT,
            "generated_from": scan.commit,
            "repository": scan.repo_url,
            "datasets": [
                PageLink(
                    name=d.name,
                    task=d.task,
                    url=f"datasets/{d.name}/",
                    json_url=f"datasets/{d.name}/dataset.json",
                    models=d.models,
                ).model_dump(mode="json")
                for d in training.datasets
            ],
            "tasks": [
                PageLink(
                    name=t.name,
                    task=t.task,
                    url=f"training/{t.name}/",
                    json_url=f"training/{t.name}/task.json",
                    models=t.models,
                ).model_dump(mode="json")
                for t in training.tasks
            ],
            "models": [],
        }
    )[:-2]
    files[out / "index.json"] = f"{head}{','.join(m.entry for m in rows)}]}}\n".encode()
    head = _json({"catalog_format": CATALOG_FORMAT, "fields": SEARCH_FIELDS, "rows": []})[:-2]
    files[out / "search-index.json"] = f"{head}{','.join(m.search_row for m in rows)}]}}".encode()
    files[out / "catalog.schema.json"] = (json.dumps(catalog_schema(), indent=1) + "\n").encode()
    for name, data in _assets().items():
        files[out / "static" / name] = data
    files[out / ".nojekyll"] = b""  # GitHub Pages: serve the files as they are
    written = sum(_write_if_changed(p, d) for p, d in files.items())
    stale = out / "list"
    if stale.is_dir():
        for p in stale.glob("*.html"):
            if p.relative_to(out).as_posix() not in hashes:
                p.unlink()
    return written, hashes


def catalog_schema() -> dict:
    """The JSON Schema of `index.json`, `models/<name>/model.json`, `datasets/<name>/dataset.json`
    and `training/<task>/task.json` (`catalog.schema.json`)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Model catalog, format {CATALOG_FORMAT}",
        "index": CatalogIndex.model_json_schema(),
        "model": CatalogModel.model_json_schema(),
        "dataset": CatalogDataset.model_json_schema(),
        "task": CatalogTask.model_json_schema(),
    }


# --------------------------------------------------------------------------- datasets and tasks


def _link_models(training: TrainingCatalog, models: dict[str, Listed]) -> TrainingCatalog:
    """The training records with the listed models each task made, and each dataset's tasks and
    models (through the tasks whose instances use it)."""
    made: dict[str, list[str]] = {}
    for name, m in models.items():
        if m.training:
            made.setdefault(m.training, []).append(name)
    tasks = [t.model_copy(update={"models": sorted(made.get(t.name, []))}) for t in training.tasks]
    datasets = []
    for d in training.datasets:
        users = [t for t in tasks if any(i.dataset == d.name for i in t.instances)]
        datasets.append(
            d.model_copy(
                update={
                    "tasks": [t.name for t in users],
                    "models": sorted({m for t in users for m in t.models}),
                }
            )
        )
    return training.model_copy(update={"tasks": tasks, "datasets": datasets})


def _write_training(
    out: Path,
    training: TrainingCatalog,
    settings: str,
    previous: dict[str, str],
    pages: dict[str, str],
) -> int:
    """A page and a JSON per dataset and training task, their two list pages, and each task's
    structure pictures; removes those of datasets and tasks no longer there.

    A page is rendered only when the hash of its data differs from the last build's (`previous`,
    page path -> hash, which `pages` receives) or the file is missing.
    """
    env = _environment()
    plans: list[tuple[str, str, dict, dict[str, bytes]]] = []
    for d in training.datasets:
        data = d.model_dump(mode="json")
        plans.append(
            (f"datasets/{d.name}", "dataset.html.j2", {"d": d}, {"dataset.json": _dumps(data)})
        )
    for t in training.tasks:
        files = {"task.json": _dumps(t.model_dump(mode="json"))}
        for structure, picture in t.structures.items():
            if picture:
                files[picture] = training.pictures[structure].encode()
        plans.append((f"training/{t.name}", "task.html.j2", {"t": t}, files))
    listing = {"datasets": training.datasets, "tasks": training.tasks}
    plans.append(("datasets", "datasets.html.j2", listing, {}))
    plans.append(("training", "tasks.html.j2", listing, {}))
    written = 0
    for folder, template, context, files in plans:
        rel = f"{folder}/index.html"
        digest = hashlib.sha256(
            b"\0".join([settings.encode(), template.encode(), *files.values()])
            + _json(
                {k: [x.model_dump(mode="json") for x in v] for k, v in context.items()}
                if folder in ("datasets", "training")
                else next(iter(context.values())).model_dump(mode="json")
            ).encode()
        ).hexdigest()
        pages[rel] = digest
        path = out / rel
        if previous.get(rel) != digest or not path.is_file():
            root = "../" * (folder.count("/") + 1)
            html = env.get_template(template).render(root=root, **context)
            written += _write_if_changed(path, html.encode())
            for name, data in files.items():
                written += _write_if_changed(out / folder / name, data)
        if template == "task.html.j2":  # pictures of structures the task no longer uses
            for p in (out / folder).glob("structure-*.svg"):
                if p.name not in files:
                    p.unlink()
    for kind, names in (
        ("datasets", {d.name for d in training.datasets}),
        ("training", {t.name for t in training.tasks}),
    ):
        folder = out / kind
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_dir() and p.name not in names:
                    shutil.rmtree(p, ignore_errors=True)
    return written


def _dumps(data) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()
