"""Metrics of the documented set, computed on hand-checkable outputs."""

import numpy as np
import pytest

from registry.compression.evaluation import METRICS, compute_metric
from registry.core.errors import CompressionError


def test_map_lite_is_one_for_a_perfect_ranking_and_drops_when_a_negative_ranks_first():
    labels = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    assert compute_metric("map-lite", perfect, labels, None) == pytest.approx(1.0)
    # class 0 ranks sample 2 (a class-1 sample) first: AP0 = mean(1/2, 2/3); class 1 is ranked 3, 2,
    # 1, 0 -> hits at 1, 2
    swapped = np.array([[0.6, 0.1], [0.5, 0.2], [0.95, 0.7], [0.1, 0.8]])
    ap0 = (1 / 2 + 2 / 3) / 2
    ap1 = 1.0
    assert compute_metric("map-lite", swapped, labels, None) == pytest.approx((ap0 + ap1) / 2)


def test_map_lite_refuses_labels_without_an_output_column():
    with pytest.raises(CompressionError, match="label 3 has no output column"):
        compute_metric("map-lite", np.zeros((2, 2)), np.array([0, 3]), None)


def test_every_metric_is_described():
    assert "map-lite" in METRICS
    assert all(len(m.description) > 20 for m in METRICS.values())
