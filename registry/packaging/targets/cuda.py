"""cuda: fp16 ONNX for ONNX Runtime's CUDA and TensorRT execution providers."""

from __future__ import annotations

from pydantic import Field

from registry.packaging.targets import Target, TargetOptions, register


class CudaOptions(TargetOptions):
    """Options of the cuda target."""

    keep_io_types: bool = Field(
        True, description="keep float32 inputs/outputs (casts at the graph edges)"
    )
    fp32_fallback: bool = Field(False, description="also offer the float32 ONNX as a candidate")


@register
class Cuda(Target):
    """NVIDIA GPUs through ONNX Runtime's CUDA / TensorRT execution providers (onnxruntime-gpu)."""

    name = "cuda"
    summary = "NVIDIA GPU (ONNX Runtime CUDA / TensorRT EP)"
    produces = "float16 ONNX (.onnx) for onnxruntime-gpu"
    converters = ("onnx-fp16",)
    engines = ("onnxruntime-gpu",)
    runner = "ubuntu-latest"
    os = "linux"
    arch = "cuda"
    needs = ("onnxruntime (build, CPU check)", "onnxruntime-gpu (to time on a GPU)")
    Options = CudaOptions

    def native_here(self) -> tuple[bool, str]:
        """Native only where ONNX Runtime offers the CUDA execution provider."""
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return True, "built on a machine with the CUDA execution provider"
        return False, "built without a GPU: not measured on device"

    def verification_scope(
        self, providers: list[str], engine: str = "onnxruntime"
    ) -> tuple[bool, str]:
        """On a GPU only where the CUDA execution provider ran the check."""
        if "CUDAExecutionProvider" in providers:
            return True, "run by the CUDA execution provider"
        return False, (
            "float16 graph run by the CPU execution provider (no GPU here): "
            "not run on CUDA/TensorRT"
        )

    def providers(self) -> list[str]:
        """TensorRT first, then CUDA, then CPU for unsupported nodes."""
        return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

    def verify_providers(self) -> list[str]:
        """CUDA where available; otherwise the CPU EP runs the float16 graph for verification."""
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def candidate_converters(self, options: TargetOptions, pytorch: bool = False) -> list[str]:
        """fp16 first; the fp32 ONNX too when `fp32_fallback` is set."""
        names = super().candidate_converters(options, pytorch)
        if getattr(options, "fp32_fallback", False) and not options.converter:
            names.append("onnx")
        return names
