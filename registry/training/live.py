"""An instance's metrics per epoch, written in DVCLive's layout so that `dvc plots` and
`dvc metrics` read them.

`training/<task>/results/<instance>/dvclive/` holds what `dvclive.Live(save_dvc_exp=False,
dvcyaml=None)` writes, byte for byte: `params.yaml`, `plots/metrics/<split>/<name>.tsv` (a `step`
column, 0 for the first epoch, and the value) and `metrics.json` (the latest value of each metric,
nested by split, with the last `step` and the held-out `test` values). The registry writes these
files itself: DVCLive opens the DVC repository around the results on start and writes a signal
file for DVC's VS Code extension on every step, which together cost more than a small model's
training. Rows are kept in memory and written with each checkpoint and at the end
(`registry.training.runner`), so the files never hold rows the checkpoint does not.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from registry.core.files import write_atomic

METRICS = "metrics.json"
PARAMS = "params.yaml"
PLOTS = Path("plots") / "metrics"


class LiveFiles:
    """The `dvclive/` folder of one instance.

    Args:
        folder: the `dvclive/` folder.
        resume_at: epochs already done (a resumed run): the rows of later epochs are dropped and
            logging continues after them; 0 starts afresh (the folder's files are removed).
    """

    def __init__(self, folder: Path, resume_at: int = 0):
        self.folder = Path(folder)
        self.step = resume_at
        self.summary: dict = {}
        self.pending: list[tuple[int, dict[str, float]]] = []
        if resume_at:
            _trim(self.folder, resume_at)
            if (self.folder / METRICS).is_file():
                self.summary = json.loads((self.folder / METRICS).read_text(encoding="utf-8"))
        else:
            shutil.rmtree(self.folder / PLOTS, ignore_errors=True)
            for name in (METRICS, PARAMS):
                (self.folder / name).unlink(missing_ok=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def log_params(self, params: dict) -> None:
        """Write `params.yaml` (as DVCLive does, with ruamel.yaml's block style)."""
        from io import StringIO

        from ruamel.yaml import YAML

        yaml = YAML()
        yaml.default_flow_style = False
        text = StringIO()
        yaml.dump(params, text)
        write_atomic(self.folder / PARAMS, text.getvalue())

    def log_epoch(self, metrics: dict[str, float]) -> None:
        """Keep one epoch's metrics ({"train/loss": value, …}) as the next step; `flush` writes
        them."""
        self.pending.append((self.step, metrics))
        for name, value in metrics.items():
            _set_in(self.summary, name, _value(value))
        self.summary["step"] = self.step
        self.step += 1

    def flush(self) -> None:
        """Append the kept rows to their TSV files and rewrite `metrics.json`."""
        if not self.pending:
            return
        rows: dict[str, list[str]] = {}
        for step, metrics in self.pending:
            for name, value in metrics.items():
                rows.setdefault(name, []).append(f"{step}\t{_value(value)}\n")
        for name, lines in rows.items():
            path = self.folder / PLOTS / f"{name}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            header = "" if path.is_file() else f"step\t{name.rsplit('/', 1)[-1]}\n"
            with open(path, "a", encoding="utf-8", newline="") as f:
                f.write(header + "".join(lines))
        self.pending.clear()
        self._write_summary()

    def finish(self, test: dict[str, float]) -> None:
        """Write what is kept, with the held-out metrics as `test/<name>` in `metrics.json` only."""
        for name, value in test.items():
            _set_in(self.summary, f"test/{name}", _value(value))
        self.flush()
        self._write_summary()

    def _write_summary(self) -> None:
        write_atomic(self.folder / METRICS, json.dumps(self.summary, indent=4) + "\n")


def _value(value: float) -> float | str:
    """A metric as DVCLive writes it: NaN and infinities as text."""
    return value if math.isfinite(value) else str(value)


def _set_in(summary: dict, name: str, value) -> None:
    *parents, last = name.split("/")
    for key in parents:
        summary = summary.setdefault(key, {})
    summary[last] = value


def _trim(folder: Path, epochs: int) -> None:
    """Keep the rows of the first `epochs` epochs only: a resumed run continues from its
    checkpoint, so rows written after it would otherwise appear twice."""
    for tsv in (folder / PLOTS).rglob("*.tsv"):
        lines = tsv.read_text(encoding="utf-8").splitlines(keepends=True)
        steps = [ln.split("\t", 1)[0] for ln in lines]
        kept = lines[:1] + [
            ln for ln, step in zip(lines[1:], steps[1:]) if step.isdigit() and int(step) < epochs
        ]
        write_atomic(tsv, "".join(kept))
    metrics = folder / METRICS
    if metrics.is_file():
        data = json.loads(metrics.read_text(encoding="utf-8"))
        data["step"] = epochs - 1
        write_atomic(metrics, json.dumps(data, indent=4) + "\n")
