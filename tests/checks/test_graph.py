"""graph: the weights load safely, pass onnx.checker, run once, and render to a picture."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from factories import example_card, mlp_onnx
from registry.checks import CheckOptions, Finding, Severity, run_checks
from registry.core.repo import RegistryRepo
from registry.core.storage import parse_pointer

CARD = "models/tiny/model.yaml"
SVG = "{http://www.w3.org/2000/svg}"


def check(reg, head: str | None = "HEAD", checks=("graph",)):
    """Run the named checks on model 'tiny' at `head` (None: the working tree); return its
    report."""
    repo = RegistryRepo(reg.root)
    report = run_checks(
        ["tiny"], repo.snapshot(head), None, repo, CheckOptions(offline=True, only=list(checks))
    )
    return report.models[0]


def findings(reg, head: str | None = "HEAD") -> list[Finding]:
    return check(reg, head).findings


def weights_line(card: str) -> int:
    return next(i for i, line in enumerate(card.splitlines(), 1) if line.startswith("weights:"))


def add(reg, weights: bytes, weights_file: str = "model.onnx", **kw) -> str:
    card = example_card("tiny", weights_file=weights_file, size=len(weights))
    reg.add_model("tiny", weights, card=card, weights_file=weights_file, **kw)
    return card


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --------------------------------------------------------------------------- passing


@pytest.fixture
def passing_report(registry_repo, onnx_bytes):
    """The report of a valid model whose weights must come from staging."""
    add(registry_repo, onnx_bytes)
    (registry_repo.root / "models/tiny/model.onnx").unlink()
    shutil.rmtree(registry_repo.root / ".dvc" / "cache")
    return check(registry_repo)


def test_valid_model_passes_with_summary_text_and_picture(passing_report):
    assert passing_report.findings == []
    assert passing_report.checks_run == ["graph"]
    g = passing_report.artifacts["graph"]
    assert json.loads(json.dumps(g)) == g  # plain data
    assert g["format"] == "onnx"
    assert g["inputs"] == [{"name": "input", "shape": ["batch", 8], "dtype": "float"}]
    assert g["outputs"] == [{"name": "probabilities", "shape": ["batch", 3], "dtype": "float"}]
    assert g["op_counts"] == {"Gemm": 2, "Relu": 1, "Softmax": 1}
    assert g["opsets"] == {"ai.onnx": 17}
    assert g["parameter_count"] == 195
    assert g["md5"] == "146f70b6db290d4c7fef9c00409a4bad" and g["file_size"] == 1061
    assert passing_report.artifacts["graph_run"] == {"probabilities": [1, 3]}
    text = passing_report.artifacts["graph_text"]
    assert "ops (4 nodes): Gemm x2, Relu x1, Softmax x1" in text
    assert "parameters: 195 in 4 tensors" in text
    assert "opset: ai.onnx 17" in text
    svg = ET.fromstring(passing_report.artifacts["graph_svg"])
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"Gemm", "Relu", "Softmax", "input", "probabilities"} <= set(labels)


def test_working_tree_file_is_reused_when_it_matches(registry_repo, onnx_bytes):
    add(registry_repo, onnx_bytes)
    shutil.rmtree(registry_repo.storage / "staging")  # nothing to download: the local file must do
    shutil.rmtree(registry_repo.root / ".dvc" / "cache")
    report = check(registry_repo, head=None)
    assert report.findings == []
    assert report.artifacts["graph"]["op_counts"] == {"Gemm": 2, "Relu": 1, "Softmax": 1}


def test_changed_working_tree_file_is_not_trusted(registry_repo, onnx_bytes):
    add(registry_repo, onnx_bytes)
    (registry_repo.root / "models/tiny/model.onnx").write_bytes(mlp_onnx(seed=1))
    [f] = findings(registry_repo, head=None)
    assert f.severity is Severity.warning
    assert f.message == (
        "models/tiny/model.onnx in the working tree differs from what "
        "models/tiny/model.onnx.dvc records"
    )
    # the staging copy (what the pointer names) was checked instead
    assert (
        check(registry_repo, head=None).artifacts["graph"]["md5"]
        == "146f70b6db290d4c7fef9c00409a4bad"
    )


# --------------------------------------------------------------------------- bad weights


def test_truncated_onnx(registry_repo, onnx_bytes):
    card = add(registry_repo, onnx_bytes[:500])
    [f] = findings(registry_repo)
    assert f.message.startswith(
        "models/tiny/model.onnx starts like an ONNX model but cannot "
        "be parsed: it is truncated or corrupt"
    )
    assert (f.path, f.line) == (CARD, weights_line(card))
    assert "graph" not in check(registry_repo).artifacts


def test_not_onnx_at_all(registry_repo):
    card = add(registry_repo, b"<html>this is a download error page</html>\n")
    [f] = findings(registry_repo)
    assert f.message == "models/tiny/model.onnx is not an ONNX model (it does not parse as one)"
    assert "export the model to ONNX" in f.hint
    assert (f.path, f.line) == (CARD, weights_line(card))


@pytest.mark.parametrize(
    "weights_file, wrap, kind",
    [
        ("model.pkl", False, "a Python pickle"),
        ("model.pt", True, "a PyTorch checkpoint (torch.save zip with data.pkl)"),
        ("model.onnx", False, "a Python pickle"),  # a misleading name changes nothing
    ],
)
def test_pickle_based_weights_are_refused_and_never_unpickled(
    registry_repo, tmp_path, weights_file, wrap, kind
):
    import io
    import zipfile

    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Payload(marker), protocol=2)
    if wrap:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", payload)
            z.writestr("archive/version", "3\n")
        payload = buf.getvalue()
    card = add(registry_repo, payload, weights_file=weights_file)
    [f] = findings(registry_repo)
    assert f.message == (
        f"models/tiny/{weights_file} is {kind}: the registry refuses "
        "pickle-based weights, because unpickling runs arbitrary code from the file"
    )
    assert "ONNX" in f.hint and "safetensors" in f.hint
    assert (f.path, f.line) == (CARD, weights_line(card))
    assert not marker.exists()


def test_pickle_refused_through_the_cli(registry_repo, tmp_path):
    marker = tmp_path / "unpickled"
    card = add(registry_repo, pickle.dumps(_Payload(marker), protocol=4), weights_file="model.pt")
    proc = registry_repo.registry("check", "tiny", "--offline")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        f"error: {CARD}:{weights_line(card)}: models/tiny/model.pt is a Python pickle: "
        "the registry refuses pickle-based weights"
    ) in proc.stdout
    assert "[graph]" in proc.stdout
    assert not marker.exists()


def test_model_failing_the_checker(registry_repo):
    g = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])],
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    card = add(registry_repo, m.SerializeToString())
    [f] = findings(registry_repo)
    assert f.message.startswith("models/tiny/model.onnx fails the ONNX checker: ")
    assert "nowhere" in f.message
    assert (f.path, f.line) == (CARD, weights_line(card))


def test_model_that_does_not_run(registry_repo):
    # the target shape is an input: the checker cannot know it, the generated one cannot fit 6
    # values
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    card = add(registry_repo, m.SerializeToString())
    [f] = findings(registry_repo)
    assert f.message.startswith(
        "models/tiny/model.onnx: running the model once on generated inputs failed: "
    )
    assert "Reshape" in f.message or "reshape" in f.message
    assert (f.path, f.line) == (CARD, weights_line(card))


def test_corrupt_object_in_staging_is_found_by_its_hash(registry_repo, onnx_bytes):
    add(registry_repo, onnx_bytes)
    md5 = parse_pointer((registry_repo.root / "models/tiny/model.onnx.dvc").read_text()).md5
    obj = registry_repo.storage / "staging" / "files" / "md5" / md5[:2] / md5[2:]
    other = mlp_onnx(seed=7)
    assert len(other) == len(onnx_bytes)  # same size: only the hash can tell
    obj.chmod(0o644)
    obj.write_bytes(other)
    (registry_repo.root / "models/tiny/model.onnx").unlink()
    shutil.rmtree(registry_repo.root / ".dvc" / "cache")
    [f] = findings(registry_repo)
    assert f.message.startswith(
        f"the 'staging' copy of models/tiny/model.onnx is corrupt: object {md5} on "
        "remote 'staging' is corrupt (its content hashes to "
    )
    assert f.path == "models/tiny/model.onnx.dvc"
    # and the whole bot agrees: weights-storage sees the right size, graph sees the wrong content
    assert [
        x.check for x in check(registry_repo, checks=("weights-storage", "graph")).findings
    ] == ["graph"]


def test_missing_object_is_left_to_weights_storage(registry_repo, onnx_bytes):
    add(registry_repo, onnx_bytes, push=False)
    (registry_repo.root / "models/tiny/model.onnx").unlink()
    shutil.rmtree(registry_repo.root / ".dvc" / "cache")
    report = check(registry_repo, checks=("weights-storage", "graph"))
    assert [(f.check, f.severity) for f in report.findings] == [
        ("weights-storage", Severity.error),
        ("graph", Severity.notice),
    ]
    assert report.findings[1].message.startswith(
        "models/tiny/model.onnx was not checked: its object"
    )


# --------------------------------------------------------------------------- external data


def _external_model(location: str) -> tuple[bytes, bytes]:
    """The fixture model with its initializers in an external file named `location`."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        m = onnx.load_from_string(mlp_onnx())
        onnx.save_model(
            m,
            Path(d) / "model.onnx",
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="weights.data",
            size_threshold=0,
        )
        m = onnx.load(Path(d) / "model.onnx", load_external_data=False)
        for t in m.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
        return m.SerializeToString(), (Path(d) / "weights.data").read_bytes()


def test_external_data_tracked_by_dvc_passes(registry_repo):
    model, data = _external_model("weights.data")
    registry_repo.track("models/tiny/weights.data", data)
    add(registry_repo, model)
    (
        registry_repo.root / "models/tiny/weights.data"
    ).unlink()  # fetched from staging by its own pointer
    shutil.rmtree(registry_repo.root / ".dvc" / "cache")
    report = check(registry_repo)
    assert report.findings == []
    assert report.artifacts["graph"]["external_data"] == ["weights.data"]
    assert report.artifacts["graph_run"] == {"probabilities": [1, 3]}


@pytest.mark.parametrize(
    "location, says",
    [
        ("../other/weights.data", "points outside the model folder"),
        ("/etc/passwd", "is absolute; it must be a file inside the model folder"),
    ],
)
def test_external_data_outside_the_folder(registry_repo, location, says):
    model, data = _external_model(location)
    registry_repo.track("models/other/weights.data", data)
    card = add(registry_repo, model)
    [f] = findings(registry_repo)
    assert f.message == f"models/tiny/model.onnx: external data location '{location}' {says}"
    assert (f.path, f.line) == (CARD, weights_line(card))


def test_external_data_symlink_leaving_the_folder(registry_repo):
    model, data = _external_model("weights.data")
    registry_repo.track("models/other/weights.data", data)
    (registry_repo.root / "models/tiny").mkdir(parents=True)
    (registry_repo.root / "models/tiny/weights.data").symlink_to("../other/weights.data")
    card = add(registry_repo, model)
    [f] = findings(registry_repo)
    assert f.message == (
        "models/tiny/model.onnx: external data 'weights.data': models/tiny/weights.data is "
        "a symlink to '../other/weights.data', outside models/tiny/"
    )
    assert (f.path, f.line) == (CARD, weights_line(card))


def test_missing_external_data(registry_repo):
    model, _ = _external_model("weights.data")
    card = add(registry_repo, model)
    [f] = findings(registry_repo)
    assert f.message == "models/tiny/model.onnx: external data file 'weights.data' is missing"
    assert (f.path, f.line) == (CARD, weights_line(card))


# --------------------------------------------------------------------------- safetensors


def test_safetensors_gets_a_summary_and_a_notice(registry_repo):
    w = np.ones((4, 4), np.float32).tobytes()
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, len(w)]}}
    ).encode()
    card = add(
        registry_repo, struct.pack("<Q", len(header)) + header + w, weights_file="model.safetensors"
    )
    report = check(registry_repo)
    [f] = report.findings
    assert f.severity is Severity.notice
    assert f.message == (
        "models/tiny/model.safetensors is safetensors: tensors only, no graph, so it cannot "
        "be run or drawn"
    )
    assert (f.path, f.line) == (CARD, weights_line(card))
    assert report.artifacts["graph"]["parameter_count"] == 16
    assert "parameters: 16 in 1 tensors" in report.artifacts["graph_text"]
    assert "graph_svg" not in report.artifacts


# --------------------------------------------------------------------------- command line


def test_cli_passes_and_reports_the_graph_as_json(registry_repo, onnx_bytes):
    add(registry_repo, onnx_bytes)
    proc = registry_repo.registry("check", "tiny", "--offline", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [model] = json.loads(proc.stdout)["models"]
    assert {"config-file", "weights-storage", "graph"} <= set(model["checks_run"])
    assert model["artifacts"]["graph"]["op_counts"] == {"Gemm": 2, "Relu": 1, "Softmax": 1}
    assert "Softmax" in model["artifacts"]["graph_svg"]


# --------------------------------------------------------------------------- the PyTorch source
# (pytorch:)


def test_a_pytorch_source_is_inspected_without_loading_it(registry_repo, tmp_path):
    import io
    import zipfile

    from factories import torch_sources

    onnx_model, pt2 = torch_sources()
    registry_repo.add_model("tiny", onnx_model, commit=False)
    registry_repo.track("models/tiny/model.pt2", pt2)
    card = example_card("tiny", size=len(onnx_model), extra="pytorch: model.pt2\n")
    registry_repo.commit({CARD: card})
    # its batch is fixed (1) while the ONNX's is free: a warning, naming the file and the fix
    [warning] = findings(registry_repo)
    assert warning.severity is Severity.warning and warning.path == CARD
    assert warning.message.startswith("models/tiny/model.pt2 takes a fixed batch of 1")
    assert "models/tiny/model.onnx takes any batch" in warning.message
    assert "android-arm64" in warning.message and "Dim('batch')" in warning.hint
    _, dynamic = torch_sources(dynamic_batch=True)
    registry_repo.track("models/tiny/model.pt2", dynamic)
    registry_repo.commit(message="the .pt2 exported with a dynamic batch")
    assert findings(registry_repo) == []
    # the same archive with a weight saved as a pickle: refused, never unpickled
    marker = tmp_path / "unpickled"
    with zipfile.ZipFile(io.BytesIO(pt2)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    root = next(iter(files)).split("/", 1)[0]
    config = json.loads(files[f"{root}/data/weights/model_weights_config.json"])
    config["config"]["0.weight"]["use_pickle"] = True
    files[f"{root}/data/weights/model_weights_config.json"] = json.dumps(config).encode()
    files[f"{root}/data/weights/weight_0"] = pickle.dumps(_Payload(marker), protocol=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    registry_repo.track("models/tiny/model.pt2", buf.getvalue())
    registry_repo.commit(message="a pickled weight in the .pt2")
    [f] = findings(registry_repo)
    assert f.message.startswith(
        "models/tiny/model.pt2: entry 'data/weights/weight_0' holds '0.weight' as a pickle"
    )
    assert (f.path, f.line) == (
        CARD,
        next(i for i, ln in enumerate(card.splitlines(), 1) if ln.startswith("pytorch:")),
    )
    assert not marker.exists()
