"""How fast the catalog builds on a large registry, and how big its index page is.

Generates a registry of N models with V published versions each (10,000 × 10 by default) with
`git fast-import`: V commits that each set every card to the next version, and one annotated tag
per version whose message is release notes, as `registry publish` writes them; 2% of the models
are unpublished in the last round (status offline, no new version), 5% derive from another model.
Then it writes the registry index as publish keeps it, and measures, with the real command line:

- a full build of the catalog into an empty folder (`registry catalog build -o site`);
- an incremental build after one more version of one model is published;
- the bytes of `index.html` a browser transfers before search is used (raw and gzip-compressed);
- with `--browser` (Debian's chromium and the playwright package), the time a search takes in the
  browser once the search index is loaded.

    python benchmarks/catalog_bench.py                      # 10,000 × 10, prints the figures
    python benchmarks/catalog_bench.py --write-docs         # ... and puts them in
    docs/benchmarks.md
    python benchmarks/catalog_bench.py --models 1000 --versions 5
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # benchmarks/bench_common.py, beside this script

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
TASKS = ["classification", "detection", "segmentation", "embedding", "ocr", "text-classification"]
LICENSES = ["Apache-2.0", "MIT", "BSD-3-Clause", "CC-BY-4.0"]
WORDS = [
    "edge",
    "fast",
    "small",
    "robust",
    "multilingual",
    "int8",
    "vision",
    "audio",
    "text",
    "retail",
    "warehouse",
    "medical",
    "drone",
    "traffic",
    "face",
    "document",
    "invoice",
    "speech",
    "keyword",
    "anomaly",
    "defect",
    "satellite",
    "crop",
    "weather",
]
BASE_TS = 1_767_225_600  # 2026-01-01


def card(i: int, v: int, rng: random.Random, offline: bool) -> str:
    """The card of model `i` at round `v`; `offline`: the round unpublishes the model instead (the
    card keeps the version before and says offline, and the round tags no version of it)."""
    name = f"m-{i:05d}"
    project = f"project-{i % 97:02d}"
    words = " ".join(rng.sample(WORDS, 5))
    lines = [
        f"name: {name}",
        f"version: 1.{v - 1 if offline else v}.0",
        f"status: {'offline' if offline else ('published' if v == 0 else 'updated')}",
        f"task: {TASKS[i % len(TASKS)]}",
        f"project: {project}",
        f"description: Model {i} of {project}, {words}.",
        "source:",
        f"  repo: https://github.com/example-org/training-{i % 97:02d}.git",
        "config: config.yaml",
        "weights: model.onnx",
        f"size: {100_000 + i * 7 + v}",
        "metrics:",
        "  - name: accuracy",
        f"    value: {0.7 + (i % 100) / 400 + v / 200:.4f}",
        f"    dataset: eval-{i % 97:02d}",
        "  - name: latency_ms",
        f"    value: {5 + (i % 13) - v / 10:.2f}",
        f"    dataset: eval-{i % 97:02d}",
        "owners:",
        f'  - "@example-org/team-{i % 31}"',
        f"license: {LICENSES[i % len(LICENSES)]}",
        f"tags: [{rng.choice(WORDS)}, {rng.choice(WORDS)}]",
    ]
    if i % 20 == 7 and i > 0:
        lines.append(f"derived_from: m-{i - 1:05d}@1.0.0")
    return "\n".join(lines) + "\n"


def notes(i: int, v: int) -> str:
    name = f"m-{i:05d}"
    if v == 0:
        return (
            f"## {name} v1.0.0\n\n**First release** of `{name}`.\n\n### Metrics\n\n"
            "| metric | dataset | value |\n| --- | --- | ---: |\n"
            f"| accuracy ↑ | eval-{i % 97:02d} | {0.7 + (i % 100) / 400:.4f} |\n"
        )
    return (
        f"## {name} v1.{v}.0\n\nChanges since v1.{v - 1}.0.\n\n### Metrics\n\n"
        f"| metric | dataset | v1.{v - 1}.0 | v1.{v}.0 | change |\n| --- | --- | ---: | ---: | --- "
        f"|\n"
        f"| accuracy ↑ | eval-{i % 97:02d} | {0.7 + (i % 100) / 400 + (v - 1) / 200:.4f} | "
        f"{0.7 + (i % 100) / 400 + v / 200:.4f} | improved +0.005 |\n\n### Card changes\n\n"
        f"- `size`: {100_000 + i * 7 + v - 1} → {100_000 + i * 7 + v}\n"
    )


def data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def generate(root: Path, models: int, versions: int) -> None:
    """A registry of `models` × `versions` published versions, made with one git fast-import."""
    rng = random.Random(14)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    offline = {i for i in range(models) if i % 50 == 13}
    stream = bytearray()
    config = (
        "[core]\n    remote = public\n['remote \"staging\"']\n    url = ../storage/staging\n"
        "['remote \"public\"']\n    url = ../storage/public\n"
    )
    for v in range(versions):
        ts = BASE_TS + v * 86_400 * 14
        stream += b"commit refs/heads/main\nmark :%d\n" % (v + 1)
        stream += b"committer Bench <bench@registry.invalid> %d +0000\n" % ts
        stream += data(f"publish version 1.{v}.0 of every model")
        if v == 0:
            stream += b"M 644 inline .dvc/config\n" + data(config)
            stream += b"M 644 inline .dvc/.gitignore\n" + data("/cache\n/tmp\n")
        else:
            stream += b"from :%d\n" % v
        for i in range(models):
            last = v == versions - 1
            stream += b"M 644 inline models/m-%05d/model.yaml\n" % i
            stream += data(card(i, v, rng, offline=last and i in offline))
    for v in range(versions):
        ts = BASE_TS + v * 86_400 * 14 + 600
        for i in range(models):
            if v == versions - 1 and i in offline:
                continue  # unpublished in this round: no new version
            stream += b"tag m-%05d@v1.%d.0\nfrom :%d\n" % (i, v, v + 1)
            stream += b"tagger Bench <bench@registry.invalid> %d +0000\n" % (ts + i)
            stream += data(notes(i, v))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=bytes(stream), check=True)
    subprocess.run(["git", "pack-refs", "--all"], cwd=root, check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=root, check=True)


def publish_one(root: Path, versions: int) -> str:
    """What a merge that publishes one new version does to the clone: a commit and its tag."""
    name = "m-00042"
    path = root / "models" / name / "model.yaml"
    text = path.read_text()
    text = re.sub(r"^version: .*$", f"version: 1.{versions}.0", text, flags=re.M)
    text = re.sub(r"(- name: accuracy\n    value: )[0-9.]+", r"\g<1>0.9999", text)
    path.write_text(text)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@registry.invalid",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@registry.invalid",
    }
    subprocess.run(
        ["git", "commit", "-qam", f"publish {name} 1.{versions}.0"], cwd=root, check=True, env=env
    )
    tag = f"{name}@v1.{versions}.0"
    subprocess.run(
        ["git", "tag", "-a", tag, "-m", notes(42, versions)], cwd=root, check=True, env=env
    )
    return tag


def registry_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def write_index(root: Path, whole: bool) -> float:
    """What publish does to the registry index (`refs/registry/index`) after its tags: brings it up
    to date (`whole`: writes it anew, as `registry index rebuild` does). Returns the seconds."""
    code = (
        f"import sys; from registry.versions.index import sync; sync(sys.argv[1], rebuild={whole})"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, env=registry_env())
    return time.perf_counter() - start


def site_files(site: Path) -> dict[str, bytes]:
    """The built site's files (the build's own manifest left out)."""
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and not p.name.startswith(".catalog-state.")
    }


def build(root: Path, site: Path, jobs: int | None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the build and its worker processes, the machine's one-minute
    load average when it started) of one `registry catalog build`."""
    cmd = [sys.executable, "-m", "registry", "catalog", "build", "-o", str(site)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=root,
        capture_output=True,
        text=True,
        env=registry_env(),
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"catalog build failed:\n{proc.stdout}\n{proc.stderr}")
    print("   ", proc.stdout.strip().splitlines()[0], flush=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, load


def timed(figures: tuple[float, float, float], digits: int = 2) -> str:
    """A build's figures as the report and the docs give them."""
    wall, cpu, load = figures
    return f"{wall:.{digits}f} s ({cpu:.{digits}f} s CPU; load {load:.1f})"


def browser_search_ms(site: Path) -> float | None:
    """Median time of a search over the loaded search index in headless Chromium (None without
    it)."""
    if not Path("/usr/bin/chromium").exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    sys.path.insert(0, str(REPO / "tests"))
    from catalog.browser import chromium_args, serve_site

    with serve_site(site) as url, sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, args=chromium_args()
        )
        page = ctx.new_page()
        page.goto(url + "index.html")
        page.select_option("#sort", "date")  # loads the search index
        page.wait_for_function(
            "document.getElementById('result-count').textContent.includes('models')"
        )
        times = []
        for word in ["edge", "robust vision", "m-0999", "medical drone", "warehouse", "zzz"]:
            times.append(
                page.evaluate(
                    """async (word) => {
                const q = document.getElementById('q'), sort = document.getElementById('sort');
                q.value = word;
                const t = performance.now();
                sort.dispatchEvent(new Event('change'));
                await new Promise(r => setTimeout(r, 0));
                return performance.now() - t; }""",
                    word,
                )
            )
        ctx.close()
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: the CPUs available)"
    )
    ap.add_argument(
        "--browser", action="store_true", help="also time a search in headless Chromium"
    )
    ap.add_argument(
        "--from-tags",
        action="store_true",
        help="also build the whole site with no registry index (versions from the tags) and check "
        "that it is the same bytes",
    )
    ap.add_argument(
        "--write-docs", action="store_true", help="write the figures into docs/benchmarks.md"
    )
    args = ap.parse_args()
    bench_common.compile_registry()  # timed runs do not compile the registry
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        root, site = Path(tmp) / "registry", Path(tmp) / "site"
        start = time.perf_counter()
        generate(root, args.models, args.versions)
        print(
            f"generated {args.models} models × {args.versions} versions in "
            f"{time.perf_counter() - start:.1f}s",
            flush=True,
        )
        tags_full = None
        if args.from_tags:
            tags_site = Path(tmp) / "site-from-tags"
            tags_full = build(root, tags_site, args.jobs)
            print(f"full build from the tags (no registry index): {timed(tags_full)}", flush=True)
        print(f"registry index written in {write_index(root, whole=True):.1f}s", flush=True)
        full = build(root, site, args.jobs)
        print(f"full build: {timed(full)}", flush=True)
        if args.from_tags:
            same = site_files(tags_site) == site_files(site)
            print(f"the site from the tags is the same bytes: {same}", flush=True)
            if not same:
                sys.exit("the site built from the tags differs from the one built from the index")
        again = build(root, site, args.jobs)
        print(f"rebuild with nothing changed: {timed(again)}", flush=True)
        publish_one(root, args.versions)
        write_index(root, whole=False)
        incremental = build(root, site, args.jobs)
        print(f"incremental build after one publish: {timed(incremental)}", flush=True)
        raw = (site / "index.html").read_bytes()
        zipped = len(gzip.compress(raw, 6))
        css_js = sum((site / "static" / f).stat().st_size for f in ("catalog.css", "catalog.js"))
        search_raw = (site / "search-index.json").read_bytes()
        print(
            f"index.html: {len(raw):,} bytes ({zipped:,} gzip); with CSS and JS "
            f"{len(raw) + css_js:,} bytes"
        )
        print(
            f"search-index.json (loaded on first search): {len(search_raw):,} bytes "
            f"({len(gzip.compress(search_raw, 6)):,} gzip)"
        )
        search = browser_search_ms(site) if args.browser else None
        if search is not None:
            print(f"search in the browser: {search:.1f} ms (median)")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if args.write_docs:
            write_docs(
                args,
                cpus,
                tags_full,
                full,
                again,
                incremental,
                len(raw),
                zipped,
                len(raw) + css_js,
                len(search_raw),
                search,
            )


def write_docs(
    args,
    cpus,
    tags_full,
    full,
    again,
    incremental,
    raw,
    zipped,
    with_assets,
    search_bytes,
    search_ms,
) -> None:
    cmd = (
        "python benchmarks/catalog_bench.py"
        + (" --browser" if args.browser else "")
        + (" --from-tags" if args.from_tags else "")
        + " --write-docs"
    )
    if (args.models, args.versions) != (10_000, 10):
        cmd += f" --models {args.models} --versions {args.versions}"

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = [
        f"| full build, {args.models:,} models × {args.versions} versions | {timed(full, 1)} "
        f"| ≤ 30 s | {met(full[0] <= 30)} |",
        *(
            [
                f"| the same from the tags (no registry index; the same bytes) "
                f"| {timed(tags_full, 1)} | | |"
            ]
            if tags_full
            else []
        ),
        f"| rebuild, nothing changed | {timed(again)} | | |",
        f"| incremental build after one publish | {timed(incremental)} | ≤ 2 s "
        f"| {met(incremental[0] <= 2)} |",
        f"| index.html before search is used | {raw / 1024:.0f} KB ({zipped / 1024:.0f} KB gzip; "
        f"{with_assets / 1024:.0f} KB with CSS and JS) | ≤ 300 KB | "
        f"{met(with_assets <= 300 * 1024)} |",
        f"| search index, fetched on first search | {search_bytes / 1024 / 1024:.1f} MB | | |",
    ]
    if search_ms is not None:
        rows.append(
            f"| a search in headless Chromium (index loaded) | {search_ms:.0f} ms | ≤ 100 ms "
            f"| {met(search_ms <= 100)} |"
        )
    section = (
        "## Catalog build\n\n"
        f"`{cmd}` generates the registry with `git fast-import` (one commit per round of versions, "
        "an annotated tag with release notes per version, 2% of the models withdrawn), writes its "
        "registry index (`refs/registry/index`, as publish keeps it) and runs "
        "`registry catalog build -o site` on it: a full build into an empty folder, a rebuild with "
        "nothing changed, and a rebuild after one more version of one model is published (a "
        "commit, its tag and the index brought up to date, as publish does; only that "
        "model's page, the index page it is on and the JSON indexes are written). "
        + (
            "With `--from-tags` it first builds the whole site from a registry with no index "
            "(every version read from the tags) and checks that the two sites are the same bytes. "
            if args.from_tags
            else ""
        )
        + f"Machine: {cpus} cores, shared with other work, so each build's figures give the "
        "CPU seconds of the build and its worker processes beside the wall time, and the "
        "machine's load average (one minute) when it started.\n\n"
        "| measure | result | goal | met |\n| --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )
    if full[2] >= cpus:
        section += (
            f"\nThe load average was {full[2]:.0f} on {cpus} cores when the full build started: "
            "other work held most of the CPU, so the wall times above are mostly waiting for it; "
            "the CPU seconds measure the build itself.\n"
        )
    section += (
        "\nWhere a full build's time goes (`python -m cProfile -s tottime -m registry catalog "
        "build -o site --jobs 1` on this registry): a few seconds in the main process (listing "
        "the tags, reading the current cards, one walk of the history of the cards, then the "
        "index pages, `index.json`, the search index and the manifest), the rest in the worker "
        "processes, model by model: about a quarter reading the tag objects and the versions' "
        "cards (`git cat-file --batch --buffer`) and turning them into versions, a third making "
        "the model's record (reading each version's metrics, checking the current card, "
        "validating the record), a third rendering the page (the release notes' Markdown is the "
        "largest part; the versions' sections are built as strings, the rest of the page by its "
        "template) and the rest writing the page and its JSON.\n"
    )
    bench_common.write("## Catalog build", section)
    print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
