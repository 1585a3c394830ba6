"""The engine benchmark: time every verified candidate under every engine setting, and the rule
that picks what ships.

Each setting gets warm-up runs, then `repeats` timed runs of one sample input, spread over three
rounds that pass over all settings (one session open at a time); the median and the 90th
percentile are recorded. Timings vary with the load of the build machine, so they never decide
what ships: that is a fixed rule, the target's first verified candidate with its engine's default
setting (the runtime's own thread count, all graph optimisations), or the setting the card pins
(`engine:`), so a package rebuilds byte-identical with the benchmark on. The timings are the
advice: when another setting beat the shipped one by at least `DEFAULT_MARGIN`, the report says
which, by how much, and the card fields that would ship it. They are written beside the package
(`<package>.benchmark.json`), never inside it. On a cross-built target nothing is timed: the
build machine says nothing about the device.
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
from registry.packaging.targets import EnginePin

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
    """The choice made and, beside the package, the timings behind the advice."""

    measured: bool = Field(
        description="whether timings were taken on the target device (false: "
        "none were taken: a cross-built target, or the benchmark turned off)"
    )
    machine: Machine | None = Field(
        None, description="where the timings were taken (in the report beside the package)"
    )
    timings: list[Timing] = Field(
        default_factory=list,
        description="every setting's timing (in the report beside the package)",
    )
    chosen_converter: str
    chosen_setting: EngineSetting
    reason: str = Field(
        description="the rule that chose, in words that do not change between builds"
    )
    advice: str | None = Field(
        None,
        description="a setting that beat the shipped one by at least the margin, with its "
        "numbers and the card fields that would ship it (in the report beside the package)",
    )

    def in_package(self) -> BenchmarkReport:
        """The part the manifest keeps: the choice and its rule, nothing that a rebuild measures
        differently."""
        return self.model_copy(update={"machine": None, "timings": [], "advice": None})

    def ranked(self) -> list[tuple[str, EngineSetting]]:
        """(converter, setting) pairs to ship, in order: the choice, then (should it fail
        verification) the other timed ones in the fixed order they were timed in, so that the
        fallback does not depend on timings either."""
        chosen = (self.chosen_converter, self.chosen_setting)
        if not self.measured:
            return [chosen]
        ok = [t for t in self.timings if t.median_ms is not None]
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
    pinned: EnginePin | None = None,
    progress: Progress | None = None,
) -> BenchmarkReport:
    """Choose what ships by the fixed rule, and time every candidate × setting (native targets)
    for the advice.

    Args:
        candidates: verified candidates, in the target's order of preference.
        native: whether this machine is the target device.
        why_not: the reason to record when it is not.
        benchmark: take timings at all.
        pinned: the engine setting the card asks for (`engine:`), instead of the default.
        progress: called as `progress(stage, done, total)` while the settings are timed.
    """
    machine = machine_info()
    first = candidates[0]
    chosen_setting = pinned_setting(first, providers, pinned)
    rule = f"the target's first verified candidate ({first.converter}) with " + (
        f"the setting the card pins ({chosen_setting.label()})"
        if pinned
        else "the engine's default setting"
    )
    if not native or not benchmark:
        # no timings: the build machine's would say nothing about the device
        return BenchmarkReport(
            measured=False,
            machine=machine,
            chosen_converter=first.converter,
            chosen_setting=chosen_setting,
            reason=f"{why_not if not native else 'benchmark turned off'}; chose {rule}",
        )
    grid = list(dict.fromkeys([*threads, 0]))  # 0: the runtime's own default, always a contender
    pairs = [
        (cand, setting)
        for cand in candidates
        for setting in get_engine(cand.engine).settings(grid, providers)
    ]
    if not any(c is first and s == chosen_setting for c, s in pairs):
        pairs.insert(0, (first, chosen_setting))
    timings = time_settings(pairs, feed, warmup=warmup, repeats=repeats, progress=progress)
    reason = (
        f"chose {rule}: a fixed rule, so that the package rebuilds byte-identical; "
        "the benchmark's timings are the advice beside the package"
    )
    report = BenchmarkReport(
        measured=True,
        machine=machine,
        timings=timings,
        chosen_converter=first.converter,
        chosen_setting=chosen_setting,
        reason=reason,
    )
    report.advice = advice(timings, first.converter, chosen_setting, warmup)
    return report


def pinned_setting(
    candidate: Candidate, providers: list[str], pinned: EnginePin | None
) -> EngineSetting:
    """The setting a candidate ships with: its engine's default, changed by the card's pin."""
    setting = shipping_setting(candidate, providers)
    if pinned is None:
        return setting
    update = pinned.model_dump(exclude_none=True)
    if candidate.engine != "onnxruntime":
        update.pop("graph_optimization", None)
    return setting.model_copy(update=update)


def advice(
    timings: list[Timing], converter: str, shipped: EngineSetting, warmup: int
) -> str | None:
    """What the timings say about the shipped setting: a setting at least `DEFAULT_MARGIN` faster,
    with the card fields that ship it, or that none was (None when nothing could be timed)."""
    ok = [t for t in timings if t.median_ms is not None]
    if not ok:
        return None
    mine = next((t for t in ok if t.converter == converter and t.setting == shipped), None)
    best = min(ok, key=lambda t: (t.median_ms, t.p90_ms))
    timed = f"{len(ok)} timed settings ({warmup} warm-up + {best.runs} runs each, in 3 rounds)"
    if mine is None:
        return (
            f"of {timed}, the fastest: {best.converter} {best.setting.label()} at "
            f"{best.median_ms:.3f} ms"
        )
    if best.median_ms > mine.median_ms * (1 - DEFAULT_MARGIN):
        return (
            f"of {timed}, none beat the shipped setting ({mine.median_ms:.3f} ms) by "
            f"{DEFAULT_MARGIN:.0%} or more (fastest {best.median_ms:.3f} ms)"
        )
    fields = [] if best.converter == converter else [f"converter: {best.converter}"]
    pin = {"threads": best.setting.threads}
    if best.setting.graph_optimization:
        pin["graph_optimization"] = best.setting.graph_optimization
    fields.append("options: {engine: {" + ", ".join(f"{k}: {v}" for k, v in pin.items()) + "}}")
    lead = 1 - best.median_ms / mine.median_ms
    return (
        f"of {timed}, {best.converter} {best.setting.label()} was {lead:.0%} faster than the "
        f"shipped setting ({best.median_ms:.3f} ms against {mine.median_ms:.3f} ms on this "
        f"machine): to ship it, set {' and '.join(fields)} in the card's targets entry"
    )


DEFAULT_MARGIN = 0.05  # the advice names a setting only when it beats the shipped one by this
