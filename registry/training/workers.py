"""Running a task's instances: each in its own worker process, N at a time, with live progress.

A worker is a `multiprocessing` process forked from a fork server that has imported torch and the
other heavy modules once (`registry.training.preload`; spawned where there is no fork), never a
thread: training holds the GIL. Workers send events (start, progress, epoch, done, failed,
skipped) each through a pipe of its own; the parent shows them (`ProgressView`) and decides nothing
else, so a worker that fails, raises or is killed (out of memory, a signal) is reported and the
others go on. (Not one queue shared by the workers: its writers share a lock, and a worker killed
while it held that lock would leave every other worker blocked on it for good.) Ctrl-C stops the
workers (they ignore SIGINT; the parent ends them), and as every finished epoch is checkpointed,
running the task again resumes where it stopped. Across machines the same instances run as an
Actions matrix (.github/workflows/train.yml): one `--instance` per job.
"""

from __future__ import annotations

import difflib
import json
import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from registry.core.errors import UsageError
from registry.training.files import Instance, expand_instances, read_task

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


@dataclass
class InstanceOutcome:
    """How one instance ended."""

    name: str
    state: str = "pending"  # pending | running | done | skipped | failed | stopped
    message: str | None = None
    hint: str | None = None
    metrics: dict = field(default_factory=dict)
    seconds: float | None = None


@dataclass
class TaskRun:
    """The outcome of `train_task`."""

    task: str
    outcomes: list[InstanceOutcome]
    interrupted: bool = False

    @property
    def failed(self) -> list[InstanceOutcome]:
        return [o for o in self.outcomes if o.state in ("failed", "stopped")]


def select_instances(root: Path, task: str, names: list[str] | None) -> list[Instance]:
    """The task's instances, or the named ones (in the task's order).

    Raises:
        UsageError: an unknown instance name (with the nearest known one).
    """
    instances = expand_instances(read_task(root, task))
    if not names:
        return instances
    known = [i.name for i in instances]
    for n in names:
        if n not in known:
            near = difflib.get_close_matches(n, known, n=1)
            raise UsageError(
                f"task '{task}' has no instance '{n}'",
                f"did you mean '{near[0]}'?" if near else "its instances: " + ", ".join(known),
            )
    return [i for i in instances if i.name in names]


def _worker(root: str, task: str, inst: Instance, device: str, threads: int, events) -> None:
    """Entry of a worker process: train one instance, report through `events` (the writing end
    of its own pipe), never raise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop

    def send(event: dict) -> None:
        events.send({"instance": inst.name, "time": time.time(), **event})

    try:
        from registry.training.runner import train_instance

        train_instance(Path(root), task, inst, device=device, threads=threads, events=send)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which goes on with the others
        from registry.core.errors import RegistryError

        if isinstance(e, RegistryError):
            send({"event": "failed", "message": e.message, "hint": e.hint})
        else:
            send(
                {
                    "event": "failed",
                    "message": f"{type(e).__name__}: "
                    f"{str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}",
                    "hint": "see train.log in the instance's results; re-run with `--workers 1 "
                    "--traceback` for details",
                }
            )


def require_device(device: str, task: str, chosen: list[Instance]) -> None:
    """Refuse a device this machine lacks before any worker starts.

    Raises:
        UsageError: `--device cuda` where torch sees no CUDA device, naming the instances and
            why (a CPU-only build of torch, or no GPU visible).
    """
    if device != "cuda":
        return
    import torch

    if torch.cuda.is_available():
        return
    names = ", ".join(i.name for i in chosen)
    plural = "instance" if len(chosen) == 1 else "instances"
    why = (
        f"this torch ({torch.__version__}) is a CPU-only build"
        if torch.version.cuda is None
        else f"torch (built for CUDA {torch.version.cuda}) sees no GPU on this machine"
    )
    raise UsageError(
        f"--device cuda: {why}, so task '{task}' ({plural} {names}) cannot train on it",
        "train with --device cpu, or run on a machine with a GPU (in the train workflow: a "
        "runner label of a GPU runner)"
        + (", with a CUDA build of torch installed" if torch.version.cuda is None else ""),
    )


def train_task(
    root: Path,
    task: str,
    *,
    instances: list[str] | None = None,
    workers: int = 1,
    device: str = "cpu",
    threads: int | None = None,
    view: ProgressView | None = None,
) -> TaskRun:
    """Train a task's instances, `workers` at a time, each in its own process.

    Args:
        threads: torch threads per worker (default: the CPUs shared out among the workers). On a
            machine busy with other work, fewer threads than cores is much faster: threads that
            wait for a core spin.

    Returns:
        every instance's outcome; `interrupted` when Ctrl-C stopped the run.

    Raises:
        UsageError: unknown task or instance, workers < 1, `--device cuda` without a GPU.
    """
    import multiprocessing as mp

    root = Path(root).resolve()
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    chosen = select_instances(root, task, instances)
    require_device(device, task, chosen)
    view = view or ProgressView(sys.stderr, plain=True)
    threads = threads or max(1, (os.cpu_count() or 1) // min(workers, len(chosen)))
    ctx = _context(mp)
    events: dict[str, Connection] = {}  # the reading end of each running worker's pipe
    outcomes = {i.name: InstanceOutcome(i.name) for i in chosen}
    pending = list(chosen)
    running: dict[str, mp.Process] = {}
    run = TaskRun(task, list(outcomes.values()))
    view.begin(task, [i.name for i in chosen], workers)
    try:
        while pending or running:
            # an instance that has reported how it ended frees its place before its process is gone
            while pending and sum(outcomes[n].state == "running" for n in running) < workers:
                inst = pending.pop(0)
                reader, writer = ctx.Pipe(duplex=False)
                p = ctx.Process(
                    target=_worker,
                    args=(str(root), task, inst, device, threads, writer),
                    name=f"train-{inst.name}",
                    daemon=True,
                )
                try:
                    p.start()
                finally:
                    writer.close()  # the worker's alone: its end of the pipe closes when it ends
                events[inst.name] = reader
                running[inst.name] = p
                outcomes[inst.name].state = "running"
            _drain(events, outcomes, view, timeout=0.2)
            for name, p in list(running.items()):
                if p.exitcode is None:
                    continue
                p.join()
                _drain_ended(events, name, outcomes, view)
                del running[name]
                o = outcomes[name]
                if o.state == "running":  # ended without saying how: killed
                    how = (
                        f"killed by signal {-p.exitcode}"
                        if p.exitcode < 0
                        else f"exit code {p.exitcode}"
                    )
                    o.state, o.message = (
                        "failed",
                        f"the worker stopped ({how}); it may have run out of memory",
                    )
                    o.hint = "re-run the task: it resumes from the last finished epoch"
                    view.event({"instance": name, "event": "failed", "message": o.message})
    except KeyboardInterrupt:
        run.interrupted = True
        for p in running.values():
            p.terminate()
        for name, p in running.items():
            p.join(10)
            if p.exitcode is None:
                p.kill()
                p.join()
            o = outcomes[name]
            if o.state == "running":  # not one that had finished and was leaving
                o.state, o.message = "stopped", "stopped by Ctrl-C"
                o.hint = "re-run the same command: it resumes from the last finished epoch"
        for inst in pending:
            outcomes[inst.name].state = "stopped"
            outcomes[inst.name].message = "not started"
    finally:
        for reader in events.values():
            reader.close()
        view.end(run)
    return run


def _context(mp):
    """Workers come from a fork server that has imported the heavy modules (POSIX), else are
    spawned.

    Nothing in the server starts threads or a GPU before it forks (importing torch does neither).
    """
    if "forkserver" in mp.get_all_start_methods():
        _short_socket_folder()
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["registry.training.preload"])
        return ctx
    return mp.get_context("spawn")


# A Unix socket's path holds at most 107 bytes; the fork server's lives in a folder under $TMPDIR.
_SOCKET_ROOM = 60


def _short_socket_folder() -> None:
    """Give multiprocessing a short temporary folder when $TMPDIR is too deep for the fork server's
    socket (it would fail with "AF_UNIX path too long"): one under /tmp, removed at exit, as
    multiprocessing makes its own."""
    import shutil
    import tempfile
    from multiprocessing import process, util

    config = process.current_process()._config
    if config.get("tempdir") is not None or len(tempfile.gettempdir()) <= _SOCKET_ROOM:
        return
    for base in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(base) and os.access(base, os.W_OK):
            folder = tempfile.mkdtemp(prefix="pymp-", dir=base)
            util.Finalize(
                None,
                shutil.rmtree,
                args=[folder],
                kwargs={"ignore_errors": True},
                exitpriority=-100,
            )
            config["tempdir"] = folder
            return


def _drain(
    events: dict[str, Connection],
    outcomes: dict[str, InstanceOutcome],
    view: ProgressView,
    timeout: float,
) -> None:
    """Show the events the workers send within `timeout` seconds. A pipe whose worker has ended
    (its end closed, or a message cut off by a kill) is closed and no longer read."""
    from multiprocessing.connection import wait

    deadline = time.monotonic() + timeout
    if not events:  # every pipe ended: the workers are on their way out
        time.sleep(min(timeout, 0.05))
    while events:
        ready = wait(list(events.values()), timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            return
        for name, reader in list(events.items()):
            if reader in ready:
                ev = _receive(reader)
                if ev is None:
                    reader.close()
                    del events[name]
                else:
                    _show(ev, outcomes, view)
        if time.monotonic() >= deadline:
            return


def _drain_ended(
    events: dict[str, Connection],
    name: str,
    outcomes: dict[str, InstanceOutcome],
    view: ProgressView,
) -> None:
    """Show every event a worker that has ended sent, up to the end of its pipe."""
    reader = events.pop(name, None)
    if reader is None:
        return
    try:
        while reader.poll(5) and (ev := _receive(reader)) is not None:
            _show(ev, outcomes, view)
    finally:
        reader.close()


def _receive(reader: Connection) -> dict | None:
    """The next event of a pipe; None at its end or where a killed worker left half a message."""
    try:
        ev = reader.recv()
    except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError):
        return None
    return ev if isinstance(ev, dict) else None


def _show(ev: dict, outcomes: dict[str, InstanceOutcome], view: ProgressView) -> None:
    """Record an event in its instance's outcome and show it."""
    o = outcomes.get(ev.get("instance"))
    if o is not None:
        kind = ev.get("event")
        if kind == "done":
            o.state, o.metrics, o.seconds = "done", ev.get("metrics", {}), ev.get("train_seconds")
        elif kind == "skipped":
            o.state, o.metrics, o.message = "skipped", ev.get("metrics", {}), ev.get("reason")
        elif kind == "failed":
            o.state, o.message, o.hint = "failed", ev.get("message"), ev.get("hint")
    view.event(ev)


# --------------------------------------------------------------------------- showing progress


def _eta(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _metrics_text(metrics: dict | None) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in (metrics or {}).items())


class ProgressView:
    """Shows a run's events: a live table in a terminal, plain lines otherwise, or JSON lines.

    Args:
        stream: where to write.
        plain: one line per epoch and outcome (CI logs); otherwise the table is redrawn in place.
        jsonl: every event as one JSON object per line (for other tools), nothing else.
    """

    def __init__(self, stream: TextIO, *, plain: bool = True, jsonl: bool = False):
        self.stream, self.plain, self.jsonl = stream, plain, jsonl
        self.rows: dict[str, str] = {}
        self.drawn = 0

    def begin(self, task: str, names: list[str], workers: int) -> None:
        self.rows = {n: "waiting" for n in names}
        if self.jsonl:
            self._json({"event": "begin", "task": task, "instances": names, "workers": workers})
        else:
            self.stream.write(
                f"training {task}: {len(names)} instance{'s' if len(names) != 1 else ''}, "
                f"{workers} worker{'s' if workers != 1 else ''}\n"
            )
            self._redraw()

    def event(self, ev: dict) -> None:
        if self.jsonl:
            self._json(ev)
            return
        name, kind = ev.get("instance", "?"), ev.get("event")
        line = None
        if kind == "start":
            line = (
                f"resumed at epoch {ev['epoch'] + 1}/{ev['epochs']}"
                if ev.get("resumed")
                else f"started, {ev['epochs']} epochs of {ev['steps']} steps"
            )
        elif kind == "progress":
            line = (
                f"epoch {ev['epoch']}/{ev['epochs']} step {ev['step']}/{ev['steps']} loss "
                f"{ev['loss']:.4f} "
                f"eta {_eta(ev.get('eta_s'))}"
            )
            if self.plain:
                self.rows[name] = line
                return  # plain logs get one line per epoch, not per step
        elif kind == "epoch":
            line = (
                f"epoch {ev['epoch']}/{ev['epochs']} loss {ev['loss']:.4f} "
                f"{_metrics_text(ev.get('metric'))} "
                f"eta {_eta(ev.get('eta_s'))}"
            )
        elif kind == "done":
            line = f"done: {_metrics_text(ev.get('metrics'))} ({ev.get('train_seconds', 0):.1f} s)"
        elif kind == "skipped":
            line = f"already trained: {_metrics_text(ev.get('metrics'))}"
        elif kind == "failed":
            line = f"FAILED: {ev.get('message')}"
        if line is None:
            return
        self.rows[name] = line
        if self.plain:
            self.stream.write(f"[{name}] {line}\n")
            self.stream.flush()
        else:
            self._redraw()

    def end(self, run: TaskRun) -> None:
        if self.jsonl:
            self._json(
                {
                    "event": "end",
                    "task": run.task,
                    "interrupted": run.interrupted,
                    "instances": {
                        o.name: {"state": o.state, "metrics": o.metrics, "message": o.message}
                        for o in run.outcomes
                    },
                }
            )
            return
        if run.interrupted:
            self.stream.write(
                "stopped: run the same command again to resume from the last finished epoch\n"
            )
        for o in run.outcomes:
            if o.state in ("failed", "stopped") and o.message:
                self.stream.write(
                    f"[{o.name}] {o.state}: {o.message}\n"
                    + (f"  hint: {o.hint}\n" if o.hint else "")
                )
        self.stream.flush()

    def _json(self, obj: dict) -> None:
        self.stream.write(json.dumps(obj, default=str) + "\n")
        self.stream.flush()

    def _redraw(self) -> None:
        if self.plain:
            return
        width = max((len(n) for n in self.rows), default=0)
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")  # back to the table's first line
        for name, text in self.rows.items():
            self.stream.write(f"\x1b[2K  {name:<{width}}  {text}\n")
        self.drawn = len(self.rows)
        self.stream.flush()


def plan_instances(
    root: Path,
    tasks: list[str],
    *,
    base: str | None = None,
    head: str | None = None,
    instances: list[str] | None = None,
) -> list[tuple[str, Instance]]:
    """(task, instance) pairs to train: the named tasks, and with `base` every task that uses a file
    the diff from `base` to `head` changes (see `registry.training.changes.affected_tasks`).

    Raises:
        UsageError: neither tasks nor base, or an unknown task or instance.
    """
    from registry.core.repo import WorkTree
    from registry.training.changes import affected_tasks, changed_paths

    root = Path(root)
    if not tasks and not base:
        raise UsageError(
            "say which tasks: TASK…, or --base REV [--head REV] for those a diff touches"
        )
    tasks = list(tasks)
    if base:
        tasks += [
            t
            for t in affected_tasks(WorkTree(root), changed_paths(root, base, head))
            if t not in tasks
        ]
    return [
        (t, i)
        for t in tasks
        for i in select_instances(root, t, None)
        if not instances or i.name in instances
    ]
