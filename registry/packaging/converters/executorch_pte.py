"""executorch: an ExecuTorch program (.pte) lowered to the XNNPACK delegate, from the card's
`.pt2`."""

from __future__ import annotations

import re
from pathlib import Path

from registry.core.errors import ConversionError, missing_dependency
from registry.packaging.converters import Candidate, PytorchConverter, register
from registry.packaging.protocol import DescriptionBlock, version_tuple

# The description block is a constant method of the program: `program.load_method(BLOCK_METHOD)
# .execute([])` returns its JSON text.
BLOCK_METHOD = "registry_description"
_OP_RE = re.compile(r"Operator (?:torch\._ops\.)?([\w.]+) is not in Core ATen")


def executorch_version() -> str | None:
    """The installed ExecuTorch version (without a local suffix such as '+cpu'), or None."""
    try:
        from executorch.version import __version__
    except ImportError:
        return None
    return __version__.split("+")[0]


@register
class ExecuTorchConverter(PytorchConverter):
    """Delegates to ExecuTorch: `to_edge_transform_and_lower` with the XNNPACK partitioner, then
    `to_executorch`; ops XNNPACK does not take run on ExecuTorch's portable kernels."""

    name = "executorch"
    summary = "ExecuTorch program (.pte), XNNPACK delegate, from the card's .pt2 (pytorch:)"
    needs = ("executorch",)

    def available(self) -> tuple[bool, str]:
        """ExecuTorch is installed with the registry's `mobile` extra."""
        if executorch_version() is None:
            return False, "pip install 'git-model-registry[mobile]' (or pip install executorch)"
        return True, ""

    def convert(
        self,
        source: Path,
        out_dir: Path,
        *,
        program,
        precision: str,
        runtime: str,
        options,
        block: DescriptionBlock,
    ) -> Candidate:
        """Lower the program for XNNPACK and save `model.pte`, with the block as a constant method.

        Raises:
            ConversionError: an op ExecuTorch cannot lower (names the op, node and target), or
                the int8 precision (quantize the ONNX candidates instead).
        """
        import torch

        version = executorch_version()
        if version is None:
            raise missing_dependency("executorch", "mobile")
        if precision != "fp32":
            raise ConversionError(
                f"{source.name}: the executorch converter builds float32 programs only",
                "int8 applies to the ONNX candidates: pick ort-format, or drop 'quantize'",
            )
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        minimum = ".".join(str(p) for p in version_tuple(version)[:2])
        tools = {"executorch": version, "torch": torch.__version__.split("+")[0]}
        final = block.model_copy(
            update={
                "runtime": "executorch",
                "min_runtime_version": minimum,
                "format": "pte",
                "opset": None,
                "ir_version": None,
                "weight_dtype": "float32",
                "execution_providers": [],
                "converter": self.name,
                "tools": {**block.tools, **tools},
            }
        )
        target = final.target
        try:
            lowered = to_edge_transform_and_lower(
                program,
                partitioner=[XnnpackPartitioner()],
                constant_methods={BLOCK_METHOD: final.model_dump_json()},
            )
            buffer = lowered.to_executorch().buffer
        except Exception as e:  # exir raises SpecViolationError, AssertionError, RuntimeError…
            raise _lowering_error(e, program, source.name, target) from None
        dest = out_dir / "model.pte"
        dest.write_bytes(buffer)
        return Candidate(
            converter=self.name,
            path=dest,
            files=[dest],
            format="pte",
            engine="executorch",
            precision="fp32",
            weight_dtype="float32",
            runtime="executorch",
            min_runtime_version=minimum,
            tools=tools,
            block=final,
        )

    def embedded_block(self, model: bytes, files: dict[str, bytes], model_file: str) -> str | None:
        """The block the program returns from its constant method `BLOCK_METHOD`."""
        if not model:
            return None
        from executorch.runtime import Runtime

        program = Runtime.get().load_program(model)
        if BLOCK_METHOD not in program.method_names:
            return ""
        return str(program.load_method(BLOCK_METHOD).execute([])[0])


def _lowering_error(error: Exception, program, shown: str, target: str) -> ConversionError:
    """A ConversionError naming the op (and its node) ExecuTorch could not lower."""
    text = str(error).strip()
    m = _OP_RE.search(text)
    if m:
        op = m.group(1)
        bare = op.removeprefix("aten.")
        node = next(
            (
                n.name
                for n in program.graph.nodes
                if n.op == "call_function" and str(n.target).removeprefix("aten.") == bare
            ),
            None,
        )
        where = f" (node '{node}')" if node else ""
        return ConversionError(
            f"{shown}: target {target} cannot convert op {op}{where}: ExecuTorch has no "
            "kernel for it (not in the Core ATen opset)",
            f"replace {op} in the model, or package {target} with the ort-format converter",
        )
    first = next((line for line in text.splitlines() if line.strip()), type(error).__name__)
    return ConversionError(
        f"{shown}: ExecuTorch cannot lower the program for {target}: "
        f"{type(error).__name__}: {first[:300]}",
        f"package {target} with the ort-format converter, or change the model",
    )
