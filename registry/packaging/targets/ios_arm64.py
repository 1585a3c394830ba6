"""ios-arm64: Core ML (.mlpackage) from the card's .pt2, and ONNX Runtime Mobile's ORT format
(.ort)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from registry.packaging.targets import Target, register
from registry.packaging.targets.android_arm64 import MobileOptions


class IosOptions(MobileOptions):
    """Options of the ios-arm64 target."""

    coreml_precision: Literal["fp32", "fp16"] = Field(
        "fp32",
        description="Core ML compute precision: fp32, or fp16 (verified with the fp16 thresholds)",
    )
    coreml_min_ios: Literal[15, 16, 17, 18] = Field(
        16, description="Core ML deployment target: the oldest iOS release the .mlpackage runs on"
    )


@register
class IosArm64(Target):
    """iPhones and iPads: Core ML where the card has a PyTorch source (`pytorch:`), and ONNX
    Runtime Mobile (onnxruntime-c / onnxruntime-objc pods) always.

    Core ML converts anywhere but runs only on macOS and iOS: off macOS the .mlpackage is built and
    reported as not verified, and the .ort (verified) is packaged unless Core ML is asked for
    explicitly (`converter: coreml`), in which case the package is marked unverified.
    """

    name = "ios-arm64"
    summary = "iOS ARM64 (Core ML from a .pt2; ONNX Runtime Mobile)"
    produces = (
        "Core ML ML Program (.mlpackage) when the card has pytorch: (a .pt2); "
        "ORT format (.ort) for the onnxruntime-c / onnxruntime-objc pods, CoreML EP at load time"
    )
    converters = ("coreml", "ort-format")
    engines = ("coreml", "onnxruntime-mobile")
    runtime = "onnxruntime-mobile"
    runner = "macos-latest"
    os = "ios"
    arch = "aarch64"
    needs = ("onnxruntime", "coremltools (with pytorch:; runs on macOS only)")
    Options = IosOptions

    def verification_scope(
        self, providers: list[str], engine: str = "onnxruntime"
    ) -> tuple[bool, str]:
        """Core ML on a Mac is the same framework as on iOS, but not the device."""
        if engine == "coreml":
            return False, "same .mlpackage run by this Mac's Core ML (CPU), not on an iOS device"
        return False, "same ORT-format file and kernels, not run by the mobile runtime on a device"
