"""The bot's judgement of training files: static checks, and the dynamic run in the sandbox.

Static (`check_training`, nothing from the pull request runs): every file against its kind's
schema; references resolve (dataset, algorithm, structure, layer types, custom files); the
hyperparameters are ones the algorithm or structure knows; custom files parse and have the
classes they must; and shapes agree from the dataset's input through every layer to the loss.
Built-in layers are built on torch's `meta` device, which computes shapes without values; a custom
layer's shape is followed only when it says `OUTPUT_SHAPE = "same"`.

Dynamic (`dynamic=True`): each distinct (structure, algorithm, dataset, parameters) of the tasks is
built and run for one forward, backward and optimiser step and exported to ONNX by
`registry.training.sandbox` in a child process with time and memory limits and no secrets. The
child starts before the static shape checks, so its imports and theirs overlap.

Every problem is a `Finding` with the file and line, like the model checks.
"""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.checks import Finding, Severity
from registry.core.repo import Snapshot
from registry.training import (
    ALGORITHMS_DIR,
    DATASETS_DIR,
    LAYERS_DIR,
    STRUCTURES_DIR,
    TRAINING_DIR,
)
from registry.training.algorithms import (
    DEFAULT_METRICS,
    CustomAlgorithmInfo,
    apply_hyperparameters,
    custom_algorithm_path,
    inspect_custom_algorithm,
)
from registry.training.files import (
    ALGORITHM_HYPERPARAMETERS,
    RESERVED_TRAINING_FOLDERS,
    Algorithm,
    Dataset,
    Instance,
    LoadedFile,
    Structure,
    TrainingTask,
    algorithm_path,
    dataset_path,
    expand_instances,
    load_file,
    load_results_summary,
    results_summary_path,
    structure_path,
    subcommand_clash,
    task_names,
    task_path,
)
from registry.training.layers import (
    CustomLayerInfo,
    custom_layer_path,
    inspect_custom_layer,
    suggest,
)
from registry.training.structure import (
    LayerProblem,
    LayerShape,
    shape_text,
    without_dynamo,
)

if TYPE_CHECKING:
    from registry.training.sandbox import Sandbox

STATIC = "training-static"
DYNAMIC = "training-run"


@dataclass
class Combination:
    """One distinct thing to build: a structure with parameters, on a dataset, for an algorithm."""

    structure: str
    dataset: str
    algorithm: str
    params: dict[str, Any]
    hyperparameters: dict[str, Any]
    instances: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        # algorithm settings (epochs, learning rate…) do not change what one step builds and runs
        return (self.structure, self.dataset, self.algorithm, tuple(sorted(self.params.items())))


@dataclass
class TrainingReport:
    """The outcome of checking a registry's training files."""

    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    layers: dict[str, list[LayerShape]] = field(default_factory=dict)  # structure -> traced layers
    pictures: dict[str, str] = field(default_factory=dict)  # structure -> SVG
    dynamic: bool = False

    @property
    def passed(self) -> bool:
        return not any(f.severity is Severity.error for f in self.findings)

    def to_json(self) -> dict:
        """Plain data for `--format json`."""
        return {
            "passed": self.passed,
            "dynamic": self.dynamic,
            "files": self.files,
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "structures": {k: [vars(r) for r in v] for k, v in self.layers.items()},
        }


class _Files:
    """Every training file of a snapshot, loaded once."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self.datasets = {
            n: load_file(snap.read(dataset_path(n)), dataset_path(n), Dataset, expected_name=n)
            for n in snap.list_dir(DATASETS_DIR)
            if snap.read(dataset_path(n)) is not None
        }
        self.structures = {
            p[:-5]: load_file(
                snap.read(structure_path(p[:-5])),
                structure_path(p[:-5]),
                Structure,
                expected_name=p[:-5],
            )
            for p in snap.list_dir(STRUCTURES_DIR)
            if p.endswith(".yaml")
        }
        self.algorithms = {
            p[:-5]: load_file(
                snap.read(algorithm_path(p[:-5])),
                algorithm_path(p[:-5]),
                Algorithm,
                expected_name=p[:-5],
            )
            for p in snap.list_dir(ALGORITHMS_DIR)
            if p.endswith(".yaml")
        }
        self.layers: dict[str, CustomLayerInfo] = {
            p[:-3]: inspect_custom_layer(
                snap.read(custom_layer_path(p[:-3])) or b"", custom_layer_path(p[:-3])
            )
            for p in snap.list_dir(LAYERS_DIR)
            if p.endswith(".py")
        }
        self.algorithm_code: dict[str, CustomAlgorithmInfo] = {
            p: inspect_custom_algorithm(
                snap.read(custom_algorithm_path(p)) or b"", custom_algorithm_path(p)
            )
            for p in snap.list_dir(ALGORITHMS_DIR)
            if p.endswith(".py")
        }
        self.tasks = {
            n: load_file(snap.read(task_path(n)), task_path(n), TrainingTask, expected_name=n)
            for n in task_names(snap)
        }
        self.summaries = {
            n: load_results_summary(data, results_summary_path(n), n)
            for n in self.tasks
            if (data := snap.read(results_summary_path(n))) is not None
        }

    def all_loaded(self) -> list[LoadedFile]:
        return [
            *self.datasets.values(),
            *self.structures.values(),
            *self.algorithms.values(),
            *self.tasks.values(),
            *self.summaries.values(),
        ]


def _f(
    message: str,
    hint: str | None,
    path: str,
    line: int | None,
    severity=Severity.error,
    check: str = STATIC,
) -> Finding:
    return Finding(check=check, severity=severity, message=message, hint=hint, path=path, line=line)


def check_training(
    snap: Snapshot,
    *,
    dynamic: bool = False,
    tasks: list[str] | None = None,
    timeout: float | None = None,
    memory: int | None = None,
    sandbox: Sandbox | None = None,
) -> TrainingReport:
    """Check the training files of a snapshot (a working tree or a git revision).

    Args:
        dynamic: also build and run each combination once in the sandboxed child.
        tasks: only these tasks' instances (default: every task); files are always all checked.
        timeout, memory: the sandbox's limits (defaults in `registry.training.sandbox`).
        sandbox: with `dynamic`, a sandbox its caller started earlier (so that its child's imports
            overlap the caller's own) and closes; None: one is started here when needed.
    """
    files = _Files(snap)
    report = TrainingReport(dynamic=dynamic)
    report.files = sorted(lf.path for lf in files.all_loaded()) + sorted(
        i.path for i in [*files.layers.values(), *files.algorithm_code.values()]
    )
    for lf in files.all_loaded():
        report.findings += [_f(x.message, x.hint, x.path, x.line) for x in lf.findings]
    for info in [*files.layers.values(), *files.algorithm_code.values()]:
        report.findings += [_f(m, h, info.path, line) for m, h, line in info.problems]
    report.findings += _strays(snap)
    for name, lf in files.tasks.items():
        clash = subcommand_clash(name)
        if clash is not None:
            report.findings.append(_f(*clash, lf.path, lf.line_of("name")))
    _summaries(files.tasks, files.summaries, report)
    combos = _instances(files, report, tasks)
    if not (dynamic and combos):
        sandbox = None  # nothing to build (a caller's sandbox is the caller's to close)
    own = None
    if sandbox is None and dynamic and combos:
        from registry.training.sandbox import Sandbox

        sandbox = own = Sandbox()
    with own if own is not None else contextlib.nullcontext():
        if sandbox is not None:
            _add_files(files, sandbox)
        statics: dict[str, bool] = {}
        # torch is imported only when there is a structure to follow shapes through
        with without_dynamo() if files.structures else contextlib.nullcontext():
            for combo in combos.values():
                ok = _static_shapes(files, combo, report)
                statics[combo.structure] = statics.get(combo.structure, True) and ok
            # structures no task uses: names, types, connections
            for name, lf in files.structures.items():
                if lf.value is not None and name not in statics:
                    _static_shapes(files, Combination(name, "", "", {}, {}), report)
        if sandbox is not None:
            _dynamic(files, combos, report, sandbox, timeout=timeout, memory=memory)
    unique: dict[tuple, Finding] = {}
    for f in report.findings:  # several instances of one structure find the same problem once
        unique.setdefault((f.path, f.line, f.message), f)
    report.findings = list(unique.values())
    from registry.training.picture import render_structure

    for name, rows in report.layers.items():
        report.pictures[name] = render_structure(name, rows)
    return report


# What each folder of training files holds: (name suffixes read there, what they are).
_KINDS = {
    LAYERS_DIR: ((".py",), "custom layers (<name>.py)"),
    STRUCTURES_DIR: ((".yaml",), "model structures (<name>.yaml)"),
    ALGORITHMS_DIR: ((".yaml", ".py"), "algorithms (<name>.yaml, and the .py files they name)"),
}
# Names no check reads anywhere, and that no warning is due for.
_ALWAYS_FINE = ("README.md", "__pycache__")


def _strays(snap: Snapshot) -> list[Finding]:
    """Warnings for files and folders of training/ and datasets/ that nothing reads, so that a
    misplaced file (a task.yaml among the layers, a structure saved as .yml, a dataset folder
    without its dataset.yaml) is named instead of silently ignored."""
    found = []

    def stray(path: str, message: str, hint: str) -> None:
        found.append(_f(message, hint, path, None, severity=Severity.warning))

    def visible(names: list[str]) -> list[str]:
        return [n for n in names if not n.startswith(".") and n not in _ALWAYS_FINE]

    for folder, (suffixes, what) in _KINDS.items():
        for name in visible(snap.list_dir(folder)):
            path = f"{folder}/{name}"
            if name.endswith(suffixes) and not snap.list_dir(path):
                continue
            if name == "task.yaml":
                hint = f"a task's file is {TRAINING_DIR}/<task>/task.yaml: move it there"
            else:
                hint = f"name it <name>{' or <name>'.join(suffixes)}, or move it out of {folder}/"
            stray(path, f"{path} is not read: {folder}/ holds {what}", hint)
    for name in visible(snap.list_dir(TRAINING_DIR)):
        path = f"{TRAINING_DIR}/{name}"
        if name in RESERVED_TRAINING_FOLDERS or not snap.list_dir(path):
            continue
        if snap.read(task_path(name)) is not None:
            continue
        stray(
            path,
            f"{path}/ has no task.yaml, so it is no training task and nothing in it is read",
            f"add {path}/task.yaml (docs/training.md), or remove the folder",
        )
    for name in visible(snap.list_dir(DATASETS_DIR)):
        path = f"{DATASETS_DIR}/{name}"
        if not snap.list_dir(path) or snap.read(dataset_path(name)) is not None:
            continue
        stray(
            path,
            f"{path}/ has no dataset.yaml, so it is no dataset and no task can use it",
            f"add {path}/dataset.yaml (docs/training.md), or remove the folder",
        )
    return found


def check_summaries(snap: Snapshot, tasks: list[str]) -> TrainingReport:
    """The summary check alone, for a diff that changes nothing under datasets/ and training/ but
    results summaries: each named task's `results.json`, where it has one, against its schema and
    its task. Nothing is built and torch is not imported."""
    report = TrainingReport()
    loaded = {
        n: load_file(snap.read(task_path(n)), task_path(n), TrainingTask, expected_name=n)
        for n in task_names(snap)
        if n in tasks
    }
    summaries = {
        n: load_results_summary(data, results_summary_path(n), n)
        for n in loaded
        if (data := snap.read(results_summary_path(n))) is not None
    }
    report.files = sorted(lf.path for lf in summaries.values())
    for lf in summaries.values():
        report.findings += [_f(x.message, x.hint, x.path, x.line) for x in lf.findings]
    _summaries(loaded, summaries, report)
    return report


def _summaries(
    tasks: dict[str, LoadedFile], summaries: dict[str, LoadedFile], report: TrainingReport
) -> None:
    """A results summary names instances its task has (a warning: a task may drop an instance
    after it was trained) and the task's metric."""
    for tname, lf in summaries.items():
        summary, task = lf.value, tasks[tname].value
        if summary is None or task is None:
            continue
        known = {i.name for i in expand_instances(task)}
        for k, inst in enumerate(summary.instances):
            if inst.name not in known:
                report.findings.append(
                    _f(
                        f"instance '{inst.name}' is not an instance of task '{tname}'",
                        "register again to rewrite the summary, or remove the entry",
                        lf.path,
                        lf.line_of("instances", k, "name"),
                        severity=Severity.warning,
                    )
                )


def _instances(
    files: _Files, report: TrainingReport, only: list[str] | None
) -> dict[tuple, Combination]:
    """References of every instance resolve; return the distinct combinations to build."""
    combos: dict[tuple, Combination] = {}
    for tname, lf in files.tasks.items():
        task: TrainingTask | None = lf.value
        if task is None or (only and tname not in only):
            continue
        seen: set[str] = set()
        for inst in expand_instances(task):
            line = lf.line_of(*inst.origin) or 1
            if inst.name in seen:
                report.findings.append(
                    _f(
                        f"task '{tname}': two instances are named '{inst.name}'",
                        "give each instance its own name",
                        lf.path,
                        line,
                    )
                )
            seen.add(inst.name)
            missing = False
            for kind, known, value in (
                ("dataset", files.datasets, inst.dataset),
                ("algorithm", files.algorithms, inst.algorithm),
                ("structure", files.structures, inst.structure),
            ):
                where = (
                    lf.line_of(*inst.origin, kind)
                    if lf.line_of(*inst.origin, kind) != line
                    else (lf.line_of(kind) or line)
                )
                if not value:
                    report.findings.append(
                        _f(
                            f"instance '{inst.name}' has no {kind}",
                            f"set '{kind}:' on the task or the instance",
                            lf.path,
                            line,
                        )
                    )
                    missing = True
                elif value not in known or known[value].value is None:
                    missing = True
                    if value not in known:
                        near = difflib.get_close_matches(value, list(known), n=1)
                        path = {
                            "dataset": dataset_path,
                            "algorithm": algorithm_path,
                            "structure": structure_path,
                        }[kind](value)
                        report.findings.append(
                            _f(
                                f"instance '{inst.name}': {kind} '{value}' does not exist ({path})",
                                f"did you mean '{near[0]}'?" if near else f"add {path}",
                                lf.path,
                                where,
                            )
                        )
            if missing:
                continue
            algo: Algorithm = files.algorithms[inst.algorithm].value
            structure: Structure = files.structures[inst.structure].value
            for key in inst.hyperparameters:
                if key not in ALGORITHM_HYPERPARAMETERS and key not in structure.params:
                    known_keys = list(ALGORITHM_HYPERPARAMETERS) + list(structure.params)
                    near = suggest(key, known_keys)
                    report.findings.append(
                        _f(
                            f"instance '{inst.name}': hyperparameter '{key}' is neither an "
                            f"algorithm setting nor a "
                            f"parameter of structure '{structure.name}'",
                            f"did you mean '{near}'?"
                            if near
                            else "known: " + ", ".join(known_keys),
                            lf.path,
                            lf.line_of(*inst.origin, "hyperparameters", key) or line,
                        )
                    )
            try:
                apply_hyperparameters(algo, inst.hyperparameters)
            except Exception as e:  # noqa: BLE001 - a pydantic error on a hyperparameter's value
                report.findings.append(
                    _f(
                        f"instance '{inst.name}': {str(e).splitlines()[0]}",
                        "fix the hyperparameter's value",
                        lf.path,
                        line,
                    )
                )
                continue
            if algo.kind != "custom" and task.metric not in DEFAULT_METRICS[algo.kind]:
                near = suggest(task.metric, DEFAULT_METRICS[algo.kind])
                report.findings.append(
                    _f(
                        f"task metric '{task.metric}' is not one algorithm '{algo.name}' measures "
                        f"({', '.join(DEFAULT_METRICS[algo.kind])})",
                        f"did you mean '{near}'?" if near else "pick one of them",
                        lf.path,
                        lf.line_of("metric"),
                    )
                )
            params = {k: v for k, v in inst.hyperparameters.items() if k in structure.params}
            combo = Combination(
                inst.structure, inst.dataset, inst.algorithm, params, inst.hyperparameters
            )
            combos.setdefault(combo.key, combo).instances.append(f"{tname}/{inst.name}")
    return combos


def _layer_line(lf: LoadedFile, problem: LayerProblem) -> int | None:
    if problem.index is None:
        return lf.line_of(problem.field or "layers")
    return (
        lf.line_of("layers", problem.index, problem.field)
        if problem.field
        else lf.line_of("layers", problem.index)
    )


def _static_shapes(files: _Files, combo: Combination, report: TrainingReport) -> bool:
    """Build the structure on the meta device and follow shapes to the loss; False on a problem."""
    import torch

    from registry.training.structure import build_network, trace

    lf = files.structures[combo.structure]
    structure: Structure = lf.value
    custom = {n for n in files.layers}
    for i, spec in enumerate(structure.layers):
        if spec.type in files.layers and files.layers[spec.type].problems:
            return False  # the layer file's own findings say why
        info = files.layers.get(spec.type)
        if info is not None:
            unknown = [k for k in spec.args if info.config_fields and k not in info.config_fields]
            required = [k for k, req in info.config_fields.items() if req and k not in spec.args]
            for k in unknown:
                near = suggest(k, list(info.config_fields))
                report.findings.append(
                    _f(
                        f"custom layer '{spec.type}' has no setting '{k}'",
                        f"did you mean '{near}'?"
                        if near
                        else "its Config fields: " + ", ".join(info.config_fields),
                        lf.path,
                        lf.line_of("layers", i, "args", k),
                    )
                )
            for k in required:
                report.findings.append(
                    _f(
                        f"layer '{structure.layer_names()[i]}' ({spec.type}) needs setting '{k}'",
                        f"add it under args (see {info.path})",
                        lf.path,
                        lf.line_of("layers", i, "args") or lf.line_of("layers", i),
                    )
                )
            if unknown or required:
                return False
    try:
        with torch.device("meta"):
            net = build_network(structure, combo.params, custom)
    except LayerProblem as p:
        report.findings.append(_f(p.message, p.hint, lf.path, _layer_line(lf, p)))
        return False
    ds_lf = files.datasets.get(combo.dataset)
    if ds_lf is None or ds_lf.value is None:
        return True
    ds: Dataset = ds_lf.value
    opaque = {
        n: files.layers[t].output_shape
        for n, t in zip(net.plan.names, net.plan.types)
        if t in custom
    }
    example = torch.empty(2, *ds.input.shape, device="meta", dtype=getattr(torch, ds.input.dtype))
    try:
        rows = trace(net, [example], opaque=opaque)
    except LayerProblem as p:
        report.findings.append(
            _f(
                f"with dataset '{ds.name}' (input {shape_text(['N', *ds.input.shape])}): "
                + p.message,
                p.hint,
                lf.path,
                _layer_line(lf, p),
            )
        )
        return False
    report.layers.setdefault(combo.structure, rows)
    algo_lf = files.algorithms[combo.algorithm] if combo.algorithm else None
    if algo_lf is not None and algo_lf.value is not None:
        for message, field_ in _loss_problems(structure, net.plan, rows, ds, algo_lf.value):
            report.findings.append(
                _f(
                    message,
                    "make the last layer's output fit the loss, or the dataset's label",
                    lf.path if field_ != "algorithm" else algo_lf.path,
                    lf.line_of("outputs") or lf.line_of("layers", len(structure.layers) - 1)
                    if field_ != "algorithm"
                    else algo_lf.line_of("output"),
                )
            )
    return True


def _loss_problems(structure: Structure, p, rows: list[LayerShape], ds: Dataset, algo: Algorithm):
    """Does the output the loss reads fit the loss, given the dataset's label?"""
    outputs = p.outputs
    shapes = {r.name: r.output_shape for r in rows}
    name = algo.output or next(iter(outputs))
    if name not in outputs:
        near = suggest(name, list(outputs))
        yield (
            f"algorithm '{algo.name}' reads output '{name}', which structure '{structure.name}' "
            f"does not have"
            + (f" (did you mean '{near}'?)" if near else f" (it has {', '.join(outputs)})"),
            "algorithm",
        )
        return
    for exported in algo.export or []:
        if exported not in outputs:
            yield (
                f"algorithm '{algo.name}' exports output '{exported}', which structure "
                f"'{structure.name}' "
                f"does not have (it has {', '.join(outputs)})",
                "algorithm",
            )
    layer = outputs[name]
    got = shapes.get(layer)
    if got is None or algo.kind == "custom":
        return
    loss = algo.loss or {"classification": "cross_entropy"}.get(algo.kind, "mse")
    if loss == "cross_entropy":
        want = ["N", ds.label.classes] if ds.label.classes else None
        if want and got != want:
            yield (
                f"the loss (cross-entropy over {ds.label.classes} classes of dataset '{ds.name}') "
                f"needs output "
                f"{shape_text(want)}, but layer '{layer}' gives {shape_text(got)}",
                "structure",
            )
    else:
        want = ["N", *(ds.input.shape if algo.kind == "autoencoder" else ds.label.shape)]
        if _numel(got) != _numel(want):
            what = "the input" if algo.kind == "autoencoder" else "the label"
            yield (
                f"the loss ({loss} against {what} of dataset '{ds.name}') needs output "
                f"{shape_text(want)}, but "
                f"layer '{layer}' gives {shape_text(got)}",
                "structure",
            )


def _numel(shape) -> int:
    n = 1
    for d in shape[1:]:
        n *= int(d)
    return n


# --------------------------------------------------------------------------- dynamic


def _add_files(files: _Files, sandbox: Sandbox) -> None:
    """Put the pull request's layer and algorithm files in the sandbox's folder."""
    for rel in [
        *(custom_layer_path(n) for n in files.layers),
        *(custom_algorithm_path(n) for n in files.algorithm_code),
    ]:
        data = files.snap.read(rel)
        if data is not None:
            sandbox.add_file(rel, data)


def _dynamic(
    files: _Files,
    combos: dict[tuple, Combination],
    report: TrainingReport,
    sandbox,
    *,
    timeout: float | None,
    memory: int | None,
) -> None:
    from registry.training.sandbox import Request

    blocked = {f.path for f in report.findings if f.severity is Severity.error}
    root = sandbox.root
    runs: list[tuple[Combination, Any]] = []
    for combo in combos.values():
        s_lf, a_lf, d_lf = (
            files.structures[combo.structure],
            files.algorithms[combo.algorithm],
            files.datasets[combo.dataset],
        )
        if {s_lf.path, a_lf.path, d_lf.path} & blocked:
            continue  # the static findings say what to fix first
        structure: Structure = s_lf.value
        customs = {s.type for s in structure.layers if s.type in files.layers}
        if any(files.layers[c].problems for c in customs):
            continue
        algo: Algorithm = a_lf.value
        if algo.code and files.algorithm_code.get(algo.code, None) is None:
            report.findings.append(
                _f(
                    f"algorithm '{algo.name}' names "
                    f"{custom_algorithm_path(algo.code)}, which does not exist",
                    "add the file or fix `code:`",
                    a_lf.path,
                    a_lf.line_of("code"),
                )
            )
            continue
        if algo.code and files.algorithm_code[algo.code].problems:
            continue
        runs.append(
            (
                combo,
                Request(
                    root=str(root),
                    structure=structure.model_dump(mode="json"),
                    algorithm=algo.model_dump(mode="json"),
                    dataset=d_lf.value.model_dump(mode="json"),
                    hyperparameters=combo.hyperparameters,
                    custom_layers=sorted(customs),
                ),
            )
        )
    outcomes = (
        sandbox.run(
            [r for _, r in runs],
            **({"timeout": timeout} if timeout else {}),
            **({"memory": memory} if memory else {}),
        )
        if runs
        else []
    )
    for (combo, _), outcome in zip(runs, outcomes):
        s_lf, a_lf = files.structures[combo.structure], files.algorithms[combo.algorithm]
        who = ", ".join(combo.instances)
        for prob in outcome.problems:
            path, line = prob.path, prob.line
            if path is None:  # a problem of the YAML: the structure or algorithm file
                path = a_lf.path if prob.where == "algorithm" else s_lf.path
                line = (
                    a_lf.line_of(prob.field)
                    if prob.where == "algorithm" and prob.field
                    else s_lf.line_of("layers", prob.layer)
                    if prob.layer is not None
                    else None
                )
            report.findings.append(
                _f(f"{prob.message} (instance {who})", prob.hint, path, line, check=DYNAMIC)
            )
        if outcome.layers:
            report.layers[combo.structure] = [LayerShape(**r) for r in outcome.layers]


def render_text(report: TrainingReport) -> str:
    """The report for people: PASS/FAIL, then `path:line: message` and the fix."""
    lines = [
        f"{'PASS' if report.passed else 'FAIL'}  training files ({len(report.files)} checked"
        + (", built and run once" if report.dynamic else "")
        + ")"
    ]
    for f in report.findings:
        where = f"{f.path}:{f.line}" if f.line else (f.path or "")
        lines.append(f"  {f.severity.value}: {where}: {f.message}")
        if f.hint:
            lines.append(f"    fix: {f.hint}")
    for name, rows in report.layers.items():
        lines.append(f"  structure {name}:")
        for r in rows:
            params = f"{r.parameters:,} params" if r.parameters is not None else "? params"
            lines.append(f"    {r.name:<16} {r.type:<14} {shape_text(r.output_shape):<18} {params}")
    return "\n".join(lines) + "\n"


def render_markdown(report: TrainingReport, pictures: dict[str, str] | None = None) -> str:
    """The report as Markdown for the step summary or a pull-request comment (text made inert)."""
    from registry.checks.report import markdown_text

    out = [f"### Training files: {'✅ pass' if report.passed else '❌ fail'}", ""]
    for f in report.findings:
        where = f"{f.path}:{f.line}" if f.line else (f.path or "")
        out.append(
            f"- **{f.severity.value}** `{markdown_text(where)}`: {markdown_text(f.message)}"
            + (f" — {markdown_text(f.hint)}" if f.hint else "")
        )
    for name, rows in report.layers.items():
        out += [
            "",
            f"**structure {markdown_text(name)}**"
            + (f" (picture: `{pictures[name]}`)" if pictures and name in pictures else ""),
            "",
            "| layer | type | output | parameters |",
            "| --- | --- | --- | --- |",
        ]
        out += [
            f"| {markdown_text(r.name)} | {markdown_text(r.type)} | {shape_text(r.output_shape)} | "
            f"{'' if r.parameters is None else f'{r.parameters:,}'} |"
            for r in rows
        ]
    return "\n".join(out) + "\n"


def instances_of(snap: Snapshot, task: str) -> list[Instance]:
    """The expanded instances of one task (for `registry train plan`)."""
    from registry.training.files import require

    return expand_instances(
        require(
            load_file(snap.read(task_path(task)), task_path(task), TrainingTask, expected_name=task)
        )
    )


def publish_github(report: TrainingReport, artifacts_dir: Path | None = None) -> str:
    """The bot's GitHub output: annotations (returned, for standard output), the step summary,
    `passed=` in `$GITHUB_OUTPUT`, and the structure pictures as SVG files in `artifacts_dir`."""
    import os

    from registry.checks.github import annotation, inert_block

    pictures = write_pictures(report, artifacts_dir) if artifacts_dir else {}
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(render_markdown(report, pictures))
    outputs = os.environ.get("GITHUB_OUTPUT")
    if outputs:
        with open(outputs, "a", encoding="utf-8") as f:
            f.write(f"passed={'true' if report.passed else 'false'}\n")
    return "".join(annotation(f, "training") + "\n" for f in report.findings) + inert_block(
        render_text(report)
    )


def write_pictures(report: TrainingReport, directory: Path) -> dict[str, str]:
    """Write each structure's picture as `<structure>.svg`; return {structure: file name}."""
    from registry.core.files import write_atomic

    Path(directory).mkdir(parents=True, exist_ok=True)
    written = {}
    for name, svg in report.pictures.items():
        write_atomic(Path(directory) / f"{name}.svg", svg)
        written[name] = f"{name}.svg"
    return written
