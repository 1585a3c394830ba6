"""The fixtures build a real registry that the bot can check."""

from registry.core.repo import RegistryRepo


def test_a_valid_model_passes_card_checks(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny-mlp", onnx_bytes)
    proc = registry_repo.registry("check", "tiny-mlp", "--no-content", "--offline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS tiny-mlp" in proc.stdout


def test_changed_models_between_revisions(registry_repo, onnx_bytes):
    base = registry_repo.git("rev-parse", "HEAD")
    registry_repo.add_model("tiny-mlp", onnx_bytes)
    repo = RegistryRepo(registry_repo.root)
    assert repo.changed_models(base, "HEAD") == ["tiny-mlp"]
    assert repo.snapshot("HEAD").model_names() == ["tiny-mlp"]
    assert repo.snapshot(base).model_names() == []
