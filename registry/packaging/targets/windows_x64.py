"""windows-x64: ONNX for ONNX Runtime CPU on 64-bit Windows."""

from __future__ import annotations

from registry.packaging.targets import Target, register


@register
class WindowsX64(Target):
    """Windows on x86-64."""

    name = "windows-x64"
    summary = "Windows x64 (desktops, servers)"
    produces = "ONNX (.onnx) for ONNX Runtime CPU"
    converters = ("onnx",)
    engines = ("onnxruntime",)
    runner = "windows-latest"
    os = "windows"
    arch = "x86_64"
