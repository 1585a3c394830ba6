"""openvino-ir: OpenVINO's intermediate representation (.xml + .bin) for the OpenVINO runtime."""

from __future__ import annotations

import json
from pathlib import Path

from registry.core.errors import ConversionError, missing_dependency
from registry.packaging.converters import Candidate, Converter, onnx_block, register
from registry.packaging.protocol import METADATA_KEY


@register
class OpenVinoIrConverter(Converter):
    """Delegates to OpenVINO's converter (`openvino.convert_model`), weights kept as they are."""

    name = "openvino-ir"
    summary = "OpenVINO IR (.xml/.bin) via openvino.convert_model, description block in rt_info"
    needs = ("openvino",)

    def available(self) -> tuple[bool, str]:
        """OpenVINO is an optional extra."""
        try:
            import openvino  # noqa: F401
        except ImportError:
            return False, "pip install 'git-model-registry[package]' (or pip install openvino)"
        return True, ""

    def convert(
        self, source: Path, out_dir: Path, *, precision: str, runtime: str, options
    ) -> Candidate:
        """Convert with OpenVINO and store the description block under rt_info.

        Raises:
            ConversionError: OpenVINO cannot convert an op of the model.
        """
        try:
            import openvino as ov
        except ImportError as e:
            raise missing_dependency("openvino", "package") from e
        try:
            model = ov.convert_model(str(source))
        except Exception as e:
            raise ConversionError(
                f"{source.name}: OpenVINO cannot convert it: {e}",
                "drop 'openvino' from this target's options",
            ) from e
        block = onnx_block(source)  # read from the file's header: no second copy in memory
        if block is not None:
            data = block.model_copy(
                update={
                    "runtime": "openvino",
                    "format": "openvino-ir",
                    "min_runtime_version": _major_minor(ov.__version__),
                    "converter": self.name,
                    "tools": {**block.tools, "openvino": ov.__version__},
                }
            )
            model.set_rt_info(json.dumps(data.model_dump(mode="json")), [METADATA_KEY])
        xml = out_dir / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return Candidate(
            converter=self.name,
            path=xml,
            files=[xml, xml.with_suffix(".bin")],
            format="openvino-ir",
            engine="openvino",
            precision=precision,
            weight_dtype="int8" if precision == "int8" else "float32",
            runtime="openvino",
            min_runtime_version=_major_minor(ov.__version__),
            tools={"openvino": ov.__version__},
        )


def _major_minor(version: str) -> str:
    # IR files are read by the release that wrote them and later ones.
    return ".".join(version.split(".")[:2])
