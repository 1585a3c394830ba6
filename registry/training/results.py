"""A task's results: list and compare its instances, pick the best, fetch one instance's files,
and the committed summary of them (`training/<task>/results.json`)."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from registry.core.errors import RegistryError, UsageError
from registry.core.files import read_in_tree, write_atomic
from registry.training import TRAINING_DIR
from registry.training.algorithms import metric_direction
from registry.training.files import (
    COMMIT_RE,
    RESULTS_FORMAT,
    SCHEMA_FOR_KIND,
    InstanceResult,
    RegisteredAs,
    TaskResults,
    expand_instances,
    load_results_summary,
    read_task,
    results_summary_path,
)
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


def list_results(root: Path, task: str, *, summary: bool = False) -> list[ResultRow]:
    """Every instance of the task with what its results folder holds; the best one marked.

    Args:
        summary: an instance without a results folder here takes its row from the committed
            `training/<task>/results.json` (a clone that did not train it, such as the catalog's).
    """
    spec = read_task(root, task)
    recorded = read_summary(root, task) if summary else None
    recorded_rows = {i.name: i for i in recorded.instances} if recorded else {}
    rows = []
    for inst in expand_instances(spec):
        folder = results_dir(root, task, inst.name)
        row = ResultRow(inst.name, "not run", spec.metric)
        if not folder.is_dir() and inst.name in recorded_rows:
            r = recorded_rows[inst.name]
            row.state, row.metrics, row.epochs_run = r.state, dict(r.metrics), r.epochs_run
            row.value = row.metrics.get(spec.metric)
            rows.append(row)
            continue
        status = _read_status(root, task, inst.name)
        if status is not None:
            data = status
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


MAX_RESULTS_BYTES = 16 * 1024 * 1024  # a results.json or status.json is a few kilobytes


def _read_status(root: Path, task: str, instance: str) -> dict | None:
    """An instance's `status.json` as written by its run; None when there is none. Read without
    following links: the catalog shows what it holds on the public site.

    Raises:
        UsageError: the file is a link, too large, or not a JSON object.
    """
    rel = results_dir(Path("."), task, instance).as_posix() + "/status.json"
    try:
        data = read_in_tree(root, rel, MAX_RESULTS_BYTES)
        if data is None:
            return None
        value = json.loads(data)
    except (RegistryError, ValueError) as e:
        raise UsageError(
            f"{rel}: not a results file written by `registry train` ({e})",
            f"remove it and train the instance again: registry train {task} --instance {instance}",
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{rel}: not a results file written by `registry train` (not a JSON object)",
            f"remove it and train the instance again: registry train {task} --instance {instance}",
        )
    return value


def read_summary(root: Path, task: str) -> TaskResults | None:
    """The task's committed `results.json` from the working tree; None when there is none or it
    does not load (`registry train check` reports why)."""
    path = results_summary_path(task)
    try:
        data = read_in_tree(root, path, MAX_RESULTS_BYTES)
    except RegistryError:  # a link or a special file: never read through
        return None
    if data is None:
        return None
    loaded = load_results_summary(data, path, task)
    return loaded.value if not loaded.findings else None


def _trained_commit(root: Path, task: str, instance: str) -> str | None:
    config = results_dir(root, task, instance) / "config.yaml"
    if not config.is_file():
        return None
    import yaml

    commit = (yaml.safe_load(config.read_text()) or {}).get("source_commit")
    return commit if isinstance(commit, str) and re.fullmatch(COMMIT_RE, commit) else None


def write_summary(
    root: Path, task: str, *, commit: str, registered: tuple[str, RegisteredAs] | None = None
) -> Path:
    """Write `training/<task>/results.json`: every instance with results here (the ones only the
    previous summary knows are kept as it recorded them), and which one became which model.

    Args:
        commit: the commit the instances trained from (the registered one's).
        registered: (instance, the model entry it was registered as).
    Returns:
        the file written.
    """
    spec = read_task(root, task)
    previous = read_summary(root, task)
    kept = {i.name: i for i in previous.instances} if previous else {}
    entries: list[InstanceResult] = []
    for row in list_results(root, task):
        if row.state in ("done", "partial"):
            trained = _trained_commit(root, task, row.instance)
            entries.append(
                InstanceResult(
                    name=row.instance,
                    state=row.state,
                    metrics={k: v for k, v in row.metrics.items() if isinstance(v, (int, float))},
                    epochs_run=row.epochs_run,
                    commit=trained if trained and trained != commit else None,
                )
            )
        elif row.instance in kept:  # trained elsewhere: as the last summary recorded it
            old = kept[row.instance]
            if old.commit is None and previous.commit != commit:
                old = old.model_copy(update={"commit": previous.commit})
            entries.append(old)
    if registered is not None:
        name, made = registered
        entries = [
            e.model_copy(update={"registered": made}) if e.name == name else e for e in entries
        ]
    summary = TaskResults(
        schema_ref=os.path.relpath(SCHEMA_FOR_KIND["results"], f"{TRAINING_DIR}/{task}"),
        format=RESULTS_FORMAT,
        task=task,
        commit=commit,
        metric=spec.metric,
        instances=entries,
    )
    path = Path(root) / results_summary_path(task)
    write_atomic(
        path,
        json.dumps(summary.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2)
        + "\n",
    )
    return path


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
