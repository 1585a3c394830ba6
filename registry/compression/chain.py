"""Lightweighting with automatic fallback (SPEC.md §4): try method after method until one meets the target.

`compress(request)` is the whole run: it reads the model, its evaluation set and the target,
measures the original, then tries the methods of `registry/compression/methods/` in order. Each attempt gives
a candidate ONNX file that is measured (size, metric, drop, median latency) and checked against
every condition of the target. The first candidate that meets them all is the result (or, with
`search="best"`, the smallest of all that do), written as a new model entry or a new version whose
card says `derived_from: <name>@<version>` and records the method and its settings. A report
(JSON, PNG chart of size against metric, terminal table) lists every attempt. When nothing meets
the target the best-so-far candidate is kept next to the report and the run fails with the
condition that came closest.

`open_registry_model` fetches a published version (card at its tag, weights and data from the
public remote) so the same run works on `registry compress NAME@VERSION`.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field

from registry.cards.schema import (CompressSpec, EvaluationSpec, ModelCard, Status, check_relative_path, format_size,
                           load_card, parse_drop, parse_latency, parse_size)
from registry.core.errors import CompressionError, RegistryError, UsageError
from registry.compression.evaluation import (EvalData, check_feeds, compute_metric, load_npz, median_latency_ms, metric_def,
                                 run_model, session_for)
from registry.versions.tags import tagged_commits
from registry.compression.onnx_files import ONNX_OVERHEAD, compact_model

FLOAT_TYPES = (1, 10, 11, 16)  # onnx TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


# --------------------------------------------------------------------------- target

class Target(BaseModel):
    """The conditions a candidate must meet; any combination, at least one."""

    max_size: int | None = Field(None, description="largest weights file in bytes")
    max_metric_drop: float | None = Field(None, description="largest drop of the metric (absolute, or a fraction when relative)")
    relative_drop: bool = Field(False, description="max_metric_drop is a fraction of the original metric")
    max_latency_ms: float | None = Field(None, description="largest median single-sample latency in ms")
    metric: str = Field(description="metric the drop is measured on")

    def describe(self) -> str:
        """One line for people: 'size <= 25.00 KB, accuracy drop <= 1%, latency <= 2 ms'."""
        parts = []
        if self.max_size is not None:
            parts.append(f"size <= {format_size(self.max_size)}")
        if self.max_metric_drop is not None:
            bound = f"{self.max_metric_drop:.2%}" if self.relative_drop else f"{self.max_metric_drop:g}"
            parts.append(f"{self.metric} drop <= {bound}")
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms")
        return ", ".join(parts)


def build_target(spec: CompressSpec | None, evaluation: EvaluationSpec, *, max_size: str | None = None,
                 max_metric_drop: str | None = None, max_latency: str | None = None,
                 metric: str | None = None) -> Target:
    """The target from the card's `compress:` section, each condition overridable by an option.

    Raises:
        CompressionError: a bound that does not parse, a metric other than the evaluation's, no condition.
    """
    spec = spec or CompressSpec()
    size_v = max_size if max_size is not None else spec.max_size
    drop_v = max_metric_drop if max_metric_drop is not None else spec.max_metric_drop
    lat_v = max_latency if max_latency is not None else spec.max_latency
    try:
        size = None if size_v is None else (
            int(size_v) if isinstance(size_v, int) or str(size_v).strip().isdigit() else int(parse_size(str(size_v))[0]))
        drop = None if drop_v is None else parse_drop(_number_or_text(drop_v))
        latency = None if lat_v is None else parse_latency(_number_or_text(lat_v))
    except ValueError as e:
        raise CompressionError(f"invalid target: {e}", "see docs/compress.md for the target syntax") from None
    if size is not None and size <= 0:
        raise CompressionError("invalid target: max_size must be a positive size", "write e.g. 25KB")
    name = metric or spec.metric or evaluation.metric
    metric_def(name)
    if name != evaluation.metric:
        raise CompressionError(f"the target names metric '{name}', but the evaluation section measures "
                               f"'{evaluation.metric}'", "use the evaluation metric, or change evaluation.metric")
    if size is None and drop is None and latency is None:
        raise CompressionError("no target: give at least one of max_size, max_metric_drop, max_latency",
                               "add them under 'compress:' in the card, or pass --max-size/--max-drop/--max-latency")
    return Target(max_size=size, max_metric_drop=None if drop is None else drop[0],
                  relative_drop=bool(drop and drop[1]), max_latency_ms=latency, metric=name)


def _number_or_text(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


# --------------------------------------------------------------------------- measurements and attempts

class Measurement(BaseModel):
    """What one model file measures on this machine."""

    size: int = Field(description="file size in bytes")
    metric: float = Field(description="metric value on the evaluation set")
    drop: float = Field(description="metric drop against the original (positive = worse)")
    latency_ms: float = Field(description="median single-sample latency")


class Condition(BaseModel):
    """One condition of the target checked against a measurement."""

    name: Literal["size", "metric_drop", "latency"]
    value: float
    bound: float
    met: bool
    miss: float = Field(description="how far past the bound, as a fraction of the bound (0 when met)")


class Attempt(BaseModel):
    """One method's try: its settings, measurement and verdict."""

    method: str
    settings: dict[str, Any] = Field(default_factory=dict)
    status: Literal["pass", "fail", "skipped"]
    reason: str = ""
    measurement: Measurement | None = None
    conditions: list[Condition] = Field(default_factory=list)
    wall_s: float = 0.0
    notes: list[str] = Field(default_factory=list)


class CompressReport(BaseModel):
    """The outcome of a compression run (also written as JSON next to the chart)."""

    model: str
    derived_from: str | None
    target: Target
    target_text: str
    original: Measurement
    attempts: list[Attempt]
    chosen: int | None = Field(None, description="index of the attempt kept as the result")
    met: bool
    closest: str | None = Field(None, description="when unmet: the condition that came closest and by how much")
    best_so_far: int | None = Field(None, description="when unmet: index of the attempt kept as best so far")
    output: str | None = Field(None, description="folder of the written model, or the kept best-so-far file")
    report_json: str | None = None
    chart: str | None = None
    total_s: float = 0.0


# --------------------------------------------------------------------------- the job a method sees

@dataclass
class CompressJob:
    """Everything a method may use: the model, data, target and the evaluator."""

    model_path: Path
    evaluation: EvaluationSpec
    target: Target
    eval_data: EvalData
    calibration_data: EvalData
    train_data: EvalData | None
    reference: np.ndarray
    original: Measurement | None = None
    seed: int = 0
    _cache: dict = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return list(self.eval_data.inputs)

    def outputs_of(self, path: Path, data: EvalData | None = None) -> np.ndarray:
        """The evaluated output of a model file on the evaluation set (or `data`)."""
        return run_model(session_for(path), data or self.eval_data, self.evaluation.output)

    def metric_of(self, path: Path) -> float:
        """The target metric of a model file on the evaluation set."""
        return self.score(self.outputs_of(path))

    def score(self, outputs: np.ndarray) -> float:
        """The target metric of given outputs on the evaluation set."""
        return compute_metric(self.target.metric, outputs, self.eval_data.labels, self.reference,
                              self.evaluation.k)

    def drop_of(self, value: float) -> float:
        """Metric drop of `value` against the original (positive = worse), absolute."""
        ref = self.original.metric if self.original else value
        return (ref - value) if metric_def(self.target.metric).higher_is_better else (value - ref)

    def drop_allowed(self) -> float | None:
        """The largest absolute drop the target allows (None: any)."""
        t = self.target
        if t.max_metric_drop is None:
            return None
        if t.relative_drop:
            return t.max_metric_drop * abs(self.original.metric if self.original else 0.0)
        return t.max_metric_drop

    def drop_ok(self, value: float) -> bool:
        """Whether a metric value is within the allowed drop."""
        allowed = self.drop_allowed()
        return allowed is None or self.drop_of(value) <= allowed + 1e-12

    def measure(self, path: Path) -> Measurement:
        """Size, metric, drop and latency of a model file."""
        value = self.metric_of(path)
        latency = median_latency_ms(session_for(path), self.eval_data)
        return Measurement(size=path.stat().st_size, metric=value, drop=self.drop_of(value), latency_ms=latency)

    def check(self, m: Measurement) -> list[Condition]:
        """Every condition of the target against a measurement."""
        out = []
        t = self.target
        if t.max_size is not None:
            out.append(_condition("size", m.size, t.max_size))
        allowed = self.drop_allowed()
        if allowed is not None:
            scale = max(allowed, 1e-3 * max(abs(self.original.metric), 1e-9) if self.original else 1e-9)
            met = m.drop <= allowed + 1e-12
            out.append(Condition(name="metric_drop", value=m.drop, bound=allowed, met=met,
                                 miss=0.0 if met else (m.drop - allowed) / scale))
        if t.max_latency_ms is not None:
            out.append(_condition("latency", m.latency_ms, t.max_latency_ms))
        return out

    def float_params(self) -> tuple[int, int]:
        """(number of float weights, bytes of everything else) in the original model."""
        if "float_params" not in self._cache:
            import onnx

            model = onnx.load(str(self.model_path), load_external_data=False)
            n = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in FLOAT_TYPES)
            float_bytes = sum(int(np.prod(t.dims)) * (2 if t.data_type in (10, 16) else 4 if t.data_type == 1 else 8)
                              for t in model.graph.initializer if t.data_type in FLOAT_TYPES)
            self._cache["float_params"] = (n, max(self.model_path.stat().st_size - float_bytes, ONNX_OVERHEAD))
        return self._cache["float_params"]


def _condition(name: str, value: float, bound: float) -> Condition:
    met = value <= bound
    return Condition(name=name, value=value, bound=bound, met=met, miss=0.0 if met else (value - bound) / bound)


# --------------------------------------------------------------------------- the request

class CompressRequest(BaseModel):
    """What to compress and how; `registry compress` builds one from its options."""

    model_config = {"arbitrary_types_allowed": True}

    card: ModelCard
    model_path: Path = Field(description="the ONNX weights to compress")
    model_dir: Path = Field(description="folder that holds the card's data files (evaluation, calibration, training)")
    max_size: str | None = None
    max_metric_drop: str | None = None
    max_latency: str | None = None
    metric: str | None = None
    methods: list[str] | None = Field(None, description="override of the method order")
    search: Literal["first", "best"] | None = None
    output_root: Path | None = Field(None, description="folder that receives the new model folder (a registry's models/)")
    output_name: str | None = Field(None, description="name of the new model entry (default: <name>-lite)")
    as_version: str | None = Field(None, description="write a new version of the same model instead of a new entry")
    report_dir: Path = Field(Path("compress-report"), description="where the JSON, chart and best-so-far go")
    push: bool = Field(False, description="dvc add the weights and push them to the staging remote")
    repo_root: Path | None = Field(None, description="registry clone for dvc add / push")
    seed: int = 0
    raise_unexpected: bool = Field(False, description="let a method's unexpected error "
                                   "propagate as it is (`--traceback`), not as a CompressionError")


def _data_path(model_dir: Path, rel: str, what: str) -> Path:
    try:
        check_relative_path(rel)
    except ValueError as e:
        raise CompressionError(f"{what} '{rel}': {e}", "give a path inside the model folder") from None
    p = model_dir / rel
    if not p.is_file():
        hint = (f"the file is DVC-tracked but not here: dvc pull {p}.dvc" if (model_dir / (rel + ".dvc")).is_file()
                else f"add it: dvc add {p} && dvc push -r staging {p}.dvc")
        raise CompressionError(f"{what} {p} is missing", hint)
    return p


def prepare_job(request: CompressRequest) -> CompressJob:
    """Read the model and data, check them against each other, and measure the original.

    Raises:
        CompressionError: no evaluation section, missing or ill-shaped data, no float weights, bad target.
    """
    card = request.card
    if card.evaluation is None:
        raise CompressionError(f"model '{card.name}' has no 'evaluation:' section",
                               "add evaluation: {data: eval.npz, metric: accuracy} to its card (docs/compress.md)")
    ev = card.evaluation
    spec = card.compress or CompressSpec()
    target = build_target(spec, ev, max_size=request.max_size, max_metric_drop=request.max_metric_drop,
                          max_latency=request.max_latency, metric=request.metric)
    model_path = Path(request.model_path)
    if not model_path.is_file():
        raise CompressionError(f"model file {model_path} is missing", "give the ONNX file with --model")
    _check_float_weights(model_path)
    sess = session_for(model_path)
    names = [i.name for i in sess.get_inputs()]
    if ev.output and ev.output not in [o.name for o in sess.get_outputs()]:
        raise CompressionError(f"evaluation.output '{ev.output}' is not an output of the model "
                               f"({', '.join(o.name for o in sess.get_outputs())})", "name one of them")
    eval_path = _data_path(request.model_dir, ev.data, "evaluation set")
    labels_key = ev.labels if metric_def(target.metric).needs_labels else None
    eval_data = load_npz(eval_path, "evaluation set", names, input_map=ev.inputs, labels_key=labels_key)
    if labels_key and eval_data.labels is None:
        raise CompressionError(f"evaluation set {eval_path} has no '{ev.labels}' array, which metric "
                               f"'{target.metric}' needs", "save the labels in the .npz under that name")
    check_feeds(sess, eval_data)
    try:
        reference = run_model(sess, eval_data, ev.output)
    except Exception as e:  # onnxruntime raises its own types for shape/type mismatches
        raise CompressionError(f"the model cannot run on evaluation set {eval_path}: {e}",
                               "regenerate the evaluation set with the model's input shapes and types") from None
    calib = eval_data
    if spec.calibration_data:
        calib = load_npz(_data_path(request.model_dir, spec.calibration_data, "calibration set"), "calibration set",
                         names, input_map=ev.inputs, labels_key=None)
        check_feeds(sess, calib)
    train = None
    if spec.train_data:
        train = load_npz(_data_path(request.model_dir, spec.train_data, "training set"), "training set", names,
                         input_map=ev.inputs, labels_key=ev.labels)
        check_feeds(sess, train)
    job = CompressJob(model_path=model_path, evaluation=ev, target=target, eval_data=eval_data,
                      calibration_data=calib, train_data=train, reference=reference, seed=request.seed)
    value = job.score(reference)
    job.original = Measurement(size=model_path.stat().st_size, metric=value, drop=0.0,
                               latency_ms=median_latency_ms(sess, eval_data))
    return job


def _check_float_weights(path: Path) -> None:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise CompressionError(f"{path} is not a readable ONNX model: {e}", "give an ONNX file") from None
    floats = [t for t in model.graph.initializer if t.data_type in FLOAT_TYPES and int(np.prod(t.dims)) > 1]
    if not floats:
        raise CompressionError(f"{path} has no float weights to compress (its weights are already integer, or it "
                               "has none)", "compress the float (fp32) model this one was made from")


# --------------------------------------------------------------------------- the chain

ProgressFn = Callable[[str, float, str], None]


def method_order(request: CompressRequest) -> list[str]:
    """The methods to try, in order: the request's, else the card's, else all by cost."""
    from registry.compression.methods import load_methods

    spec = request.card.compress or CompressSpec()
    order = request.methods or spec.methods or list(load_methods())
    if not order:
        raise CompressionError("no compression method selected", "name at least one with --methods")
    return order


def check_reachable(job: CompressJob, methods: list) -> None:
    """Refuse a target that no selected method could ever meet (e.g. a size below any encoding).

    Raises:
        CompressionError: naming the smallest size the selected methods can produce.
    """
    if job.target.max_size is None:
        return
    floors = [f for m in methods if (f := m.size_floor(job)) is not None]
    if len(floors) == len(methods) and floors and job.target.max_size < min(floors):
        raise CompressionError(
            f"contradictory target: max_size {format_size(job.target.max_size)} is below the smallest model the "
            f"selected methods can encode ({format_size(min(floors))})",
            "raise max_size, or add a method that changes the architecture (distill, train-small)")


def run_chain(job: CompressJob, order: list[str], options: dict[str, dict], search: str, workdir: Path,
              progress: ProgressFn | None = None, raise_unexpected: bool = False
              ) -> tuple[list[Attempt], list[Path | None]]:
    """Try each method in turn; stop at the first that meets the target unless `search == "best"`.

    Returns the attempts and, for each, the candidate file (None when the method made none).
    """
    from registry.compression.methods import MethodMiss, build_method

    methods = [build_method(name, options.get(name)) for name in order]
    unknown_options = set(options) - set(order)
    if unknown_options - set(_all_method_names()):
        bad = sorted(unknown_options - set(_all_method_names()))
        raise CompressionError(f"settings given for unknown method(s): {', '.join(bad)}",
                               "known methods: " + ", ".join(_all_method_names()))
    check_reachable(job, methods)
    attempts: list[Attempt] = []
    files: list[Path | None] = []
    for i, method in enumerate(methods):
        name = method.name
        adir = workdir / f"{i:02d}-{name}"
        adir.mkdir(parents=True, exist_ok=True)
        report = (lambda frac, text, _n=name: progress(_n, frac, text)) if progress else (lambda frac, text: None)
        t0 = time.perf_counter()
        settings = method.config.model_dump(mode="json")
        try:
            cand = _run_method(method, job, adir, report, raise_unexpected)
        except MethodMiss as miss:
            attempt = Attempt(method=name, settings=settings, status="skipped", reason=miss.reason,
                              wall_s=time.perf_counter() - t0)
            if miss.candidate is not None:
                compact_model(miss.candidate.path)
                m = job.measure(miss.candidate.path)
                attempt = Attempt(method=name, settings={**settings, **miss.candidate.settings}, status="fail",
                                  reason=miss.reason, measurement=m, conditions=job.check(m),
                                  wall_s=time.perf_counter() - t0, notes=miss.candidate.notes)
                files.append(miss.candidate.path)
            else:
                files.append(None)
            attempts.append(attempt)
            report(1.0, attempt.reason)
            continue
        compact_model(cand.path)
        m = job.measure(cand.path)
        conds = job.check(m)
        ok = all(c.met for c in conds)
        reason = "meets the target" if ok else "; ".join(_miss_text(c) for c in conds if not c.met)
        attempts.append(Attempt(method=name, settings={**settings, **cand.settings}, status="pass" if ok else "fail",
                                reason=reason, measurement=m, conditions=conds, wall_s=time.perf_counter() - t0,
                                notes=cand.notes))
        files.append(cand.path)
        report(1.0, reason)
        if ok and search == "first":
            break
    return attempts, files


def _run_method(method, job: CompressJob, workdir: Path, report, raise_unexpected: bool = False):
    """Run one method; an unexpected failure inside it stops the run with the method's name (or
    as it is, with `raise_unexpected`)."""
    from registry.compression.methods import MethodMiss

    try:
        return method.run(job, workdir, report)
    except (MethodMiss, RegistryError):
        raise
    except Exception as e:  # a quantizer or exporter crash: stop, but say which method and how to go on
        if raise_unexpected:
            raise
        raise CompressionError(f"method '{method.name}' failed on {job.model_path.name}: {type(e).__name__}: {e}",
                               f"leave it out (--methods without {method.name}); re-run with --traceback to "
                               "see where") from e


def _all_method_names() -> list[str]:
    from registry.compression.methods import load_methods

    return list(load_methods())


def _miss_text(c: Condition) -> str:
    if c.name == "size":
        return f"size {format_size(c.value)} > {format_size(c.bound)} (+{c.miss:.1%})"
    if c.name == "latency":
        return f"latency {c.value:.3f} ms > {c.bound:g} ms (+{c.miss:.1%})"
    return f"drop {c.value:.4g} > {c.bound:.4g}"


def choose(attempts: list[Attempt], search: str) -> int | None:
    """Index of the result: the first passing attempt, or with 'best' the smallest (then lowest drop)."""
    passing = [i for i, a in enumerate(attempts) if a.status == "pass"]
    if not passing:
        return None
    if search == "first":
        return passing[0]
    return min(passing, key=lambda i: (attempts[i].measurement.size, attempts[i].measurement.drop))


def best_so_far(attempts: list[Attempt]) -> tuple[int | None, str | None]:
    """When nothing passed: the attempt with the smallest total miss, and the closest failed condition."""
    measured = [i for i, a in enumerate(attempts) if a.measurement is not None]
    if not measured:
        return None, None
    best = min(measured, key=lambda i: sum(c.miss for c in attempts[i].conditions))
    failed = [(c.miss, c, attempts[i].method) for i in measured for c in attempts[i].conditions if not c.met]
    if not failed:
        return best, None
    _, c, method = min(failed, key=lambda t: t[0])
    return best, f"{_condition_label(c)}: missed by {_miss_amount(c)} ({method})"


def _condition_label(c: Condition) -> str:
    return {"size": "max_size", "metric_drop": "max_metric_drop", "latency": "max_latency"}[c.name]


def _miss_amount(c: Condition) -> str:
    over = c.value - c.bound
    if c.name == "size":
        return f"{format_size(over)} ({c.miss:.1%} over {format_size(c.bound)})"
    if c.name == "latency":
        return f"{over:.3f} ms ({c.miss:.1%} over {c.bound:g} ms)"
    return f"{over:.4g} (drop {c.value:.4g} against {c.bound:.4g} allowed)"


# --------------------------------------------------------------------------- the run

def compress(request: CompressRequest, progress: ProgressFn | None = None) -> CompressReport:
    """Run the fallback chain and write the result and report.

    Returns the report; `report.met` says whether the target was reached. On success the result
    is written (`report.output`); otherwise the best-so-far candidate is kept in the report folder.

    Raises:
        CompressionError: bad target, bad data, unknown method (a method merely missing is not an error).
    """
    t0 = time.perf_counter()
    card = request.card
    _check_output(request)
    job = prepare_job(request)
    spec = card.compress or CompressSpec()
    order = method_order(request)
    search = request.search or spec.search
    report_dir = Path(request.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="registry-compress-") as tmp:
        attempts, files = run_chain(job, order, spec.options, search, Path(tmp), progress,
                                    request.raise_unexpected)
        chosen = choose(attempts, search)
        origin = f"{card.name}@{card.version}" if card.version else None
        report = CompressReport(model=card.name, derived_from=origin, target=job.target,
                                target_text=job.target.describe(), original=job.original, attempts=attempts,
                                chosen=chosen, met=chosen is not None)
        if chosen is not None:
            report.output = str(write_result(request, job, attempts[chosen], files[chosen]))
        else:
            best, closest = best_so_far(attempts)
            report.best_so_far, report.closest = best, closest
            if best is not None:
                kept = report_dir / f"{card.name}-best-so-far.onnx"
                _atomic_copy(files[best], kept)
                report.output = str(kept)
    report.total_s = time.perf_counter() - t0
    report.chart = str(write_chart(report, report_dir / f"{card.name}-compress.png"))
    report.report_json = str(report_dir / f"{card.name}-compress.json")
    _atomic_write(Path(report.report_json), report.model_dump_json(indent=2).encode())
    return report


def _check_output(request: CompressRequest) -> None:
    """Refuse a result name or version that could never be written, before any work is done."""
    from registry.cards.schema import NAME_RE, SEMVER_RE

    if request.output_name is not None and not NAME_RE.fullmatch(request.output_name):
        raise UsageError(f"'{request.output_name}' is not a model name",
                         "use 2-64 lowercase letters, digits and '-' (e.g. digits-cnn-lite)")
    name = request.output_name or f"{request.card.name}-lite"
    if not request.as_version and not NAME_RE.fullmatch(name):
        raise UsageError(f"the default result name '{name}' is too long", "give a shorter --output-name")
    if request.as_version is not None and not SEMVER_RE.fullmatch(request.as_version):
        raise UsageError(f"'{request.as_version}' is not a SemVer version", "write it like 1.2.0, without 'v'")


def _atomic_copy(src: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def _atomic_write(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


# --------------------------------------------------------------------------- writing the result

def derived_card(request: CompressRequest, job: CompressJob, attempt: Attempt, name: str) -> ModelCard:
    """The card of the compressed model: the original's, with the derivation, method and measured metric."""
    src = request.card
    m = attempt.measurement
    data = src.model_dump(mode="json", exclude_none=True)
    data["name"] = name
    data["weights"] = "model.onnx"
    data["size"] = m.size
    if request.as_version:
        data["version"] = request.as_version
        data["status"] = (Status.updated.value if src.status in (Status.published, Status.updated)
                          else Status.unpublished.value)
    else:
        data.pop("version", None)
        data["status"] = Status.unpublished.value
    if src.version:
        data["derived_from"] = f"{src.name}@{src.version}"
    dataset = job.evaluation.dataset or Path(job.evaluation.data).stem
    metrics = [x for x in data.get("metrics", []) if not (x["name"] == job.target.metric and x["dataset"] == dataset)]
    metrics.append({"name": job.target.metric, "value": round(m.metric, 6), "dataset": dataset})
    data["metrics"] = metrics
    spec = (src.compress or CompressSpec()).model_dump(mode="json", exclude_none=True)
    spec["methods"] = [attempt.method]
    spec["options"] = {attempt.method: attempt.settings}
    data["compress"] = spec
    tags = list(data.get("tags", []))
    data["tags"] = tags + [t for t in ("compressed", attempt.method) if t not in tags]
    return ModelCard.model_validate(data)


def write_result(request: CompressRequest, job: CompressJob, attempt: Attempt, path: Path) -> Path:
    """Write the compressed model as a model folder (new entry, or a new version of the same model).

    The folder is assembled under a temporary name and renamed into place, so a failure leaves
    nothing half-written. Data files the card names (evaluation, calibration, training) are carried
    over as their DVC pointers (or copies when they are not DVC-tracked).

    Raises:
        UsageError: the destination exists (new entry) or the output root is not a folder.
    """
    src = request.card
    name = src.name if request.as_version else (request.output_name or f"{src.name}-lite")
    root = Path(request.output_root) if request.output_root else Path(request.report_dir)
    root.mkdir(parents=True, exist_ok=True)
    dest = root / name
    if dest.exists() and not request.as_version:
        raise UsageError(f"{dest} already exists", "choose another --output-name, or remove that folder")
    card = derived_card(request, job, attempt, name)
    stage = root / f".{name}.compress-tmp"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        shutil.copyfile(path, stage / "model.onnx")
        for rel in _card_files(src):
            s = request.model_dir / rel
            pointer = request.model_dir / (rel + ".dvc")
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            if pointer.is_file():
                shutil.copyfile(pointer, stage / (rel + ".dvc"))
            elif s.is_file():
                shutil.copyfile(s, stage / rel)
        text = "# written by `registry compress`; review, then open a pull request\n" + yaml.safe_dump(
            card.model_dump(mode="json", exclude_none=True, exclude_defaults=False), sort_keys=False,
            allow_unicode=True)
        (stage / "model.yaml").write_text(text)
        if request.as_version:
            # keep the folder's other files; replace weights and card
            dest.mkdir(parents=True, exist_ok=True)
            for f in stage.rglob("*"):
                if f.is_file():
                    target = dest / f.relative_to(stage)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(f, target)
            old_weights = dest / (src.weights + ".dvc")
            if src.weights != "model.onnx" and old_weights.is_file():
                old_weights.unlink()
            shutil.rmtree(stage, ignore_errors=True)
        else:
            os.replace(stage, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if request.repo_root is not None and (Path(request.repo_root) / ".dvc").is_dir():
        track_weights(Path(request.repo_root), dest / "model.onnx", push=request.push)
    return dest


def _card_files(card: ModelCard) -> list[str]:
    files = [card.config]
    if card.evaluation:
        files.append(card.evaluation.data)
    if card.compress:
        files += [f for f in (card.compress.calibration_data, card.compress.train_data) if f]
    return list(dict.fromkeys(files))


def track_weights(repo_root: Path, weights: Path, push: bool) -> None:
    """`dvc add` the new weights (and push them, and the data the card names, to staging when asked).

    Raises:
        StorageError: dvc failed.
    """
    from registry.core.errors import StorageError

    dvc = [sys.executable, "-m", "dvc"]
    rel = os.path.relpath(weights, repo_root)

    def call(*args: str) -> None:
        proc = subprocess.run([*dvc, *args], cwd=repo_root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise StorageError(f"dvc {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}",
                               "check the DVC setup (.dvc/config) and the remote")

    call("add", "-q", rel)
    if push:
        pointers = [str(Path(rel).parent / p.name) for p in weights.parent.glob("*.dvc")]
        call("push", "-q", "-r", "staging", *pointers)


# --------------------------------------------------------------------------- chart and table

def write_chart(report: CompressReport, dest: Path) -> Path:
    """A PNG of size against metric for the original and every measured attempt, target drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RegistryError("the compress chart needs matplotlib", "pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    o = report.original
    ax.scatter([o.size / 1000], [o.metric], marker="*", s=160, color="black", label="original", zorder=3)
    for i, a in enumerate(report.attempts):
        if a.measurement is None:
            continue
        m = a.measurement
        color = "tab:green" if a.status == "pass" else "tab:red"
        ax.scatter([m.size / 1000], [m.metric], color=color, s=60, zorder=3,
                   edgecolors="black" if i == report.chosen else "none")
        # numbered and staggered: int8 variants often land on the same spot
        ax.annotate(f"{i + 1} {a.method}", (m.size / 1000, m.metric), textcoords="offset points",
                    xytext=(6, 4 - 10 * (i % 4)), fontsize=8)
    t = report.target
    if t.max_size is not None:
        ax.axvline(t.max_size / 1000, color="tab:blue", linestyle="--", label=f"max size {format_size(t.max_size)}")
    if t.max_metric_drop is not None:
        allowed = t.max_metric_drop * abs(o.metric) if t.relative_drop else t.max_metric_drop
        bound = o.metric - allowed if metric_def(t.metric).higher_is_better else o.metric + allowed
        ax.axhline(bound, color="tab:orange", linestyle="--", label=f"{t.metric} bound {bound:.4g}")
    if t.max_size is not None or t.max_metric_drop is not None:  # where a candidate meets size and metric
        x_hi = t.max_size / 1000 if t.max_size is not None else ax.get_xlim()[1]
        y0, y1 = ax.get_ylim()
        if t.max_metric_drop is not None:
            y0, y1 = (bound, y1) if metric_def(t.metric).higher_is_better else (y0, bound)
        ax.fill_between([0, x_hi], y0, y1, color="tab:green", alpha=0.08, label="meets size and metric")
    ax.set_xlabel("size (KB)")
    ax.set_ylabel(t.metric)
    verdict = "target met" if report.met else "target not met"
    ax.set_title(f"{report.model}: {report.target_text} ({verdict})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    tmp = dest.with_name(dest.name + ".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, dest)
    return dest


def render_table(report: CompressReport) -> str:
    """The terminal report: one row per attempt, then the verdict."""
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("registry", "templates"), trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["size"] = format_size
    rows = []
    for i, a in enumerate(report.attempts):
        m = a.measurement
        rows.append({
            "n": i + 1, "method": a.method, "status": a.status.upper(),
            "size": format_size(m.size) if m else "-",
            "ratio": f"{m.size / report.original.size:.2f}x" if m else "-",
            "metric": f"{m.metric:.4f}" if m else "-",
            "drop": f"{m.drop:+.4f}" if m else "-",
            "latency": f"{m.latency_ms:.3f}" if m else "-",
            "wall": f"{a.wall_s:.1f}s", "reason": a.reason, "chosen": i == report.chosen,
        })
    return env.get_template("compress_report.txt.j2").render(report=report, rows=rows, math=math)


# --------------------------------------------------------------------------- registry models

@dataclass
class OpenedModel:
    """A published model version made local: its card, weights and data files in a folder."""

    card: ModelCard
    model_path: Path
    model_dir: Path
    withdrawn: str | None = None  # why the version is withdrawn, when it is


def open_registry_model(repo_root: Path, ref: str, workdir: Path, remote: str = "public") -> OpenedModel:
    """Read `<name>@<version>`: the card at tag `<name>@v<version>`, weights and data from the remote.

    Raises:
        UsageError: the reference is not NAME@VERSION or the tag does not exist.
        CardError / CompressionError / StorageError: the card, pointers or objects are unusable.
    """
    from registry.cards.schema import card_path
    from registry.core.repo import RegistryRepo
    from registry.core.errors import StorageError
    from registry.core.storage import PointerError, Storage, parse_pointer

    if "@" not in ref:
        raise UsageError(f"'{ref}' is not NAME@VERSION", "e.g. registry compress digits-cnn@1.0.0")
    name, version = ref.split("@", 1)
    version = version.removeprefix("v")
    repo = RegistryRepo(repo_root)
    tag = f"{name}@v{version}"
    tags = tagged_commits(repo).get(name, {})
    if version not in tags:
        known = ", ".join(sorted(tags)) or "none"
        raise UsageError(f"no published version {tag} (versions of '{name}': {known})",
                         "see `git tag -l '" + name + "@v*'`")
    snap = repo.snapshot(tag)
    text = snap.read(card_path(name))
    if text is None:
        raise UsageError(f"{tag} has no {card_path(name)}", "was the model renamed?")
    card = load_card(text, card_path(name)).require()
    storage = Storage(repo.root)
    folder = f"models/{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    for rel in [card.weights, *_card_files(card)]:
        raw = snap.read(f"{folder}/{rel}.dvc")
        dest = workdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if raw is None:
            plain = snap.read(f"{folder}/{rel}")
            if plain is not None:
                dest.write_bytes(plain)
            continue
        try:
            pointer = parse_pointer(raw)
        except PointerError as e:
            raise CompressionError(f"{folder}/{rel}.dvc at {tag}: {e}", "fix the DVC pointer") from None
        (workdir / (rel + ".dvc")).write_bytes(raw)
        try:
            shutil.copyfile(storage.fetch(pointer.md5, remote), dest)
        except StorageError as e:
            raise StorageError(f"{folder}/{rel} of {tag} cannot be fetched: {e.message}", e.hint) from None
    return OpenedModel(card=card, model_path=workdir / card.weights, model_dir=workdir,
                       withdrawn=_withdrawn(repo, name, version))


def _withdrawn(repo, name: str, version: str) -> str | None:
    """Why a published version is withdrawn (its deregistration tag, or the card's offline status)."""
    from registry.cards.schema import read_card
    from registry.versions.tags import read_versions

    found = next((v for v in read_versions(repo.root).get(name, []) if v.version == version), None)
    if found is not None and found.withdrawn:
        return found.withdrawn_by or "withdrawn"
    loaded = read_card(repo.snapshot(None), name)[0] if (repo.root / "models" / name).is_dir() else None
    if loaded is not None and loaded.card is not None and loaded.card.status is Status.offline:
        return "card status: offline"
    return None
