"""A model's graph (registry.formats `weights`, `summary`, `onnx_run`, `svg`): safe loading by
magic bytes, summaries, one sandboxed run, and the SVG picture."""

from __future__ import annotations

import json
import pickle
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from factories import conv_onnx, mlp_onnx
from registry.core.errors import ModelFormatError
from registry.core.storage import file_md5
from registry.formats.onnx_run import run_once
from registry.formats.summary import (
    GraphSummary,
    TensorInfo,
    summarize,
    summarize_onnx,
    summary_text,
)
from registry.formats.svg import render_svg
from registry.formats.weights import WeightsFormat, detect_format, load_onnx

SVG = "{http://www.w3.org/2000/svg}"


class _Payload:
    """Unpickling this creates the marker file: the proof a loader ran code from the weights."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_pickle(marker: Path, protocol: int = 4) -> bytes:
    return pickle.dumps(_Payload(marker), protocol=protocol)


def _torch_style_zip(path: Path, payload: bytes) -> None:
    """The layout torch.save writes: <archive>/data.pkl, <archive>/version, <archive>/data/…"""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/data/0", b"\0" * 16)


def test_the_payload_really_runs_code_when_unpickled(tmp_path):
    # Guard for the refusal tests below: unpickling this payload does create the marker.
    marker = tmp_path / "ran"
    subprocess.run(
        [sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
        input=_evil_pickle(marker),
        check=True,
    )
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_raw_pickle_is_refused_without_unpickling(tmp_path, protocol):
    marker = tmp_path / "ran"
    weights = tmp_path / "model.onnx"  # the name lies: the bytes decide
    weights.write_bytes(_evil_pickle(marker, protocol))
    with pytest.raises(ModelFormatError) as e:
        summarize(weights)
    assert "model.onnx is a Python pickle" in e.value.message
    assert "unpickling runs arbitrary code" in e.value.message
    assert "ONNX" in e.value.hint and "safetensors" in e.value.hint
    assert not marker.exists()


def test_pytorch_zip_checkpoint_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "ran"
    weights = tmp_path / "model.pt"
    _torch_style_zip(weights, _evil_pickle(marker, 2))
    with pytest.raises(ModelFormatError) as e:
        load_onnx(weights)
    assert "model.pt is a PyTorch checkpoint (torch.save zip with data.pkl)" in e.value.message
    assert "unpickling runs arbitrary code" in e.value.message
    assert not marker.exists()


def test_real_torch_save_and_ckpt_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    for name in ("model.pth", "last.ckpt"):
        path = tmp_path / name
        torch.save({"state_dict": {"w": torch.zeros(2, 2)}}, path)
        with pytest.raises(
            ModelFormatError, match="PyTorch checkpoint.*unpickling runs arbitrary code"
        ):
            detect_format(path)


def test_joblib_style_compressed_pickle_is_refused(tmp_path):
    import zlib

    path = tmp_path / "model.joblib"
    path.write_bytes(zlib.compress(_evil_pickle(tmp_path / "ran")))
    with pytest.raises(
        ModelFormatError, match="zlib-compressed data.*unpickling it would run arbitrary code"
    ):
        detect_format(path)
    assert not (tmp_path / "ran").exists()


def test_truncated_onnx_is_a_clear_error(tmp_path):
    data = mlp_onnx()
    path = tmp_path / "model.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError) as e:
        load_onnx(path)
    assert (
        "model.onnx starts like an ONNX model but cannot be parsed: it is truncated or corrupt"
        in e.value.message
    )
    assert "dvc push" in e.value.hint


@pytest.mark.parametrize(
    "content, says",
    [
        (
            b"hello, I am a text file\n",
            "model.onnx is not an ONNX model (it does not parse as one)",
        ),
        (
            b"\xff" + np.random.default_rng(0).bytes(4096),
            "model.onnx is not an ONNX model (it does not parse as one)",
        ),
        (
            b"\x08",
            "model.onnx starts like an ONNX model but cannot be parsed: it is truncated or corrupt",
        ),
        (
            helper.make_model(helper.make_graph([], "empty", [], [])).SerializeToString(),
            "model.onnx is an incomplete ONNX model (its graph has no outputs)",
        ),
    ],
)
def test_not_onnx_at_all_is_a_clear_error(tmp_path, content, says):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError) as e:
        summarize_onnx(path)
    assert e.value.message.startswith(says)


def test_unknown_file_named_like_pickle_says_so(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"random bytes that are no model")
    with pytest.raises(
        ModelFormatError, match=r"weights\.bin is not an ONNX model .*usually pickle-based"
    ):
        load_onnx(path)


def test_empty_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="model.onnx is empty"):
        detect_format(path)


def test_summary_of_the_fixture_model(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_onnx(hidden=16, inputs=8, classes=3))
    s = summarize_onnx(path)
    assert s.format is WeightsFormat.onnx
    assert [(t.name, t.shape, t.dtype) for t in s.inputs] == [("input", ["batch", 8], "float")]
    assert [(t.name, t.shape, t.dtype) for t in s.outputs] == [
        ("probabilities", ["batch", 3], "float")
    ]
    assert s.opsets == {"ai.onnx": 17}
    assert s.ir_version == 8
    assert s.producer == "registry-tests"
    assert s.op_counts == {"Gemm": 2, "Relu": 1, "Softmax": 1}
    assert s.node_count == 4
    assert s.parameter_count == 8 * 16 + 16 + 16 * 3 + 3
    assert s.tensor_count == 4
    assert s.file_size == path.stat().st_size
    assert s.md5 == file_md5(path)
    # plain data that survives a JSON round trip unchanged (the release notes diff these)
    assert GraphSummary.model_validate_json(s.model_dump_json()) == s
    text = summary_text(s)
    for part in (
        "input: float [batch, 8]",
        "probabilities: float [batch, 3]",
        "Gemm x2",
        "Relu x1",
        "Softmax x1",
        "parameters: 195 in 4 tensors",
        "opset: ai.onnx 17",
    ):
        assert part in text


def _odd_tensors_model() -> bytes:
    """Initializers of every storage kind: raw, typed fields (float/int64/string), sparse, and a
    subgraph (If) with its own initializer."""
    dense = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "dense")
    typed = helper.make_tensor(
        "typed", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0]
    )  # float_data
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [4, 3])  # int64_data
    words = helper.make_tensor("words", TensorProto.STRING, [2], [b"a", b"bc"])
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("sparse", TensorProto.FLOAT, [2], [5.0, 6.0]),
        helper.make_tensor("sparse_idx", TensorProto.INT64, [2], [1, 7]),
        [3, 4],
    )
    then = helper.make_graph(
        [helper.make_node("Identity", ["k"], ["t_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [3, 4])],
        initializer=[numpy_helper.from_array(np.ones((3, 4), np.float32), "k")],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["dense"], ["e_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, [3, 4])],
    )
    nodes = [
        helper.make_node("Add", ["x", "dense"], ["a"]),
        helper.make_node("Reshape", ["a", "shape"], ["r"]),
        helper.make_node("ReduceSum", ["typed"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["branch"], then_branch=then, else_branch=other),
        helper.make_node(
            "Constant", [], ["zero"], value=numpy_helper.from_array(np.float32(0), "z")
        ),
    ]
    g = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [
            helper.make_tensor_value_info("r", TensorProto.FLOAT, [4, 3]),
            helper.make_tensor_value_info("branch", TensorProto.FLOAT, [3, 4]),
        ],
        initializer=[dense, typed, shape, words],
        sparse_initializer=[sparse],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _summary_by_onnx(path: Path) -> GraphSummary:
    """The summary computed the slow, obvious way: a full parse by the onnx package."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    model = onnx.load(path, load_external_data=False)
    g = model.graph
    nodes, stack = [], [g]
    while stack:
        sub = stack.pop()
        for node in sub.node:
            nodes.append(node)
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)
    counts: dict[str, int] = {}
    for node in nodes:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        counts[key] = counts.get(key, 0) + 1

    def info(v):
        if v.type.HasField("tensor_type"):
            tt = v.type.tensor_type
            shape = (
                [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in tt.shape.dim
                ]
                if tt.HasField("shape")
                else None
            )
            return TensorInfo(
                name=v.name, shape=shape, dtype=onnx.TensorProto.DataType.Name(tt.elem_type).lower()
            )
        kind = (v.type.WhichOneof("value") or "unknown")[:-5]
        return TensorInfo(name=v.name, shape=None, dtype=kind)

    locations = []
    for tensor in _get_all_tensors(model):
        loc = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if uses_external_data(tensor) and loc not in locations:
            locations.append(loc)
    inits = {i.name for i in g.initializer}
    return GraphSummary(
        format=WeightsFormat.onnx,
        inputs=[info(v) for v in g.input if v.name not in inits],
        outputs=[info(v) for v in g.output],
        opsets=dict(sorted((o.domain or "ai.onnx", o.version) for o in model.opset_import)),
        ir_version=model.ir_version,
        producer=" ".join(x for x in (model.producer_name, model.producer_version) if x) or None,
        op_counts=dict(sorted(counts.items())),
        node_count=len(nodes),
        parameter_count=(
            sum(int(np.prod(t.dims)) for t in g.initializer)
            + sum(int(np.prod(t.dims)) for t in g.sparse_initializer)
        ),
        tensor_count=len(g.initializer) + len(g.sparse_initializer),
        external_data=locations,
        file_size=path.stat().st_size,
        md5=file_md5(path),
    )


@pytest.mark.parametrize(
    "build",
    [lambda: mlp_onnx(), lambda: conv_onnx(), _odd_tensors_model],
    ids=["mlp", "conv", "every-tensor-kind"],
)
def test_summary_read_from_the_wire_equals_a_full_parse(tmp_path, build):
    """Summaries skip the tensors' bytes; they must say exactly what a full parse by onnx says."""
    path = tmp_path / "model.onnx"
    path.write_bytes(build())
    assert summarize_onnx(path) == _summary_by_onnx(path)


def test_summary_of_torch_exported_models_equals_a_full_parse(digits_cnn, text_embedder):
    for folder in (digits_cnn, text_embedder):
        path = folder / "model.onnx"
        assert summarize_onnx(path) == _summary_by_onnx(path)


def test_summary_read_from_the_wire_keeps_external_data(tmp_path):
    path = _model_with_external_data(tmp_path / "m", "weights.data")
    assert summarize_onnx(path) == _summary_by_onnx(path)
    assert summarize_onnx(path).external_data == ["weights.data"]


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_summary_of_a_truncated_model_is_a_clear_error(tmp_path, keep):
    data = conv_onnx()
    path = tmp_path / "model.onnx"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFormatError) as e:
        summarize_onnx(path)
    assert (
        "model.onnx starts like an ONNX model but cannot be parsed: it is truncated or corrupt"
        in e.value.message
    )


def test_run_once_gives_output_shapes(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_onnx(classes=5))
    assert run_once(path) == {"probabilities": [1, 5]}


def test_run_once_generates_integer_and_bool_inputs(tmp_path):
    # Gather needs valid indices; Where needs a bool condition
    table = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "table")
    g = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["rows"]),
            helper.make_node("Where", ["cond", "rows", "rows"], ["out"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, ["n", 3]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3])],
        initializer=[table],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    assert run_once(path) == {"out": [1, 3]}


def test_run_once_failure_is_a_model_format_error(tmp_path):
    # valid for the checker's eyes but Reshape to an impossible shape fails at run time
    shape = numpy_helper.from_array(np.array([7, 5], dtype=np.int64), "shape")
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    with pytest.raises(
        ModelFormatError,
        match=r"m\.onnx: (running the model once on generated inputs failed"
        r"|onnxruntime cannot load the model)",
    ):
        run_once(path)


def _model_with_external_data(folder: Path, location: str) -> Path:
    """Save the fixture model with its weights in an external file, then point it at `location`."""
    folder.mkdir(parents=True, exist_ok=True)
    m = onnx.load_from_string(mlp_onnx())
    onnx.save_model(
        m,
        folder / "model.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.data",
        size_threshold=0,
    )
    m = onnx.load(folder / "model.onnx", load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save_model(m, folder / "model.onnx")
    return folder / "model.onnx"


def test_external_data_inside_the_folder_loads(tmp_path):
    path = _model_with_external_data(tmp_path / "m", "weights.data")
    model = load_onnx(path)
    assert numpy_helper.to_array(model.graph.initializer[0]).shape == (8, 16)
    s = summarize_onnx(path)
    assert s.external_data == ["weights.data"]
    assert s.parameter_count == 195
    assert "external data: weights.data" in summary_text(s)


@pytest.mark.parametrize(
    "location, says",
    [
        ("../outside.data", "points outside the model folder"),
        ("sub/../../outside.data", "points outside the model folder"),
        ("/etc/passwd", "is absolute"),
    ],
)
def test_external_data_outside_the_folder_is_refused(tmp_path, location, says):
    path = _model_with_external_data(tmp_path / "m", location)
    (tmp_path / "outside.data").write_bytes((tmp_path / "m" / "weights.data").read_bytes())
    with pytest.raises(ModelFormatError) as e:
        load_onnx(path)
    assert e.value.message == f"model.onnx: external data location '{location}' {says}" + (
        "; it must be a file inside the model folder" if says == "is absolute" else ""
    )


def test_external_data_symlink_escaping_the_folder_is_refused(tmp_path):
    path = _model_with_external_data(tmp_path / "m", "link.data")
    (tmp_path / "m" / "weights.data").rename(tmp_path / "outside.data")
    (tmp_path / "m" / "link.data").symlink_to(tmp_path / "outside.data")
    with pytest.raises(
        ModelFormatError, match="'link.data' is a symlink that leaves the model folder"
    ):
        load_onnx(path)


def test_missing_external_data_is_a_clear_error(tmp_path):
    path = _model_with_external_data(tmp_path / "m", "weights.data")
    (tmp_path / "m" / "weights.data").unlink()
    with pytest.raises(ModelFormatError, match="external data file 'weights.data' is missing"):
        load_onnx(path)


def _safetensors(tensors: dict[str, np.ndarray], metadata: dict | None = None) -> bytes:
    names = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        raw = a.tobytes()
        header[name] = {
            "dtype": names[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def test_safetensors_summary_without_torch(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(
        _safetensors(
            {
                "w": np.zeros((8, 16), np.float32),
                "b": np.zeros(16, np.float32),
                "steps": np.zeros(1, np.int64),
            },
            {"format": "pt"},
        )
    )
    assert detect_format(path) is WeightsFormat.safetensors
    s = summarize(path)
    assert (s.format, s.parameter_count, s.tensor_count, s.producer) == (
        "safetensors",
        145,
        3,
        "pt",
    )
    assert s.md5 == file_md5(path)
    assert "parameters: 145 in 3 tensors" in summary_text(s)


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    data = _safetensors({"w": np.zeros((64, 64), np.float32)})
    path = tmp_path / "model.safetensors"
    path.write_bytes(data[:-100])
    with pytest.raises(
        ModelFormatError, match="entry 'w' is malformed or points past the end of the file"
    ):
        summarize(path)


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_svg_is_well_formed_and_shows_every_op(tmp_path):
    model = onnx.load_from_string(mlp_onnx())
    svg = render_svg(model)
    texts = _svg_texts(svg)
    for op in ("Gemm", "Relu", "Softmax", "input", "probabilities"):
        assert op in texts
    assert texts.count("Gemm") == 2
    assert len(ET.fromstring(svg).findall(f".//{SVG}path[@marker-end]")) == 5  # in→G→R→G→S→out


def _chain_model(n: int, branches: int = 1) -> onnx.ModelProto:
    nodes, prev = [], "x"
    for i in range(n):
        if branches > 1 and i % 10 == 5:  # a fan-out/fan-in diamond now and then
            outs = [f"b{i}_{k}" for k in range(branches)]
            nodes += [helper.make_node("Relu", [prev], [o]) for o in outs]
            nodes.append(helper.make_node("Sum", outs, [f"t{i}"]))
        else:
            nodes.append(helper.make_node("Relu" if i % 2 else "Sigmoid", [prev], [f"t{i}"]))
        prev = f"t{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    g = helper.make_graph(
        nodes,
        "long & <deep>",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_long_graphs_are_collapsed(tmp_path):
    model = _chain_model(1000, branches=3)
    svg = render_svg(model, max_boxes=150, max_layers=60)
    root = ET.fromstring(svg)
    boxes = root.findall(f".//{SVG}rect[@rx]")
    assert len(boxes) <= 3 * 60 + 1  # 60 layers of at most 3 boxes, not the 1,300 nodes
    texts = _svg_texts(svg)
    assert any(t.startswith("… ") and t.endswith(" ops …") for t in texts)
    assert any(t.endswith(" layers not drawn") for t in texts)
    assert any(
        re.fullmatch(r"\d+ ops", t) for t in texts
    )  # merged chains say how many ops they hold
    assert root.find(f"{SVG}title").text == "long & <deep>"  # escaped, then read back


def test_small_graphs_are_not_collapsed():
    svg = render_svg(_chain_model(20))
    texts = _svg_texts(svg)
    assert texts.count("Relu") == 10 and texts.count("Sigmoid") == 10
    assert not any("not drawn" in t for t in texts)


# --------------------------------------------------------------------------- a hostile model's one
# run


def _allocating_model(n: int) -> bytes:
    """A tiny file whose run allocates an n×n float tensor (ConstantOfShape of a constant shape)."""
    shape = numpy_helper.from_array(np.array([n, n], np.int64), "s")
    g = helper.make_graph(
        [
            helper.make_node(
                "ConstantOfShape",
                ["s"],
                ["big"],
                value=numpy_helper.from_array(np.array([1.0], np.float32), "v"),
            ),
            helper.make_node("ReduceSum", ["big"], ["r"], keepdims=0),
            helper.make_node("Add", ["r", "x"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        initializer=[shape],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def _endless_model() -> bytes:
    """A tiny file whose run loops 10^12 times."""
    # Loop with a huge trip count
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "one"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, []),
        ],
        initializer=[numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    g = helper.make_graph(
        [helper.make_node("Loop", ["M", "c", "x"], ["y"], body=body)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        initializer=[
            numpy_helper.from_array(np.array(10**12, np.int64), "M"),
            numpy_helper.from_array(np.array(True), "c"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="the memory cap needs Linux's /proc"
)
def test_a_model_that_allocates_too_much_fails_the_run_with_the_limit(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(_allocating_model(30_000))  # 3.6 GB for one tensor
    with pytest.raises(ModelFormatError) as e:
        run_once(path, memory=512 << 20)
    assert (
        e.value.message == "model.onnx: running the model once needed more than 0.5 GiB of memory"
    )
    assert "within 120 s and 0.5 GiB" in e.value.hint


def test_a_model_that_runs_forever_is_stopped_at_the_time_limit(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(_endless_model())
    with pytest.raises(ModelFormatError) as e:
        run_once(path, timeout=1.5)
    assert "took longer than 1.5 s, so it was stopped" in e.value.message


def test_the_limits_leave_a_normal_run_alone(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(_allocating_model(100))
    assert run_once(path, timeout=30, memory=512 << 20) == {"y": []}
