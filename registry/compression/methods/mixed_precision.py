"""Mixed precision with fallback inside: int8 everywhere except the nodes that hurt the metric most.

Sensitivity is measured, not guessed: each weighted node is quantized alone and the metric drop it
causes on the evaluation set is recorded. Then the most sensitive nodes are kept in float, one more
at a time, until the drop is within the target (or the size bound would be broken).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from registry.compression.methods import Method, MethodConfig, MethodMiss, MethodResult, register
from registry.compression.methods._quant import int8_floor, named_copy, quantization_api
from registry.compression.methods.static_int8 import StaticInt8Config, quantize_static_file
from registry.compression.onnx_files import compact_model
from registry.core.errors import CompressionError


class MixedPrecisionConfig(MethodConfig):
    base: Literal["dynamic", "static"] = Field(
        "dynamic", description="int8 scheme for the quantized nodes"
    )
    per_channel: bool = Field(True, description="per-channel weight scales")
    max_float_fraction: float = Field(
        0.5, gt=0, le=1, description="largest share of weighted nodes kept in float"
    )
    samples: int = Field(256, ge=1, description="calibration samples (static base)")
    float_nodes: list[str] | None = Field(
        None,
        description="keep exactly these nodes in float and skip the "
        "sensitivity search (what a result's card records)",
    )


@register
class MixedPrecision(Method):
    """int8 with the most sensitive nodes kept in fp32, chosen by measured per-node sensitivity."""

    name = "mixed-precision"
    summary = (
        "int8 except the nodes whose quantization costs the most metric, "
        "kept in float until within bounds"
    )
    cost = 40
    Config = MixedPrecisionConfig

    def run(self, job, workdir: Path, progress) -> MethodResult:
        q = quantization_api()
        src = workdir / "named.onnx"
        nodes = [n for n, _ in named_copy(job.model_path, src)]
        if not nodes:
            raise MethodMiss("no weighted node that int8 quantization can encode")

        def quantize(
            dest: Path, exclude: list[str] | None = None, only: list[str] | None = None
        ) -> Path:
            if self.config.base == "dynamic":
                q.quantize_dynamic(
                    str(src),
                    str(dest),
                    per_channel=self.config.per_channel,
                    weight_type=q.QuantType.QInt8,
                    nodes_to_exclude=exclude or [],
                    nodes_to_quantize=only or [],
                )
            else:
                cfg = StaticInt8Config(
                    per_channel=self.config.per_channel, samples=self.config.samples
                )
                excl = exclude or []
                if only:
                    excl = [n for n in nodes if n not in only]
                quantize_static_file(q, src, dest, job, cfg, nodes_to_exclude=excl)
            return dest

        if self.config.float_nodes is not None:
            unknown = sorted(set(self.config.float_nodes) - set(nodes))
            if unknown:
                raise CompressionError(
                    f"mixed-precision float_nodes name nodes the model does not have: "
                    f"{', '.join(unknown)}",
                    "weighted nodes: " + ", ".join(nodes),
                )
            path = quantize(workdir / "mixed.onnx", exclude=self.config.float_nodes)
            return MethodResult(path, {"float_nodes": self.config.float_nodes})
        # plain int8 first: when it already meets the target no node needs float, and the
        # sensitivity search (one run per weighted node) is not worth its time
        plain = quantize(workdir / "mixed-0.onnx")
        compact_model(plain)
        plain_size = plain.stat().st_size
        if job.target.max_size is not None and plain_size > job.target.max_size:
            raise MethodMiss(
                f"fully int8 the size is {plain_size:,} bytes, over max_size",
                MethodResult(plain, {"float_nodes": []}),
            )
        if job.drop_ok(job.metric_of(plain)):
            return self._plain_int8(plain)
        # sensitivity: the drop each node causes when it alone is quantized
        sensitivity = {}
        for i, node in enumerate(nodes):
            progress(0.05 + 0.6 * i / len(nodes), f"sensitivity {i + 1}/{len(nodes)}")
            path = quantize(workdir / "probe.onnx", only=[node])
            sensitivity[node] = job.drop_of(job.metric_of(path))
        ranked = sorted(nodes, key=lambda n: -sensitivity[n])
        limit = max(1, int(len(nodes) * self.config.max_float_fraction))
        best: MethodResult | None = MethodResult(plain, {"float_nodes": []})
        for k in range(1, limit + 1):
            keep = ranked[:k]
            progress(0.65 + 0.35 * k / (limit + 1), f"{k} node(s) in float")
            path = quantize(workdir / f"mixed-{k}.onnx", exclude=keep)
            compact_model(path)  # the size compared with the target is the final file's
            value = job.metric_of(path)
            size = path.stat().st_size
            cand = MethodResult(
                path,
                {"float_nodes": keep},
                [
                    "sensitivity (drop when quantized alone): "
                    + ", ".join(f"{n}={sensitivity[n]:.4g}" for n in ranked[:8])
                ],
            )
            if job.target.max_size is not None and size > job.target.max_size:
                raise MethodMiss(
                    f"with {k} node(s) in float the size is {size:,} bytes, over max_size, and the "
                    "drop is not yet within bounds",
                    best,
                )
            best = cand
            if job.drop_ok(value):
                return cand
        raise MethodMiss(
            f"the drop stays above the bound with {limit} of {len(nodes)} weighted nodes in float "
            f"(max_float_fraction {self.config.max_float_fraction:g})",
            best,
        )

    def _plain_int8(self, path: Path) -> MethodResult:
        """Fully int8, no node in float: reported as the plain int8 method it is, with that
        method's settings (so the derived card rebuilds it), not as mixed precision."""
        from registry.compression.methods.dynamic_int8 import DynamicInt8Config

        if self.config.base == "dynamic":
            method = "dynamic-int8"
            settings = DynamicInt8Config(per_channel=self.config.per_channel).model_dump(
                mode="json"
            )
        else:
            method = "static-int8"
            settings = StaticInt8Config(
                per_channel=self.config.per_channel, samples=self.config.samples
            ).model_dump(mode="json")
        return MethodResult(
            path,
            settings,
            [
                "found by mixed-precision: plain int8 already meets the target, so no node is "
                "kept in float and no sensitivity was measured"
            ],
            method=method,
        )

    def size_floor(self, job) -> int:
        return int8_floor(job)
