"""Benchmark of `registry check` on a large registry; writes its figures to docs/benchmarks.md.

Builds a registry of N model cards (default 100,000) with a history of commits, version tags and a
generated CODEOWNERS through `git fast-import` and `git mktree` (never committed), then times the
real command line:

  (a) `registry check --base main --head <pr>` on a pull request that touches one model, with the
      content checks off, and with them on for a pull request adding one real (ONNX) model;
  (b) `registry check --all --no-content --offline` over every card, and side by side over a
      registry of a tenth of the cards (built the same way): the CPU time per card of the two shows
      whether the run grows faster than the number of cards.

Each timing is the best of a few runs of the whole process (interpreter start-up included), with
the CPU time of that run and the load average after it, next to the start-up of `registry
--version` alone. Goals: the one-model check within 1 s, `--all` over 100,000 cards within 30 s;
where one is missed, the benchmark profiles that command (`--all` in one process on the registry
of a tenth of the cards, whose cost per card is the same) and writes where its time goes.

Usage:
    .venv/bin/python benchmarks/check_bench.py [--models 100000] [--repeat 3] [--no-write] [--keep]
        [--reuse FOLDER]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # benchmarks/bench_common.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## registry check"
GOAL_PR_S, GOAL_ALL_S = 1, 30  # one-model PR check; `--all` over 100,000 cards
ONNX_UP_TO = 10_000  # the registry sizes that also time a PR adding a real ONNX model
BIN = Path(sys.executable).parent

CARD = """name: {name}
{version}status: {status}
task: classification
project: bench-{project}
source:
  repo: {repo}
config: config.yaml
weights: model.onnx
size: 1234
metrics:
  - name: accuracy
    value: 0.{acc:02d}
    dataset: bench-test
  - name: latency_ms
    value: 3.5
    unit: ms
    dataset: cpu
license: Apache-2.0
"""
POINTER = "outs:\n- md5: {md5}\n  size: 1234\n  hash: md5\n  path: model.onnx\n"


def sh(cmd: list[str], cwd: Path, env: dict | None = None, input: bytes | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, input=input, env=env)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(map(str, cmd))} failed:\n{proc.stdout.decode()}\n{proc.stderr.decode()}"
        )
    return proc.stdout.decode()


def model_name(i: int) -> str:
    return f"model-{i:05d}"


def card_text(i: int, training_url: str) -> str:
    published = i % 10 == 0
    return CARD.format(
        name=model_name(i),
        version="version: 1.0.0\n" if published else "",
        status="published" if published else "unpublished",
        project=i % 50,
        repo=training_url,
        acc=i % 100,
    )


def import_registry(reg: Path, n: int, commits: int, training_url: str, env: dict) -> None:
    """Write the registry's history into `reg` with `git fast-import`, in three steps.

    fast-import looks a path up among its folder's entries one by one, so a stream that adds
    100,000 folders under models/ takes quadratic time; instead (1) one fast-import stream writes
    every blob and exports their ids, (2) `git mktree --batch` makes each model's tree and each
    commit's models/ tree, and (3) a second stream writes `commits` commits that add the models in
    batches (each setting models/ to its tree whole) and an annotated tag for 1 model in 10.
    """
    out: list[bytes] = []

    def data(text: str | bytes) -> None:
        raw = text.encode() if isinstance(text, str) else text
        out.append(b"data %d\n" % len(raw) + raw + b"\n")

    # (1) blobs: the shared config (mark 1), then card 2i+2 and pointer 2i+3 of model i
    out.append(b"blob\nmark :1\n")
    data("epochs: 3\nlr: 0.01\n")
    for i in range(n):
        out.append(b"blob\nmark :%d\n" % (2 * i + 2))
        data(card_text(i, training_url))
        out.append(b"blob\nmark :%d\n" % (2 * i + 3))
        data(POINTER.format(md5=f"a{i:031x}"))
    marks = reg / ".git" / "bench-marks"
    sh(["git", "fast-import", "--quiet", f"--export-marks={marks}"], reg, env, b"".join(out))
    sha = dict(line.split() for line in marks.read_text().splitlines())
    marks.unlink()

    # (2) each model's tree, then the models/ tree after each commit's batch
    batches = [
        f"100644 blob {sha[':1']}\tconfig.yaml\n"
        + f"100644 blob {sha[f':{2 * i + 3}']}\tmodel.onnx.dvc\n"
        + f"100644 blob {sha[f':{2 * i + 2}']}\tmodel.yaml\n"
        for i in range(n)
    ]
    model_trees = sh(["git", "mktree", "--batch"], reg, env, "\n".join(batches).encode()).split()
    batch = -(-n // commits)
    listings, lines = [], []
    for c in range(commits):
        lines += [
            f"040000 tree {model_trees[i]}\t{model_name(i)}"
            for i in range(c * batch, min(n, (c + 1) * batch))
        ]
        listings.append("\n".join(lines) + "\n")
    folder_trees = sh(["git", "mktree", "--batch"], reg, env, "\n".join(listings).encode()).split()

    # (3) the commits and the tags
    out = []
    ts = 1_700_000_000
    for c in range(commits):
        out.append(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
        out.append(b"committer Bench <bench@registry.invalid> %d +0000\n" % (ts + c))
        data(f"add models {c * batch} to {min(n, (c + 1) * batch) - 1}")
        if c:
            out.append(b"from :%d\n" % c)
        out.append(f"M 040000 {folder_trees[c]} models\n".encode())
    for i in range(0, n, 10):
        out.append(f"tag {model_name(i)}@v1.0.0\nfrom :{i // batch + 1}\n".encode())
        out.append(b"tagger Bench <bench@registry.invalid> %d +0000\n" % (ts + commits))
        data(f"{model_name(i)} 1.0.0")
    out.append(b"done\n")
    sh(["git", "fast-import", "--quiet"], reg, env, b"".join(out))


def small_onnx() -> bytes:
    """A small real ONNX classifier (Gemm → Relu → Gemm → Softmax)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
        for n, s in (("w1", (8, 16)), ("b1", (16,)), ("w2", (16, 3)), ("b2", (3,)))
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def build(work: Path, n: int, commits: int, onnx: bool) -> tuple[Path, dict[str, float]]:
    """Create the training repo, the registry (history + tags + two pull-request branches)."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@registry.invalid",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@registry.invalid",
        "DVC_NO_ANALYTICS": "1",
    }
    figures: dict[str, float] = {}
    train = work / "train"
    train.mkdir()
    sh(["git", "init", "-q", "-b", "main"], train, env)
    (train / "train.py").write_text("print('train')\n")
    sh(["git", "add", "-A"], train, env)
    sh(["git", "commit", "-q", "-m", "training code"], train, env)

    reg = work / "registry"
    reg.mkdir()
    sh(["git", "init", "-q", "-b", "main"], reg, env)
    sh(["git", "config", "gc.auto", "0"], reg, env)  # no packing in the middle of the timings
    start = time.perf_counter()
    import_registry(reg, n, commits, train.as_uri(), env)
    sh(["git", "checkout", "-q", "-f", "main"], reg, env)
    figures["build"] = time.perf_counter() - start

    # dvc with local remotes, committed on main so both pull requests branch from it
    sh([str(BIN / "dvc"), "init", "-q"], reg, env)
    storage = work / "storage"
    (reg / ".dvc" / "config").write_text(
        "[core]\n    analytics = false\n    remote = public\n"
        f"['remote \"staging\"']\n    url = {storage / 'staging'}\n"
        f"['remote \"public\"']\n    url = {storage / 'public'}\n"
    )
    # the CODEOWNERS `registry codeowners` writes (no card names owners: the maintainers own all)
    from registry.cards.codeowners import FILE, HEADER

    team = "@org/registry-maintainers"
    lines = [HEADER, f"# registry-maintainers: {team}", f"* {team}"]
    lines += [f"/models/{model_name(i)}/ {team}" for i in range(n)]
    (reg / FILE).parent.mkdir(parents=True, exist_ok=True)
    (reg / FILE).write_text("\n".join(lines) + "\n")
    sh(["git", "add", "-A"], reg, env)
    sh(["git", "commit", "-q", "-m", "dvc, CODEOWNERS"], reg, env)

    # pull request 1: edit one published model's description
    sh(["git", "checkout", "-q", "-b", "pr-edit"], reg, env)
    card = reg / "models" / model_name(min(420, (n - 1) // 10 * 10)) / "model.yaml"
    card.write_text(card.read_text() + "description: a better description\n")
    sh(["git", "commit", "-qam", "describe one model"], reg, env)

    # pull request 2: add one real ONNX model, weights pushed to staging (DVC reads every pointer
    # of the registry to add one, so a registry of 100,000 models leaves this case out)
    sh(["git", "checkout", "-q", "main"], reg, env)
    if not onnx:
        return reg, figures
    sh(["git", "checkout", "-q", "-b", "pr-onnx"], reg, env)
    folder = reg / "models" / "example-mlp"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(small_onnx())
    (folder / "config.yaml").write_text("epochs: 3\n")
    sh([str(BIN / "dvc"), "add", "-q", "models/example-mlp/model.onnx"], reg, env)
    sh(
        [str(BIN / "dvc"), "push", "-q", "-r", "staging", "models/example-mlp/model.onnx.dvc"],
        reg,
        env,
    )
    size = (folder / "model.onnx").stat().st_size
    (folder / "model.yaml").write_text(
        CARD.format(
            name="example-mlp",
            version="",
            status="unpublished",
            project=0,
            repo=train.as_uri(),
            acc=93,
        ).replace("size: 1234", f"size: {size}")
    )
    sh(["git", "add", "-A"], reg, env)
    sh(["git", "commit", "-q", "-m", "add example-mlp"], reg, env)
    sh(["git", "checkout", "-q", "main"], reg, env)
    shutil.rmtree(folder)  # the dvc-ignored weights stay behind on checkout; main has no such model
    return reg, figures


class Timing:
    """A command's best whole-process wall time over some runs, the CPU time (user + system, its
    children included) of that run, and the load average just after it."""

    def __init__(self, cmd: list[str], cwd: Path, repeat: int):
        self.cmd = cmd
        best = None
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            if proc.returncode not in (0, 1):
                raise SystemExit(
                    f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr}"
                )
            if best is None or wall < best[0]:
                best = (wall, cpu, os.getloadavg()[0], proc)
        self.wall, self.cpu, self.load, self.proc = best


def profile(cmd: list[str], cwd: Path, top: int = 12) -> list[str]:
    """Where a command's time goes: its run under cProfile, the registry's functions (and the
    builtins) of most cumulative time."""
    import pstats

    out = cwd.parent / "profile.out"
    try:
        subprocess.run(
            [cmd[0], "-m", "cProfile", "-o", str(out), *cmd[1:]],
            cwd=cwd,
            capture_output=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return ["(the profiled run took over 600 s and was stopped)"]
    stream = io.StringIO()
    pstats.Stats(str(out), stream=stream).sort_stats("cumulative").print_stats(80)
    rows = [ln for ln in stream.getvalue().splitlines() if re.match(r"\s*[\d/]+\s+[\d.]+", ln)]
    # below the command's own entry points (the interpreter, the CLI, the API)
    skip = ("builtins.exec", "__main__", "registry/cli/", "registry/api/", "check_revisions")
    return [
        ln.replace(f"{ROOT}/", "")  # the project's own files by their paths in the repository
        for ln in rows
        if ("registry/" in ln or "{" in ln) and not any(k in ln for k in skip)
    ][:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000, help="number of model cards")
    parser.add_argument("--commits", type=int, default=10, help="commits the cards are spread over")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (the best is kept)")
    parser.add_argument(
        "--no-write", action="store_true", help="print the figures, leave docs/ alone"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated registry (its folder is printed)"
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="FOLDER",
        help="time the registries a run with --keep left in FOLDER (same --models) instead of "
        "building them",
    )
    args = parser.parse_args()
    bench_common.compile_registry()  # timed runs do not compile the registry

    registry = [sys.executable, "-m", "registry"]
    folder = (
        contextlib.nullcontext(str(args.reuse or tempfile.mkdtemp(prefix="check-bench-")))
        if args.keep or args.reuse
        else tempfile.TemporaryDirectory(prefix="check-bench-")
    )
    tenth = max(1, args.models // 10)
    with folder as tmp:
        work = Path(tmp)
        if args.keep:
            print(f"registries in {work}", flush=True)
        onnx_case = args.models <= ONNX_UP_TO
        if args.reuse:
            reg, small = work / "registry", work / "tenth" / "registry"
            figures = {"build": float("nan")}
            if len(os.listdir(reg / "models")) != args.models:
                raise SystemExit(f"{reg} does not hold {args.models:,} models")
        else:
            reg, figures = build(work, args.models, args.commits, onnx_case)
            small = work / "tenth" / "registry"
        if not small.parent.exists():
            small.parent.mkdir()
            small = build(small.parent, tenth, args.commits, False)[0]
        startup = Timing(registry + ["--version"], reg, args.repeat)
        rows: list[tuple[str, Timing, str, str]] = [
            ("interpreter + `registry --version` (start-up floor)", startup, "", "")
        ]
        allow = ["--allow-local-urls"]  # the training code is a local repository here
        pr = Timing(
            registry + ["check", "--base", "main", "--head", "pr-edit", "--no-content", *allow],
            reg,
            args.repeat,
        )
        rows.append(
            (
                f"PR touching one model in a {args.models:,}-model registry "
                "(content checks off; CODEOWNERS names every model)",
                pr,
                f"≤ {GOAL_PR_S} s",
                _verdict(pr.proc),
            )
        )
        if onnx_case:
            onnx = Timing(
                registry
                + ["check", "--base", "main", "--head", "pr-onnx", "--format", "json", *allow],
                reg,
                args.repeat,
            )
            ran = json.loads(onnx.proc.stdout)["models"][0]["checks_run"]
            rows.append(
                (
                    "PR adding one real ONNX model, all checks (source-repo probes a local clone)",
                    onnx,
                    "",
                    f"{_verdict(onnx.proc)}; checks run: {', '.join(ran)}",
                )
            )
        all_cmd = registry + ["check", "--all", "--no-content", "--offline", *allow]
        every = Timing(all_cmd, reg, args.repeat)
        every_tenth = Timing(all_cmd, small, args.repeat)
        per_card = every.cpu / args.models * 1000
        per_card_tenth = every_tenth.cpu / tenth * 1000
        rows.append(
            (
                f"`check --all` over {tenth:,} cards (a tenth, side by side)",
                every_tenth,
                "",
                f"{_verdict(every_tenth.proc)}; CPU {per_card_tenth:.2f} ms per card",
            )
        )
        rows.append(
            (
                f"`check --all` over {args.models:,} cards",
                every,
                f"≤ {GOAL_ALL_S} s" if args.models >= 100_000 else "",
                f"{_verdict(every.proc)}; CPU {per_card:.2f} ms per card "
                f"({per_card / per_card_tenth:.2f}× the tenth's)",
            )
        )
        profiles = []
        if pr.wall > GOAL_PR_S:
            profiles.append((pr.cmd, "", profile(pr.cmd, reg)))
        if every.wall > (GOAL_ALL_S if args.models >= 100_000 else GOAL_ALL_S / 10):
            one = all_cmd + ["--jobs", "1"]
            profiles.append((one, f" on the {tenth:,}-card registry", profile(one, small)))

    cpus = os.cpu_count()
    lines = [
        SECTION,
        "",
        f"`{' '.join(['python', 'benchmarks/check_bench.py'] + _shown_args(sys.argv[1:]))}` on "
        f"{platform.system()} {platform.machine()}, {cpus} CPU{'s' if cpus != 1 else ''}, "
        f"Python {platform.python_version()}; registry of {args.models:,} model cards (and a "
        f"generated `.github/CODEOWNERS` naming each) over {args.commits} commits with "
        f"{args.models // 10:,} version tags (loose refs, as `git fetch` leaves them in a CI "
        f"checkout), built with `git fast-import` and `git mktree`"
        + (f" in {figures['build']:.1f} s" if figures["build"] == figures["build"] else "")
        + ", never committed; the registry's modules compiled first, as after a first run. "
        "Whole-process wall time (best of "
        f"{args.repeat}), the CPU time of that run (user + system, child processes included) and "
        "the load average right after it: the cores are shared with other work, which slows the "
        "wall times; the CPU time is what the command itself costs.",
        "",
        "| case | command | wall s | CPU s | load | goal | met | result |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for label, t, goal, verdict in rows:
        met = ""
        if goal:
            limit = float(goal.split()[1])
            met = "yes" if t.wall <= limit else "**no**"
            met += " (CPU time within)" if t.wall > limit >= t.cpu else ""
        lines.append(
            f"| {label} | `{_shown(t.cmd)}` | {t.wall:.2f} | {t.cpu:.2f} | {t.load:.1f} | {goal} "
            f"| {met} | {verdict} |"
        )
    for cmd, where, top in profiles:
        lines += [
            "",
            f"Where the time of `{_shown(cmd)}`{where} goes (cProfile, cumulative seconds, "
            "with the profiler's own overhead):",
            "",
            "```",
            *top,
            "```",
        ]
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        bench_common.write(SECTION, text)
        print(f"wrote {DOCS.relative_to(ROOT)}")


def _shown_args(args: list[str]) -> list[str]:
    """The benchmark's own arguments as the docs show them: without --reuse and its folder."""
    out, skip = [], False
    for a in args:
        if skip or a == "--reuse" or a.startswith("--reuse="):
            skip = a == "--reuse"
            continue
        out.append(a)
    return out


def _shown(cmd: list[str]) -> str:
    """A command as a user types it: `registry …` for `python -m registry …`."""
    return " ".join(["registry", *cmd[3:]])


def _verdict(proc: subprocess.CompletedProcess) -> str:
    last = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(last) if " checked: " in ln), "")
    return f"exit {proc.returncode}" + (f", {summary}" if summary else "")


if __name__ == "__main__":
    if shutil.which("git") is None:
        raise SystemExit("git is needed")
    main()
