"""Lightweighting with automatic fallback (SPEC.md §4): try method after method until one meets the
target.

`compress(request)` is the whole run: it reads the model, its evaluation set and the target,
measures the original, then tries the methods of `registry/compression/methods/` in order. Each
attempt gives
a candidate ONNX file that is measured (size, metric, drop, median latency) and checked against
every condition of the target. The first candidate that meets them all is the result (or, with
`search="best"`, the smallest of all that do), written as a new model entry or a new version whose
card says `derived_from: <name>@<version>` and records the method and its settings. A report
(JSON, PNG chart of size against metric, terminal table) lists every attempt. When nothing meets
the target the best-so-far candidate is kept next to the report and the run fails with the
condition that came closest.

`open_registry_model` fetches a published version through `registry.versions.resolve` (card at
its tag, weights and data from the public remote) so the same run works on
`registry compress NAME@VERSION`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from registry.cards.schema import CompressSpec, ModelCard, Status, check_relative_path, format_size
from registry.cards.writer import render_card, schema_reference, update_card_text
from registry.compression.evaluation import (
    check_feeds,
    load_npz,
    median_latency_ms,
    metric_def,
    run_model,
    session_for,
)
from registry.compression.job import (
    FLOAT_TYPES,
    CompressJob,
    CompressTarget,
    Condition,
    Measurement,
    build_target,
)
from registry.compression.onnx_files import compact_model
from registry.core.errors import CardError, CompressionError, RegistryError, UsageError
from registry.core.files import atomic_path, write_atomic
from registry.versions.resolve import FetchedFile, fetch_files, find_version

# ---------------------------------------------------------------- attempts and the report


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
    target: CompressTarget
    target_text: str
    original: Measurement
    attempts: list[Attempt]
    chosen: int | None = Field(None, description="index of the attempt kept as the result")
    met: bool
    closest: str | None = Field(
        None, description="when unmet: the condition that came closest and by how much"
    )
    best_so_far: int | None = Field(
        None, description="when unmet: index of the attempt kept as best so far"
    )
    output: str | None = Field(
        None, description="folder of the written model, or the kept best-so-far file"
    )
    report_json: str | None = None
    chart: str | None = None
    total_s: float = 0.0
    evaluation_source: str | None = Field(
        None, description="the card whose evaluation: section (and data) judged the candidates"
    )


# --------------------------------------------------------------------------- the request


class CompressRequest(BaseModel):
    """What to compress and how; `registry compress` builds one from its options."""

    model_config = {"arbitrary_types_allowed": True}

    card: ModelCard
    model_path: Path = Field(description="the ONNX weights to compress")
    model_dir: Path = Field(
        description="folder that holds the card's files (config, targets' files, and the data "
        "unless data_dir says otherwise)"
    )
    data_dir: Path | None = Field(
        None,
        description="folder that holds the evaluation, calibration and training data (default: "
        "model_dir)",
    )
    evaluation_source: str | None = Field(
        None, description="where the evaluation section came from, for the report"
    )
    max_size: str | None = None
    max_metric_drop: str | None = None
    max_latency: str | None = None
    metric: str | None = None
    methods: list[str] | None = Field(None, description="override of the method order")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="settings per method, over the card's compress.options (key by key)",
    )
    search: Literal["first", "best"] | None = None
    output_root: Path | None = Field(
        None, description="folder that receives the new model folder (a registry's models/)"
    )
    output_name: str | None = Field(
        None, description="name of the new model entry (default: <name>-lite)"
    )
    as_version: str | None = Field(
        None, description="write a new version of the same model instead of a new entry"
    )
    report_dir: Path = Field(
        Path("compress-report"), description="where the JSON, chart and best-so-far go"
    )
    push: bool = Field(False, description="dvc add the weights and push them to the staging remote")
    repo_root: Path | None = Field(None, description="registry clone for dvc add / push")
    seed: int = 0
    raise_unexpected: bool = Field(
        False,
        description="let a method's unexpected error "
        "propagate as it is (`--traceback`), not as a CompressionError",
    )


def _data_path(model_dir: Path, rel: str, what: str) -> Path:
    try:
        check_relative_path(rel)
    except ValueError as e:
        raise CompressionError(
            f"{what} '{rel}': {e}", "give a path inside the model folder"
        ) from None
    p = model_dir / rel
    if not p.is_file():
        hint = (
            f"the file is DVC-tracked but not here: dvc pull {p}.dvc"
            if (model_dir / (rel + ".dvc")).is_file()
            else f"add it: dvc add {p} && dvc push -r staging {p}.dvc"
        )
        raise CompressionError(f"{what} {p} is missing", hint)
    return p


def prepare_job(request: CompressRequest) -> CompressJob:
    """Read the model and data, check them against each other, and measure the original.

    Raises:
        CompressionError: no evaluation section, missing or ill-shaped data, no float weights,
        bad target.
    """
    card = request.card
    if card.evaluation is None:
        raise CompressionError(
            f"model '{card.name}' has no 'evaluation:' section",
            "add evaluation: {data: eval.npz, metric: accuracy} to its card (docs/compress.md)",
        )
    ev = card.evaluation
    spec = card.compress or CompressSpec()
    model_path = Path(request.model_path)
    if not model_path.is_file():
        raise CompressionError(
            f"model file {model_path} is missing", "give the ONNX file with --model"
        )
    target = build_target(
        spec,
        ev,
        max_size=request.max_size,
        max_metric_drop=request.max_metric_drop,
        max_latency=request.max_latency,
        metric=request.metric,
        original_size=model_path.stat().st_size,
    )
    _check_float_weights(model_path)
    sess = session_for(model_path)
    names = [i.name for i in sess.get_inputs()]
    if ev.output and ev.output not in [o.name for o in sess.get_outputs()]:
        raise CompressionError(
            f"evaluation.output '{ev.output}' is not an output of the model "
            f"({', '.join(o.name for o in sess.get_outputs())})",
            "name one of them",
        )
    data_dir = request.data_dir or request.model_dir
    eval_path = _data_path(data_dir, ev.data, "evaluation set")
    labels_key = ev.labels if metric_def(target.metric).needs_labels else None
    eval_data = load_npz(
        eval_path, "evaluation set", names, input_map=ev.inputs, labels_key=labels_key
    )
    if labels_key and eval_data.labels is None:
        raise CompressionError(
            f"evaluation set {eval_path} has no '{ev.labels}' array, which metric "
            f"'{target.metric}' needs",
            "save the labels in the .npz under that name",
        )
    check_feeds(sess, eval_data)
    try:
        reference = run_model(sess, eval_data, ev.output)
    except Exception as e:  # onnxruntime raises its own types for shape/type mismatches
        raise CompressionError(
            f"the model cannot run on evaluation set {eval_path}: {e}",
            "regenerate the evaluation set with the model's input shapes and types",
        ) from None
    calib = eval_data
    if spec.calibration_data:
        calib = load_npz(
            _data_path(data_dir, spec.calibration_data, "calibration set"),
            "calibration set",
            names,
            input_map=ev.inputs,
            labels_key=None,
        )
        check_feeds(sess, calib)
    train = None
    if spec.train_data:
        train = load_npz(
            _data_path(data_dir, spec.train_data, "training set"),
            "training set",
            names,
            input_map=ev.inputs,
            labels_key=ev.labels,
        )
        check_feeds(sess, train)
    job = CompressJob(
        model_path=model_path,
        evaluation=ev,
        target=target,
        eval_data=eval_data,
        calibration_data=calib,
        train_data=train,
        reference=reference,
        seed=request.seed,
    )
    value = job.score(reference)
    job.original = Measurement(
        size=model_path.stat().st_size,
        metric=value,
        drop=0.0,
        latency_ms=median_latency_ms(sess, eval_data),
    )
    return job


def _check_float_weights(path: Path) -> None:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise CompressionError(
            f"{path} is not a readable ONNX model: {e}", "give an ONNX file"
        ) from None
    floats = [
        t
        for t in model.graph.initializer
        if t.data_type in FLOAT_TYPES and int(np.prod(t.dims)) > 1
    ]
    if not floats:
        raise CompressionError(
            f"{path} has no float weights to compress (its weights are already integer, or it "
            "has none)",
            "compress the float (fp32) model this one was made from",
        )


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
            f"contradictory target: max_size {format_size(job.target.max_size)} is below the "
            f"smallest model the "
            f"selected methods can encode ({format_size(min(floors))})",
            "raise max_size, or add a method that changes the architecture (distill, train-small)",
        )


def run_chain(
    job: CompressJob,
    order: list[str],
    options: dict[str, dict],
    search: str,
    workdir: Path,
    progress: ProgressFn | None = None,
    raise_unexpected: bool = False,
) -> tuple[list[Attempt], list[Path | None]]:
    """Try each method in turn; stop at the first that meets the target unless `search == "best"`.

    Returns the attempts and, for each, the candidate file (None when the method made none).
    """
    from registry.compression.methods import MethodMiss, build_method

    methods = [build_method(name, options.get(name)) for name in order]
    unknown_options = set(options) - set(order)
    if unknown_options - set(_all_method_names()):
        bad = sorted(unknown_options - set(_all_method_names()))
        raise CompressionError(
            f"settings given for unknown method(s): {', '.join(bad)}",
            "known methods: " + ", ".join(_all_method_names()),
        )
    check_reachable(job, methods)
    attempts: list[Attempt] = []
    files: list[Path | None] = []
    for i, method in enumerate(methods):
        name = method.name
        adir = workdir / f"{i:02d}-{name}"
        adir.mkdir(parents=True, exist_ok=True)
        report = (
            (lambda frac, text, _n=name: progress(_n, frac, text))
            if progress
            else (lambda frac, text: None)
        )
        t0 = time.perf_counter()
        settings = method.config.model_dump(mode="json")
        try:
            cand = _run_method(method, job, adir, report, raise_unexpected)
        except MethodMiss as miss:
            attempt = Attempt(
                method=name,
                settings=settings,
                status="skipped",
                reason=miss.reason,
                wall_s=time.perf_counter() - t0,
            )
            if miss.candidate is not None:
                compact_model(miss.candidate.path)
                m = job.measure(miss.candidate.path)
                label, made_with = _label(name, settings, miss.candidate)
                attempt = Attempt(
                    method=label,
                    settings=made_with,
                    status="fail",
                    reason=miss.reason,
                    measurement=m,
                    conditions=job.check(m),
                    wall_s=time.perf_counter() - t0,
                    notes=miss.candidate.notes,
                )
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
        label, made_with = _label(name, settings, cand)
        attempts.append(
            Attempt(
                method=label,
                settings=made_with,
                status="pass" if ok else "fail",
                reason=reason,
                measurement=m,
                conditions=conds,
                wall_s=time.perf_counter() - t0,
                notes=cand.notes,
            )
        )
        files.append(cand.path)
        report(1.0, reason)
        if ok and search == "first":
            break
    return attempts, files


def _label(name: str, settings: dict, cand) -> tuple[str, dict]:
    """The method an attempt is reported (and recorded) as, with its settings: the method that
    ran, unless its candidate is really another method's result."""
    if cand.method and cand.method != name:
        return cand.method, dict(cand.settings)
    return name, {**settings, **cand.settings}


def _run_method(method, job: CompressJob, workdir: Path, report, raise_unexpected: bool = False):
    """Run one method; an unexpected failure inside it stops the run with the method's name (or
    as it is, with `raise_unexpected`)."""
    from registry.compression.methods import MethodMiss

    try:
        return method.run(job, workdir, report)
    except (MethodMiss, RegistryError):
        raise
    except (
        Exception
    ) as e:  # a quantizer or exporter crash: stop, but say which method and how to go on
        if raise_unexpected:
            raise
        raise CompressionError(
            f"method '{method.name}' failed on {job.model_path.name}: {type(e).__name__}: {e}",
            f"leave it out (--methods without {method.name}); re-run with --traceback to see where",
        ) from e


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
    """Index of the result: the first passing attempt, or with 'best' the smallest (then lowest
    drop)."""
    passing = [i for i, a in enumerate(attempts) if a.status == "pass"]
    if not passing:
        return None
    if search == "first":
        return passing[0]
    return min(passing, key=lambda i: (attempts[i].measurement.size, attempts[i].measurement.drop))


def best_so_far(attempts: list[Attempt]) -> tuple[int | None, str | None]:
    """When nothing passed: the attempt with the smallest total miss, and the closest failed
    condition."""
    measured = [i for i, a in enumerate(attempts) if a.measurement is not None]
    if not measured:
        return None, None
    best = min(measured, key=lambda i: sum(c.miss for c in attempts[i].conditions))
    failed = [
        (c.miss, c, attempts[i].method)
        for i in measured
        for c in attempts[i].conditions
        if not c.met
    ]
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
        CompressionError: bad target, bad data, unknown method (a method merely missing is not
        an error).
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
        options = {
            m: {**spec.options.get(m, {}), **request.options.get(m, {})}
            for m in {**spec.options, **request.options}
        }
        attempts, files = run_chain(
            job, order, options, search, Path(tmp), progress, request.raise_unexpected
        )
        chosen = choose(attempts, search)
        origin = f"{card.name}@{card.version}" if card.version else None
        report = CompressReport(
            model=card.name,
            derived_from=origin,
            target=job.target,
            target_text=job.target.describe(),
            original=job.original,
            attempts=attempts,
            chosen=chosen,
            met=chosen is not None,
            evaluation_source=request.evaluation_source,
        )
        if chosen is not None:
            report.output = str(write_result(request, job, attempts[chosen], files[chosen]))
        else:
            best, closest = best_so_far(attempts)
            report.best_so_far, report.closest = best, closest
            if best is not None:
                kept = report_dir / f"{card.name}-best-so-far.onnx"
                with atomic_path(kept) as tmp:
                    shutil.copyfile(files[best], tmp)
                report.output = str(kept)
    report.total_s = time.perf_counter() - t0
    report.chart = str(write_chart(report, report_dir / f"{card.name}-compress.png"))
    report.report_json = str(report_dir / f"{card.name}-compress.json")
    write_atomic(Path(report.report_json), report.model_dump_json(indent=2).encode())
    return report


def _check_output(request: CompressRequest) -> None:
    """Refuse a result name or version that could never be written, before any work is done."""
    from registry.cards.schema import NAME_RE, SEMVER_RE

    if request.output_name is not None and not NAME_RE.fullmatch(request.output_name):
        raise UsageError(
            f"'{request.output_name}' is not a model name",
            "use 2-64 lowercase letters, digits and '-' (e.g. digits-cnn-lite)",
        )
    name = request.output_name or f"{request.card.name}-lite"
    if not request.as_version and not NAME_RE.fullmatch(name):
        raise UsageError(
            f"the default result name '{name}' is too long", "give a shorter --output-name"
        )
    if request.as_version is not None and not SEMVER_RE.fullmatch(request.as_version):
        raise UsageError(
            f"'{request.as_version}' is not a SemVer version", "write it like 1.2.0, without 'v'"
        )


# --------------------------------------------------------------------------- writing the result


def derived_card(
    request: CompressRequest, job: CompressJob, attempt: Attempt, name: str
) -> ModelCard:
    """The card of the compressed model: the original's, with the derivation, the method, and
    only what was measured on the compressed model.

    The original's metrics were measured on another model, so they are left out; the one metric
    measured here (on the evaluation set, named as the dataset) is the card's. The compressed
    model has no PyTorch source, so `pytorch:` is dropped. Fields the original left unset stay
    unset (their defaults are not written out).
    """
    src = request.card
    m = attempt.measurement
    data = src.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    data.pop("pytorch", None)
    data["name"] = name
    data["weights"] = "model.onnx"
    data["size"] = m.size
    if request.as_version:
        data["version"] = request.as_version
        data["status"] = (
            Status.updated.value
            if src.status in (Status.published, Status.updated)
            else Status.unpublished.value
        )
    else:
        data.pop("version", None)
        data["status"] = Status.unpublished.value
    if src.version:
        data["derived_from"] = f"{src.name}@{src.version}"
    dataset = job.evaluation.dataset or Path(job.evaluation.data).stem
    data["metrics"] = [{"name": job.target.metric, "value": round(m.metric, 6), "dataset": dataset}]
    spec = (src.compress or CompressSpec()).model_dump(
        mode="json", exclude_none=True, exclude_unset=True
    )
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
        raise UsageError(
            f"{dest} already exists", "choose another --output-name, or remove that folder"
        )
    card = derived_card(request, job, attempt, name)
    stage = root / f".{name}.compress-tmp"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        shutil.copyfile(path, stage / "model.onnx")
        data = set(_data_files(src))
        for rel in _card_files(src):
            folder = (request.data_dir or request.model_dir) if rel in data else request.model_dir
            s = folder / rel
            pointer = folder / (rel + ".dvc")
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            if pointer.is_file():
                shutil.copyfile(pointer, stage / (rel + ".dvc"))
            elif s.is_file():
                shutil.copyfile(s, stage / rel)
        (stage / "model.yaml").write_text(_card_text(request, card, dest), encoding="utf-8")
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
        repo_root = Path(request.repo_root)
        track_weights(repo_root, dest / "model.onnx", push=request.push)
        if dest.parent.resolve() == (repo_root / "models").resolve():
            from registry.cards.artifacts import sync_artifacts

            sync_artifacts(repo_root)  # declared in dvc.yaml, as `registry new` does
    return dest


def _card_files(card: ModelCard) -> list[str]:
    files = [card.config, *_data_files(card)]
    files += [f for t in card.targets for f in (t.calibration, t.inputs) if f]
    return list(dict.fromkeys(files))


def _data_files(card: ModelCard) -> list[str]:
    """The files of the card's evaluation: and compress: sections."""
    files = [card.evaluation.data] if card.evaluation else []
    if card.compress:
        files += [f for f in (card.compress.calibration_data, card.compress.train_data) if f]
    return files


def _card_text(request: CompressRequest, card: ModelCard, dest: Path) -> str:
    """The result's card: a new version edits the folder's card (its comments and layout kept), a
    new entry gets a new card."""
    existing = dest / "model.yaml"
    if request.as_version and existing.is_file():
        try:
            return update_card_text(existing.read_text(encoding="utf-8"), card)
        except CardError:  # an invalid card there is replaced, as a new entry's would be
            pass
    root = request.repo_root
    return render_card(
        card,
        schema=schema_reference(dest, root) if root is not None else None,
        note="written by `registry compress`; review, then open a pull request",
    )


def track_weights(repo_root: Path, weights: Path, push: bool) -> None:
    """`dvc add` the new weights (and push them, and the data the card names, to staging when
    asked).

    Raises:
        StorageError: dvc failed.
    """
    from registry.core.storage import STAGING, dvc_add, dvc_push

    dvc_add(repo_root, weights)
    if push:
        pointers = sorted(weights.parent.glob("*.dvc"))
        dvc_push(repo_root, pointers, STAGING, what="the weights and data")


# --------------------------------------------------------------------------- chart and table


def write_chart(report: CompressReport, dest: Path) -> Path:
    """A PNG of size against metric for the original and every measured attempt, target drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RegistryError(
            "the compress chart needs matplotlib", "pip install matplotlib"
        ) from None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    o = report.original
    ax.scatter(
        [o.size / 1000], [o.metric], marker="*", s=160, color="black", label="original", zorder=3
    )
    for i, a in enumerate(report.attempts):
        if a.measurement is None:
            continue
        m = a.measurement
        color = "tab:green" if a.status == "pass" else "tab:red"
        ax.scatter(
            [m.size / 1000],
            [m.metric],
            color=color,
            s=60,
            zorder=3,
            edgecolors="black" if i == report.chosen else "none",
        )
        # numbered and staggered: int8 variants often land on the same spot
        ax.annotate(
            f"{i + 1} {a.method}",
            (m.size / 1000, m.metric),
            textcoords="offset points",
            xytext=(6, 4 - 10 * (i % 4)),
            fontsize=8,
        )
    t = report.target
    if t.max_size is not None:
        ax.axvline(
            t.max_size / 1000,
            color="tab:blue",
            linestyle="--",
            label=f"max size {format_size(t.max_size)}",
        )
    if t.max_metric_drop is not None:
        allowed = t.max_metric_drop * abs(o.metric) if t.relative_drop else t.max_metric_drop
        bound = o.metric - allowed if metric_def(t.metric).higher_is_better else o.metric + allowed
        ax.axhline(bound, color="tab:orange", linestyle="--", label=f"{t.metric} bound {bound:.4g}")
    if (
        t.max_size is not None or t.max_metric_drop is not None
    ):  # where a candidate meets size and metric
        x_hi = t.max_size / 1000 if t.max_size is not None else ax.get_xlim()[1]
        y0, y1 = ax.get_ylim()
        if t.max_metric_drop is not None:
            y0, y1 = (bound, y1) if metric_def(t.metric).higher_is_better else (y0, bound)
        ax.fill_between(
            [0, x_hi], y0, y1, color="tab:green", alpha=0.08, label="meets size and metric"
        )
    ax.set_xlabel("size (KB)")
    ax.set_ylabel(t.metric)
    verdict = "target met" if report.met else "target not met"
    ax.set_title(f"{report.model}: {report.target_text} ({verdict})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return dest


def render_table(report: CompressReport) -> str:
    """The terminal report: one row per attempt, then the verdict."""
    from jinja2 import Environment, PackageLoader

    env = Environment(
        loader=PackageLoader("registry", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["size"] = format_size
    rows = []
    for i, a in enumerate(report.attempts):
        m = a.measurement
        rows.append(
            {
                "n": i + 1,
                "method": a.method,
                "status": a.status.upper(),
                "size": format_size(m.size) if m else "-",
                "ratio": f"{m.size / report.original.size:.2f}x" if m else "-",
                "metric": f"{m.metric:.4f}" if m else "-",
                "drop": f"{m.drop:+.4f}" if m else "-",
                "latency": f"{m.latency_ms:.3f}" if m else "-",
                "wall": f"{a.wall_s:.1f}s",
                "reason": a.reason,
                "chosen": i == report.chosen,
            }
        )
    return env.get_template("compress_report.txt.j2").render(report=report, rows=rows, math=math)


# --------------------------------------------------------------------------- registry models


@dataclass
class OpenedModel:
    """A published model version made local: its card, weights and data files in a folder."""

    card: ModelCard
    model_path: Path
    model_dir: Path
    withdrawn: str | None = None  # why the version is withdrawn, when it is


def open_registry_model(
    repo_root: Path, ref: str, workdir: Path, remote: str = "public"
) -> OpenedModel:
    """Read `<name>@<version>`: the card at tag `<name>@v<version>`, the weights and the data the
    card names from the remote (with their DVC pointers, so a derived model carries them over),
    fetched by `registry.versions.resolve`.

    Raises:
        UsageError: the reference is not NAME@VERSION or the version does not exist.
        CardError / StorageError: the card, the folder at the tag or the objects are unusable.
    """
    version = find_version(repo_root, ref, allow_latest=False)
    card = version.card
    data = _card_files(card)
    pointers = [f"{rel}.dvc" for rel in [card.weights, *data]]
    fetched = fetch_files(
        repo_root, version, [card.weights], workdir, optional=[*data, *pointers], remote=remote
    )
    _keep_in_dvc_cache(repo_root, fetched.files)
    withdrawn = (version.withdrawn_by or "withdrawn") if version.withdrawn else None
    return OpenedModel(
        card=card, model_path=workdir / card.weights, model_dir=workdir, withdrawn=withdrawn
    )


def _keep_in_dvc_cache(repo_root: Path, files: list[FetchedFile]) -> None:
    """Put the downloaded objects in the clone's DVC cache: a derived model carries the data's
    pointers over, and `--push` sends their objects to staging from there (`dvc push` reads the
    cache)."""
    from registry.core.storage import Storage

    storage = Storage(repo_root)
    for f in files:
        cached = storage.cache_path(f.md5)
        if f.source == "git" or cached.is_file():
            continue
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(f.path, tmp)
            os.replace(tmp, cached)
        finally:
            tmp.unlink(missing_ok=True)
