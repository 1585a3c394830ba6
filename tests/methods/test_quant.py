"""What the ONNX Runtime quantization methods share (`registry.compression.methods._quant`)."""

import logging

from methods.conftest import run_method


def test_onnxruntime_log_lines_are_held_back_only_while_quantizing(digits_job, tmp_path, caplog):
    """quantize_static logs a pre-processing suggestion on the root logger at every call: it is
    held back, and the root logger's level is as it was once the method has run."""
    with caplog.at_level(logging.INFO):
        run_method("static-int8", digits_job, tmp_path)
        assert logging.getLogger().level == logging.INFO
    assert not [r for r in caplog.records if "pre-process" in r.getMessage()]
