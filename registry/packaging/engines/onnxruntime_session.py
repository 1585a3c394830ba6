"""onnxruntime: ONNX Runtime inference sessions for .onnx and .ort files."""

from __future__ import annotations

from pathlib import Path

from registry.packaging.engines import Engine, EngineSetting, Runner, register

LEVELS = ("disable", "basic", "extended", "all")


@register
class OnnxRuntimeEngine(Engine):
    """ONNX Runtime with a graph-optimisation level and an intra-op thread count."""

    name = "onnxruntime"
    formats = ("onnx", "ort")

    def version(self) -> str | None:
        """The installed onnxruntime version."""
        try:
            import onnxruntime
        except ImportError:
            return None
        return onnxruntime.__version__

    def settings(self, threads: list[int], providers: list[str]) -> list[EngineSetting]:
        """Every optimisation level × every thread count."""
        return [
            EngineSetting(
                engine=self.name, graph_optimization=level, threads=t, providers=providers
            )
            for level in LEVELS
            for t in threads
        ]

    def default_setting(self, providers: list[str]) -> EngineSetting:
        """All graph optimisations, the runtime's default thread count, the target's providers."""
        return EngineSetting(
            engine=self.name, graph_optimization="all", threads=0, providers=providers
        )

    def open(self, path: Path, setting: EngineSetting) -> Runner:
        """An InferenceSession with the setting; returns its run function."""
        return self._session(str(path), setting, ort_format=path.suffix == ".ort")

    def open_bytes(
        self, files: dict[str, bytes], model_file: str, setting: EngineSetting
    ) -> Runner:
        """An InferenceSession over the model's bytes."""
        return self._session(files[model_file], setting, ort_format=model_file.endswith(".ort"))

    def _session(self, model: str | bytes, setting: EngineSetting, *, ort_format: bool) -> Runner:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = setting.threads
        so.inter_op_num_threads = 1
        if ort_format:
            so.add_session_config_entry("session.load_model_format", "ORT")
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            None: ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[setting.graph_optimization]
        available = set(ort.get_available_providers())
        providers = [p for p in setting.providers if p in available] or ["CPUExecutionProvider"]
        session = ort.InferenceSession(model, sess_options=so, providers=providers)
        return lambda feeds: session.run(None, feeds)
