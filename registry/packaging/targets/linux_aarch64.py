"""linux-aarch64: ONNX for ONNX Runtime CPU on 64-bit ARM Linux."""

from __future__ import annotations

from registry.packaging.targets import Target, register


@register
class LinuxAarch64(Target):
    """Linux on 64-bit ARM (Graviton, Ampere, Jetson CPU, Raspberry Pi 4/5)."""

    name = "linux-aarch64"
    summary = "Linux ARM64 (ARM servers, edge boards)"
    produces = "ONNX (.onnx) for ONNX Runtime CPU"
    converters = ("onnx",)
    engines = ("onnxruntime",)
    runner = "ubuntu-24.04-arm"
    os = "linux"
    arch = "aarch64"
