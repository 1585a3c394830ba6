"""Benchmark of device packaging: packaging time per target, latency of the chosen engine against
PyTorch eager and a default ONNX Runtime session, int8 size and accuracy cost.

    .venv/bin/python benchmarks/package.py [--repeats 50] [--write docs/benchmarks.md]

Two models are built here with fixed seeds: a small CNN like the registry's example classifier
(1×28×28 → 10) and a transformer-sized encoder (4 layers, d_model 256, 8 heads, 64 tokens).
The figures go to stdout and, with --write, into the '## Device packages' section of the file.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # benchmarks/bench_common.py, beside this script
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Device packages"
NOTE = (
    "Reading the figures: packaging time includes conversion, verification and (for timed "
    "targets) the engine benchmark; cross-built targets are verified but not timed. 'from .pt2' "
    "builds the target from the model's PyTorch ExportedProgram (ExecuTorch .pte, verified here "
    "against the ONNX with ExecuTorch's runtime). What ships is chosen by a fixed rule (the "
    "target's first verified candidate with its engine's default setting), so packages rebuild "
    "byte-identical; the build's benchmark only advises, and its advice (a setting at least 5% "
    "faster on this machine, and the card fields that ship it) is quoted under each table. The "
    "'shipped' row re-times the package's engine setting after the build. CPU time is the "
    "process's and its children's; load is the 1-minute load average when the build started. This "
    "machine has 2 cores shared with other work: the same row varies by ±30% or more from run to "
    "run; figures from a dedicated runner are the ones to trust. Model size counts every model "
    "file of the package (OpenVINO: .xml and .bin).\n"
)


def build_models(workdir: Path):
    """(name, torch module, example input, onnx path) for each benchmark model."""
    import torch

    torch.manual_seed(0)
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 7 * 7, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    ).eval()

    class Block(torch.nn.Module):
        """Pre-norm encoder block written with plain ops (exports to standard ONNX)."""

        def __init__(self, d=256, heads=8, ff=1024):
            super().__init__()
            self.heads = heads
            self.qkv = torch.nn.Linear(d, 3 * d)
            self.proj = torch.nn.Linear(d, d)
            self.norm1, self.norm2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
            self.ff = torch.nn.Sequential(
                torch.nn.Linear(d, ff), torch.nn.GELU(), torch.nn.Linear(ff, d)
            )

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = (
                self.qkv(self.norm1(x))
                .reshape(b, t, 3, self.heads, d // self.heads)
                .permute(2, 0, 3, 1, 4)
            )
            att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
            return x + self.ff(self.norm2(x))

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.Sequential(*[Block() for _ in range(4)])
            self.head = torch.nn.Linear(256, 16)

        def forward(self, x):
            return self.head(self.blocks(x).mean(dim=1))

    models = [
        ("cnn", cnn, torch.randn(1, 1, 28, 28)),
        ("transformer", Encoder().eval(), torch.randn(1, 64, 256)),
    ]
    out = []
    for name, module, example in models:
        path = workdir / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=["input"],
                output_names=["output"],
            )
        out.append((name, module, example, path))
    return out


def median_ms(factories: dict, repeats: int, rounds: int = 3, warmup: int = 5) -> dict[str, float]:
    """Best-of-rounds median wall time (ms) of each runner. Each factory makes a fresh runner per
    round and only one exists at a time: idle worker threads of another runtime's session would
    otherwise compete with the one being timed."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, factory in factories.items():
            fn = factory()
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1000)
            best[name] = min(best.get(name, float("inf")), float(np.median(times)))
            del fn
    return best


def model_size(package) -> int:
    """Bytes of the model files of an opened package (OpenVINO: .xml and .bin)."""
    return sum(len(v) for k, v in package.files.items() if k.startswith("model/"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    sys.path.insert(0, str(ROOT))
    from registry.cards.schema import ModelCard
    from registry.core.errors import ConversionError
    from registry.packaging.archive import open_package
    from registry.packaging.build import build_package
    from registry.packaging.engines import get_engine
    from registry.packaging.source import ModelSource

    threads = [1, 2]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = build_models(work)
        # Eager PyTorch first, before any ONNX Runtime or OpenVINO thread pool exists: their idle
        # worker threads would otherwise compete with PyTorch's on a small machine.
        torch.set_num_threads(max(threads))
        with torch.no_grad():
            eager = {
                name: median_ms({"eager": lambda m=module, x=example: lambda: m(x)}, args.repeats)[
                    "eager"
                ]
                for name, module, example, _ in models
            }
        for name, module, example, onnx_path in models:
            card = ModelCard(
                name=name,
                version="1.0.0",
                status="published",
                task="classification",
                project="bench",
                source={"repo": "https://example.invalid/train.git"},
                config="config.yaml",
                weights=onnx_path.name,
            )
            source = ModelSource(
                name=name, version="1.0.0", card=card, weights=onnx_path, folder=work
            )
            pt2 = onnx_path.with_suffix(".pt2")
            torch.export.save(torch.export.export(module, (example,)), str(pt2))
            pt_card = card.model_copy(update={"pytorch": pt2.name})
            pt_source = ModelSource(
                name=name,
                version="1.0.0",
                card=pt_card,
                weights=onnx_path,
                folder=work,
                pytorch=pt2,
            )
            opts = {"repeats": args.repeats, "threads": threads}
            rows = []
            results = {}
            for target, extra, src in [
                ("linux-x86_64", {}, source),
                ("linux-x86_64", {"quantize": "dynamic"}, source),
                ("linux-aarch64", {}, source),
                ("android-arm64", {"quantize": "dynamic"}, source),
                ("android-arm64", {}, pt_source),
                ("cuda", {}, source),
            ]:
                load = os.getloadavg()[0]
                cpu0 = _cpu_seconds()
                start = time.perf_counter()
                label = (
                    target + (" int8" if extra else "") + (" from .pt2" if src is pt_source else "")
                )
                try:
                    result = build_package(
                        src,
                        target,
                        work / "dist" / f"{target}-{len(extra)}-{src is pt_source}",
                        overrides={**opts, **extra},
                    )
                except ConversionError as e:  # a failed gate is a figure too: say it, with numbers
                    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu0
                    detail = e.message.split("no candidate passed verification: ", 1)[-1]
                    rows.append(
                        f"| {label} | {seconds:.2f} s / {cpu:.2f} s, load {load:.1f} | "
                        f"**failed verification**: {detail} | - | - | - |"
                    )
                    continue
                seconds = time.perf_counter() - start
                cpu = _cpu_seconds() - cpu0
                results[label] = result
                size = model_size(open_package(result.path))
                cos = min(
                    o.cosine
                    for v in result.manifest.verification
                    if v.passed
                    for o in v.outputs
                    if o.cosine is not None
                )
                rows.append(
                    f"| {label} | {seconds:.2f} s / {cpu:.2f} s, load {load:.1f} | "
                    f"{result.manifest.description.converter} | "
                    f"{size / 1e6:.3f} MB | {cos:.6f} | "
                    f"{'yes' if result.manifest.benchmark.measured else 'no (cross-built)'} |"
                )
            # latency: chosen engine vs eager PyTorch vs a default ORT session, same input
            chosen = results["linux-x86_64"].manifest
            pkg = open_package(results["linux-x86_64"].path)
            feed = {"input": example.numpy()}

            def chosen_runner(pkg=pkg, chosen=chosen, feed=feed):
                run = get_engine(chosen.engine.engine).open_bytes(
                    pkg.files, chosen.model_file, chosen.engine
                )
                return lambda: run(feed)

            def default_runner(path=onnx_path, feed=feed):
                session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                return lambda: session.run(None, feed)

            times = median_ms({"chosen": chosen_runner, "default": default_runner}, args.repeats)
            t_chosen, t_default, t_eager = times["chosen"], times["default"], eager[name]
            int8 = results["linux-x86_64 int8"]
            size32 = model_size(open_package(results["linux-x86_64"].path))
            size8 = model_size(open_package(int8.path))
            int8_cos = min(o.cosine for o in int8.manifest.verification[0].outputs)
            lines += [
                f"### {name} ({onnx_path.stat().st_size / 1e6:.2f} MB fp32 ONNX)",
                "",
                "| target | packaging wall / CPU time | shipped converter | model size | "
                "min cosine vs fp32 | "
                "timed |",
                "| --- | --- | --- | --- | --- | --- |",
                *rows,
                "",
                f"Latency, batch 1, best of 3 rounds of {args.repeats} runs (median each; one "
                f"runtime "
                f"alive at a time, eager timed first) on this machine ({get_cpu()}):",
                "",
                "| runner | median ms | speed-up vs eager |",
                "| --- | --- | --- |",
                f"| PyTorch eager ({max(threads)} threads) | {t_eager:.3f} | 1.00× |",
                f"| ONNX Runtime, default session | {t_default:.3f} | {t_eager / t_default:.2f}× |",
                f"| shipped: {chosen.benchmark.chosen_converter} {chosen.engine.label()} | "
                f"{t_chosen:.3f} | "
                f"{t_eager / t_chosen:.2f}× |",
                "",
                f"int8 (dynamic, per-channel) size: {size8 / size32:.3f}× of fp32; "
                f"cosine vs fp32 {int8_cos:.5f}.",
                "",
                "The linux-x86_64 build's benchmark advice: "
                + (results["linux-x86_64"].benchmark.advice or "none (nothing timed)")
                + ".",
                "",
            ]
    cpu = get_cpu()
    command = "python benchmarks/package.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    body = "\n".join(
        [
            SECTION,
            "",
            f"Command: `{command.strip()}` — {cpu}, {platform.system()}, "
            f"onnxruntime {ort.__version__}, torch {torch.__version__.split('+')[0]}.",
            "",
            *lines,
            NOTE,
        ]
    )
    print(body)
    if args.write:
        bench_common.write(SECTION, body, args.write)
    return 0


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def get_cpu() -> str:
    """CPU model and core count."""
    import os

    name = platform.processor() or platform.machine()
    try:
        name = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{name} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    sys.exit(main())
