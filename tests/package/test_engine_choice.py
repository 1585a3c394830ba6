"""The engine choice rule: the fastest setting wins only when it clearly beats the engine's
default."""

from __future__ import annotations

import pytest

from registry.packaging.benchmark import DEFAULT_MARGIN, pick
from registry.packaging.engines import EngineSetting


def timing(converter: str, threads: int, opt: str | None, median: float):
    from registry.packaging.benchmark import Timing

    engine = "onnxruntime" if opt else "openvino"
    return Timing(
        converter=converter,
        setting=EngineSetting(engine=engine, threads=threads, graph_optimization=opt),
        median_ms=median,
        p90_ms=median * 1.1,
        runs=20,
    )


DEFAULT = timing("onnx", 0, "all", 1.00)


@pytest.mark.parametrize(
    "challenger, wins",
    [
        (timing("onnx", 1, "extended", 0.97), False),  # 3% faster: within noise, the default stays
        (timing("openvino-ir", 0, None, 0.99), False),
        (timing("onnx", 2, "all", 1 - DEFAULT_MARGIN - 0.01), True),  # clearly faster: replaces it
        (timing("openvino-ir", 2, None, 0.50), True),
        (timing("onnx", 1, "basic", 1.20), False),  # slower: never chosen
    ],
)
def test_a_setting_replaces_the_default_only_when_clearly_faster(challenger, wins):
    chosen = pick([DEFAULT, challenger], "onnx")
    assert chosen is (challenger if wins else DEFAULT)


def test_without_a_default_timing_the_fastest_wins():
    a, b = timing("onnx", 1, "all", 1.0), timing("onnx", 2, "all", 0.99)
    assert pick([a, b], "onnx") is b
