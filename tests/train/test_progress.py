"""How a run's progress looks: a table redrawn in place in a terminal, plain lines in CI, JSON
lines."""

from __future__ import annotations

import io
import json

from registry.training.workers import InstanceOutcome, ProgressView, TaskRun

EVENTS = [
    {"instance": "a", "event": "start", "epoch": 0, "epochs": 3, "steps": 5, "resumed": False},
    {"instance": "b", "event": "start", "epoch": 1, "epochs": 3, "steps": 5, "resumed": True},
    {
        "instance": "a",
        "event": "progress",
        "epoch": 1,
        "epochs": 3,
        "step": 2,
        "steps": 5,
        "loss": 0.5,
        "eta_s": 75,
    },
    {
        "instance": "a",
        "event": "epoch",
        "epoch": 1,
        "epochs": 3,
        "step": 5,
        "steps": 5,
        "loss": 0.25,
        "metric": {"accuracy": 0.5},
        "eta_s": 4,
    },
    {"instance": "b", "event": "failed", "message": "the loss became nan at epoch 2, step 1"},
    {"instance": "a", "event": "done", "metrics": {"accuracy": 0.75}, "train_seconds": 1.5},
]
RUN = TaskRun(
    "t",
    [
        InstanceOutcome("a", "done", metrics={"accuracy": 0.75}),
        InstanceOutcome(
            "b", "failed", "the loss became nan at epoch 2, step 1", "lower the learning rate"
        ),
    ],
)


def _show(**kw) -> str:
    out = io.StringIO()
    view = ProgressView(out, **kw)
    view.begin("t", ["a", "b"], 2)
    for ev in EVENTS:
        view.event(ev)
    view.end(RUN)
    return out.getvalue()


def test_plain_lines_for_logs_one_per_epoch_and_outcome():
    text = _show(plain=True)
    assert text.splitlines() == [
        "training t: 2 instances, 2 workers",
        "[a] started, 3 epochs of 5 steps",
        "[b] resumed at epoch 2/3",
        "[a] epoch 1/3 loss 0.2500 accuracy 0.5000 eta 4s",
        "[b] FAILED: the loss became nan at epoch 2, step 1",
        "[a] done: accuracy 0.7500 (1.5 s)",
        "[b] failed: the loss became nan at epoch 2, step 1",
        "  hint: lower the learning rate",
    ]


def test_a_terminal_gets_a_live_table_with_steps_and_eta():
    text = _show(plain=False)
    assert "\x1b[2F" in text  # the two-line table is redrawn in place
    assert "  a  epoch 1/3 step 2/5 loss 0.5000 eta 1m15s" in text
    last_table = text.rsplit("\x1b[2F", 1)[1]
    assert (
        "  a  done: accuracy 0.7500" in last_table
        and "  b  FAILED: the loss became nan" in last_table
    )


def test_jsonl_is_every_event_as_json():
    lines = [json.loads(ln) for ln in _show(jsonl=True).splitlines()]
    assert lines[0] == {"event": "begin", "task": "t", "instances": ["a", "b"], "workers": 2}
    assert lines[1:-1] == EVENTS
    assert lines[-1]["event"] == "end" and lines[-1]["instances"]["b"]["state"] == "failed"


def test_a_worker_killed_mid_message_costs_its_own_pipe_only():
    """Each worker writes to a pipe of its own: one killed halfway through a message (its pipe
    ends with half a pickle) is dropped, and the events of the others still arrive. (Workers
    that shared one queue shared its lock: a worker killed while holding it blocked the others for
    good.)"""
    import multiprocessing as mp
    import os
    import pickle
    import struct

    from registry.training.workers import _drain, _drain_ended

    killed_r, killed_w = mp.Pipe(duplex=False)
    alive_r, alive_w = mp.Pipe(duplex=False)
    whole = pickle.dumps({"instance": "killed", "event": "epoch", "epoch": 1, "epochs": 4})
    killed_w.send({"instance": "killed", "event": "started", "epochs": 4})
    # the frame's length, then half the message: the worker was killed in the middle of the write
    os.write(killed_w.fileno(), struct.pack("!i", len(whole)) + whole[: len(whole) // 2])
    killed_w.close()
    alive_w.send({"instance": "alive", "event": "done", "metrics": {"accuracy": 0.9}})
    events = {"killed": killed_r, "alive": alive_r}
    outcomes = {n: InstanceOutcome(n, state="running") for n in events}
    out = io.StringIO()
    view = ProgressView(out, plain=True)
    _drain(events, outcomes, view, timeout=0.5)
    assert "killed" not in events and killed_r.closed  # read to its end, then let go
    assert outcomes["alive"].state == "done" and outcomes["killed"].state == "running"
    alive_w.send({"instance": "alive", "event": "log", "line": "bye"})
    alive_w.close()
    _drain_ended(events, "alive", outcomes, view)
    assert events == {} and alive_r.closed
    assert "[alive] done: accuracy 0.9000" in out.getvalue()
