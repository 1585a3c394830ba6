"""Standard: the card's metrics are sane numbers on named datasets.

A metric's kind comes from its name (and unit): accuracy-like scores live in [0, 1] as a ratio or
[0, 100] in percent; losses, errors, latencies and sizes are never negative; nothing is NaN or
infinite. A bare 93 on an accuracy is ambiguous (93% or a mistake?), so the card must say which.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from enum import Enum

from registry.cards.schema import Metric
from registry.checks import Check, Finding, ModelContext, register

PERCENT_UNITS = frozenset({"%", "percent", "pct"})
RATIO_UNITS = frozenset({"", "ratio", "fraction", "1"})

# Scores whose natural range is [0, 1]: matched against the name's words (top-5 accuracy,
# map@0.5, f1_macro, roc_auc, mIoU…).
_SCORE_RE = re.compile(
    r"(^|[^a-z])(acc|accuracy|top\d*|top[-_ ]?k|precision|prec|recall|f1|f\d|fscore|f[-_ ]score|"
    r"map|ap|ap\d+|map\d+|miou|iou|auc|roc[-_ ]?auc|dice|jaccard|specificity|sensitivity|"
    r"balanced[-_ ]accuracy|exact[-_ ]match|em)($|[^a-z])"
)
# Words that make a score-like name something else (a loss of accuracy, a time to top-1…).
_NOT_SCORE_RE = re.compile(r"(loss|error|err|latency|time|duration)")
# Quantities that can be large but never negative.
_NON_NEGATIVE_RE = re.compile(
    r"(loss|latency|error|err|wer|cer|mae|mse|rmse|perplexity|ppl|time|duration|ms|seconds|"
    r"throughput|fps|params|flops|macs|size|memory)"
)
_TIME_UNITS = frozenset(
    {"ms", "s", "us", "µs", "ns", "sec", "seconds", "fps", "mb", "gb", "kb", "b"}
)


class MetricKind(str, Enum):
    score = "score"  # accuracy-like, bounded
    non_negative = "non-negative"
    other = "other"


def metric_kind(metric: Metric) -> MetricKind:
    """What range a metric's value must lie in, from its name and unit."""
    name = metric.name.lower()
    unit = (metric.unit or "").strip().lower()
    if _SCORE_RE.search(name) and not _NOT_SCORE_RE.search(name):
        return MetricKind.score
    if unit in _TIME_UNITS or _NON_NEGATIVE_RE.search(name):
        return MetricKind.non_negative
    return MetricKind.other


def metric_problems(metric: Metric) -> list[tuple[str, str]]:
    """The (message, fix) pairs wrong with one metric's value and unit."""
    v = metric.value
    label = f"metric '{metric.name}' on '{metric.dataset}'"
    if not math.isfinite(v):
        return [
            (
                f"{label} is {v!r}, not a finite number",
                "write the measured value; leave the metric out if it was not measured",
            )
        ]
    kind = metric_kind(metric)
    unit = (metric.unit or "").strip().lower()
    if kind is MetricKind.score:
        if unit in PERCENT_UNITS:
            if not 0 <= v <= 100:
                return [
                    (f"{label} is {v:g}%, outside 0-100%", "a percentage lies between 0 and 100")
                ]
        elif unit in RATIO_UNITS:
            if 1 < v <= 100:
                return [
                    (
                        f"{label} is {v:g} with no unit: is that a ratio (must be at most 1) or a "
                        f"percentage?",
                        f"add `unit: '%'` to this metric, or write it as a ratio: {v / 100:g}",
                    )
                ]
            if not 0 <= v <= 1:
                return [
                    (
                        f"{label} is {v:g}, outside [0, 1] (or [0, 100] with unit '%')",
                        "write the measured ratio between 0 and 1, "
                        "or a percentage with `unit: '%'`",
                    )
                ]
        else:
            return [
                (
                    f"{label} has unit '{metric.unit}', which does not fit an accuracy-like score",
                    "use `unit: '%'` for percentages, or leave the unit out for a ratio in [0, 1]",
                )
            ]
    elif kind is MetricKind.non_negative and v < 0:
        return [
            (
                f"{label} is {v:g}, but a {metric.name} cannot be negative",
                "write the measured value",
            )
        ]
    return []


@register
class Metrics(Check):
    """Metric values sane for their kind; each on a named dataset; no duplicates."""

    name = "metrics"
    description = (
        "accuracy-like metrics (accuracy, top-k, precision, recall, f1, map, miou, auc…) "
        "within [0, 1], or [0, 100] with unit '%' (a bare 93 is ambiguous); losses, errors "
        "and latencies not negative; no NaN or infinity; every metric names its dataset; "
        "no two metrics with the same name and dataset"
    )
    order = 35

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        seen: dict[tuple[str, str], int] = {}
        for i, m in enumerate(ctx.card.metrics):
            for message, hint in metric_problems(m):
                yield self.finding(
                    message, hint, path=ctx.card_path, line=ctx.line("metrics", i, "value")
                )
            if not m.dataset.strip():
                yield self.finding(
                    f"metric '{m.name}' does not name its dataset",
                    "set 'dataset:' to the evaluation set the value was measured on",
                    path=ctx.card_path,
                    line=ctx.line("metrics", i, "dataset"),
                )
            key = (m.name.strip().lower(), m.dataset.strip().lower())
            if key in seen:
                yield self.finding(
                    f"metric '{m.name}' on '{m.dataset}' is listed twice (first as "
                    f"metrics[{seen[key]}])",
                    "keep one value per metric and dataset",
                    path=ctx.card_path,
                    line=ctx.line("metrics", i),
                )
            else:
                seen[key] = i
