"""The job a lightweighting method works on: the model, its data, the target and the measurements.

Owns `CompressTarget` (the conditions a compressed model must meet, from the card's `compress:`
section and the command line: `build_target`), `Measurement` and `Condition` (what a model file
measures and how each condition fares), and `CompressJob`, everything a method may use. The chain
(`registry.compression.chain`) makes the job and runs the methods on it; the methods import this
module, not the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from registry.cards.schema import (
    CompressSpec,
    EvaluationSpec,
    format_size,
    parse_drop,
    parse_latency,
    parse_size,
    parse_size_share,
)
from registry.compression.evaluation import (
    EvalData,
    compute_metric,
    median_latency_ms,
    metric_def,
    run_model,
    session_for,
)
from registry.compression.onnx_files import ONNX_OVERHEAD
from registry.core.errors import CompressionError

FLOAT_TYPES = (1, 10, 11, 16)  # onnx TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


# --------------------------------------------------------------------------- target


class CompressTarget(BaseModel):
    """The conditions a candidate must meet; any combination, at least one."""

    max_size: int | None = Field(None, description="largest weights file in bytes")
    max_metric_drop: float | None = Field(
        None, description="largest drop of the metric (absolute, or a fraction when relative)"
    )
    relative_drop: bool = Field(
        False, description="max_metric_drop is a fraction of the original metric"
    )
    max_latency_ms: float | None = Field(
        None, description="largest median single-sample latency in ms"
    )
    metric: str = Field(description="metric the drop is measured on")

    def describe(self) -> str:
        """One line for people: 'size <= 25.00 KB, accuracy drop <= 1%, latency <= 2 ms'."""
        parts = []
        if self.max_size is not None:
            parts.append(f"size <= {format_size(self.max_size)}")
        if self.max_metric_drop is not None:
            bound = (
                f"{self.max_metric_drop:.2%}" if self.relative_drop else f"{self.max_metric_drop:g}"
            )
            parts.append(f"{self.metric} drop <= {bound}")
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms")
        return ", ".join(parts)


def build_target(
    spec: CompressSpec | None,
    evaluation: EvaluationSpec,
    *,
    max_size: str | None = None,
    max_metric_drop: str | None = None,
    max_latency: str | None = None,
    metric: str | None = None,
    original_size: int | None = None,
) -> CompressTarget:
    """The target from the card's `compress:` section, each condition overridable by an option.

    A size written as a share ('0.26x') is that share of `original_size`.

    Raises:
        CompressionError: a bound that does not parse, a metric other than the evaluation's, no
        condition.
    """
    spec = spec or CompressSpec()
    size_v = max_size if max_size is not None else spec.max_size
    drop_v = max_metric_drop if max_metric_drop is not None else spec.max_metric_drop
    lat_v = max_latency if max_latency is not None else spec.max_latency
    try:
        share = None if size_v is None else parse_size_share(str(size_v))
        if share is not None:
            if original_size is None:
                raise ValueError(f"'{size_v}' needs the original model's size")
            size = int(share * original_size)
        elif size_v is None:
            size = None
        elif isinstance(size_v, int) or str(size_v).strip().isdigit():
            size = int(size_v)
        else:
            size = int(parse_size(str(size_v))[0])
        drop = None if drop_v is None else parse_drop(_number_or_text(drop_v))
        latency = None if lat_v is None else parse_latency(_number_or_text(lat_v))
    except ValueError as e:
        raise CompressionError(
            f"invalid target: {e}", "see docs/compress.md for the target syntax"
        ) from None
    if size is not None and size <= 0:
        raise CompressionError(
            "invalid target: max_size must be a positive size", "write e.g. 25KB"
        )
    name = metric or spec.metric or evaluation.metric
    metric_def(name)
    if name != evaluation.metric:
        raise CompressionError(
            f"the target names metric '{name}', but the evaluation section measures "
            f"'{evaluation.metric}'",
            "use the evaluation metric, or change evaluation.metric",
        )
    if size is None and drop is None and latency is None:
        raise CompressionError(
            "no target: give at least one of max_size, max_metric_drop, max_latency",
            "add them under 'compress:' in the card, or pass --max-size/--max-drop/--max-latency",
        )
    return CompressTarget(
        max_size=size,
        max_metric_drop=None if drop is None else drop[0],
        relative_drop=bool(drop and drop[1]),
        max_latency_ms=latency,
        metric=name,
    )


def _number_or_text(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


# --------------------------------------------------------------------------- measurements


class Measurement(BaseModel):
    """What one model file measures on this machine."""

    size: int = Field(description="file size in bytes")
    metric: float = Field(description="metric value on the evaluation set")
    drop: float = Field(description="metric drop against the original (positive = worse)")
    latency_ms: float = Field(description="median single-sample latency")


class Condition(BaseModel):
    """One condition of the target checked against a measurement."""

    name: Literal["size", "metric_drop", "latency"]
    value: float
    bound: float
    met: bool
    miss: float = Field(
        description="how far past the bound, as a fraction of the bound (0 when met)"
    )


# --------------------------------------------------------------------------- the job a method sees


@dataclass
class CompressJob:
    """Everything a method may use: the model, data, target and the evaluator."""

    model_path: Path
    evaluation: EvaluationSpec
    target: CompressTarget
    eval_data: EvalData
    calibration_data: EvalData
    train_data: EvalData | None
    reference: np.ndarray
    original: Measurement | None = None
    seed: int = 0
    _cache: dict = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return list(self.eval_data.inputs)

    def outputs_of(self, path: Path, data: EvalData | None = None) -> np.ndarray:
        """The evaluated output of a model file on the evaluation set (or `data`)."""
        return run_model(session_for(path), data or self.eval_data, self.evaluation.output)

    def metric_of(self, path: Path) -> float:
        """The target metric of a model file on the evaluation set."""
        return self.score(self.outputs_of(path))

    def score(self, outputs: np.ndarray) -> float:
        """The target metric of given outputs on the evaluation set."""
        return compute_metric(
            self.target.metric, outputs, self.eval_data.labels, self.reference, self.evaluation.k
        )

    def drop_of(self, value: float) -> float:
        """Metric drop of `value` against the original (positive = worse), absolute."""
        ref = self.original.metric if self.original else value
        return (ref - value) if metric_def(self.target.metric).higher_is_better else (value - ref)

    def drop_allowed(self) -> float | None:
        """The largest absolute drop the target allows (None: any)."""
        t = self.target
        if t.max_metric_drop is None:
            return None
        if t.relative_drop:
            return t.max_metric_drop * abs(self.original.metric if self.original else 0.0)
        return t.max_metric_drop

    def drop_ok(self, value: float) -> bool:
        """Whether a metric value is within the allowed drop."""
        allowed = self.drop_allowed()
        return allowed is None or self.drop_of(value) <= allowed + 1e-12

    def measure(self, path: Path) -> Measurement:
        """Size, metric, drop and latency of a model file."""
        value = self.metric_of(path)
        latency = median_latency_ms(session_for(path), self.eval_data)
        return Measurement(
            size=path.stat().st_size, metric=value, drop=self.drop_of(value), latency_ms=latency
        )

    def check(self, m: Measurement) -> list[Condition]:
        """Every condition of the target against a measurement."""
        out = []
        t = self.target
        if t.max_size is not None:
            out.append(_condition("size", m.size, t.max_size))
        allowed = self.drop_allowed()
        if allowed is not None:
            scale = max(
                allowed, 1e-3 * max(abs(self.original.metric), 1e-9) if self.original else 1e-9
            )
            met = m.drop <= allowed + 1e-12
            out.append(
                Condition(
                    name="metric_drop",
                    value=m.drop,
                    bound=allowed,
                    met=met,
                    miss=0.0 if met else (m.drop - allowed) / scale,
                )
            )
        if t.max_latency_ms is not None:
            out.append(_condition("latency", m.latency_ms, t.max_latency_ms))
        return out

    def float_params(self) -> tuple[int, int]:
        """(number of float weights, bytes of everything else) in the original model."""
        if "float_params" not in self._cache:
            import onnx

            model = onnx.load(str(self.model_path), load_external_data=False)
            n = sum(
                int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in FLOAT_TYPES
            )
            float_bytes = sum(
                int(np.prod(t.dims))
                * (2 if t.data_type in (10, 16) else 4 if t.data_type == 1 else 8)
                for t in model.graph.initializer
                if t.data_type in FLOAT_TYPES
            )
            self._cache["float_params"] = (
                n,
                max(self.model_path.stat().st_size - float_bytes, ONNX_OVERHEAD),
            )
        return self._cache["float_params"]


def _condition(name: str, value: float, bound: float) -> Condition:
    met = value <= bound
    return Condition(
        name=name, value=value, bound=bound, met=met, miss=0.0 if met else (value - bound) / bound
    )
