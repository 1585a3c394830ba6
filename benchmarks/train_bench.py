"""Benchmark of `registry train`; writes its figures to docs/benchmarks.md (section "registry
train").

  (a) overhead: training the digits CNN (training/digits-cnn, instance `base`: 15 epochs, batch 64,
      Adam 0.01, one thread) with `registry train` against a plain hand-written PyTorch loop of the
      same model, data, split and epochs that also ends with the test accuracy, an ONNX export and
      a torch.export `.pt2`, as the registry's results do. Timed in one process (the loop and
      everything around it: data, checkpoints, metrics files, plots, exports) and as whole commands
      (`registry train …` against `python <the plain loop>`);
  (b) workers: 4 instances of that model (60 epochs each) with `--workers 2` against `--workers 1`,
      whole command and training only (from the progress events' times);
  (c) the bot: `registry train check` of the example files, static, and the sandboxed run of one
      structure + algorithm (`--dynamic`).

Every figure comes with the CPU seconds it took (user + system, of the commands and everything
they started), since the machine may be shared: the load average is reported with them. The
example datasets are copied from the working tree, or from examples/store where a clone has only
their DVC pointers.

Usage:
    .venv/bin/python benchmarks/train_bench.py [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from statistics import median

import bench_common  # benchmarks/bench_common.py, beside this script
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## registry train"
sys.path.insert(0, str(ROOT))

PLAIN_LOOP = textwrap.dedent('''\
    """The digits CNN trained by hand: the same data, split, model, optimiser and epochs."""
    import io, sys, time, warnings
    import numpy as np
    import torch
    from torch import nn
    from sklearn.model_selection import train_test_split

    LOOP_CPU = [0.0]  # CPU seconds of the last run's epochs alone (read by the benchmark)

    def main(root, out):
        """Train, measure and write out/plain.onnx and out/plain.pt2; return the test accuracy."""
        torch.set_num_threads(1)
        torch.manual_seed(0)
        with np.load(f"{root}/datasets/digits/digits.npz") as z:
            x = (z["image"].astype(np.float32) * 0.0625).astype(np.float32)
            y = z["digit"].astype(np.int64)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        xtr, xte, ytr, yte = map(torch.from_numpy, (xtr, xte, ytr, yte))
        net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(64, 10))
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(0)
        started = time.process_time()
        for epoch in range(15):
            net.train()
            order = torch.randperm(len(xtr), generator=gen)
            for i in range(0, len(xtr), 64):
                idx = order[i:i + 64]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
                loss.backward()
                opt.step()
        LOOP_CPU[0] = time.process_time() - started
        net.eval()
        with torch.no_grad():
            acc = float((net(xte).argmax(1) == yte).float().mean())
        exported = nn.Sequential(net, nn.Softmax(-1))
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(exported, (xte[:1],), buf, dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["probabilities"],
                              dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}})
            program = torch.export.export(exported, (xte[:2],),
                                          dynamic_shapes=({0: torch.export.Dim.AUTO},))
        open(f"{out}/plain.onnx", "wb").write(buf.getvalue())
        torch.export.save(program, f"{out}/plain.pt2")
        return acc

    if __name__ == "__main__":
        print(main(sys.argv[1], sys.argv[2]))
''')

FOUR = textwrap.dedent("""\
    name: four
    task: classification
    project: bench
    model: digits-four
    metric: accuracy
    dataset: digits
    algorithm: classification
    structure: digits-cnn
    hyperparameters: {epochs: 60, batch_size: 64, learning_rate: 0.01}
    grid:
      prefix: seed
      hyperparameters:
        seed: [0, 1, 2, 3]
""")


NOTES = (
    "What the registry adds to one run is fixed, not per epoch: the config snapshot, a "
    "checkpoint every 2 s (with the metrics files), the two curves (Pillow: about 0.01 s a "
    "picture, where matplotlib took 0.2 s) and the check of the `.pt2`, some 0.05 CPU s in all; "
    "the loop is the plain loop's (the training metrics come from the batches' own outputs, "
    "and a structure that is a chain of layers runs as a plain loop over them, like "
    "`nn.Sequential`); the row of the epochs alone shows what is left per step. "
    "Both sides export ONNX and a `.pt2`, which take a good part of a run this short. The whole "
    "command adds the command's own start and the worker's fork server, which imports torch, "
    "dynamo, torch.export's tracer, onnx and Pillow once for all workers and freezes those "
    "objects out of the collector, so a worker's first full collection does not walk them. The "
    "whole single-instance command beats `python plain_loop.py` because the script imports "
    "scikit-learn for its split and ends with Python's teardown of torch (seconds), while the "
    "command's process never imports torch and its worker and fork server end at once. The "
    "bot's times are mostly starting Python and importing torch, twice: the static shapes run "
    "in the bot's own process on torch's meta device, whose Python kernels import sympy (for "
    "`torch._check`); the sandboxed child, a fresh interpreter started before the checker's own "
    "imports, imports torch and onnx meanwhile and reads what to build only once the static "
    "checks are done. Neither process imports dynamo, torch's compiler: torch's eager code asks "
    "it only to mark functions as not to be compiled and, in an optimiser's step, for a graph "
    "break, which do nothing when nothing is compiled, so both hand torch a stand-in that "
    "answers these itself (some 1.5 CPU s less in the static check; about 3 in the child, which "
    "then never imports sympy either). The build, step and ONNX export themselves take about "
    "0.1 CPU s, and the checks the in-process figure. On two idle cores the two processes "
    "import side by side, so the dynamic check takes about the static check's time plus the "
    "step; with the machine's cores busy with other work, these imports set the wall time."
)


def make_registry(tmp: Path) -> Path:
    """A git repository with this project's datasets and training files (data copied in: from the
    working tree, or from examples/store, where the bytes their DVC pointers name are kept)."""
    root = tmp / "registry"
    root.mkdir()
    for sub in ("datasets", "training"):
        shutil.copytree(ROOT / sub, root / sub, ignore=shutil.ignore_patterns("results"))
    for pointer in (root / "datasets").glob("*/*.dvc"):
        data = pointer.with_suffix("")
        if not data.exists():
            md5 = yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
            shutil.copy(ROOT / "examples/store/files/md5" / md5[:2] / md5[2:], data)
    (root / "training/four").mkdir()
    (root / "training/four/task.yaml").write_text(FOUR)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@registry.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@registry.invalid",
    }
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        [str(Path(sys.executable).parent / "dvc"), "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "bench"],
    ):
        subprocess.run(cmd, cwd=root, check=True, env=env, capture_output=True)
    (tmp / "plain_loop.py").write_text(PLAIN_LOOP)
    return root


def collect_orphans() -> None:
    """Become the reaper of this process's orphaned descendants (Linux), so that the CPU time of
    a command's fork server, which outlives the command by a moment, is counted with it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def children_cpu() -> float:
    """CPU seconds (user + system) of the ended children and their reaped descendants."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds until the command's output closed, CPU seconds of the command and all it
    started, the result)."""
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    while True:  # the orphans it left (the fork server), reparented here
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took, children_cpu() - cpu, proc


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The fastest run's (wall, CPU)."""
    return min(runs)


def cell(run: tuple[float, float]) -> tuple[str, str]:
    return f"{run[0]:.2f}", f"{run[1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (the best counts)")
    parser.add_argument(
        "--no-write", action="store_true", help="print the figures, leave docs/ alone"
    )
    args = parser.parse_args()
    bench_common.compile_registry()  # timed runs do not compile the registry
    py = sys.executable
    collect_orphans()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp_name:
        tmp = Path(tmp_name)
        root = make_registry(tmp)
        results = root / "training"

        # (a) in one process: the runner against the plain loop in alternating rounds (which goes
        # first alternates too); the medians, and the median of each round's ratio, resist the
        # machine's other work better than the best of a few
        import importlib.util

        import torch

        from registry.training.files import expand_instances, read_task
        from registry.training.runner import train_instance

        spec = importlib.util.spec_from_file_location("plain_loop", tmp / "plain_loop.py")
        plain = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plain)
        base = expand_instances(read_task(root, "digits-cnn"))[0]

        def run_plain() -> float:
            return plain.main(str(root), str(tmp))

        loop_cpu: dict[str, float] = {}

        def mark_loop(event: dict) -> None:  # the runner's epochs: its start to its last epoch
            if event["event"] in ("start", "epoch"):
                loop_cpu[event["event"]] = time.process_time()

        def run_registry() -> float:
            shutil.rmtree(results / "digits-cnn/results", ignore_errors=True)
            return train_instance(root, "digits-cnn", base, threads=1, events=mark_loop)["accuracy"]

        plain_t, runner_t, plain_loop_t, runner_loop_t = [], [], [], []
        rounds = max(6, 2 * args.repeat)
        for i in range(rounds + 1):  # the first round warms imports and caches; not counted
            pair = {}
            for side in ("plain", "registry") if i % 2 else ("registry", "plain"):
                t0, c0 = time.perf_counter(), time.process_time()
                accuracy = (run_plain if side == "plain" else run_registry)()
                pair[side] = (time.perf_counter() - t0, time.process_time() - c0, accuracy)
            if i:
                plain_t.append(pair["plain"])
                runner_t.append(pair["registry"])
                plain_loop_t.append(plain.LOOP_CPU[0])
                runner_loop_t.append(loop_cpu["epoch"] - loop_cpu["start"])
            else:
                # as in a worker, whose fork server freezes what its imports made: a full
                # collection over those objects would otherwise land on one side or the other
                gc.freeze()
        plain_acc, runner_acc = plain_t[-1][2], runner_t[-1][2]
        plain_med = (median(t[0] for t in plain_t), median(t[1] for t in plain_t))
        runner_med = (median(t[0] for t in runner_t), median(t[1] for t in runner_t))
        run_ratio = median(r[0] / p[0] for p, r in zip(plain_t, runner_t))
        run_cpu_ratio = median(r[1] / p[1] for p, r in zip(plain_t, runner_t))
        loop_ratio = median(r / p for p, r in zip(plain_loop_t, runner_loop_t))
        torch.set_num_threads(os.cpu_count() or 1)

        # (a) whole commands
        cli_t, loop_t = [], []
        for _ in range(args.repeat):
            shutil.rmtree(results / "digits-cnn/results", ignore_errors=True)
            loop_t.append(timed([py, str(tmp / "plain_loop.py"), str(root), str(tmp)], root)[:2])
            cli_t.append(
                timed(
                    [
                        py,
                        "-m",
                        "registry",
                        "train",
                        "digits-cnn",
                        "--instance",
                        "base",
                        "--threads",
                        "1",
                        "--progress",
                        "plain",
                    ],
                    root,
                )[:2]
            )

        # (b) four instances, two workers against one
        one_t, two_t, one_span, two_span = [], [], [], []
        for _ in range(max(1, args.repeat - 1)):
            for workers, bucket, spans in (("1", one_t, one_span), ("2", two_t, two_span)):
                shutil.rmtree(results / "four/results", ignore_errors=True)
                command = [
                    py,
                    "-m",
                    "registry",
                    "train",
                    "four",
                    "--workers",
                    workers,
                    "--threads",
                    "1",
                    "--progress",
                    "jsonl",
                ]
                took, cpu, proc = timed(command, root)
                bucket.append((took, cpu))
                events = [
                    json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")
                ]
                starts = [e["time"] for e in events if e.get("event") == "start"]
                ends = [e["time"] for e in events if e.get("event") == "done"]
                spans.append(max(ends) - min(starts))  # first instance's start to last one's end

        # (c) the bot
        static_t, dynamic_t = [], []
        for _ in range(args.repeat):
            static_t.append(timed([py, "-m", "registry", "train", "check"], root)[:2])
            dynamic_t.append(
                timed(
                    [
                        py,
                        "-m",
                        "registry",
                        "train",
                        "check",
                        "--dynamic",
                        "--task",
                        "digits-embedding",
                    ],
                    root,
                )[:2]
            )
        from registry.core.repo import WorkTree
        from registry.training.validate import check_training

        t0, c0 = time.perf_counter(), time.process_time()
        check_training(WorkTree(root))
        static_inproc = (time.perf_counter() - t0, time.process_time() - c0)

    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    workers_ratio = best(two_t)[0] / best(one_t)[0]
    span_ratio = min(two_span) / min(one_span)
    rows = [
        (
            "digits CNN, 15 epochs, in one process",
            "plain loop",
            *cell(plain_med),
            "`registry train` runner",
            *cell(runner_med),
            f"{run_ratio:.2f}×",
            target("≤ 1.05×", run_ratio <= 1.05),
            f"medians of {rounds} alternating rounds after a warm-up one (ratio: of each "
            "round's; the imports' objects frozen out of the collector, as in a worker); CPU "
            f"{run_cpu_ratio:.2f}×; test accuracy {plain_acc:.4f} (plain) / {runner_acc:.4f} "
            "(registry)",
        ),
        (
            "the same, its 15 epochs alone",
            "plain loop",
            "",
            f"{median(plain_loop_t):.2f}",
            "`registry train` runner",
            "",
            f"{median(runner_loop_t):.2f}",
            f"{loop_ratio:.2f}×",
            "",
            "CPU s of the epochs (the runner's: from its start event to its last epoch's); the "
            "rest of a run is reading the data, the exports and the results files",
        ),
        (
            "digits CNN, 15 epochs, whole command",
            "`python plain_loop.py`",
            *cell(best(loop_t)),
            "`registry train digits-cnn --instance base --threads 1`",
            *cell(best(cli_t)),
            f"{best(cli_t)[0] / best(loop_t)[0]:.2f}×",
            "",
            "the command adds its start, a worker process and its fork server",
        ),
        (
            "4 instances of 60 epochs (`--threads 1`), whole command",
            "`--workers 1`",
            *cell(best(one_t)),
            "`--workers 2`",
            *cell(best(two_t)),
            f"{workers_ratio:.2f}×",
            target("≤ 0.6×", workers_ratio <= 0.6),
            "includes starting the command and the fork server's imports",
        ),
        (
            "the same, training only",
            "`--workers 1`",
            f"{min(one_span):.2f}",
            "",
            "`--workers 2`",
            f"{min(two_span):.2f}",
            "",
            f"{span_ratio:.2f}×",
            target("≤ 0.6×", span_ratio <= 0.6),
            "first instance's start to the last one's end",
        ),
        (
            "bot, static (schemas, references, shapes)",
            "in one process",
            *cell(static_inproc),
            "`registry train check`",
            *cell(best(static_t)),
            "",
            target("≤ 5 s", best(static_t)[0] <= 5),
            "every example file",
        ),
        (
            "bot, sandboxed build + step + export",
            "",
            "",
            "",
            "`registry train check --dynamic --task digits-embedding`",
            *cell(best(dynamic_t)),
            "",
            target("≤ 5 s", best(dynamic_t)[0] <= 5),
            "one structure + algorithm, and the static checks",
        ),
    ]
    lines = [
        SECTION,
        "",
        f"`{' '.join(['python', 'benchmarks/train_bench.py'] + sys.argv[1:])}` on "
        f"{platform.system()} "
        f"{platform.machine()}, {cpus} CPU{'s' if cpus != 1 else ''}, Python "
        f"{platform.python_version()}, "
        f"torch {torch.__version__}. Wall time (s) and CPU time (CPU s: user + system of "
        f"the process, or of the command and all it started), best of {args.repeat} by wall "
        f"time (workers: best of {max(1, args.repeat - 1)}; in one process: medians, see its "
        f"note); load average {load_before:.1f} "
        f"when the timings started and {load:.1f} when they ended. Other work on the "
        "machine slows every wall time, the parallel one most; the CPU times show the work "
        "itself.",
        "",
        "| case | baseline | s | CPU s | registry | s | CPU s | ratio | target | note |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", NOTES, ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        bench_common.write(SECTION, text)


def target(goal: str, met: bool) -> str:
    """The target and whether these figures meet it."""
    return f"{goal} ({'met' if met else 'missed'})"


if __name__ == "__main__":
    main()
