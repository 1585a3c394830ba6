"""Building, reading and running device packages end to end (local builds and tagged versions)."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from factories import FAST, conv_onnx, example_card, mlp_onnx, write_package_source
from registry.core.errors import ConversionError, ModelFormatError, StorageError, UsageError
from registry.packaging.archive import deterministic_tar, open_package
from registry.packaging.build import build_package
from registry.packaging.plan import plan
from registry.packaging.protocol import read_onnx_block
from registry.packaging.run import run_package
from registry.packaging.source import source_from_files, source_from_tag


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One linux-x86_64 package of the MLP, shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("built")
    model, card = write_package_source(
        tmp / "src", mlp_onnx(), "  - linux-x86_64\n  - android-arm64\n"
    )
    source = source_from_files(model, card)
    return source, build_package(source, "linux-x86_64", tmp / "dist", overrides=FAST)


def test_package_holds_model_manifest_and_loader(built):
    _, result = built
    assert result.path.name == "mlp-1.0.0-linux-x86_64.tar.gz"
    with tarfile.open(result.path) as tar:
        names = sorted(tar.getnames())
        manifest = json.loads(tar.extractfile("mlp-1.0.0-linux-x86_64/manifest.json").read())
    assert "mlp-1.0.0-linux-x86_64/loader.py" in names
    assert manifest["model"] == "mlp@1.0.0" and manifest["verified"] is True
    assert set(manifest["files"]) >= {"loader.py", manifest["model_file"]}
    block = manifest["description"]
    assert block["source_model"] == "mlp@1.0.0" and block["protocol"] == 1
    assert block["weight_dtype"] == "float32" and block["quantized"] is False
    # every candidate verified (ONNX Runtime and OpenVINO), with numbers
    assert {v["converter"] for v in manifest["verification"]} == {"onnx", "openvino-ir"}
    assert all(o["cosine"] > 0.9999 for v in manifest["verification"] for o in v["outputs"])


def test_benchmark_times_every_setting_beside_the_package_not_inside(built):
    _, result = built
    bench = result.benchmark
    assert bench.measured and result.benchmark_file.name == "mlp-1.0.0-linux-x86_64.benchmark.json"
    assert json.loads(result.benchmark_file.read_text())["timings"]
    timed = [t for t in bench.timings if t.median_ms is not None]
    engines = {t.setting.engine for t in timed}
    assert engines == {"onnxruntime", "openvino"}
    assert {t.setting.graph_optimization for t in timed if t.setting.engine == "onnxruntime"} == {
        "disable",
        "basic",
        "extended",
        "all",
    }
    assert all(t.p90_ms >= t.median_ms for t in timed)
    assert bench.machine.cpus >= 1 and bench.advice.startswith(f"of {len(timed)} timed settings")
    # what ships is the rule's choice: the first candidate, the engine's default setting
    m = result.manifest
    assert m.benchmark.chosen_converter == "onnx" and m.engine.threads == 0
    assert m.engine.graph_optimization == "all" and "a fixed rule" in m.benchmark.reason
    # the manifest keeps the choice, never the timings or the machine
    assert m.benchmark.measured and m.benchmark.timings == [] and m.benchmark.machine is None
    assert m.benchmark.advice is None
    # the chosen setting itself was verified, not only the candidate under a default setting
    check = m.engine_verification
    assert check.passed and check.setting == m.engine.label()


def test_rebuilds_with_the_benchmark_on_are_byte_identical(tmp_path):
    """Two builds that time the engines (the default) give the same bytes, whatever the
    timings said, so a re-run release finds its packages already published."""
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-x86_64\n")
    source = source_from_files(model, card)
    a = build_package(source, "linux-x86_64", tmp_path / "a", overrides=FAST)
    b = build_package(source, "linux-x86_64", tmp_path / "b", overrides=FAST)
    assert a.benchmark.measured and b.benchmark.measured
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.benchmark.timings != b.benchmark.timings  # measured twice, differently


def test_the_card_pins_the_engine_setting_the_advice_names(tmp_path):
    targets = """\
      - name: linux-x86_64
        options:
          openvino: false
          engine: {threads: 1, graph_optimization: extended}
    """
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), targets)
    result = build_package(source_from_files(model, card), "linux-x86_64", tmp_path, overrides=FAST)
    m = result.manifest
    assert (m.engine.threads, m.engine.graph_optimization) == (1, "extended")
    assert "the setting the card pins" in m.benchmark.reason and m.engine_verification.passed


def test_run_package_matches_the_source_model(built):
    source, result = built
    x = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)
    want = ort.InferenceSession(str(source.weights)).run(None, {"input": x})[0]
    got = run_package(result.path, {"input": x})["probabilities"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_loader_in_the_package_runs_it(built, tmp_path):
    import subprocess
    import sys

    _, result = built
    with tarfile.open(result.path) as tar:
        tar.extractall(tmp_path, filter="data")
    np.save(tmp_path / "x.npy", np.ones((1, 8), np.float32))
    folder = tmp_path / "mlp-1.0.0-linux-x86_64"
    proc = subprocess.run(
        [sys.executable, "loader.py", str(tmp_path / "x.npy")],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("probabilities (1, 3) float32")
    # a changed file is refused by the loader too
    (folder / result.manifest.model_file).write_bytes(b"junk")
    proc = subprocess.run(
        [sys.executable, "loader.py", str(tmp_path / "x.npy")],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "does not match manifest.json" in proc.stderr


def test_same_inputs_give_byte_identical_packages(tmp_path):
    targets = "  - linux-x86_64\n  - cuda\n  - name: android-arm64\n    quantize: dynamic\n"
    model, card = write_package_source(tmp_path / "src", conv_onnx(), targets)
    source = source_from_files(model, card)
    for target in ("android-arm64", "cuda", "linux-x86_64"):
        a = build_package(source, target, tmp_path / "a", overrides=FAST, benchmark=False)
        b = build_package(source, target, tmp_path / "b", overrides=FAST, benchmark=False)
        assert a.path.read_bytes() == b.path.read_bytes(), target
    assert a.manifest.description.tools.get("ort_layout") is None
    ort_pkg = open_package(tmp_path / "a" / "mlp-1.0.0-android-arm64.tar.gz")
    assert ort_pkg.manifest.model_file == "model/model.ort"
    assert ort_pkg.manifest.description.tools["ort_layout"] == "canonical"
    with tarfile.open(a.path) as tar:
        assert {m.mtime for m in tar.getmembers()} == {0} and {m.uid for m in tar.getmembers()} == {
            0
        }
    assert a.path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime


def test_deterministic_tar_ignores_insertion_order():
    one = deterministic_tar("p", {"b.txt": b"2", "a/x.bin": b"1"})
    two = deterministic_tar("p", {"a/x.bin": b"1", "b.txt": b"2"})
    assert one == two
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        assert tar.getnames() == ["p", "p/a", "p/a/x.bin", "p/b.txt"]


def test_processing_is_merged_into_the_graph(tmp_path):
    targets = """\
      - name: linux-aarch64
        processing:
          - normalize: {mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5]}
          - softmax: {axis: -1}
          - topk: {k: 2}
    """
    model, card = write_package_source(tmp_path / "src", conv_onnx(), targets, name="cnn")
    result = build_package(
        source_from_files(model, card), "linux-aarch64", tmp_path / "dist", overrides=FAST
    )
    assert result.manifest.outputs == ["logits_values", "logits_indices"]
    assert [p.split("(")[0] for p in result.manifest.description.processing] == [
        "normalize",
        "softmax",
        "topk",
    ]
    raw = np.random.default_rng(0).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    mean = np.array([0.5, 0.4, 0.3], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2, 0.25, 0.5], np.float32).reshape(1, 3, 1, 1)
    logits = ort.InferenceSession(str(model)).run(None, {"image": (raw - mean) / std})[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    out = run_package(result.path, {"image": raw})
    np.testing.assert_array_equal(out["logits_indices"][0], np.argsort(-probs[0])[:2])
    np.testing.assert_allclose(out["logits_values"][0], np.sort(probs[0])[::-1][:2], rtol=1e-5)


def test_processing_naming_a_missing_output_is_an_error(tmp_path):
    targets = "  - name: linux-aarch64\n    processing:\n      - softmax: {output: scores}\n"
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), targets)
    with pytest.raises(ConversionError, match="output 'scores'.*does not have"):
        build_package(
            source_from_files(model, card), "linux-aarch64", tmp_path / "dist", overrides=FAST
        )


def test_unconvertible_op_is_named_with_node_and_target(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["h"], name="r0"),
            helper.make_node("Frobnicate", ["h"], ["y"], name="weird_node", domain="com.example"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    bad = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    bad.ir_version = 8
    model, card = write_package_source(
        tmp_path / "src", bad.SerializeToString(), "  - windows-x64\n"
    )
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "windows-x64", tmp_path / "dist", overrides=FAST
        )
    assert "com.example:Frobnicate" in e.value.message and "'weird_node'" in e.value.message
    assert "windows-x64" in e.value.message


def test_unknown_target_suggests_the_nearest(tmp_path):
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-x86_64\n")
    with pytest.raises(UsageError) as e:
        build_package(source_from_files(model, card), "linux-x86-64", tmp_path / "dist")
    assert "linux-x86-64" in e.value.message and "did you mean 'linux-x86_64'" in e.value.hint


def test_unknown_target_option_suggests_the_nearest(tmp_path):
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-x86_64\n")
    with pytest.raises(UsageError) as e:
        build_package(
            source_from_files(model, card),
            "linux-x86_64",
            tmp_path / "dist",
            overrides={"repeat": 3},
        )
    assert "did you mean 'repeats'" in e.value.hint


def test_unknown_converter_suggests_the_nearest(tmp_path):
    model, card = write_package_source(
        tmp_path / "src", mlp_onnx(), "  - name: linux-aarch64\n    converter: onnx-fp61\n"
    )
    with pytest.raises(UsageError) as e:
        build_package(source_from_files(model, card), "linux-aarch64", tmp_path / "dist")
    assert (
        "no converter named 'onnx-fp61'" in e.value.message
        and "did you mean 'onnx-fp16'" in e.value.hint
    )


def test_a_converter_of_another_target_is_refused(tmp_path):
    model, card = write_package_source(
        tmp_path / "src", mlp_onnx(), "  - name: android-arm64\n    converter: openvino-ir\n"
    )
    with pytest.raises(UsageError) as e:
        build_package(source_from_files(model, card), "android-arm64", tmp_path / "dist")
    assert e.value.message == "converter 'openvino-ir' does not build packages for android-arm64"
    assert "executorch, ort-format" in e.value.hint
    assert not (tmp_path / "dist").exists()


def test_one_failed_conversion_drops_that_candidate_only(tmp_path, monkeypatch):
    from registry.packaging.converters.openvino_ir import OpenVinoIrConverter

    def fails(self, source, out_dir, **kw):
        raise ConversionError("openvino-ir cannot convert this graph (simulated)")

    monkeypatch.setattr(OpenVinoIrConverter, "convert", fails)
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - linux-x86_64\n")
    source = source_from_files(model, card)
    result = build_package(source, "linux-x86_64", tmp_path / "dist", overrides=FAST)
    assert result.manifest.description.converter == "onnx"
    failed = [v for v in result.manifest.verification if v.status == "error"]
    assert [(v.converter, v.message) for v in failed] == [
        ("openvino-ir", "openvino-ir cannot convert this graph (simulated)")
    ]
    with pytest.raises(ConversionError, match="simulated"):  # asked for by name: it stops
        build_package(
            source, "linux-x86_64", tmp_path / "d2", overrides={**FAST, "converter": "openvino-ir"}
        )


def test_plan_lists_targets_with_runners(tmp_path):
    model, card = write_package_source(
        tmp_path / "src",
        mlp_onnx(),
        "  - linux-x86_64\n  - linux-aarch64\n  - ios-arm64\n  - windows-x64\n",
    )
    p = plan(source_from_files(model, card).card)
    assert [(t.target, t.runner) for t in p.targets] == [
        ("linux-x86_64", "ubuntu-latest"),
        ("linux-aarch64", "ubuntu-24.04-arm"),
        ("ios-arm64", "macos-latest"),
        ("windows-x64", "windows-latest"),
    ]
    assert p.tag == "mlp@v1.0.0" and p.matrix["include"][2] == {
        "target": "ios-arm64",
        "runner": "macos-latest",
    }


def test_package_a_tagged_version_from_the_public_remote(registry_repo, tmp_path):
    weights = mlp_onnx(seed=5)

    registry_repo.add_model(
        "tagged",
        weights,
        card=example_card(
            "tagged",
            size=len(weights),
            version="2.0.0",
            status="published",
            extra="targets:\n  - name: linux-aarch64\n    options: {samples: 2}\n",
        ),
    )
    registry_repo.dvc("push", "-q", "-r", "public", "models/tagged/model.onnx.dvc")
    registry_repo.git("tag", "-a", "tagged@v2.0.0", "-m", "tagged 2.0.0")
    proc = registry_repo.registry("package", "tagged@2.0.0", "--plan", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["matrix"] == {
        "include": [{"target": "linux-aarch64", "runner": "ubuntu-24.04-arm"}]
    }
    source = source_from_tag("tagged@2.0.0", registry_repo.root, tmp_path / "work")
    assert source.weights.read_bytes() == weights
    result = build_package(source, "linux-aarch64", tmp_path / "dist", overrides=FAST)
    block = read_onnx_block_from(result.path)
    assert block.source_model == "tagged@2.0.0" and not result.manifest.benchmark.measured
    assert "not measured on device" in result.manifest.benchmark.reason
    with pytest.raises(UsageError, match="no version tag tagged@v9.9.9"):
        source_from_tag("tagged@9.9.9", registry_repo.root, tmp_path / "work2")


def read_onnx_block_from(package_path):
    """The description block stored inside the packaged ONNX model."""
    pkg = open_package(package_path)
    model = onnx.load_from_string(pkg.model_bytes)
    path = package_path.parent / "inner.onnx"
    onnx.save(model, str(path))
    return read_onnx_block(path)


# --------------------------------------------------------------------------- the PyTorch source
# (pytorch:)


@pytest.fixture(scope="module")
def torch_model():
    """(ONNX bytes, .pt2 bytes) of one small torch classifier."""
    from factories import torch_sources

    return torch_sources(seed=11)


def test_a_pickled_pt2_stops_the_build_and_is_never_unpickled(tmp_path, torch_model):
    import pickle
    import zipfile

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(tmp_path / 'ran')!r}, 'w').close()",)

    onnx_bytes, pt2 = torch_model
    with zipfile.ZipFile(io.BytesIO(pt2)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    root = next(iter(files)).split("/", 1)[0]
    files[f"{root}/data/constants/model_constants_config.json"] = json.dumps(
        {
            "config": {
                "hook": {
                    "path_name": "opaque_obj_0",
                    "is_param": False,
                    "use_pickle": True,
                    "tensor_meta": None,
                }
            }
        }
    ).encode()
    files[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(Payload())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    model, card = write_package_source(
        tmp_path / "src", onnx_bytes, "  - android-arm64\n", pytorch=buf.getvalue()
    )
    with pytest.raises(ModelFormatError) as e:
        build_package(
            source_from_files(model, card), "android-arm64", tmp_path / "dist", overrides=FAST
        )
    assert e.value.message.startswith(
        "model.pt2: entry 'data/constants/opaque_obj_0' holds the object constant "
        "'hook' as a pickle"
    )
    assert not (tmp_path / "ran").exists() and not (tmp_path / "dist").exists()


def test_a_missing_pt2_file_matters_only_to_the_targets_that_convert_it(tmp_path, torch_model):
    model, card = write_package_source(
        tmp_path / "src",
        torch_model[0],
        "  - linux-x86_64\n  - android-arm64\n",
        pytorch=torch_model[1],
    )
    (tmp_path / "src" / "model.pt2").unlink()
    source = source_from_files(model, card)  # the card names it; a local build may lack it
    assert source.pytorch is None and source.pytorch_missing == card.parent / "model.pt2"
    result = build_package(source, "linux-x86_64", tmp_path / "dist", overrides=FAST)
    assert result.path.is_file()  # the ONNX targets never needed the .pt2
    with pytest.raises(UsageError) as e:
        build_package(
            source,
            "android-arm64",
            tmp_path / "dist",
            overrides={**FAST, "converter": "executorch"},
        )
    assert e.value.message == (
        "target android-arm64 (converter executorch) needs the card's PyTorch source "
        f"{card.parent / 'model.pt2'}, which is not there"
    )
    assert "dvc pull" in e.value.hint
    lines = []
    android = build_package(
        source, "android-arm64", tmp_path / "dist", overrides=FAST, log=lines.append
    )
    assert android.manifest.description.converter == "ort-format"
    assert "model.pt2 is not here: converters from it (executorch) are left out" in lines


def test_the_pt2_of_a_tagged_version_comes_from_the_public_remote(
    registry_repo, tmp_path, torch_model
):
    onnx_bytes, pt2 = torch_model
    registry_repo.add_model(
        "tagged",
        onnx_bytes,
        commit=False,
        card=example_card(
            "tagged",
            size=len(onnx_bytes),
            version="2.0.0",
            status="published",
            extra="pytorch: model.pt2\ntargets:\n  - android-arm64\n",
        ),
    )
    registry_repo.track("models/tagged/model.pt2", pt2)
    registry_repo.commit(message="tagged 2.0.0")
    registry_repo.dvc("push", "-q", "-r", "public", "models/tagged/model.onnx.dvc")
    registry_repo.git("tag", "-a", "tagged@v2.0.0", "-m", "tagged 2.0.0")
    with pytest.raises(StorageError) as e:  # the .pt2 object never reached public
        source_from_tag("tagged@2.0.0", registry_repo.root, tmp_path / "work")
    assert e.value.message.startswith("models/tagged/model.pt2 of tagged@v2.0.0: object ")
    assert "is not in remote 'public'" in e.value.message
    registry_repo.dvc("push", "-q", "-r", "public", "models/tagged/model.pt2.dvc")
    source = source_from_tag("tagged@2.0.0", registry_repo.root, tmp_path / "work2")
    assert source.pytorch.read_bytes() == pt2
    result = build_package(
        source, "android-arm64", tmp_path / "dist", overrides=FAST, benchmark=False
    )
    assert (
        result.manifest.model_file == "model/model.pte"
        and result.manifest.description.source_model == "tagged@2.0.0"
    )


def test_a_pt2_that_takes_other_inputs_than_the_onnx(tmp_path, torch_model):
    model, card = write_package_source(
        tmp_path / "src", mlp_onnx(inputs=10), "  - android-arm64\n", pytorch=torch_model[1]
    )
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "android-arm64", tmp_path / "dist", overrides=FAST
        )
    assert e.value.message == (
        "model.pt2: input 'input' is float32 [1, 8], but the ONNX model's input 'input' "
        "is float32 ['batch', 10]"
    )
    assert "same module" in e.value.hint


def test_steps_applied_to_the_onnx_only_leave_the_pt2_out(tmp_path, torch_model):
    targets = "  - name: android-arm64\n    quantize: dynamic\n"
    model, card = write_package_source(
        tmp_path / "src", torch_model[0], targets, pytorch=torch_model[1]
    )
    result = build_package(
        source_from_files(model, card), "android-arm64", tmp_path / "dist", overrides=FAST
    )
    assert result.manifest.model_file == "model/model.ort"
    assert [v.converter for v in result.manifest.verification] == ["ort-format"]
    with pytest.raises(
        ConversionError,
        match="the executorch converter cannot build this package: int8 "
        "quantization applies to the ONNX model only",
    ):
        build_package(
            source_from_files(model, card),
            "android-arm64",
            tmp_path / "dist",
            overrides={**FAST, "converter": "executorch"},
        )


def test_a_pt2_converter_without_a_pt2(tmp_path):
    model, card = write_package_source(tmp_path / "src", mlp_onnx(), "  - android-arm64\n")
    with pytest.raises(
        UsageError, match="converter 'executorch' converts the card's PyTorch source"
    ):
        build_package(
            source_from_files(model, card),
            "android-arm64",
            tmp_path / "dist",
            overrides={"converter": "executorch"},
        )
    # without pytorch: the target behaves as before, ORT format only
    result = build_package(
        source_from_files(model, card), "android-arm64", tmp_path / "dist", overrides=FAST
    )
    assert [v.converter for v in result.manifest.verification] == ["ort-format"]
