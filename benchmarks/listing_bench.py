#!/usr/bin/env python3
"""Benchmark `registry list`, `registry show` and version resolution against `gto show`, and
`registry pull` against `dvc pull`, on generated registries. Writes its figures into
docs/benchmarks.md under `## registry list, show, pull`.

The big registry has MODELS models with VERSIONS published versions each (annotated tags in the
GTO convention), generated with `git fast-import` in seconds. `gto show` runs on the same
repository in the same run: that it lists our tags is the compatibility check, and its time is
the baseline (target: our listing at least 20x faster, and under 1 s).

The pull registry has one model with a 100 MB weights file on a local `public` remote;
`registry pull` (fresh output folder) is timed against `dvc pull -R models/<name>` in a fresh
clone at the version's tag with an empty DVC cache (target: within 1.1x).

Usage:
    .venv/bin/python benchmarks/listing_bench.py [--models 1000] [--versions 10] [--pull-mb 100]
        [--repeat 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # benchmarks/bench_common.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECTION = "## registry list, show, pull"
TASKS = ["classification", "detection", "segmentation", "embedding", "ocr"]


def sh(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def timed(cmd: list[str], cwd: Path, repeat: int, setup=None) -> tuple[float, str]:
    """Median wall time of a command (setup, if any, runs untimed before each run)."""
    times, out = [], ""
    for _ in range(repeat):
        if setup:
            setup()
        t0 = time.perf_counter()
        out = sh(cmd, cwd).stdout
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def card(name: str, version: str, status: str, i: int) -> str:
    return (
        f"name: {name}\nversion: {version}\nstatus: {status}\ntask: {TASKS[i % len(TASKS)]}\n"
        f"project: project-{i % 20}\nsource:\n  repo: https://example.com/train/{name}.git\n"
        f"config: config.yaml\nweights: model.onnx\nsize: {1000 + i}\nmetrics:\n"
        f"  - name: accuracy\n    value: 0.9\n    dataset: test\nlicense: Apache-2.0\n"
    )


def generate_registry(path: Path, models: int, versions: int) -> None:
    """A registry with `models` x `versions` published versions, through one `git fast-import`."""
    sh(["git", "init", "-q", "-b", "main", str(path)], path.parent)
    chunks: list[bytes] = []

    def data(payload: str) -> None:
        raw = payload.encode()
        chunks.append(b"data %d\n" % len(raw) + raw + b"\n")

    dvc_config = (
        "[core]\n    remote = public\n['remote \"public\"']\n    url = ../storage/public\n"
        "['remote \"staging\"']\n    url = ../storage/staging\n"
    )
    t0 = 1_700_000_000
    for k in range(versions):
        version = f"1.{k}.0"
        ts = t0 + k * 86_400
        chunks.append(
            f"commit refs/heads/main\nmark :{k + 1}\n"
            f"author Bench <bench@registry.invalid> {ts} +0000\n"
            f"committer Bench <bench@registry.invalid> {ts} +0000\n".encode()
        )
        data(f"publish round {version}")
        if k:
            chunks.append(f"from :{k}\n".encode())
        else:
            for rel, text in ((".dvc/config", dvc_config), (".dvc/.gitignore", "/cache\n/tmp\n")):
                chunks.append(f"M 100644 inline {rel}\n".encode())
                data(text)
        for i in range(models):
            name = f"model-{i:04d}"
            md5 = f"{(i * 7919 + k * 104729) % 16**32:032x}"
            files = {
                f"models/{name}/model.yaml": card(
                    name, version, "published" if k == 0 else "updated", i
                ),
                f"models/{name}/model.onnx.dvc": f"outs:\n- md5: {md5}\n  size: {1000 + i}\n  "
                f"hash: md5\n"
                f"  path: model.onnx\n",
            }
            if k == 0:
                files[f"models/{name}/config.yaml"] = "epochs: 3\n"
            for rel, text in files.items():
                chunks.append(f"M 100644 inline {rel}\n".encode())
                data(text)
        chunks.append(b"\n")
        for i in range(models):
            name = f"model-{i:04d}"
            chunks.append(
                f"tag {name}@v{version}\nfrom :{k + 1}\n"
                f"tagger Bench <bench@registry.invalid> {ts + i} +0000\n".encode()
            )
            data(f"{name} {version}: release notes")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(chunks), check=True)
    sh(["git", "reset", "-q", "--hard", "main"], path)
    # a clone (or `git gc`) keeps tags in packed-refs; fast-import leaves 10,000 loose ref files
    sh(["git", "pack-refs", "--all"], path)


def make_pull_registry(tmp: Path, mb: int) -> tuple[Path, str]:
    """One model with `mb` MB of weights published to a local public remote; returns (repo, md5)."""
    repo = tmp / "pull-registry"
    storage = tmp / "pull-storage"
    repo.mkdir()
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh([str(BIN / "dvc"), "init", "-q"], repo)
    (repo / ".dvc" / "config").write_text(
        f"[core]\n    analytics = false\n    remote = public\n['remote \"public\"']\n    url = "
        f"{storage / 'public'}\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
    )
    folder = repo / "models" / "big-model"
    folder.mkdir(parents=True)
    with open(folder / "model.onnx", "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    (folder / "config.yaml").write_text("epochs: 3\n")
    (folder / "model.yaml").write_text(
        card("big-model", "1.0.0", "published", 0).replace("size: 1000", f"size: {mb << 20}")
    )
    sh([str(BIN / "dvc"), "add", "-q", "models/big-model/model.onnx"], repo)
    sh([str(BIN / "dvc"), "push", "-q", "-r", "public"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "big-model 1.0.0"], repo)
    sh(["git", "tag", "-a", "big-model@v1.0.0", "-m", "first release"], repo)
    md5 = re.search(r"md5: (\w+)", (folder / "model.onnx.dvc").read_text())[1]
    return repo, md5


def run(args) -> str:
    env_note = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    registry = [str(BIN / "registry")]
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmpdir:
        tmp = Path(tmpdir)
        repo = tmp / "big-registry"
        repo.mkdir()
        t0 = time.perf_counter()
        generate_registry(repo, args.models, args.versions)
        gen = time.perf_counter() - t0
        tags = int(
            sh(
                ["git", "for-each-ref", "--count=1000000", "--format=x", "refs/tags"], repo
            ).stdout.count("x")
        )
        print(f"generated {args.models} models, {tags} tags in {gen:.1f}s", file=sys.stderr)

        t_list, out = timed(registry + ["list"], repo, args.repeat)
        assert out.count("\n") == args.models + 1, "registry list must show every model"
        t_list_json, _ = timed(
            registry + ["list", "--format", "json", "--state", "updated"], repo, args.repeat
        )
        name = f"model-{args.models // 2:04d}"
        t_show, out = timed(registry + ["show", name], repo, args.repeat)
        assert f"1.{args.versions - 1}.0" in out

        sys.path.insert(0, str(ROOT))
        from registry.versions.tags import read_versions, resolve

        res = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            resolve(read_versions(repo), name, "latest")
            res.append(time.perf_counter() - t0)
        t_resolve = statistics.median(res)

        # GTO takes minutes on 10,000 tags: one run each is the baseline
        gto_repeat = 1
        t_gto, out = timed([str(BIN / "gto"), "show"], repo, gto_repeat)
        assert name in out and f"v1.{args.versions - 1}.0" in out, "gto show must list our models"
        print(f"gto show: {t_gto:.1f}s", file=sys.stderr)
        t_gto_one = None
        if args.gto_show_name:
            t_gto_one, out = timed([str(BIN / "gto"), "show", name], repo, gto_repeat)
            assert f"v1.{args.versions - 1}.0" in out

        # ---- pull vs dvc pull
        prepo, md5 = make_pull_registry(tmp, args.pull_mb)
        out_dir = tmp / "pulled"

        def fresh_out():
            shutil.rmtree(out_dir, ignore_errors=True)

        t_pull, _ = timed(
            registry + ["pull", "big-model@1.0.0", "-o", str(out_dir)],
            prepo,
            args.pull_repeat,
            setup=fresh_out,
        )
        clone = tmp / "dvc-clone"

        def fresh_clone():
            shutil.rmtree(clone, ignore_errors=True)
            sh(["git", "clone", "-q", str(prepo), str(clone)], tmp)
            sh(["git", "checkout", "-q", "big-model@v1.0.0"], clone)

        t_dvc_pull, _ = timed(
            [str(BIN / "dvc"), "pull", "-q", "-R", "models/big-model"],
            clone,
            args.pull_repeat,
            setup=fresh_clone,
        )
        got = subprocess.run(
            ["md5sum", str(clone / "models/big-model/model.onnx")], capture_output=True, text=True
        ).stdout.split()[0]
        assert got == md5

    command = " ".join([".venv/bin/python", "benchmarks/listing_bench.py", *args.argv])
    rows = [
        ("`registry list` (all models, text)", t_list),
        ("`registry list --state updated --format json`", t_list_json),
        (f"`registry show {name}`", t_show),
        ("version resolution for `registry pull NAME@latest` (in-process)", t_resolve),
        ("`gto show` (baseline)", t_gto),
    ]
    if t_gto_one is not None:
        rows.append((f"`gto show {name}`", t_gto_one))
    lines = [
        SECTION,
        "",
        f"Generated registry: {args.models} models x {args.versions} published versions = {tags} "
        f"annotated "
        f"tags (`git fast-import`, refs packed as in a clone, {gen:.1f} s). Median of "
        f"{args.repeat} runs "
        f"({gto_repeat} for GTO, which takes minutes); every command is the real CLI in a fresh "
        f"process.",
        "",
        "| operation | time |",
        "| --- | ---: |",
    ]
    lines += [
        f"| {label} | {t * 1000:.0f} ms |" if t < 10 else f"| {label} | {t:.1f} s |"
        for label, t in rows
    ]
    lines += [
        "",
        f"- `registry list` vs `gto show`: **{t_gto / t_list:.0f}x faster** "
        f"(target >= 20x; under 1 s: {'yes' if t_list < 1 else 'no'}).",
        *(
            [f"- `registry show` vs `gto show NAME`: {t_gto_one / t_show:.0f}x faster."]
            if t_gto_one
            else []
        ),
        "- `gto show` listed every generated model and its latest version from the same tags "
        "(compatibility check).",
        "",
        f"Pull of one {args.pull_mb} MB object from a local `public` remote, median of "
        f"{args.pull_repeat}:",
        "",
        "| operation | time |",
        "| --- | ---: |",
        f"| `registry pull big-model@1.0.0 -o DIR` (fresh DIR) | {t_pull:.2f} s |",
        f"| `dvc pull -R models/big-model` (fresh clone at the tag, empty cache) | "
        f"{t_dvc_pull:.2f} s |",
        "",
        f"- ratio registry pull / dvc pull: **{t_pull / t_dvc_pull:.2f}x** (target <= 1.1x).",
        "",
        f"Machine: {env_note}. Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--versions", type=int, default=10)
    p.add_argument("--pull-mb", type=int, default=100)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pull-repeat", type=int, default=3)
    p.add_argument(
        "--gto-show-name", action="store_true", help="also time `gto show NAME` (minutes more)"
    )
    p.add_argument("--no-write", action="store_true", help="print the figures, do not touch docs/")
    args = p.parse_args()
    args.argv = sys.argv[1:]
    text = run(args)
    print(text)
    if not args.no_write:
        bench_common.write(SECTION, text)


if __name__ == "__main__":
    main()
