"""metrics: ranges by kind and unit, NaN/inf, datasets, duplicates — each finding on its YAML
line."""

from __future__ import annotations

import pytest

from factories import example_card
from registry.cards.schema import Metric
from registry.checks.metrics import MetricKind, metric_kind

CARD = "models/tiny/model.yaml"
HEAD = example_card("tiny").split("metrics:")[0]
FIRST_METRIC_LINE = HEAD.count("\n") + 2  # the line after `metrics:`


def card_with_metrics(block: str) -> str:
    return HEAD + "metrics:\n" + block


def run_metrics(reg, check_models, block: str, only=("metrics",)):
    reg.commit(
        {
            "models/tiny/model.yaml": card_with_metrics(block),
            "models/tiny/config.yaml": "epochs: 3\n",
        }
    )
    report = check_models(reg, "tiny", only=list(only))
    return [f for m in report.models for f in m.findings]


@pytest.mark.parametrize(
    "block, message, hint, line_offset",
    [
        (
            "  - name: accuracy\n    value: 93\n    dataset: digits-test\n",
            "metric 'accuracy' on 'digits-test' is 93 with no unit: is that a ratio (must be at "
            "most 1) or a percentage?",
            "add `unit: '%'` to this metric, or write it as a ratio: 0.93",
            1,
        ),
        (
            "  - name: accuracy\n    value: 120\n    unit: '%'\n    dataset: digits-test\n",
            "metric 'accuracy' on 'digits-test' is 120%, outside 0-100%",
            "a percentage lies between 0 and 100",
            1,
        ),
        (
            "  - name: top5_accuracy\n    value: 1.2e3\n    dataset: val\n",
            "metric 'top5_accuracy' on 'val' is 1200, outside [0, 1] (or [0, 100] with unit '%')",
            None,
            1,
        ),
        (
            "  - name: f1\n    value: -0.1\n    dataset: val\n",
            "metric 'f1' on 'val' is -0.1, outside [0, 1] (or [0, 100] with unit '%')",
            None,
            1,
        ),
        (
            "  - name: accuracy\n    value: .nan\n    dataset: val\n",
            "metric 'accuracy' on 'val' is nan, not a finite number",
            None,
            1,
        ),
        (
            "  - name: loss\n    dataset: val\n    value: -.inf\n",
            "metric 'loss' on 'val' is -inf, not a finite number",
            None,
            2,
        ),
        (
            "  - name: val_loss\n    value: -0.3\n    dataset: val\n",
            "metric 'val_loss' on 'val' is -0.3, but a val_loss cannot be negative",
            None,
            1,
        ),
        (
            "  - name: p50\n    unit: ms\n    value: -2\n    dataset: cpu\n",
            "metric 'p50' on 'cpu' is -2, but a p50 cannot be negative",
            None,
            2,
        ),
        (
            "  - name: mAP@0.5\n    value: 0.5\n    unit: ms\n    dataset: coco\n",
            "metric 'mAP@0.5' on 'coco' has unit 'ms', which does not fit an accuracy-like score",
            "use `unit: '%'` for percentages, or leave the unit out for a ratio in [0, 1]",
            1,
        ),
    ],
)
def test_insane_values_point_at_the_value_line(
    registry_repo, check_models, block, message, hint, line_offset
):
    [f] = run_metrics(registry_repo, check_models, block)
    assert f.message == message
    if hint:
        assert f.hint == hint
    assert (f.path, f.line) == (CARD, FIRST_METRIC_LINE + line_offset)


def test_sane_metrics_pass(registry_repo, check_models):
    block = (
        "  - name: accuracy\n    value: 93.5\n    unit: '%'\n    dataset: digits-test\n"
        "  - name: accuracy\n    value: 0.91\n    dataset: digits-val\n"
        "  - name: top-5\n    value: 1\n    dataset: digits-test\n"
        "  - name: loss\n    value: 12.5\n    dataset: digits-test\n"
        "  - name: latency_ms\n    value: 3.2\n    unit: ms\n    dataset: cpu\n"
        "  - name: bleu\n    value: 27.1\n    dataset: wmt\n"
    )
    assert run_metrics(registry_repo, check_models, block) == []


def test_a_duplicate_name_and_dataset_points_at_the_second(registry_repo, check_models):
    block = (
        "  - name: accuracy\n    value: 0.9\n    dataset: test\n"
        "  - name: Accuracy\n    value: 0.8\n    dataset: test\n"
    )
    [f] = run_metrics(registry_repo, check_models, block)
    assert f.message == "metric 'Accuracy' on 'test' is listed twice (first as metrics[0])"
    assert (f.path, f.line) == (CARD, FIRST_METRIC_LINE + 3)


def test_a_metric_without_dataset_is_refused_with_its_line(registry_repo, check_models):
    block = "  - name: accuracy\n    value: 0.9\n"
    [f] = run_metrics(registry_repo, check_models, block, only=("card-fields", "metrics"))
    assert f.check == "card-fields"
    assert f.message == "required field 'metrics.0.dataset' is missing"
    assert f.hint.startswith("add 'dataset:'")
    assert (f.path, f.line) == (CARD, FIRST_METRIC_LINE)


def test_a_blank_dataset_is_refused(registry_repo, check_models):
    block = "  - name: accuracy\n    value: 0.9\n    dataset: '  '\n"
    [f] = run_metrics(registry_repo, check_models, block, only=("card-fields", "metrics"))
    assert "'metrics.0.dataset': must not be empty" in f.message
    assert (f.path, f.line) == (CARD, FIRST_METRIC_LINE + 2)


@pytest.mark.parametrize(
    "name, unit, kind",
    [
        ("accuracy", None, MetricKind.score),
        ("top1", None, MetricKind.score),
        ("top-5", "%", MetricKind.score),
        ("mAP@0.5:0.95", None, MetricKind.score),
        ("mIoU", None, MetricKind.score),
        ("roc_auc", None, MetricKind.score),
        ("f1_macro", None, MetricKind.score),
        ("precision", None, MetricKind.score),
        ("loss", None, MetricKind.non_negative),
        ("error_rate", None, MetricKind.non_negative),
        ("latency_p50", "ms", MetricKind.non_negative),
        ("wer", None, MetricKind.non_negative),
        ("top1_error", None, MetricKind.non_negative),
        ("bleu", None, MetricKind.other),
    ],
)
def test_metric_kinds(name, unit, kind):
    assert metric_kind(Metric(name=name, value=0.5, dataset="d", unit=unit)) is kind
