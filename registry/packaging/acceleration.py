"""Offline graph optimisation (the acceleration library): ONNX Runtime's optimiser, saved to disk.

The optimised graph (fusions, constant folding) is written with `optimized_model_filepath`, so a
device loads it without spending start-up time on the same work.
"""

from __future__ import annotations

from pathlib import Path

from registry.core.errors import ConversionError

LEVELS = ("basic", "extended")


def optimize_offline(source: Path, dest: Path, level: str) -> None:
    """Write ONNX Runtime's optimised graph of `source` to `dest`.

    Args:
        level: 'basic' (portable: constant folding, redundant-node removal) or 'extended'
            (adds fusions that need ONNX Runtime's contrib ops). Layout optimisations ('all') are
            never saved: they tie the file to the build machine's CPU.
    Raises:
        ConversionError: ONNX Runtime cannot load the model.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    so.optimized_model_filepath = str(dest)
    try:
        ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ConversionError(
            f"{source.name}: ONNX Runtime cannot optimise it: {e}",
            "drop 'optimize' from the target",
        ) from e
