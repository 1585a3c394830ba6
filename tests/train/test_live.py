"""The runner's metrics files are the ones DVCLive writes, byte for byte, and a resumed run
continues after the epoch of its checkpoint."""

from __future__ import annotations

import json

from registry.training.live import LiveFiles

PARAMS = {
    "task": "digits-cnn",
    "instance": "base",
    "dataset": "digits",
    "c1": 8,
    "learning_rate": 0.01,
}
EPOCHS = [
    {
        "train/loss": 1.25,
        "train/accuracy": 0.5,
        "validation/loss": 1.5,
        "validation/accuracy": 0.375,
    },
    {
        "train/loss": 0.1 + 0.2,
        "train/accuracy": 0.75,
        "validation/loss": float("inf"),
        "validation/accuracy": 0.625,
    },
    {
        "train/loss": float("nan"),
        "train/accuracy": 1.0,
        "validation/loss": 0.5,
        "validation/accuracy": 1.0,
    },
]


def _files(folder) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_files_are_the_ones_dvclive_writes(tmp_path, monkeypatch):
    from dvclive import Live

    monkeypatch.chdir(tmp_path)  # no git or DVC repository around this folder
    live = Live(dir=str(tmp_path / "dvclive"), save_dvc_exp=False, dvcyaml=None, report=None)
    live.log_params(PARAMS)
    for row in EPOCHS:
        for name, value in row.items():
            live.log_metric(name, value)
        live.next_step()
    live.log_metric("test/accuracy", 0.875, plot=False)
    live.end()

    ours = LiveFiles(tmp_path / "ours")
    ours.log_params(PARAMS)
    ours.log_epoch(EPOCHS[0])
    ours.flush()  # as at a checkpoint
    for row in EPOCHS[1:]:
        ours.log_epoch(row)
    ours.finish({"accuracy": 0.875})

    theirs = _files(tmp_path / "dvclive")
    assert "plots/metrics/validation/accuracy.tsv" in theirs and "params.yaml" in theirs
    assert _files(tmp_path / "ours") == theirs


def test_a_resumed_run_keeps_the_rows_up_to_its_checkpoint_and_continues_after_them(tmp_path):
    first = LiveFiles(tmp_path / "dvclive")
    for row in EPOCHS:
        first.log_epoch(row)
    first.flush()  # three epochs written, but the checkpoint holds one

    again = LiveFiles(tmp_path / "dvclive", resume_at=1)
    again.log_epoch(EPOCHS[2])
    again.finish({"accuracy": 0.5})
    loss = (tmp_path / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss == ["step\tloss", "0\t1.25", "1\tnan"]
    summary = json.loads((tmp_path / "dvclive/metrics.json").read_text())
    assert summary["step"] == 1 and summary["test"] == {"accuracy": 0.5}
