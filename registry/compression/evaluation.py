"""Evaluation of an ONNX model on a card's evaluation set: metrics, data loading and latency.

An evaluation set is a `.npz` file (DVC-tracked next to the card) holding the model's inputs and,
for label-based metrics, the labels. It is read with `allow_pickle=False`, so a hostile file can
never run code. Metrics compare the model's output either with the labels (accuracy, top-k, F1,
MSE, MAE) or with the outputs of a reference model, the uncompressed original (cosine, MSE/MAE to
reference).
"""

from __future__ import annotations

import statistics
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from registry.cards.metrics import METRIC_NAMES, METRICS, MetricDef
from registry.core.errors import CompressionError


def _mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present of the average precision of the samples ranked by class
    score."""
    aps = []
    for c in np.unique(labels):
        if c < 0 or c >= scores.shape[1]:
            raise CompressionError(
                f"label {c} has no output column (the model gives {scores.shape[1]} scores)",
                "labels must be class indices of the model's output",
            )
        order = np.argsort(-scores[:, c], kind="stable")
        hits = labels[order] == c
        precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
        aps.append(float(precision_at_hit.mean()))
    return float(np.mean(aps))


def metric_def(name: str) -> MetricDef:
    """The definition of a metric by name.

    Raises:
        CompressionError: an unknown name, with the nearest known one.
    """
    if name in METRICS:
        return METRICS[name]
    import difflib

    near = difflib.get_close_matches(name, METRIC_NAMES, n=1, cutoff=0.5)
    raise CompressionError(
        f"unknown metric '{name}'",
        (f"did you mean '{near[0]}'? " if near else "")
        + "known metrics: "
        + ", ".join(METRIC_NAMES),
    )


def compute_metric(
    name: str,
    outputs: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray | None,
    k: int = 5,
) -> float:
    """Score model outputs with a metric of `METRICS`.

    Args:
        outputs: the model's output, one row per sample.
        labels: integer class labels (classification) or target values (regression).
        reference: the original model's outputs on the same inputs.
    """
    d = metric_def(name)
    out = np.asarray(outputs, dtype=np.float64)
    if d.needs_labels and labels is None:
        raise CompressionError(
            f"metric '{name}' needs labels, and the evaluation set has none",
            "add a 'labels' array to the evaluation .npz, or use cosine-to-reference",
        )
    if name in ("accuracy", "top-k", "f1", "map-lite"):
        flat = out.reshape(out.shape[0], -1)
        lab = np.asarray(labels).reshape(-1).astype(np.int64)
        if lab.shape[0] != flat.shape[0]:
            raise CompressionError(
                f"the evaluation set has {lab.shape[0]} labels for {flat.shape[0]} samples",
                "give one integer label per sample",
            )
        if name == "accuracy":
            return float(np.mean(flat.argmax(axis=1) == lab))
        if name == "top-k":
            kk = min(k, flat.shape[1])
            top = np.argpartition(-flat, kk - 1, axis=1)[:, :kk]
            return float(np.mean((top == lab[:, None]).any(axis=1)))
        if name == "map-lite":
            return _mean_average_precision(flat, lab)
        pred = flat.argmax(axis=1)
        scores = []
        for c in np.unique(lab):
            tp = np.sum((pred == c) & (lab == c))
            fp = np.sum((pred == c) & (lab != c))
            fn = np.sum((pred != c) & (lab == c))
            scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        return float(np.mean(scores))
    if name in ("mse", "mae"):
        target = np.asarray(labels, dtype=np.float64)
        if target.size != out.size:
            raise CompressionError(
                f"labels hold {target.size} values for {out.size} outputs",
                f"for '{name}' the labels must have the output's shape",
            )
        diff = out.reshape(-1) - target.reshape(-1)
        return float(np.mean(diff**2) if name == "mse" else np.mean(np.abs(diff)))
    ref = np.asarray(reference, dtype=np.float64)
    if name == "mse-to-reference":
        return float(np.mean((out - ref) ** 2))
    a = out.reshape(out.shape[0], -1)
    b = ref.reshape(ref.shape[0], -1)
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


@dataclass
class EvalData:
    """Arrays of an evaluation (or calibration / training) set, keyed by model input name."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    path: str

    def __len__(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    def batches(self, size: int):
        """Yield input feeds of at most `size` samples."""
        n = len(self)
        for i in range(0, n, size):
            yield {k: v[i : i + size] for k, v in self.inputs.items()}

    def head(self, n: int) -> EvalData:
        """The first `n` samples."""
        return EvalData(
            {k: v[:n] for k, v in self.inputs.items()},
            None if self.labels is None else self.labels[:n],
            self.path,
        )


def load_npz(
    path: str | Path,
    label: str,
    input_names: list[str],
    input_key: str | None = None,
    labels_key: str | None = "labels",
    input_map: dict[str, str] | None = None,
) -> EvalData:
    """Read a data set `.npz` for a model with inputs `input_names`.

    Each model input is read from the array named by `input_map`, else the array of the same name,
    else (single-input models) the array `input_key` or `inputs`.

    Raises:
        CompressionError: not a readable npz, an input array missing, sample counts that differ.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise CompressionError(
            f"{label}: cannot read {path} as a .npz of arrays: {e}",
            "save the set with numpy.savez(path, inputs=..., labels=...)",
        ) from None
    feeds: dict[str, np.ndarray] = {}
    for name in input_names:
        key = (input_map or {}).get(name) or (name if name in arrays else None)
        if key is None and len(input_names) == 1:
            key = input_key or "inputs"
        if key not in arrays:
            raise CompressionError(
                f"{label}: {path} has no array for model input '{name}' (arrays: "
                f"{', '.join(arrays) or 'none'})",
                f"name the array '{name}'"
                + (" or 'inputs'" if len(input_names) == 1 else "")
                + ", or map it with 'inputs: {"
                + f"{name}: <array>"
                + "}' in the card",
            )
        feeds[name] = arrays[key]
    counts = {a.shape[0] if a.ndim else 0 for a in feeds.values()}
    labels = arrays.get(labels_key) if labels_key else None
    if labels is not None:
        counts.add(labels.shape[0] if labels.ndim else 0)
    if len(counts) != 1 or 0 in counts:
        raise CompressionError(
            f"{label}: the arrays in {path} do not hold the same number of samples",
            "stack one sample per row along the first axis of every array",
        )
    return EvalData(feeds, labels, str(path))


def check_feeds(session, data: EvalData) -> None:
    """Refuse data whose dtypes or shapes do not fit the model's inputs.

    Raises:
        CompressionError: naming the input, the model's shape and the data's shape.
    """
    for inp in session.get_inputs():
        arr = data.inputs[inp.name]
        want = [d if isinstance(d, int) else None for d in inp.shape]
        got = list(arr.shape)
        if len(want) != len(got) or any(
            w is not None and w != g for w, g in zip(want[1:], got[1:])
        ):
            raise CompressionError(
                f"{data.path}: array for input '{inp.name}' has shape {tuple(got)}, the model "
                f"wants "
                "(" + ", ".join("N" if w is None else str(w) for w in want) + ")",
                "regenerate the evaluation set with the model's input shape (first axis = samples)",
            )
        kind = inp.type.removeprefix("tensor(").removesuffix(")")
        expected = {
            "float": np.float32,
            "float16": np.float16,
            "double": np.float64,
            "int64": np.int64,
            "int32": np.int32,
            "uint8": np.uint8,
            "int8": np.int8,
            "bool": np.bool_,
        }.get(kind)
        if expected is not None and arr.dtype != expected:
            if np.can_cast(arr.dtype, expected, casting="same_kind"):
                data.inputs[inp.name] = arr.astype(expected)
            else:
                raise CompressionError(
                    f"{data.path}: array for input '{inp.name}' is {arr.dtype}, "
                    f"the model wants {kind}",
                    f"save it as {np.dtype(expected).name}",
                )


def session_for(path: str | Path):
    """An ONNX Runtime CPU session with one thread (stable, comparable latencies)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_model(
    session, data: EvalData, output: str | None = None, batch_size: int = 256
) -> np.ndarray:
    """Outputs of a model over a data set (one output, by name or the first)."""
    name = output or session.get_outputs()[0].name
    parts = [session.run([name], feed)[0] for feed in data.batches(batch_size)]
    return np.concatenate(parts, axis=0)


def median_latency_ms(session, data: EvalData, runs: int = 30, warmup: int = 3) -> float:
    """Median wall time of one single-sample inference, in milliseconds."""
    feed = next(data.head(1).batches(1))
    run: Callable = session.run
    for _ in range(warmup):
        run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run(None, feed)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
