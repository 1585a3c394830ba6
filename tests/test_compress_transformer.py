"""The fallback chain on a transformer encoder: plain dynamic int8 loses too much cosine
similarity."""

from __future__ import annotations

from registry.cards.schema import load_card
from registry.compression.chain import CompressRequest, compress


def test_chain_falls_back_past_dynamic_int8_to_reach_cosine_099(text_embedder, tmp_path):
    size = (text_embedder / "model.onnx").stat().st_size
    card = load_card((text_embedder / "model.yaml").read_bytes()).card
    report = compress(
        CompressRequest(
            card=card,
            model_path=text_embedder / "model.onnx",
            model_dir=text_embedder,
            max_size=str(int(size * 0.35)),
            max_metric_drop="0.01",
            output_root=tmp_path / "models",
            report_dir=tmp_path / "report",
        )
    )
    first = report.attempts[0]
    assert first.method == "dynamic-int8" and first.status == "fail"
    assert first.measurement.metric < 0.99 and "drop" in first.reason
    assert report.met
    chosen = report.attempts[report.chosen]
    assert chosen.method != "dynamic-int8"
    assert chosen.measurement.metric >= 0.99 and chosen.measurement.size <= size * 0.35
    card = load_card((tmp_path / "models" / "text-embedder-lite" / "model.yaml").read_bytes()).card
    assert (
        card.derived_from == "text-embedder@1.0.0"
        and card.metrics[-1].name == "cosine-to-reference"
    )
