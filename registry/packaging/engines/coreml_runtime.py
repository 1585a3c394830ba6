"""coreml: Apple's Core ML, through coremltools' `MLModel.predict`, for .mlpackage models (macOS
only)."""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path, PurePosixPath

from registry.core.errors import UsageError, missing_dependency
from registry.packaging.engines import Engine, EngineSetting, Runner, register

OFF_MACOS = (
    "Core ML runs only on macOS and iOS: a Core ML package is verified on a Mac "
    "(`registry verify PACKAGE`, which the release workflow's macOS job runs)"
)


def ios_equivalent(macos: str) -> str | None:
    """The iOS release whose Core ML a macOS release carries: macOS 13 → 16, 14 → 17, 15 → 18, 26 →
    26."""
    try:
        major = int(macos.split(".")[0])
    except ValueError:
        return None
    return str(major if major >= 26 else major + 3)


@register
class CoreMlEngine(Engine):
    """Core ML on this Mac, CPU only (float32 arithmetic, so the fp32 gate applies as elsewhere).

    `version()` is the iOS release equivalent to this Mac's Core ML (the description block's
    minimum is an iOS release); None off macOS or without coremltools' native part.
    """

    name = "coreml"
    formats = ("mlpackage",)

    def version(self) -> str | None:
        """The iOS-equivalent Core ML version of this Mac, or None where Core ML cannot run."""
        if platform.system() != "Darwin":
            return None
        try:
            import coremltools.libcoremlpython  # noqa: F401  (the native part exists on macOS only)
        except ImportError:
            return None
        return ios_equivalent(platform.mac_ver()[0])

    def runs_here(self) -> tuple[bool, str]:
        """Only on macOS with coremltools installed."""
        if platform.system() != "Darwin":
            return False, OFF_MACOS
        if self.version() is None:
            return False, "coremltools is not installed: pip install 'git-model-registry[mobile]'"
        return True, ""

    def settings(self, threads: list[int], providers: list[str]) -> list[EngineSetting]:
        """One setting: Core ML schedules its own threads."""
        return [self.default_setting(providers)]

    def open(self, path: Path, setting: EngineSetting) -> Runner:
        """Load the .mlpackage for the CPU; returns its run function."""
        ok, why = self.runs_here()
        if not ok:
            raise UsageError(f"cannot run {Path(path).name} here: {why}")
        try:
            import coremltools as ct
        except ImportError as e:
            raise missing_dependency("coremltools", "mobile") from e
        model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        spec = model.get_spec()
        inputs = [i.name for i in spec.description.input]
        outputs = [o.name for o in spec.description.output]

        def run(feeds):
            """Outputs for one set of inputs, passed in the model's input order."""
            result = model.predict(dict(zip(inputs, feeds.values())))
            return [result[name] for name in outputs]

        return run

    def open_bytes(
        self, files: dict[str, bytes], model_file: str, setting: EngineSetting
    ) -> Runner:
        """Core ML reads a package folder: the files are written to a private temporary folder."""
        tmp = tempfile.TemporaryDirectory(prefix="registry-coreml-")
        prefix = model_file.rstrip("/") + "/"
        for name, data in files.items():
            if name.startswith(prefix):
                dest = Path(tmp.name, PurePosixPath(model_file).name, name[len(prefix) :])
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
        run = self.open(Path(tmp.name, PurePosixPath(model_file).name), setting)

        def keep(feeds):
            """`run`, holding the temporary folder for as long as the runner lives."""
            _ = tmp
            return run(feeds)

        return keep
