"""ios-arm64: ONNX Runtime Mobile's ORT format (.ort) for iOS on ARM64."""

from __future__ import annotations

from registry.targets import Target, register
from registry.targets.android_arm64 import AndroidArm64, MobileOptions


@register
class IosArm64(Target):
    """iPhones and iPads (ONNX Runtime Mobile, onnxruntime-objc / onnxruntime-c pods)."""

    name = "ios-arm64"
    summary = "iOS ARM64 (ONNX Runtime Mobile)"
    produces = "ORT format (.ort) for the onnxruntime-c / onnxruntime-objc pods; CoreML EP at load time"
    converters = ("ort-format",)
    engines = ("onnxruntime-mobile",)
    runtime = "onnxruntime-mobile"
    runner = "macos-latest"
    os = "ios"
    arch = "aarch64"
    Options = MobileOptions
    verification_scope = AndroidArm64.verification_scope
