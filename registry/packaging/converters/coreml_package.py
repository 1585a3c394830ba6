"""coreml: a Core ML ML Program (.mlpackage) for iOS, from the card's `.pt2`, via coremltools."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from pathlib import Path

from registry.core.errors import ConversionError, missing_dependency
from registry.packaging.converters import Candidate, PytorchConverter, register
from registry.packaging.protocol import METADATA_KEY, DescriptionBlock

SPEC_FILE = "Data/com.apple.CoreML/model.mlmodel"
# coremltools stamps the day of conversion; a rebuild on another day would differ for nothing.
_DATE_KEY = "com.github.apple.coremltools.conversion_date"
# Item identifiers of Manifest.json: random UUIDs from coremltools, made a function of the item's
# path.
_ITEM_NAMESPACE = uuid.UUID("6f1c1a52-5a49-4f3e-9d0c-3b7f0a3c2e11")
_OP_RE = re.compile(r"Unsupported fx node (\S+), kind (\S+)")


def coremltools_version() -> str | None:
    """The installed coremltools version, or None."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("coremltools")
    except PackageNotFoundError:
        return None


@register
class CoreMlConverter(PytorchConverter):
    """Delegates to coremltools (`ct.convert` of the ExportedProgram, ML Program backend).

    Converts on Linux and macOS; the result runs only on Apple systems, so off macOS it is built
    but not verified (the manifest says so, and `registry verify PACKAGE` on a Mac checks it).
    """

    name = "coreml"
    summary = (
        "Core ML ML Program (.mlpackage) via coremltools, from the card's .pt2 (pytorch:); "
        "runs on macOS/iOS only"
    )
    needs = ("coremltools",)

    def available(self) -> tuple[bool, str]:
        """coremltools comes with the registry's `mobile` extra (macOS and Linux x86-64)."""
        if coremltools_version() is None:
            return False, "pip install 'git-model-registry[mobile]' (or pip install coremltools)"
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
        """Convert to `model.mlpackage` with the block in the model's user-defined metadata.

        Options read: `coreml_precision` (fp32 or fp16 compute), `coreml_min_ios` (deployment
        target).
        Raises:
            ConversionError: an op coremltools cannot convert (names the op, node and target),
            or int8.
        """
        if coremltools_version() is None:
            raise missing_dependency("coremltools", "mobile")
        if precision != "fp32":
            raise ConversionError(
                f"{source.name}: the coreml converter starts from the float32 program",
                "int8 applies to the ONNX candidates: pick ort-format, or drop 'quantize'",
            )
        import torch

        with _quiet():  # coremltools logs a warning per missing macOS-only part at import
            import coremltools as ct
        half = getattr(options, "coreml_precision", "fp32") == "fp16"
        min_ios = int(getattr(options, "coreml_min_ios", 16))
        tools = {"coremltools": ct.__version__, "torch": torch.__version__.split("+")[0]}
        final = block.model_copy(
            update={
                "runtime": "coreml",
                "min_runtime_version": str(min_ios),
                "format": "mlpackage",
                "opset": None,
                "ir_version": None,
                "weight_dtype": "float16" if half else "float32",
                "execution_providers": [],
                "converter": self.name,
                "tools": {**block.tools, **tools},
            }
        )
        try:
            with _quiet():
                model = ct.convert(
                    program.run_decompositions({}),
                    convert_to="mlprogram",
                    minimum_deployment_target=getattr(ct.target, f"iOS{min_ios}"),
                    compute_precision=ct.precision.FLOAT16 if half else ct.precision.FLOAT32,
                    skip_model_load=True,
                )
        except Exception as e:  # coremltools raises NotImplementedError, ValueError, RuntimeError…
            raise _conversion_error(e, source.name, final.target) from None
        model.user_defined_metadata[METADATA_KEY] = final.model_dump_json()
        dest = out_dir / "model.mlpackage"
        model.save(str(dest))
        normalise_mlpackage(dest)
        files = sorted(p for p in dest.rglob("*") if p.is_file())
        return Candidate(
            converter=self.name,
            path=dest,
            files=files,
            format="mlpackage",
            engine="coreml",
            precision="fp16" if half else "fp32",
            weight_dtype=final.weight_dtype,
            runtime="coreml",
            min_runtime_version=str(min_ios),
            tools=tools,
            block=final,
        )

    def embedded_block(self, model: bytes, files: dict[str, bytes], model_file: str) -> str | None:
        """The block in the user-defined metadata of the package's spec (`SPEC_FILE`); None where
        coremltools, which reads the spec, is not installed."""
        spec_bytes = files.get(f"{model_file}/{SPEC_FILE}")
        if spec_bytes is None:
            return None
        try:
            from coremltools.proto import Model_pb2
        except ImportError:
            return None
        spec = Model_pb2.Model()
        spec.ParseFromString(spec_bytes)
        return spec.description.metadata.userDefined.get(METADATA_KEY, "")


@contextlib.contextmanager
def _quiet():
    """coremltools' warnings (untested torch version, macOS-only parts missing) and progress bars
    say nothing about this model."""
    import io
    import logging
    import warnings

    log = logging.getLogger("coremltools")
    level, log.level = log.level, logging.ERROR
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.level = level


def normalise_mlpackage(folder: Path) -> None:
    """Make an .mlpackage a function of its model: no conversion date, the spec serialized with
    sorted maps, Manifest.json item identifiers derived from the item paths, no debug side file."""
    from coremltools.proto import Model_pb2

    spec_path = folder / SPEC_FILE
    spec = Model_pb2.Model()
    spec.ParseFromString(spec_path.read_bytes())
    spec.description.metadata.userDefined.pop(_DATE_KEY, None)
    spec_path.write_bytes(spec.SerializeToString(deterministic=True))
    manifest_path = folder / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    ids = {
        old: str(uuid.uuid5(_ITEM_NAMESPACE, item["path"])).upper()
        for old, item in manifest["itemInfoEntries"].items()
    }
    manifest["itemInfoEntries"] = {
        ids[old]: item for old, item in manifest["itemInfoEntries"].items()
    }
    manifest["rootModelIdentifier"] = ids[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")
    # written for ExecuTorch's Core ML delegate; Core ML itself does not read it
    (folder / "executorch_debug_handle_mapping.json").unlink(missing_ok=True)


def _conversion_error(error: Exception, shown: str, target: str) -> ConversionError:
    text = str(error).strip()
    m = _OP_RE.search(text)
    if m:
        node, op = m.group(1).rstrip(","), m.group(2)
        return ConversionError(
            f"{shown}: target {target} cannot convert op {op} (node '{node}'): "
            "coremltools has no conversion for it",
            f"replace {op} in the model, or package {target} with the ort-format converter",
        )
    first = next((line for line in text.splitlines() if line.strip()), type(error).__name__)
    return ConversionError(
        f"{shown}: coremltools cannot convert the program for {target}: "
        f"{type(error).__name__}: {first[:300]}",
        f"package {target} with the ort-format converter, or change the model",
    )
