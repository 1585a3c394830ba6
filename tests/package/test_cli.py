"""The package/run command line: help texts, the target list, plan output, error exits."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from factories import mlp_onnx, registry_cli, write_package_source
from registry.cli import cli
from registry.packaging.converters import load_all as load_converters
from registry.packaging.engines import ENGINES, get_engine
from registry.packaging.targets import load_all


def test_every_registered_target_imports_and_describes_its_options():
    targets = load_all()
    assert set(targets) == {
        "linux-x86_64",
        "linux-aarch64",
        "windows-x64",
        "android-arm64",
        "ios-arm64",
        "cuda",
    }
    converters = load_converters()
    for name, cls in targets.items():
        assert cls.summary and cls.produces and cls.runner, name
        assert all(c in converters for c in cls.converters), name
        for field, info in cls.Options.model_fields.items():
            assert info.description, f"{name}.{field} has no description"
    assert {"onnxruntime", "openvino", "executorch", "coreml"} <= set(ENGINES.load())
    assert type(get_engine("onnxruntime")).name == "onnxruntime"


@pytest.mark.parametrize("command", ["package", "run", "verify"])
def test_commands_and_options_have_help(command):
    cmd = cli.commands[command]
    assert cmd.help and "Example" in cmd.help
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{command} {param.opts} has no help"


def test_list_targets_says_what_each_produces_and_needs():
    result = CliRunner().invoke(cli, ["package", "--list-targets"])
    assert result.exit_code == 0
    assert "android-arm64: Android ARM64" in result.output and "ORT format (.ort)" in result.output
    assert "openvino-ir" in result.output and "runner:     windows-latest" in result.output
    data = json.loads(
        CliRunner().invoke(cli, ["package", "--list-targets", "--format", "json"]).output
    )
    cuda = next(t for t in data if t["name"] == "cuda")
    assert "onnx-fp16" in cuda["converters"] and "fp32_fallback" in cuda["options"]


def test_cli_local_build_and_run(tmp_path):
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-aarch64\n")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "package",
            "--model",
            str(model),
            "--card",
            str(card),
            "-o",
            str(tmp_path / "d"),
            "--option",
            "repeats=2",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert (
        built[0]["target"] == "linux-aarch64" and built[0]["verified"] and not built[0]["measured"]
    )
    np.save(tmp_path / "x.npy", np.ones((1, 8), np.float32))
    result = runner.invoke(
        cli, ["run", built[0]["path"], "--input", str(tmp_path / "x.npy"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert np.asarray(json.loads(result.stdout)["probabilities"]).shape == (1, 3)


def test_cli_errors_exit_with_their_codes(tmp_path):
    import subprocess
    import sys

    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-aarch64\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "package",
            "--model",
            str(model),
            "--card",
            str(card),
            "--target",
            "andriod-arm64",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "did you mean 'android-arm64'" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "package",
            "--model",
            str(model),
            "--card",
            str(card),
            "--target",
            "linux-aarch64",
            "--quantize",
            "static",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        proc.returncode == 6
        and "needs calibration data" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_cli_verify_passes_a_package_and_fails_one_whose_reference_disagrees(tmp_path, capsys):
    import hashlib
    import io

    from registry.packaging.archive import REFERENCE, deterministic_tar, open_package

    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-aarch64\n")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "package",
            "--model",
            str(model),
            "--card",
            str(card),
            "-o",
            str(tmp_path / "d"),
            "--no-benchmark",
            "--format",
            "json",
        ],
    )
    path = json.loads(result.stdout)[0]["path"]
    result = runner.invoke(cli, ["verify", path])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{path}: onnx (fp32): passed: probabilities: max_abs 0 ")
    # the same package whose stored source outputs say something else (hashes made consistent)
    pkg = open_package(Path(path))
    with np.load(io.BytesIO(pkg.files[REFERENCE])) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["output/probabilities"] = arrays["output/probabilities"][:, :, ::-1].copy()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files = {**pkg.files, REFERENCE: buf.getvalue()}
    files.pop("manifest.json")
    manifest = pkg.manifest.model_copy(
        update={"files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    )
    files["manifest.json"] = manifest.model_dump_json().encode()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(deterministic_tar("mlp-1.0.0-linux-aarch64", files))
    code, out, err = registry_cli(tmp_path, "verify", str(bad), "--format", "json", capsys=capsys)
    assert code == 6
    record = json.loads(out)[0]
    assert record["status"] == "failed" and record["outputs"][0]["cosine"] < 0.99999
    assert "1 of 1 package(s) failed verification on this machine" in err


def test_run_writes_the_outputs_as_npy_or_npz(tmp_path, capsys):
    from factories import FAST
    from registry.packaging.build import build_package
    from registry.packaging.source import source_from_files

    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-x86_64\n")
    built = build_package(
        source_from_files(model, card), "linux-x86_64", tmp_path / "dist", overrides=FAST
    )
    x = tmp_path / "x.npy"
    np.save(x, np.ones((2, 8), np.float32))
    code, out, err = registry_cli(
        tmp_path,
        "run",
        str(built.path),
        "--input",
        str(x),
        "-o",
        str(tmp_path / "out.npy"),
        capsys=capsys,
    )
    assert code == 0, err
    saved = np.load(tmp_path / "out.npy")
    assert saved.shape == (2, 3) and np.allclose(saved.sum(axis=1), 1, atol=1e-5)
    code, _, err = registry_cli(
        tmp_path,
        "run",
        str(built.path),
        "--input",
        str(x),
        "-o",
        str(tmp_path / "out.npz"),
        capsys=capsys,
    )
    assert code == 0 and np.array_equal(np.load(tmp_path / "out.npz")["probabilities"], saved)
    code, _, err = registry_cli(
        tmp_path,
        "run",
        str(built.path),
        "--input",
        str(x),
        "-o",
        str(tmp_path / "out.txt"),
        capsys=capsys,
    )
    assert code == 2 and "write .npy or .npz" in err and not (tmp_path / "out.txt").exists()
