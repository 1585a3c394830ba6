"""linux-x86_64: ONNX for ONNX Runtime CPU, and OpenVINO IR where OpenVINO is installed."""

from __future__ import annotations

from pydantic import Field

from registry.packaging.targets import Target, TargetOptions, register


class LinuxX86Options(TargetOptions):
    """Options of the linux-x86_64 target."""

    openvino: bool = Field(
        True,
        description="also try OpenVINO as a candidate engine (needs the "
        "'openvino' package: pip install 'git-model-registry[package]')",
    )


@register
class LinuxX86(Target):
    """Linux on x86-64 servers and desktops."""

    name = "linux-x86_64"
    summary = "Linux x86-64 (servers, desktops)"
    produces = "ONNX (.onnx) for ONNX Runtime CPU, or OpenVINO IR (.xml/.bin)"
    converters = ("onnx", "openvino-ir")
    engines = ("onnxruntime", "openvino")
    runner = "ubuntu-latest"
    os = "linux"
    arch = "x86_64"
    needs = ("onnxruntime", "openvino (optional)")
    Options = LinuxX86Options

    def candidate_converters(self, options: TargetOptions, pytorch: bool = False) -> list[str]:
        """ONNX first; OpenVINO IR when enabled and installed (else noted in the report)."""
        names = super().candidate_converters(options, pytorch)
        if not getattr(options, "openvino", True) and not options.converter:
            names = [n for n in names if n != "openvino-ir"]
        return names
