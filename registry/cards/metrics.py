"""The documented metric set: names, direction and what each measures (no heavy imports).

The card validates metric names against it; `registry.compression.evaluation` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricDef:
    """One metric of the documented set."""

    name: str
    higher_is_better: bool
    needs_labels: bool
    description: str


METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef(
            "accuracy", True, True, "share of samples whose arg-max output equals the integer label"
        ),
        MetricDef(
            "top-k",
            True,
            True,
            "share of samples whose label is among the k highest outputs (`k`, default 5)",
        ),
        MetricDef("f1", True, True, "macro-averaged F1 over the classes present in the labels"),
        MetricDef(
            "map-lite",
            True,
            True,
            "mean over the classes present of the average precision of ranking all samples by that "
            "class's score (mAP without boxes: retrieval/multi-class ranking quality)",
        ),
        MetricDef(
            "cosine-to-reference",
            True,
            False,
            "mean cosine similarity of each output row to the original model's (embeddings)",
        ),
        MetricDef("mse", False, True, "mean squared error of the output against the labels"),
        MetricDef("mae", False, True, "mean absolute error of the output against the labels"),
        MetricDef(
            "mse-to-reference",
            False,
            False,
            "mean squared error of the output against the original model's",
        ),
    )
}
METRIC_NAMES = tuple(METRICS)
