"""Converters: one module per converter, each a registered `Converter` subclass.

A converter turns the prepared source ONNX (processing merged, optionally quantized and optimised)
into one candidate file for a target's runtime. A `PytorchConverter` starts instead from the
card's PyTorch source (`pytorch:`, a `.pt2` ExportedProgram read by `registry.formats.pt2`) and
writes
the description block itself. Targets name the converters they try; a packaging instruction may
name one explicitly (`converter:` in the card, `--converter` on the command line).

A converter also owns how its format carries the description block: `store_block` writes the
final block into a converted file where the format can be edited (ONNX files, see
`OnnxFileConverter`), and `embedded_block` reads it back from a package, so that running a package
can compare it with the manifest's copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from registry.core.plugins import Plugins
from registry.packaging.protocol import (
    METADATA_KEY,
    DescriptionBlock,
    ModelFacts,
)


class Candidate(BaseModel):
    """One converted model, waiting for verification and benchmarking."""

    converter: str = Field(description="converter that produced it")
    path: Path = Field(description="the main model file (or folder, for a Core ML .mlpackage)")
    files: list[Path] = Field(
        description="every file of the model (e.g. OpenVINO's .xml and .bin), "
        "under path's parent folder"
    )
    format: str = Field(description="onnx, ort, openvino-ir, pte or mlpackage")
    engine: str = Field(
        description="engine family that runs it: onnxruntime, openvino, executorch or coreml"
    )
    precision: str = Field(description="fp32, fp16 or int8: picks the verification thresholds")
    weight_dtype: str = Field(description="data type of the stored weights")
    runtime: str = Field(description="runtime kind for the description block")
    min_runtime_version: str = Field(description="oldest runtime version that loads it")
    tools: dict[str, str] = Field(default_factory=dict, description="tool versions used")
    block: DescriptionBlock | None = Field(
        None, description="the final description block, once written"
    )


class Converter:
    """Turns a prepared ONNX model into a candidate for one runtime."""

    name: ClassVar[str]
    summary: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    source_format: ClassVar[str] = "onnx"

    def convert(
        self, source: Path, out_dir: Path, *, precision: str, runtime: str, options
    ) -> Candidate:
        """Convert `source` (ONNX, block already written) into `out_dir`.

        Args:
            source: the prepared ONNX file.
            out_dir: an empty folder for this converter's output.
            precision: fp32 or int8 as prepared; a converter may change it (fp16).
            runtime: runtime kind of the target.
            options: the target's validated options.
        Raises:
            ConversionError: the model cannot be converted (names the op and node where known).
        """
        raise NotImplementedError

    def available(self) -> tuple[bool, str]:
        """Whether this converter's tools are installed here, and the install hint if not."""
        return True, ""

    def store_block(self, candidate: Candidate, block: DescriptionBlock) -> bool:
        """Write the final description block into the converted model, in place.

        Returns False where the format cannot be edited after conversion: the build then converts
        again from a source that carries the final block.
        """
        return False

    def embedded_block(self, model: bytes, files: dict[str, bytes], model_file: str) -> str | None:
        """The JSON text of the description block stored inside a model this converter made; ""
        when the model can be read and holds none (it was removed: the package was altered); None
        where the format keeps none that can be read here (the manifest's copy then stands).

        Args:
            model: the model file's bytes (empty for a folder format such as .mlpackage).
            files: the package's files by their path in the package, for folder formats.
            model_file: the model's path in the package.
        """
        return None

    def model_facts(
        self, model: bytes, files: dict[str, bytes], model_file: str, block_text: str
    ) -> ModelFacts | None:
        """What the model file itself shows about its numbers (weight types, quantized
        operators), to hold its description block to; None where this format is not read.

        Args:
            block_text: the JSON of the block stored in the model, left out of a byte search.
        """
        return None


class OnnxFileConverter(Converter):
    """A converter whose output is an ONNX file: the block lives in its `metadata_props`."""

    def store_block(self, candidate: Candidate, block: DescriptionBlock) -> bool:
        """Replace the block in the converted ONNX file (copied file to file, never loaded)."""
        import os

        from registry.formats import onnx_wire

        edited = candidate.path.with_name(candidate.path.name + ".block")
        edited.unlink(missing_ok=True)
        onnx_wire.copy_with_metadata(
            candidate.path, edited, METADATA_KEY, block.model_dump_json(exclude_none=False)
        )
        os.replace(edited, candidate.path)
        return True

    def embedded_block(self, model: bytes, files: dict[str, bytes], model_file: str) -> str | None:
        """The block in the ONNX model's `metadata_props`."""
        if not model:
            return None
        import onnx

        proto = onnx.load_from_string(model)
        return next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), "")

    def model_facts(
        self, model: bytes, files: dict[str, bytes], model_file: str, block_text: str
    ) -> ModelFacts | None:
        """The ONNX model's initializer types and quantized operators."""
        if not model:
            return None
        import onnx

        from registry.packaging.quantization import weight_facts

        return weight_facts(onnx.load_from_string(model))


class PytorchConverter(Converter):
    """Converts the card's PyTorch source (`.pt2`) instead of the prepared ONNX.

    The ONNX stays the reference the candidate is verified against; processing steps and int8
    quantization, which are applied to the ONNX, do not apply here (the target skips such a
    converter when they are asked for).
    """

    source_format: ClassVar[str] = "pt2"

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
        """Convert the `.pt2` at `source` into `out_dir`, writing `block` (completed) into the
        model.

        Args:
            source: the `.pt2` file (its name is what messages show).
            program: its ExportedProgram, read once per build with
                `registry.formats.pt2.load_exported_program`; a converter leaves it unchanged.
            block: the description block as known before conversion; the converter completes it
                (runtime, format, minimum version, tools) and returns it as the candidate's `block`.
        Raises:
            ConversionError: an op the runtime cannot run (names the op, node and target).
        """
        raise NotImplementedError


CONVERTERS: Plugins[Converter] = Plugins("converter", __name__)
register = CONVERTERS.register


def load_all() -> dict[str, type[Converter]]:
    """Every registered converter, by name."""
    return CONVERTERS.load()


def get_converter(name: str) -> Converter:
    """The converter registered as `name`.

    Raises:
        UsageError: no such converter; the hint names the nearest one.
    """
    return CONVERTERS.lookup(name)()


def onnx_block(path: Path) -> DescriptionBlock | None:
    """The description block in an ONNX file's `metadata_props` (None when it has none), read
    from the file's top-level fields without loading its tensors.

    Raises:
        ModelFormatError: not an ONNX file, or a block that is not protocol-conforming JSON.
    """
    import mmap

    from registry.core.errors import ModelFormatError
    from registry.formats import onnx_wire
    from registry.packaging.protocol import parse_block

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            text = onnx_wire.read_metadata(buf).get(METADATA_KEY)
    except (onnx_wire.WireError, ValueError) as e:
        raise ModelFormatError(f"{path}: not a readable ONNX model ({e})") from e
    return None if text is None else parse_block(text, str(path))


def onnx_facts(path: Path) -> tuple[int, int]:
    """(default-domain opset, IR version) of an ONNX file."""
    import mmap

    from registry.formats import onnx_wire

    # the top-level fields only: a model of any size is read without loading its tensors
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        model = onnx_wire.read_header(buf)
    opset = next((v for d, v in model.opsets if d in ("", "ai.onnx")), 0)
    return opset, model.ir_version
