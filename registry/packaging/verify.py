"""The verification gate: every converted candidate must compute what the source model computes.

Each candidate runs on the same sample inputs as the source ONNX in float32 (ONNX Runtime, no
graph optimisation); outputs are compared one by one with max-abs error (scaled by the output's
magnitude) and relative L2 error, against limits per precision (`registry.packaging.targets.
Thresholds`: `max_abs`, `rel_l2`, and `min_cosine` where the card asks for more than `rel_l2`
guarantees; docs/packaging.md#verification); the cosine similarity is recorded too. Integer
outputs (e.g. top-k indices) must agree element for element at fp32 and mostly at lower
precisions. A candidate whose engine cannot run on this machine (Core ML off macOS) is reported
as `not-run`, never as passed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from registry.core.errors import ConversionError
from registry.packaging.converters import Candidate
from registry.packaging.engines import EngineSetting, get_engine
from registry.packaging.targets import Thresholds

# Share of equal elements integer outputs need, per precision.
MIN_AGREEMENT = {"fp32": 1.0, "fp16": 0.95, "int8": 0.8}

_NP_TYPES = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
}


class OutputComparison(BaseModel):
    """The numbers of one output of one candidate against the source."""

    output: str = Field(description="output name")
    max_abs: float | None = Field(
        None, description="max |candidate - source| / max(1, max |source|)"
    )
    rel_l2: float | None = Field(None, description="||candidate - source|| / ||source||")
    cosine: float | None = Field(None, description="cosine similarity of the flattened outputs")
    agreement: float | None = Field(None, description="integer outputs: share of equal elements")
    passed: bool = Field(description="within the thresholds")


class Verification(BaseModel):
    """The verdict on one candidate."""

    converter: str
    precision: str
    status: str = Field(
        description="passed, failed, error (the conversion or the run failed), or not-run "
        "(the engine cannot run on this machine)"
    )
    where: str = Field(description="what ran the check: engine, providers, machine")
    setting: str | None = Field(None, description="the engine setting it ran with")
    thresholds: Thresholds
    outputs: list[OutputComparison] = Field(default_factory=list)
    message: str | None = Field(None, description="why it failed or could not run")

    @property
    def passed(self) -> bool:
        """Whether the candidate may be packaged."""
        return self.status == "passed"

    def failing_limits(self) -> dict[str, float]:
        """The limits the worst output broke, each with the value that would have passed
        (rounded up): {'rel_l2': 0.17}, for the hint that says which card field to change."""
        out: dict[str, float] = {}
        t = self.thresholds
        for o in self.outputs:
            if o.passed or o.agreement is not None or o.max_abs is None:
                continue
            for field, value, limit in (
                ("max_abs", o.max_abs, t.max_abs),
                ("rel_l2", o.rel_l2, t.rel_l2),
            ):
                if value > limit and math.isfinite(value):
                    out[field] = max(out.get(field, 0.0), _round_up(value))
            if t.min_cosine is not None and o.cosine < t.min_cosine:
                out["min_cosine"] = min(out.get("min_cosine", 1.0), _round_down(o.cosine))
        return out

    def summary(self) -> str:
        """One line with the worst numbers, for error messages and logs."""
        if self.message and not self.outputs:
            return f"{self.converter} ({self.precision}): {self.status}: {self.message}"
        parts = []
        for o in self.outputs:
            if o.agreement is not None:
                parts.append(f"{o.output}: agreement {o.agreement:.3f}")
            else:
                parts.append(
                    f"{o.output}: max_abs {o.max_abs:.3g} (limit {self.thresholds.max_abs:g}), "
                    f"rel_l2 {o.rel_l2:.3g} (limit {self.thresholds.rel_l2:g}), "
                    f"cosine {o.cosine:.6f} "
                    + (
                        f"(min {self.thresholds.min_cosine:g})"
                        if self.thresholds.min_cosine is not None
                        else f"(rel_l2's limit guarantees {self.thresholds.implied_cosine:.4g})"
                    )
                )
        return f"{self.converter} ({self.precision}): {self.status}: " + "; ".join(parts)


def _round_up(value: float) -> float:
    """Two significant digits, rounded up: 0.1234 -> 0.13."""
    if value <= 0:
        return value
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return round(math.ceil(value / scale - 1e-9) * scale, 12)


def _round_down(value: float) -> float:
    """A cosine rounded down to 4 decimals: 0.98765 -> 0.9876."""
    return math.floor(value * 1e4) / 1e4


def input_signature(path: Path) -> list[tuple[str, list, type]]:
    """(name, shape with symbolic dims as strings, numpy dtype) of each real input of an ONNX
    file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    sig = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        t = i.type.tensor_type
        shape = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
        ]
        sig.append((i.name, shape, _NP_TYPES.get(t.elem_type, np.float32)))
    return sig


# Symbolic dimensions of generated inputs: the first axis (the batch) is 1, any other is this long,
# the same for every input that names the same symbol (a sequence length shared by ids and mask).
GENERATED_LENGTH = 8


def integer_ranges(path: Path) -> dict[str, tuple[int, int]]:
    """[low, high) of each integer input that the graph uses as indices into a table it holds: a
    `Gather` (or `Embedding`-like lookup) of an initializer along axis 0, whose first dimension is
    the table's size (token ids into a vocabulary, type ids into 2 types). Inputs used otherwise
    are not listed."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    tables = {i.name: list(i.dims) for i in graph.initializer}
    inputs = {i.name for i in graph.input if i.name not in tables}
    # follow casts and reshapes, which keep the values, back to a graph input
    origin = {n: n for n in inputs}
    for node in graph.node:
        keeps_values = node.op_type in ("Cast", "Reshape", "Unsqueeze", "Squeeze", "Identity")
        if keeps_values and node.input and node.input[0] in origin:
            for out in node.output:
                origin[out] = origin[node.input[0]]
    ranges: dict[str, tuple[int, int]] = {}
    for node in graph.node:
        if node.op_type != "Gather" or len(node.input) < 2:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        data, index = node.input[0], node.input[1]
        if axis == 0 and data in tables and tables[data] and index in origin:
            name, size = origin[index], tables[data][0]
            low, high = ranges.get(name, (0, size))
            ranges[name] = (low, min(high, size))
    return ranges


def sample_inputs(
    path: Path, *, samples: int, seed: int, declared: dict[str, np.ndarray] | None = None
) -> list[dict[str, np.ndarray]]:
    """Inputs to verify with: the card's declared ones (`targets[].inputs`), else seeded random ones
    that are valid for what each input means.

    Generated inputs use batch 1 on the first symbolic axis and `GENERATED_LENGTH` on the others.
    Floats are standard normal; booleans fair coins. An integer input the graph uses as indices
    into a table it holds (token ids into the embedding) is drawn from that table's range; one
    named like a mask (`attention_mask`) holds ones with a random run of padding zeros at the end,
    never all zeros; one named like token types or positions holds zeros or 0..n-1; any other
    integer is drawn from [0, 10).

    Raises:
        ConversionError: declared inputs that do not name the model's inputs.
    """
    sig = input_signature(path)
    if declared is not None:
        missing = [n for n, _, _ in sig if n not in declared]
        if missing:
            raise ConversionError(
                f"the declared sample inputs lack {', '.join(missing)}",
                "store one array per model input, first axis = samples",
            )
        count = min(len(declared[n]) for n, _, _ in sig)
        return [
            {n: np.ascontiguousarray(declared[n][i : i + 1]).astype(dt) for n, _, dt in sig}
            for i in range(count)
        ]
    ranges = integer_ranges(path) if any(np.issubdtype(dt, np.integer) for _, _, dt in sig) else {}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        feed = {}
        for name, shape, dt in sig:
            dims = [
                d if isinstance(d, int) and d > 0 else (1 if axis == 0 else GENERATED_LENGTH)
                for axis, d in enumerate(shape)
            ]
            if np.issubdtype(dt, np.floating):
                feed[name] = rng.standard_normal(dims).astype(dt)
            elif dt is np.bool_:
                feed[name] = rng.integers(0, 2, dims).astype(bool)
            else:
                feed[name] = _integers(name, dims, ranges.get(name), rng).astype(dt)
        out.append(feed)
    return out


def _integers(name: str, dims: list[int], table: tuple[int, int] | None, rng) -> np.ndarray:
    lowered = name.lower()
    if table is not None and "type" not in lowered:
        return rng.integers(table[0], max(table[1], table[0] + 1), dims)
    if "mask" in lowered:
        mask = np.ones(dims, dtype=np.int64)
        if dims and dims[-1] > 1:  # padding at the end of each row, at least one real token
            for row in mask.reshape(-1, dims[-1]):
                row[int(rng.integers(1, dims[-1] + 1)) :] = 0
        return mask
    if "type" in lowered or "segment" in lowered:
        return np.zeros(dims, dtype=np.int64)
    if "position" in lowered and dims:
        return np.broadcast_to(np.arange(dims[-1]), dims).copy()
    return rng.integers(0, 10, dims)


def reference_outputs(
    source: Path, inputs: list[dict[str, np.ndarray]]
) -> tuple[list[str], list[list[np.ndarray]]]:
    """The source ONNX's float32 outputs (ONNX Runtime CPU, optimisations off) and output names."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return names, [session.run(None, feed) for feed in inputs]


def compare(
    name: str, ref: np.ndarray, got: np.ndarray, limits: Thresholds, precision: str
) -> OutputComparison:
    """Compare one output of the candidate with the source's."""
    if ref.shape != got.shape:
        return OutputComparison(
            output=name, passed=False, max_abs=float("inf"), rel_l2=float("inf"), cosine=0.0
        )
    if not np.issubdtype(ref.dtype, np.floating):
        agreement = float(np.mean(ref == got)) if ref.size else 1.0
        return OutputComparison(
            output=name, agreement=agreement, passed=agreement >= MIN_AGREEMENT[precision]
        )
    r = ref.astype(np.float64).ravel()
    g = got.astype(np.float64).ravel()
    if not np.all(np.isfinite(g)):
        return OutputComparison(
            output=name, passed=False, max_abs=float("inf"), rel_l2=float("inf"), cosine=0.0
        )
    diff = g - r
    scale = max(1.0, float(np.max(np.abs(r)))) if r.size else 1.0
    max_abs = float(np.max(np.abs(diff))) / scale if r.size else 0.0
    norm_r = float(np.linalg.norm(r))
    rel = float(np.linalg.norm(diff)) / norm_r if norm_r > 0 else float(np.linalg.norm(diff))
    denom = norm_r * float(np.linalg.norm(g))
    cosine = float(np.dot(r, g) / denom) if denom > 0 else (1.0 if not np.any(diff) else 0.0)
    passed = max_abs <= limits.max_abs and rel <= limits.rel_l2
    if limits.min_cosine is not None:
        passed = passed and cosine >= limits.min_cosine
    return OutputComparison(output=name, max_abs=max_abs, rel_l2=rel, cosine=cosine, passed=passed)


def verify_candidate(
    candidate: Candidate,
    names: list[str],
    reference: list[list[np.ndarray]],
    inputs: list[dict[str, np.ndarray]],
    limits: Thresholds,
    providers: list[str],
    setting: EngineSetting | None = None,
) -> Verification:
    """Run a candidate on the inputs and compare every output with the reference.

    Args:
        setting: the engine setting to run with (default: one thread, basic optimisation).
    A candidate that cannot even run is reported with status 'error' and the runtime's message;
    one whose engine cannot run on this machine, with status 'not-run' and the reason.
    """
    engine = get_engine(candidate.engine)
    ort = candidate.engine == "onnxruntime"
    if setting is None:
        setting = EngineSetting(
            engine=candidate.engine,
            threads=1,
            providers=providers if ort else [],
            graph_optimization="basic" if ort else None,
        )
    else:
        setting = setting.model_copy(update={"providers": providers if ort else []})
    runs, why = engine.runs_here()
    where = (
        (
            f"{candidate.engine} {engine.version()} ({', '.join(providers) if ort else 'CPU'}) "
            "on the build machine"
        )
        if runs
        else f"{candidate.engine}: not run on the build machine"
    )
    result = Verification(
        converter=candidate.converter,
        precision=candidate.precision,
        status="passed",
        where=where,
        setting=setting.label(),
        thresholds=limits,
    )
    if not runs:
        result.status, result.message = "not-run", why
        return result
    try:
        run = engine.open(candidate.path, setting)
        outputs = [run(feed) for feed in inputs]
    except Exception as e:  # a runtime's own error: keep its text, drop the candidate
        result.status, result.message = "error", f"{type(e).__name__}: {e}".splitlines()[0][:400]
        return result
    return judge(result, names, reference, outputs)


def judge(
    result: Verification,
    names: list[str],
    reference: list[list[np.ndarray]],
    outputs: list[list[np.ndarray]],
) -> Verification:
    """Fill `result` with the comparison of `outputs` with `reference` (one list of outputs per
    input sample, in the order of `names`) and set its status."""
    if len(outputs[0]) != len(names):
        result.status = "failed"
        result.message = f"{len(outputs[0])} outputs, the source has {len(names)}"
        return result
    for i, name in enumerate(names):
        ref = np.concatenate([np.asarray(o[i]).reshape(1, -1) for o in reference], axis=0)
        got = (
            np.concatenate([np.asarray(o[i]).reshape(1, -1) for o in outputs], axis=0)
            if all(
                np.asarray(o[i]).size == np.asarray(r[i]).size for o, r in zip(outputs, reference)
            )
            else np.asarray([])
        )
        result.outputs.append(compare(name, ref, got, result.thresholds, result.precision))
    result.status = "passed" if all(o.passed for o in result.outputs) else "failed"
    return result
