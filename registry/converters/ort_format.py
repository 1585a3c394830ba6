"""ort-format: ONNX Runtime Mobile's ORT format (.ort), saved by ONNX Runtime itself."""

from __future__ import annotations

from pathlib import Path

from registry.converters import Candidate, Converter, onnx_facts, register
from registry.errors import ConversionError
from registry.protocol import min_onnxruntime_for, version_tuple


@register
class OrtFormatConverter(Converter):
    """Delegates to ONNX Runtime's own serializer (as tools/convert_onnx_models_to_ort does)."""

    name = "ort-format"
    summary = "ORT format (.ort) for ONNX Runtime Mobile, optimised for the generic CPU EP"

    def convert(self, source: Path, out_dir: Path, *, precision: str, runtime: str,
                options) -> Candidate:
        """Save the model in ORT format; layout optimisations that tie it to x86 are excluded.

        Raises:
            ConversionError: ONNX Runtime cannot load the model (names the op it reports).
        """
        import onnxruntime as ort

        dest = out_dir / "model.ort"
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(dest)
        so.add_session_config_entry("session.save_model_format", "ORT")
        style = getattr(options, "optimization_style", "Fixed")
        if style == "Runtime":
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            so.add_session_config_entry("optimization.minimal_build_optimizations", "save")
        else:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        try:
            # NchwcTransformer output is x86-specific; mobile devices are ARM.
            ort.InferenceSession(str(source), sess_options=so, providers=["CPUExecutionProvider"],
                                 disabled_optimizers=["NchwcTransformer"])
        except Exception as e:
            raise ConversionError(f"{source.name}: ONNX Runtime cannot save it in ORT format: {e}",
                                  "the mobile runtime supports the ops of the full CPU build; "
                                  "replace the op named above or pick another target") from e
        opset, ir = onnx_facts(source)
        # An ORT-format file loads in the runtime that wrote it and later ones, not older ones.
        writer = ".".join(str(p) for p in version_tuple(ort.__version__)[:2])
        need = max(min_onnxruntime_for(opset, ir), writer, key=version_tuple)
        return Candidate(converter=self.name, path=dest, files=[dest], format="ort",
                         engine="onnxruntime", precision=precision,
                         weight_dtype="int8" if precision == "int8" else "float32",
                         runtime=runtime, min_runtime_version=need,
                         tools={"onnxruntime": ort.__version__, "optimization_style": style})
