"""Engine choice by benchmark: time every verified candidate under every engine setting.

Each setting gets warm-up runs, then `repeats` timed runs of one sample input, spread over three
rounds that pass over all settings (one session open at a time); the median decides, the 90th
percentile is recorded. The runtime's default thread count is always one of the settings, and
the default setting is replaced only by one at least 5% faster (less is within timing noise), so a
package is never slower than a plain session of its engine. On a cross-built target the build
machine says nothing about the device: its first verified candidate, in the target's order of
preference, with the engine's default setting, is chosen, and the manifest says so (`measured:
false`, no timings: its package rebuilds byte-identical).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from registry.packaging.converters import Candidate
from registry.packaging.engines import EngineSetting, get_engine

# `progress(stage, done, total)`: how a long step reports how far it got (see registry.core.console)
Progress = Callable[[str, int, int], None]


class Timing(BaseModel):
    """Latency of one candidate under one engine setting."""

    converter: str
    setting: EngineSetting
    median_ms: float | None = Field(None, description="median latency over the timed runs")
    p90_ms: float | None = Field(None, description="90th-percentile latency")
    runs: int = Field(0, description="timed runs")
    error: str | None = Field(None, description="why this setting could not run")


class Machine(BaseModel):
    """Where the timings were taken."""

    system: str
    machine: str
    processor: str
    cpus: int
    python: str


class BenchmarkReport(BaseModel):
    """All timings and the choice made."""

    measured: bool = Field(
        description="whether timings were taken on the target device (false: "
        "none were taken, the target's order decided)"
    )
    machine: Machine
    timings: list[Timing] = Field(default_factory=list)
    chosen_converter: str
    chosen_setting: EngineSetting
    reason: str

    def ranked(self) -> list[tuple[str, EngineSetting]]:
        """(converter, setting) pairs best first: the choice, then the other timed ones by median
        (timings not measured on the device never change the choice)."""
        chosen = (self.chosen_converter, self.chosen_setting)
        if not self.measured:
            return [chosen]
        ok = sorted(
            (t for t in self.timings if t.median_ms is not None),
            key=lambda t: (t.median_ms, t.p90_ms),
        )
        return [chosen] + [pair for t in ok if (pair := (t.converter, t.setting)) != chosen]


def machine_info() -> Machine:
    """This machine, as recorded in the manifest."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Machine(
        system=f"{platform.system()} {platform.release()}",
        machine=platform.machine(),
        processor=cpu,
        cpus=os.cpu_count() or 1,
        python=platform.python_version(),
    )


def time_settings(
    pairs: list[tuple[Candidate, EngineSetting]],
    feed: dict[str, np.ndarray],
    *,
    warmup: int,
    repeats: int,
    rounds: int = 3,
    progress: Progress | None = None,
) -> list[Timing]:
    """Time each (candidate, setting) in `rounds` passes over all of them, so that load from other
    work on the machine falls on every setting alike. One session exists at a time: idle worker
    threads of other sessions would otherwise compete with the one being timed.

    `progress(stage, done, total)` is called as each setting of each round is timed."""
    timings = [Timing(converter=c.converter, setting=s) for c, s in pairs]
    samples: dict[int, list[float]] = {i: [] for i in range(len(pairs))}
    per_round = max(1, -(-repeats // rounds))
    stage = f"timing {len(pairs)} engine settings in {rounds} rounds"
    total, done = rounds * len(pairs), 0
    for _ in range(rounds):
        for i, (cand, setting) in enumerate(pairs):
            if progress:
                progress(stage, done, total)
            done += 1
            if timings[i].error:
                continue
            try:
                run = get_engine(setting.engine).open(cand.path, setting)
                for _ in range(warmup):
                    run(feed)
                for _ in range(per_round):
                    start = time.perf_counter()
                    run(feed)
                    samples[i].append((time.perf_counter() - start) * 1000.0)
            except Exception as e:  # a setting the engine refuses is reported, not fatal
                timings[i].error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            finally:
                run = None  # close the session before the next one opens
    if progress:
        progress(stage, total, total)
    for i, values in samples.items():
        if values and not timings[i].error:
            timings[i].median_ms = round(float(np.median(values)), 4)
            timings[i].p90_ms = round(float(np.percentile(values, 90)), 4)
            timings[i].runs = len(values)
    return timings


def shipping_setting(candidate: Candidate, providers: list[str]) -> EngineSetting:
    """The engine's default setting for a candidate (what a package ships when nothing was
    measured)."""
    return get_engine(candidate.engine).default_setting(
        providers if candidate.engine == "onnxruntime" else []
    )


def choose_engine(
    candidates: list[Candidate],
    feed: dict[str, np.ndarray],
    *,
    native: bool,
    why_not: str,
    threads: list[int],
    providers: list[str],
    warmup: int,
    repeats: int,
    benchmark: bool = True,
    progress: Progress | None = None,
) -> BenchmarkReport:
    """Time every candidate × setting (native targets) and pick the fastest median.

    Args:
        candidates: verified candidates, in the target's order of preference.
        native: whether this machine is the target device.
        why_not: the reason to record when it is not.
        benchmark: take timings at all (off: no timings, the first candidate, byte-identical
        rebuilds).
        progress: called as `progress(stage, done, total)` while the settings are timed.
    """
    machine = machine_info()
    if not native or not benchmark:
        first = candidates[0]
        reason = (
            f"{why_not if not native else 'benchmark turned off'}; chose the first verified "
            f"candidate "
            f"in the target's order ({first.converter}) with the engine's default setting"
        )
        # no timings: the build machine's would say nothing about the device, and a package without
        # them is byte-identical when rebuilt (a re-run release job then finds it already published)
        return BenchmarkReport(
            measured=False,
            machine=machine,
            chosen_converter=first.converter,
            chosen_setting=shipping_setting(first, providers),
            reason=reason,
        )
    grid = list(dict.fromkeys([*threads, 0]))  # 0: the runtime's own default, always a contender
    pairs = [
        (cand, setting)
        for cand in candidates
        for setting in get_engine(cand.engine).settings(grid, providers)
    ]
    timings = time_settings(pairs, feed, warmup=warmup, repeats=repeats, progress=progress)
    ok = [t for t in timings if t.median_ms is not None]
    if not ok:
        first = candidates[0]
        return BenchmarkReport(
            measured=True,
            machine=machine,
            timings=timings,
            chosen_converter=first.converter,
            chosen_setting=EngineSetting(engine=first.engine, threads=1, providers=providers),
            reason="no setting could be timed; kept the first verified candidate",
        )
    best = min(ok, key=lambda t: (t.median_ms, t.p90_ms))
    slowest = max(ok, key=lambda t: t.median_ms)
    timed = f"{len(ok)} timed settings ({warmup} warm-up + {best.runs} runs each, in 3 rounds)"
    default = default_timing(ok, candidates[0].converter)
    chosen = pick(ok, candidates[0].converter)
    if chosen is not best:
        reason = (
            f"kept the engine's default: of {timed}, the fastest ({best.converter} "
            f"{best.setting.label()} at {best.median_ms:.3f} ms) beat the default "
            f"({default.converter} {default.setting.label()} at {default.median_ms:.3f} ms) by "
            f"less than "
            f"{DEFAULT_MARGIN:.0%}, within timing noise (slowest {slowest.median_ms:.3f} ms)"
        )
    else:
        reason = (
            f"fastest median of {timed}: {best.converter} {best.setting.label()} at "
            f"{best.median_ms:.3f} ms (slowest {slowest.median_ms:.3f} ms"
            + (
                f"; the engine's default {default.median_ms:.3f} ms)"
                if default is not None
                else ")"
            )
        )
    return BenchmarkReport(
        measured=True,
        machine=machine,
        timings=timings,
        chosen_converter=chosen.converter,
        chosen_setting=chosen.setting,
        reason=reason,
    )


DEFAULT_MARGIN = 0.05  # a setting must beat the engine's default by this much to replace it


def pick(timings: list[Timing], converter: str) -> Timing:
    """The timing to choose among timed ones: the fastest median, unless it beats the default
    setting of the preferred `converter` by less than DEFAULT_MARGIN, in which case the default."""
    best = min(timings, key=lambda t: (t.median_ms, t.p90_ms))
    default = default_timing(timings, converter)
    if default is not None and best.median_ms > default.median_ms * (1 - DEFAULT_MARGIN):
        return default
    return best


def default_timing(timings: list[Timing], converter: str) -> Timing | None:
    """The timing of the preferred candidate under its engine's default setting (the runtime's own
    thread count and, for ONNX Runtime, full graph optimisation): what a plain session would do."""
    return next(
        (
            t
            for t in timings
            if t.converter == converter
            and t.setting.threads == 0
            and t.setting.graph_optimization in (None, "all")
        ),
        None,
    )
