"""One run of an ONNX model on generated inputs, in a sandboxed child, for the graph check.

The model comes from an untrusted pull request, so where the OS allows it (POSIX) it runs in a
child process (`registry.core.sandbox`: a fresh interpreter with nothing of the parent's
environment) that may use at most `memory` more bytes of address space (Linux) and is stopped
after `timeout` seconds: a graph built to exhaust the bot's machine fails the check instead.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from registry.core.errors import ModelFormatError, missing_dependency
from registry.core.sandbox import limit_memory, run_child, start_deadline

_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint64)": "uint64",
    "tensor(uint32)": "uint32",
    "tensor(uint16)": "uint16",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}


RUN_TIMEOUT = 120.0  # seconds the one run of the graph check may take
RUN_MEMORY = 4 << 30  # bytes of address space it may add to the child's own (onnxruntime loaded)
IMPORT_ALLOWANCE = 60.0  # seconds for the child to start and import onnxruntime


def run_once(
    path: str | os.PathLike,
    seed: int = 0,
    *,
    timeout: float = RUN_TIMEOUT,
    memory: int = RUN_MEMORY,
) -> dict[str, list[int]]:
    """Run an ONNX model once in onnxruntime (CPU) on generated inputs; return each output's shape.

    Symbolic or unknown dimensions become 1; inputs are seeded random values of the right dtype
    (small non-negative integers, so index-like inputs stay valid).

    Raises:
        ModelFormatError: onnxruntime cannot load or run the model, or it went past a limit (the
            message says which).
    """
    path = Path(path)
    try:
        import numpy  # noqa: F401 - a clear error here rather than a silent child
        import onnxruntime  # noqa: F401
    except ImportError:  # pragma: no cover - core dependencies
        raise missing_dependency("onnxruntime") from None
    if os.name != "posix":  # Windows: no process group to kill, no address-space cap; run here
        return _run_once(path, seed)
    request = {"path": str(path.resolve()), "seed": seed, "timeout": timeout, "memory": memory}
    with tempfile.TemporaryDirectory(prefix="registry-run-once-") as tmp:
        child = run_child(
            f"{__name__}:child_main",
            json.dumps(request).encode(),
            workdir=Path(tmp),
            deadline=IMPORT_ALLOWANCE + timeout + 5,
        )
    limits_hint = (
        "a model the registry accepts must run once on generated inputs within "
        f"{timeout:g} s and {memory / (1 << 30):g} GiB; check its shapes and loops"
    )
    if child.timed_out:
        raise ModelFormatError(
            f"{path.name}: running the model once on generated inputs took "
            f"longer than {timeout:g} s, so it was stopped",
            limits_hint,
        )
    try:
        report = json.loads(child.stdout)
    except ValueError:
        raise ModelFormatError(
            f"{path.name}: onnxruntime stopped while running the model once "
            f"({child.ended()}); it may need more memory than allowed",
            limits_hint,
        ) from None
    if report.get("memory"):
        raise ModelFormatError(
            f"{path.name}: running the model once needed more than "
            f"{memory / (1 << 30):g} GiB of memory",
            limits_hint,
        )
    if "error" in report:
        raise ModelFormatError(report["error"], report.get("hint"))
    return report["outputs"]


def child_main() -> None:
    """Entry of the child: read the request from stdin, run the model once within its limits and
    write the report (outputs, or the error, or that memory ran out) as JSON to stdout."""
    code = 0
    try:
        request = json.loads(sys.stdin.read())
        import numpy  # noqa: F401 - the imports come before the limits, which are the model's
        import onnxruntime  # noqa: F401

        limit_memory(request["memory"])
        start_deadline(request["timeout"])
        try:
            report: dict[str, Any] = {"outputs": _run_once(Path(request["path"]), request["seed"])}
        except ModelFormatError as e:
            report = (
                {"memory": True}
                if "Failed to allocate memory" in e.message
                else {"error": e.message, "hint": e.hint}
            )
        except MemoryError:
            report = {"memory": True}
        sys.stdout.write(json.dumps(report))
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001 - the parent reports a child that says nothing
        code = 70
    finally:
        os._exit(code)


def _run_once(path: Path, seed: int) -> dict[str, list[int]]:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # errors come back as exceptions, reported once below
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad models
        raise ModelFormatError(
            f"{path.name}: onnxruntime cannot load the model: {_first_line(e)}",
            "export the model again with a supported opset; try it with onnxruntime locally",
        ) from None
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else 1 for d in (inp.shape or [])]
        dtype = _ORT_DTYPES.get(inp.type)
        if dtype is None:
            raise ModelFormatError(
                f"{path.name}: input '{inp.name}' has type {inp.type}, which the "
                "registry cannot generate test data for",
                "give the model plain tensor inputs",
            )
        if dtype.startswith("float"):
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype == "bool":
            value = rng.integers(0, 2, shape).astype(bool)
        elif dtype == "str":
            value = np.full(shape, "a", dtype=object)
        else:
            value = rng.integers(0, 2, shape).astype(dtype)
        feeds[inp.name] = value
    try:
        results = session.run(None, feeds)
    except Exception as e:
        raise ModelFormatError(
            f"{path.name}: running the model once on generated inputs failed: {_first_line(e)}",
            "check that the model runs in onnxruntime on inputs of the declared shapes",
        ) from None
    names = [o.name for o in session.get_outputs()]
    return {n: [int(d) for d in getattr(r, "shape", ())] for n, r in zip(names, results)}


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:400] if text else type(e).__name__
