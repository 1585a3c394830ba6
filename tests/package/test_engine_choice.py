"""The benchmark's advice: a setting is named (with the card fields that ship it) only when it
clearly beats the shipped one; what ships never depends on the timings."""

from __future__ import annotations

import pytest

from registry.packaging.benchmark import DEFAULT_MARGIN, Timing, advice
from registry.packaging.engines import EngineSetting


def timing(converter: str, threads: int, opt: str | None, median: float) -> Timing:
    engine = "onnxruntime" if opt else "openvino"
    return Timing(
        converter=converter,
        setting=EngineSetting(engine=engine, threads=threads, graph_optimization=opt),
        median_ms=median,
        p90_ms=median * 1.1,
        runs=20,
    )


SHIPPED = timing("onnx", 0, "all", 1.00)


@pytest.mark.parametrize(
    "challenger, named",
    [
        (timing("onnx", 1, "extended", 0.97), None),  # 3% faster: within noise
        (timing("openvino-ir", 0, None, 0.99), None),
        (
            timing("onnx", 2, "all", 1 - DEFAULT_MARGIN - 0.01),
            "set options: {engine: {threads: 2, graph_optimization: all}}",
        ),
        (
            timing("openvino-ir", 2, None, 0.50),
            "set converter: openvino-ir and options: {engine: {threads: 2}}",
        ),
        (timing("onnx", 1, "basic", 1.20), None),  # slower
    ],
)
def test_the_advice_names_a_setting_only_when_clearly_faster(challenger, named):
    text = advice([SHIPPED, challenger], "onnx", SHIPPED.setting, warmup=3)
    if named is None:
        assert "none beat the shipped setting" in text
    else:
        assert named in text and "faster than the shipped setting" in text
        assert "in the card's targets entry" in text


def test_no_advice_without_timings():
    failed = Timing(converter="onnx", setting=SHIPPED.setting, error="RuntimeError: no")
    assert advice([failed], "onnx", SHIPPED.setting, warmup=3) is None
