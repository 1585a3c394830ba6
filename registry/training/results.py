"""A task's results: list and compare its instances, pick the best, fetch one instance's files."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from registry.core.errors import UsageError
from registry.training.algorithms import metric_direction
from registry.training.files import expand_instances, read_task
from registry.training.runner import results_dir


@dataclass
class ResultRow:
    """One instance's results as `registry train results` shows them."""

    instance: str
    state: str  # done | partial | not run; failed in the outcome of the run that failed it
    metric: str
    value: float | None = None
    metrics: dict = field(default_factory=dict)
    epochs_run: int | None = None
    seconds: float | None = None
    folder: str | None = None
    best: bool = False
    pytorch: str | None = None  # the .pt2 beside model.onnx, when torch.export captured the network
    pytorch_note: str | None = None  # why there is none


def list_results(root: Path, task: str) -> list[ResultRow]:
    """Every instance of the task with what its results folder holds; the best one marked."""
    spec = read_task(root, task)
    rows = []
    for inst in expand_instances(spec):
        folder = results_dir(root, task, inst.name)
        row = ResultRow(inst.name, "not run", spec.metric)
        status = folder / "status.json"
        if status.is_file():
            data = json.loads(status.read_text())
            row.state = data.get("state", "done")
            row.metrics = data.get("metrics", {})
            row.value = row.metrics.get(spec.metric)
            row.epochs_run, row.seconds = data.get("epochs_run"), data.get("train_seconds")
            row.pytorch, row.pytorch_note = data.get("pytorch"), data.get("pytorch_note")
        elif (folder / "checkpoint.pt").is_file():
            row.state = "partial"
        if folder.is_dir():
            row.folder = str(
                folder.relative_to(Path(root).resolve()) if folder.is_absolute() else folder
            )
        rows.append(row)
    higher = (
        spec.higher_is_better
        if spec.higher_is_better is not None
        else metric_direction(spec.metric)
    )
    done = [r for r in rows if r.state == "done" and r.value is not None]
    if done:
        best = (max if higher else min)(done, key=lambda r: r.value)
        best.best = True
    return rows


def best_result(root: Path, task: str) -> ResultRow:
    """The finished instance with the best value of the task's metric.

    Raises:
        UsageError: no instance has finished.
    """
    rows = list_results(root, task)
    for r in rows:
        if r.best:
            return r
    raise UsageError(
        f"no instance of task '{task}' has finished training",
        f"run `registry train {task}` first (or download the results of its workflow run)",
    )


def fetch_result(root: Path, task: str, instance: str, dest: Path) -> Path:
    """Copy one instance's results (weights, metrics, config, plots, log; no checkpoint) to
    `dest`."""
    folder = results_dir(root, task, instance)
    if not (folder / "status.json").is_file():
        raise UsageError(
            f"instance '{instance}' of task '{task}' has no finished results",
            f"run `registry train {task} --instance {instance}`",
        )
    target = Path(dest) / instance
    shutil.copytree(
        folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint.pt", ".*")
    )
    return target


def render_results(task: str, rows: list[ResultRow], markdown: bool = False) -> str:
    """The comparison table (text, or Markdown for the Actions step summary), then a line for each
    finished instance without a `.pt2`."""
    names = sorted({k for r in rows for k in r.metrics})
    head = ["instance", "state", *names, "epochs", "seconds", ""]
    body = [
        [
            r.instance,
            r.state,
            *(f"{r.metrics[k]:.4f}" if k in r.metrics else "" for k in names),
            "" if r.epochs_run is None else str(r.epochs_run),
            "" if r.seconds is None else f"{r.seconds:.1f}",
            "best" if r.best else "",
        ]
        for r in rows
    ]
    notes = [f"{r.instance}: {r.pytorch_note}" for r in rows if r.pytorch_note]
    if markdown:
        lines = [
            f"### Training task {task}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + " --- |" * len(head),
        ]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        from registry.checks.report import markdown_text

        lines += [""] + [f"- {markdown_text(n)}" for n in notes] if notes else []
        return "\n".join(lines) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), *(fmt(r) for r in body), *notes]) + "\n"


def results_json(task: str, rows: list[ResultRow]) -> str:
    """The comparison as JSON."""
    return json.dumps({"task": task, "instances": [asdict(r) for r in rows]}, indent=2) + "\n"
