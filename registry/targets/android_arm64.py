"""android-arm64: ONNX Runtime Mobile's ORT format (.ort) for Android on ARM64."""

from __future__ import annotations

from pydantic import Field

from registry.targets import Target, TargetOptions, register


class MobileOptions(TargetOptions):
    """Options of the mobile targets."""

    optimization_style: str = Field(
        "Fixed", pattern="^(Fixed|Runtime)$",
        description="ORT format optimisation: Fixed (optimised for the generic CPU EP at build time) "
                    "or Runtime (saved so the device's EP, e.g. NNAPI/XNNPACK, can optimise at load)")


@register
class AndroidArm64(Target):
    """Android phones and tablets on ARM64 (ONNX Runtime Mobile, onnxruntime-android)."""

    name = "android-arm64"
    summary = "Android ARM64 (ONNX Runtime Mobile)"
    produces = "ORT format (.ort) for onnxruntime-android; NNAPI/XNNPACK EPs at load time"
    converters = ("ort-format",)
    engines = ("onnxruntime-mobile",)
    runtime = "onnxruntime-mobile"
    runner = "ubuntu-latest"
    os = "android"
    arch = "aarch64"
    Options = MobileOptions

    def verification_scope(self, providers: list[str]) -> tuple[bool, str]:
        """The build machine runs the very .ort file with the full ONNX Runtime, not the mobile one."""
        return False, "same ORT-format file and kernels, not run by the mobile runtime on a device"
