"""The source ONNX made ready for conversion (step 1 of a build).

Owns `prepare`: the published ONNX is loaded and checked, the card's pre/post-processing is merged
into it (`registry.packaging.processing`; the result is the reference every candidate is verified
against), every node is checked against the target's runtime, then the model to convert is
quantized to int8 (`registry.packaging.quantization`) and given offline graph optimisation
(`registry.packaging.acceleration`) as the target's options ask.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pydantic import BaseModel

from registry.cards.schema import TargetSpec
from registry.core.errors import ConversionError
from registry.packaging.protocol import Quantization
from registry.packaging.source import ModelSource
from registry.packaging.targets import Target, TargetOptions


class Prepared(BaseModel):
    """The source ONNX after processing (the reference) and after int8/optimisation (to convert)."""

    reference: Path
    prepared: Path
    precision: str
    quantization: Quantization | None
    optimized: str | None
    steps: list[str]


def prepare(
    source: ModelSource,
    spec: TargetSpec | None,
    target: Target,
    options: TargetOptions,
    work: Path,
    log,
) -> Prepared:
    """Load and check the source, merge processing, then quantize and optimise as asked.

    Args:
        spec: the card's entry for the target (its processing steps), if any.
        options: the target's options (quantize, calibration, optimize).
        work: a private folder for the prepared files.
        log: called with one line per step.
    Raises:
        ConversionError: not a valid ONNX model, an op the target's runtime cannot run (naming it
            and its node), or calibration data that does not fit.
        UsageError: a bad processing step.
    """
    import onnx

    from registry.packaging.processing import apply_steps, parse_steps

    reference = work / "reference.onnx"
    processing = spec.processing if spec else None
    try:
        # checked from the file (by the checker's C++ reader, which frees it when done)
        onnx.checker.check_model(str(source.weights))
        edit = bool(processing) or _external_data(source.weights)
        model = onnx.load(str(source.weights)) if edit else None
    except Exception as e:  # onnx raises several unrelated types for a bad file
        raise ConversionError(
            f"{source.weights}: not a valid ONNX model ({e})",
            "packaging starts from the published ONNX weights",
        ) from e
    if model is None:  # the published file is the reference as it is: copied, never loaded
        steps = []
        shutil.copyfile(source.weights, reference)
    else:  # processing merged in, or external data brought inside the one file
        steps = apply_steps(model, parse_steps(processing)) if processing else []
        onnx.save(model, str(reference))
        del model
    _check_ops(reference, source.weights.name, target)
    prep = Prepared(
        reference=reference,
        prepared=reference,
        precision="fp32",
        quantization=None,
        optimized=None,
        steps=steps,
    )
    if options.quantize:
        from registry.packaging.quantization import quantize

        calib = source.folder / options.calibration if options.calibration else None
        prep.prepared = work / "quantized.onnx"
        prep.quantization = quantize(
            reference,
            prep.prepared,
            options.quantize,
            per_channel=options.per_channel,
            calibration=calib,
        )
        prep.precision = "int8"
        log(f"quantized to int8 ({options.quantize}, {prep.quantization.granularity})")
    if options.optimize:
        from registry.packaging.acceleration import optimize_offline

        # Fusions that need the target's own CPU only where this machine is that CPU.
        prep.optimized = "extended" if target.native_here()[0] else "basic"
        dest = work / "optimized.onnx"
        optimize_offline(prep.prepared, dest, prep.optimized)
        prep.prepared = dest
        log(f"offline graph optimisation: {prep.optimized}")
    return prep


def _external_data(path: Path) -> bool:
    """Whether an ONNX file keeps tensors in other files (read from its structure, tensors'
    bytes skipped)."""
    import mmap

    from registry.formats import onnx_wire

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return bool(onnx_wire.read_model(buf).external_locations)


def _check_ops(path: Path, shown: str, target: Target) -> None:
    """Fail early, naming the op, node and target, when the target's runtime cannot run a node."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    known = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
    versions = {o.domain: o.version for o in model.opset_import}
    for i, node in enumerate(model.graph.node):
        domain = node.domain or ""
        if (
            domain not in known
            or not onnx.defs.has(node.op_type, versions.get(domain, 1), domain)
            and (domain != "com.microsoft")
        ):
            op = f"{domain}:{node.op_type}" if domain else node.op_type
            raise ConversionError(
                f"{shown}: target {target.name} cannot convert op {op} "
                f"(node '{node.name or f'#{i}'}'): {target.runtime} has no kernel for it",
                f"replace {op} in the model, or drop {target.name} from the card's targets",
            )
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:
        text = str(e).replace(str(path), shown)
        m = re.search(r"[Nn]ode[^']*'([^']*)'.*?(?:op(?:_type)?|type)[^\w]*(\w+)", text)
        node_op = f"op {m.group(2)} (node '{m.group(1)}')" if m else "a node"
        raise ConversionError(
            f"{shown}: target {target.name} cannot convert {node_op}: {text.splitlines()[0][:300]}",
            f"replace the op in the model, or drop {target.name} from the card's targets",
        ) from e
