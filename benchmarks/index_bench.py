#!/usr/bin/env python3
"""Benchmark the reads that the registry index answers, at 10k, 100k and 1M tags: `registry list`
against the `git for-each-ref` floor, `registry show NAME` and `NAME@latest` resolution, each a
fresh process, with peak memory, CPU time and the machine's load beside each figure. Writes
docs/benchmarks.md's section `## registry list, show, pull at scale (the registry index)`.

Each registry (MODELS models x 10 versions) is generated, never committed: the cards in one
commit and ten publish rounds as commits on top, one annotated tag per version, all written
straight into one pack (`git index-pack`) with the refs in `packed-refs` as a clone has them, and
the registry index that publish would have written, through `registry.versions.index`'s own
writer. Where a goal is missed the script prints the profile of the command (cProfile).

Usage:
    .venv/bin/python benchmarks/index_bench.py [--sizes 1000,10000,100000] [--repeat 5]
        [--no-write] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import platform
import pstats
import re
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import bench_common  # benchmarks/bench_common.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECTION = "## registry list, show, pull at scale (the registry index)"
TASKS = ["classification", "detection", "segmentation", "embedding", "ocr"]
VERSIONS = 10
PY = [sys.executable]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def sh(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=ENV, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def card(name: str, i: int) -> str:
    return (
        f"name: {name}\nversion: 1.{VERSIONS - 1}.0\nstatus: updated\n"
        f"task: {TASKS[i % len(TASKS)]}\nproject: project-{i % 20}\n"
        f"source:\n  repo: https://example.com/train/{name}.git\nconfig: config.yaml\n"
        f"weights: model.onnx\nsize: {1000 + i}\nmetrics:\n"
        f"  - name: accuracy\n    value: 0.9\n    dataset: test\nlicense: Apache-2.0\n"
    )


def md5_of(i: int, k: int) -> str:
    return f"{(i * 7919 + k * 104729) % 16**32:032x}"


class Pack:
    """Objects written straight into one pack (whole objects, no deltas), then `git index-pack`:
    `git fast-import` searches a tree linearly for each file it adds, which is hours for a folder
    of 100,000 models."""

    TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.count = 0

    def add(self, kind: str, body: bytes) -> str:
        size, header = len(body), bytearray()
        c = (self.TYPES[kind] << 4) | (size & 0x0F)
        size >>= 4
        while size:
            header.append(c | 0x80)
            c = size & 0x7F
            size >>= 7
        header.append(c)
        self.out.write(bytes(header) + zlib.compress(body, 1))
        self.count += 1
        return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()

    def tree(self, entries: list[tuple[str, str, str]]) -> str:
        """A tree of (mode, name, object id), sorted as git sorts them (folders as name + '/')."""
        key = lambda e: e[1] + ("/" if e[0] == "40000" else "")  # noqa: E731
        body = b"".join(
            f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha)
            for mode, name, sha in sorted(entries, key=key)
        )
        return self.add("tree", body)

    def write(self, repo: Path) -> None:
        raw = b"PACK" + struct.pack(">II", 2, self.count) + self.out.getvalue()
        raw += hashlib.sha1(raw).digest()
        pack_dir = repo / ".git" / "objects" / "pack"
        tmp = pack_dir / "tmp-bench.pack"
        tmp.write_bytes(raw)
        sh(["git", "index-pack", str(tmp)], repo)
        for ext in ("pack", "idx"):
            (pack_dir / f"tmp-bench.{ext}").rename(pack_dir / f"pack-{raw[-20:].hex()}.{ext}")


def generate(path: Path, models: int) -> float:
    """The registry, its tags and its index; returns the seconds it took."""
    t0 = time.perf_counter()
    sh(["git", "init", "-q", "-b", "main", str(path)], path.parent)
    names = [f"model-{i:06d}" for i in range(models)]
    pack = Pack()
    folders = []
    for i, name in enumerate(names):
        md5 = md5_of(i, VERSIONS - 1)
        pointer = f"outs:\n- md5: {md5}\n  size: {1000 + i}\n  hash: md5\n  path: model.onnx\n"
        folder = pack.tree(
            [
                ("100644", "model.yaml", pack.add("blob", card(name, i).encode())),
                ("100644", "model.onnx.dvc", pack.add("blob", pointer.encode())),
            ]
        )
        folders.append(("40000", name, folder))
    models_tree = pack.tree(folders)
    dvc_config = "[core]\n    remote = public\n['remote \"public\"']\n    url = ../public\n"
    dvc_tree = pack.tree([("100644", "config", pack.add("blob", dvc_config.encode()))])
    root_tree = pack.tree([("40000", ".dvc", dvc_tree), ("40000", "models", models_tree)])
    stamp = 1_700_000_000
    commits, parent = [], None
    for k in range(VERSIONS + 1):  # the cards, then ten publish rounds
        body = f"tree {root_tree}\n" + (f"parent {parent}\n" if parent else "")
        body += f"author B <b@x> {stamp + k} +0000\ncommitter B <b@x> {stamp + k} +0000\n\n"
        body += "the cards\n" if k == 0 else f"publish round 1.{k - 1}.0\n"
        parent = pack.add("commit", body.encode())
        commits.append(parent)
    refs: list[tuple[str, str, str]] = []  # refname, tag object, commit
    for i, name in enumerate(names):
        for k in range(VERSIONS):
            commit = commits[k + 1]
            body = (
                f"object {commit}\ntype commit\ntag {name}@v1.{k}.0\n"
                f"tagger B <b@x> {stamp + k * 86_400 + i} +0000\n\n{name} 1.{k}.0: notes\n"
            ).encode()
            refs.append((f"refs/tags/{name}@v1.{k}.0", pack.add("tag", body), commit))
    pack.write(path)
    refs.sort()
    with open(path / ".git" / "packed-refs", "w") as f:  # as a clone has them
        f.write("# pack-refs with: peeled fully-peeled sorted \n")
        for ref, sha, commit in refs:
            f.write(f"{sha} {ref}\n^{commit}\n")
    sh(["git", "update-ref", "refs/heads/main", commits[-1]], path)
    sh(["git", "reset", "-q", "--hard", "main"], path)
    cards_tree = models_tree
    commits = {k + 2: c for k, c in enumerate(commits[1:])}

    # the index publish would have written
    from registry.versions.index import IndexedModel, ModelRow, _write, format_models, model_digest

    listing = "".join(f"{s} {r}\n" for r, s, _ in refs)  # as `git show-ref --tags` prints
    rows, entries = [], {}
    for i, name in enumerate(names):
        mine = refs[i * VERSIONS : (i + 1) * VERSIONS]
        entry = IndexedModel(name=name, tags={r: s for r, s, _ in mine})
        for k in range(VERSIONS):
            entry.versions.append(
                {
                    "version": f"1.{k}.0",
                    "tag": f"{name}@v1.{k}.0",
                    "commit": commits[k + 2],
                    "date": stamp + k * 86_400 + i,
                    "withdrawn_by": None,
                    "objects": [{"path": "model.onnx", "md5": md5_of(i, k), "size": 1000 + i}],
                }
            )
        entries[name] = entry
        rows.append(
            ModelRow(
                name,
                "updated",
                TASKS[i % len(TASKS)],
                f"project-{i % 20}",
                f"1.{VERSIONS - 1}.0",
                VERSIONS,
                model_digest([(r, s) for r, s, _ in mine]),
            )
        )
    _write(
        path,
        parent=None,
        models=format_models(hashlib.sha1(listing.encode()).hexdigest(), len(refs), rows),
        entries=entries,
        cards_tree=cards_tree,
        message="registry index (generated)",
        deleteall=True,
    )
    return time.perf_counter() - t0


def restore_index(repo: Path) -> None:
    """A kept registry as generated: its index ref back in place (a run stopped while the
    fallback was measured leaves it deleted)."""
    ok = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "refs/registry/index"], cwd=repo, capture_output=True
    )
    if ok.returncode != 0:
        raise SystemExit(f"{repo} has no registry index: delete the folder to generate it again")


def measure(cmd: list[str], cwd: Path, repeat: int) -> dict:
    """Median wall time, CPU time (user+system of the child), peak RSS and the load average."""
    walls, cpus, rss, out = [], [], 0, b""
    load = os.getloadavg()[0]
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = sh(["/usr/bin/time", "-f", "%M", *cmd], cwd)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        rss = max(rss, int(proc.stderr.decode().strip().splitlines()[-1]))
        out = proc.stdout
    return {
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "rss_mb": rss / 1024,
        "load": load,
        "out": out,
    }


def import_time(args: list[str], cwd: Path) -> float:
    """Seconds `python -X importtime` spends importing for a command (top-level imports summed)."""
    proc = subprocess.run(
        [*PY, "-X", "importtime", "-m", "registry", *args], cwd=cwd, capture_output=True, env=ENV
    )
    total = 0
    for line in proc.stderr.decode().splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and not m[2] and m[3] != "site":
            total += int(m[1])
    return total / 1e6


def profile(args: list[str], cwd: Path) -> str:
    """Where the CPU time of a command goes, in-process (top 15 functions by their own time;
    git's own time is not in it)."""
    from registry.cli import main

    prof = cProfile.Profile(time.process_time)
    here = os.getcwd()
    os.chdir(cwd)
    saved = sys.stdout
    sys.stdout = io.StringIO()
    try:
        prof.runcall(lambda: _quiet(main, args))
    finally:
        sys.stdout = saved
        os.chdir(here)
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(15)
    return text.getvalue()


def _quiet(main, args):
    try:
        main(args)
    except SystemExit:
        pass


def fmt(m: dict) -> str:
    return f"{m['wall']:.2f} s ({m['cpu']:.2f} s CPU, {m['rss_mb']:.0f} MB; load {m['load']:.1f})"


def run(args) -> str:
    registry = [*PY, "-m", "registry"]
    # as an installed package has them: the modules compiled once (PYTHONDONTWRITEBYTECODE, set
    # on some machines, would otherwise have every run compile its changed modules again)
    sh([*PY, "-m", "compileall", "-q", str(ROOT / "registry")], ROOT)
    lines = [
        SECTION,
        "",
        "Generated registries (cards in one commit, ten publish rounds, annotated tags written "
        "into a pack with packed refs, as in a clone; the registry index as publish writes it), "
        f"never committed. Every command is the real CLI in a fresh process; median of "
        f"{args.repeat} runs; peak memory (RSS) of the slowest-memory run; CPU time of the "
        "command and its git children; the machine's one-minute load average when the "
        "measurement started (2 cores, shared with other work).",
        "",
        "| registry | `registry list` (tag digest and `models/` folders kept by an earlier reader) "
        "| `git for-each-ref refs/tags` (floor) | ratio (wall; CPU) "
        "| floor, refs only | `registry show NAME` | `NAME@latest` resolved (fresh process) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    goals, profiles, extra, colds = [], [], [], []
    for models in args.sizes:
        with tempfile.TemporaryDirectory(prefix="registry-index-bench-") as tmpdir:
            tags = models * VERSIONS
            repo = (args.keep / f"registry-{models}") if args.keep else Path(tmpdir) / "registry"
            if (repo / ".git" / "packed-refs").exists():
                print(f"{models} models: reusing {repo}", file=sys.stderr)
                restore_index(repo)
            else:
                repo.mkdir(parents=True, exist_ok=True)
                gen = generate(repo, models)
                print(f"{models} models, {tags} tags generated in {gen:.1f} s", file=sys.stderr)
            for kept in ("tag-digest", "models-folders"):
                (repo / ".git" / "registry" / kept).unlink(missing_ok=True)
            # the tag digest and the folders of models/ computed, then kept
            cold = measure(registry + ["list"], repo, 1)
            listed = measure(registry + ["list"], repo, args.repeat)
            assert listed["out"].count(b"\n") == models + 1, "registry list must show every model"
            assert b"note:" not in listed["out"]
            floor = measure(["git", "for-each-ref", "refs/tags"], repo, args.repeat)
            cheap = measure(
                ["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags"],
                repo,
                args.repeat,
            )
            name = f"model-{models // 2:06d}"
            shown = measure(registry + ["show", name], repo, args.repeat)
            assert f"1.{VERSIONS - 1}.0".encode() in shown["out"]
            resolve = measure(
                [
                    *PY,
                    "-c",
                    # the resolution `find_version` (and so `registry pull`) starts with: the
                    # schema-free one, or the full path where the index cannot vouch for it
                    "from registry.versions.plainresolve import locate\n"
                    f"v = locate('.', '{name}@latest')\n"
                    "if v is None:\n"
                    "    from registry.versions.resolve import find_version\n"
                    f"    v = find_version('.', '{name}@latest')\n"
                    "print(v.version)",
                ],
                repo,
                args.repeat,
            )
            assert resolve["out"].strip() == f"1.{VERSIONS - 1}.0".encode()
            ratio = listed["wall"] / floor["wall"]
            cpu_ratio = listed["cpu"] / floor["cpu"] if floor["cpu"] else float("inf")
            colds.append(f"{tags:,} tags: {fmt(cold)}")
            lines.append(
                f"| {models:,} models × {VERSIONS} ({tags:,} tags) | {fmt(listed)} | "
                f"{fmt(floor)} | {ratio:.1f}×; {cpu_ratio:.1f}× | {cheap['wall']:.2f} s | "
                f"{fmt(shown)} | {fmt(resolve)} |"
            )
            if tags == 10_000:
                goals.append(
                    (
                        "`registry list` on 10k tags vs the floor",
                        f"{ratio:.1f}× (CPU {cpu_ratio:.1f}×)",
                        "≤ 2×",
                        ratio <= 2,
                    )
                )
                imports = {
                    "list": import_time(["list"], repo),
                    "show": import_time(["show", name], repo),
                }
                extra.append(
                    "Import time (`python -X importtime -m registry …`, top-level imports "
                    "summed, 10k-tag registry): "
                    + ", ".join(f"`{k}` {v:.3f} s" for k, v in imports.items())
                    + " (goal < 0.15 s)."
                )
                index = sh(["git", "rev-parse", "refs/registry/index"], repo).stdout.strip()
                sh(["git", "update-ref", "-d", "refs/registry/index"], repo)
                fallback = measure(registry + ["list"], repo, 1)
                sh(["git", "update-ref", "refs/registry/index", index.decode()], repo)
                extra.append(
                    f"Without the index (the fallback, reading every card and tag), `registry "
                    f"list` on 10k tags: {fmt(fallback)}."
                )
            if tags == 1_000_000:
                goals += [
                    (
                        "`registry list` on 1M tags",
                        f"{listed['wall']:.2f} s, {listed['rss_mb']:.0f} MB",
                        "≤ 1 s, ≤ 200 MB",
                        listed["wall"] <= 1 and listed["rss_mb"] <= 200,
                    ),
                    (
                        "`registry show NAME` on 1M tags",
                        f"{shown['wall']:.2f} s",
                        "≤ 0.3 s",
                        shown["wall"] <= 0.3,
                    ),
                    (
                        "`pull NAME@latest` resolution on 1M tags",
                        f"{resolve['wall']:.2f} s",
                        "≤ 0.3 s",
                        resolve["wall"] <= 0.3,
                    ),
                ]
                if not (listed["wall"] <= 1 and shown["wall"] <= 0.3 and resolve["wall"] <= 0.3):
                    for cmd in (["list"], ["show", name]):
                        text = profile(cmd, repo)
                        print(f"--- profile of registry {' '.join(cmd)} (1M tags)\n{text}")
                        top = [
                            line.strip() for line in text.splitlines() if re.match(r"\s+\d+", line)
                        ][:6]
                        profiles.append((cmd, top))
    lines += ["", "| goal | measured | target | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {g} | {m} | {t} | {'yes' if ok else '**no**'} |" for g, m, t, ok in goals]
    extra.append(
        "`registry list` when no reader kept the tag digest and the folders of `models/` yet (a "
        "fresh clone, or the tags or folders changed since: one `git show-ref --tags` and one "
        "listing of `models/`): " + "; ".join(colds) + "."
    )
    lines += [""] + [f"- {e}" for e in extra]
    for cmd, top in profiles:
        lines += [
            "",
            f"Where the CPU time of `registry {' '.join(cmd)}` goes on 1M tags (cProfile, "
            "own time per function, in-process):",
            "",
            "```",
            *top,
            "```",
        ]
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    env_note = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {git}"
    )
    command = " ".join([".venv/bin/python", "benchmarks/index_bench.py", *args.argv])
    lines += ["", f"Machine: {env_note}. Command: `{command}`", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="models per registry (x10 tags)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-write", action="store_true", help="print the figures, do not touch docs/")
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="generate each registry in DIR/registry-MODELS and keep it; reuse it on the next run",
    )
    args = p.parse_args()
    args.argv = sys.argv[1:]
    args.sizes = [int(s) for s in args.sizes.split(",")]
    text = run(args)
    print(text)
    if not args.no_write:
        bench_common.write(SECTION, text)


if __name__ == "__main__":
    main()
