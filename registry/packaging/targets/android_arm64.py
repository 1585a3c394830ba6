"""android-arm64: ExecuTorch (.pte) from the card's .pt2, and ONNX Runtime Mobile's ORT format
(.ort)."""

from __future__ import annotations

from pydantic import Field

from registry.packaging.targets import Target, TargetOptions, register


class MobileOptions(TargetOptions):
    """Options of the mobile targets."""

    optimization_style: str = Field(
        "Fixed",
        pattern="^(Fixed|Runtime)$",
        description="ORT format optimisation: Fixed (optimised for the generic CPU EP at build "
        "time) "
        "or Runtime (saved so the device's EP, e.g. NNAPI/XNNPACK, can optimise at load)",
    )


@register
class AndroidArm64(Target):
    """Android phones and tablets on ARM64: ExecuTorch with XNNPACK where the card has a PyTorch
    source (`pytorch:`), and ONNX Runtime Mobile (onnxruntime-android) always."""

    name = "android-arm64"
    summary = "Android ARM64 (ExecuTorch from a .pt2; ONNX Runtime Mobile)"
    produces = (
        "ExecuTorch program (.pte, XNNPACK) when the card has pytorch: (a .pt2); "
        "ORT format (.ort) for onnxruntime-android, NNAPI/XNNPACK EPs at load time"
    )
    converters = ("executorch", "ort-format")
    engines = ("executorch", "onnxruntime-mobile")
    runtime = "onnxruntime-mobile"
    runner = "ubuntu-latest"
    os = "android"
    arch = "aarch64"
    needs = ("onnxruntime", "executorch (with pytorch:)")
    Options = MobileOptions

    def verification_scope(
        self, providers: list[str], engine: str = "onnxruntime"
    ) -> tuple[bool, str]:
        """The build machine runs the very file that ships, with a desktop build of its runtime."""
        if engine == "executorch":
            return False, (
                "same .pte and XNNPACK delegate, run by ExecuTorch's Python runtime on the build "
                "machine, not on an ARM device"
            )
        return False, "same ORT-format file and kernels, not run by the mobile runtime on a device"
