"""Benchmark of `registry compress`: every method alone and the fallback chain, against plain
quantize_dynamic.

For the digits CNN and the transformer embedder (the models the tests train), it measures each
method's size ratio, metric drop, latency ratio and wall time, the chain's total time to a result
for a stated target, and the baseline a user would otherwise run
(`onnxruntime.quantization.quantize_dynamic` with its defaults). It also checks the issue's targets:
int8 size within 1.2x of the physical floor (a quarter of the fp32 weights), and on the transformer
a result with cosine >= 0.99 at no more than 0.35x the size where the baseline does not reach it.
The figures and the command go to docs/benchmarks.md under `## registry compress`.

    .venv/bin/python benchmarks/compress_bench.py            # writes docs/benchmarks.md
    .venv/bin/python benchmarks/compress_bench.py --no-write # print only
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from registry.cards.schema import load_card  # noqa: E402
from registry.compression.chain import CompressRequest, compress, prepare_job  # noqa: E402
from registry.compression.evaluation import median_latency_ms, session_for  # noqa: E402
from registry.compression.methods import MethodMiss, build_method, load_methods  # noqa: E402
from registry.compression.onnx_files import compact_model  # noqa: E402

SECTION = "## registry compress"


def fp32_weight_bytes(path: Path) -> int:
    model = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) * 4 for t in model.graph.initializer if t.data_type == 1)


def request(folder: Path, work: Path, **target) -> CompressRequest:
    card = load_card((folder / "model.yaml").read_bytes()).card
    return CompressRequest(
        card=card,
        model_path=folder / "model.onnx",
        model_dir=folder,
        output_root=work / "models",
        report_dir=work / "report",
        **target,
    )


def bench_model(
    label: str, folder: Path, work: Path, chain_target: dict, loose_drop: str
) -> tuple[list[str], dict]:
    job = prepare_job(request(folder, work, max_metric_drop=loose_drop))
    orig = job.original
    floor = fp32_weight_bytes(folder / "model.onnx") / 4
    rows = []
    facts: dict = {"floor": floor, "original": orig}

    def row(name: str, path: Path | None, wall: float, note: str = "") -> None:
        if path is None:
            rows.append(f"| {label} | {name} | - | - | - | {wall:.2f} | {note} |")
            return
        value = job.metric_of(path)
        lat = median_latency_ms(session_for(path), job.eval_data, runs=50)
        size = path.stat().st_size
        facts[name] = {"size": size, "metric": value}
        rows.append(
            f"| {label} | {name} | {size / orig.size:.3f} ({size / floor:.2f}x floor) | "
            f"{job.drop_of(value):+.4f} ({value:.4f}) | {lat / orig.latency_ms:.2f} | {wall:.2f} | "
            f"{note} |"
        )

    # the baseline a user would otherwise run
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t0 = time.perf_counter()
    base = work / f"{label}-baseline.onnx"
    quantize_dynamic(str(folder / "model.onnx"), str(base), weight_type=QuantType.QInt8)
    row("quantize_dynamic (baseline)", base, time.perf_counter() - t0)
    # the same file after the compaction every method below gets (short tensor names, no shape
    # annotations), so the rows compare quantization with quantization, not file layout
    compacted = work / f"{label}-baseline-compacted.onnx"
    compacted.write_bytes(base.read_bytes())
    t0 = time.perf_counter()
    compact_model(compacted)
    row(
        "quantize_dynamic + compact_model (baseline)",
        compacted,
        time.perf_counter() - t0,
        "compaction time only",
    )
    for name in load_methods():
        mdir = work / f"{label}-{name}"
        mdir.mkdir()
        t0 = time.perf_counter()
        try:
            cand = build_method(name).run(job, mdir, lambda f, t: None)
            compact_model(cand.path)
            row(name, cand.path, time.perf_counter() - t0, _settings(cand.settings))
        except MethodMiss as miss:
            if miss.candidate is not None:
                compact_model(miss.candidate.path)
                row(name, miss.candidate.path, time.perf_counter() - t0, f"miss: {miss.reason}")
            else:
                row(name, None, time.perf_counter() - t0, f"does not apply: {miss.reason}")
    t0 = time.perf_counter()
    report = compress(request(folder, work / "chain", **chain_target))
    total = time.perf_counter() - t0
    chosen = report.attempts[report.chosen] if report.met else None
    facts["chain"] = (report, total)
    summary = (
        f"chain to `{report.target_text}`: "
        + (
            f"**{chosen.method}** after {len(report.attempts)} attempt(s) "
            f"({', '.join(a.method for a in report.attempts)}), size "
            f"{chosen.measurement.size / orig.size:.3f}x, "
            f"{report.target.metric} {chosen.measurement.metric:.4f}"
            if chosen
            else "not met"
        )
        + f", {total:.1f} s in all"
    )
    t0 = time.perf_counter()
    best = compress(request(folder, work / "best", search="best", **chain_target))
    total = time.perf_counter() - t0
    if best.met:
        b = best.attempts[best.chosen]
        summary += (
            f"; with `--search best` (all {len(best.attempts)} methods): **{b.method}**, size "
            f"{b.measurement.size / orig.size:.3f}x, {best.target.metric} "
            f"{b.measurement.metric:.4f}, "
            f"{total:.1f} s"
        )
    facts["summary"] = summary
    return rows, facts


def _settings(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, do not edit docs/benchmarks.md"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from compress_models import build_digits_cnn, build_text_embedder

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "digits").mkdir()
        (tmp / "embedder").mkdir()
        (tmp / "w1").mkdir()
        (tmp / "w2").mkdir()
        digits = build_digits_cnn(tmp / "digits")
        embedder = build_text_embedder(tmp / "embedder")
        d_size = (digits / "model.onnx").stat().st_size
        e_size = (embedder / "model.onnx").stat().st_size
        rows1, f1 = bench_model(
            "digits CNN",
            digits,
            tmp / "w1",
            {"max_size": str(int(d_size * 0.15)), "max_metric_drop": "0.02"},
            "0.02",
        )
        rows2, f2 = bench_model(
            "transformer",
            embedder,
            tmp / "w2",
            {"max_size": str(int(e_size * 0.35)), "max_metric_drop": "0.01"},
            "0.01",
        )
    lines.append(SECTION)
    lines.append("")
    lines.append(
        "Command: `.venv/bin/python benchmarks/compress_bench.py` "
        f"({platform.machine()}, {platform.python_version()}, one CPU thread, "
        f"{time.strftime('%Y-%m-%d')})."
    )
    lines.append("")
    lines.append(
        "Models: the digits CNN (sklearn 8x8 digits, accuracy, "
        f"{d_size / 1000:.1f} KB fp32) and the transformer embedder (2 blocks, d=64, "
        f"cosine-to-reference, {e_size / 1000:.1f} KB fp32), both trained by "
        f"`tests/compress_models.py`. "
        "Each method runs alone with its default settings; size ratio against the fp32 file "
        "(and against the physical int8 floor, a quarter of the fp32 weights); drop in the metric "
        "(value in brackets); latency ratio of the median single-sample latency; wall time of the "
        "method. Every method's output gets `compact_model` (short tensor names, no shape "
        "annotations); the baseline is shown both as `quantize_dynamic` writes it and after the "
        "same compaction, so a size gap between the baseline and `dynamic-int8` is file layout "
        "only where the compacted row closes it."
    )
    lines.append("")
    lines.append("| model | method | size ratio | metric drop | latency ratio | wall s | notes |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    lines += rows1 + rows2
    lines.append("")
    lines.append(f"- digits CNN {f1['summary']}.")
    lines.append(f"- transformer {f2['summary']}.")
    for label, f in (("digits CNN", f1), ("transformer", f2)):
        d = f.get("dynamic-int8")
        if d:
            ratio = d["size"] / f["floor"]
            lines.append(
                f"- target int8 size within 1.2x of the floor ({label}): dynamic-int8 is "
                f"{ratio:.2f}x "
                f"({'met' if ratio <= 1.2 else 'not met'})."
            )
    b = f2["quantize_dynamic (baseline)"]["metric"]
    report, _ = f2["chain"]
    chosen = report.attempts[report.chosen] if report.met else None
    ok = chosen is not None and chosen.measurement.metric >= 0.99 and b < 0.99
    lines.append(
        f"- target on the transformer (cosine >= 0.99 at <= 0.35x, baseline below 0.99): baseline "
        f"cosine "
        f"{b:.4f}; chain result "
        + (
            f"{chosen.method}, cosine {chosen.measurement.metric:.4f} at "
            f"{chosen.measurement.size / f['original'].size:.3f}x"
            if chosen
            else "none"
        )
        + f" ({'met' if ok else 'not met'})."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        old = doc.read_text() if doc.is_file() else "# Benchmarks\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        new = (
            pattern.sub(lambda m: text + "\n", old)
            if pattern.search(old)
            else old.rstrip("\n") + "\n\n" + text
        )
        doc.write_text(new)
        print(f"wrote {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
