"""Reading a `.pt2` ExportedProgram without running code from it (registry/formats/pt2.py).

The malicious archives here carry a payload that creates a marker file when it runs; the tests
assert the marker never appears and the refusal names the file and the entry. Where torch's own
loader would run the payload, a control shows it does, so the archive is really dangerous.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from factories import torch_sources
from registry.core.errors import ModelFormatError
from registry.formats.pt2 import inspect_pt2, load_exported_program, safe_expression
from registry.formats.weights import detect_format


class Payload:
    """Unpickling it creates `marker` (stands for any code an attacker would run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def entries(data: bytes) -> tuple[str, dict[str, bytes]]:
    """The archive's top folder and its entries relative to it."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        root = names[0].split("/", 1)[0]
        return root, {n[len(root) + 1 :]: z.read(n) for n in names}


def rebuild(path: Path, data: bytes, change: dict[str, bytes | None]) -> Path:
    """Write `data` with entries replaced (bytes), removed (None) or added, to `path`."""
    root, files = entries(data)
    for name, content in change.items():
        if content is None:
            files.pop(name, None)
        else:
            files[name] = content
    with zipfile.ZipFile(path, "w") as z:
        for name, content in files.items():
            z.writestr(f"{root}/{name}", content)
    return path


@pytest.fixture(scope="module")
def pt2() -> bytes:
    return torch_sources()[1]


def test_a_pt2_from_torch_export_save_loads_and_computes_the_module(tmp_path, pt2):
    path = tmp_path / "model.pt2"
    path.write_bytes(pt2)
    info = inspect_pt2(path)
    assert info.models == ["model"] and info.tensors == 4
    program = load_exported_program(path)
    assert program.example_inputs is None  # the pickled sample inputs were never read
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3), torch.nn.Softmax(-1)
    ).eval()
    x = torch.randn(1, 8)
    np.testing.assert_allclose(
        program.module()(x).detach().numpy(), module(x).detach().numpy(), rtol=1e-6
    )


def test_pickled_sample_inputs_are_never_unpickled(tmp_path, pt2):
    marker = tmp_path / "ran"
    path = rebuild(
        tmp_path / "model.pt2", pt2, {"data/sample_inputs/model.pt": pickle.dumps(Payload(marker))}
    )
    program = load_exported_program(path)
    assert not marker.exists() and program.example_inputs is None
    # control: torch's own loader runs the payload (torch.load falls back to weights_only=False)
    try:
        torch.export.load(path)
    except Exception:
        pass
    assert marker.exists()


def test_a_weight_saved_as_a_pickle_is_refused(tmp_path, pt2):
    marker = tmp_path / "ran"
    _, files = entries(pt2)
    config = json.loads(files["data/weights/model_weights_config.json"])
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    path = rebuild(
        tmp_path / "model.pt2",
        pt2,
        {
            "data/weights/model_weights_config.json": json.dumps(config).encode(),
            f"data/weights/{first['path_name']}": pickle.dumps(Payload(marker)),
        },
    )
    with pytest.raises(ModelFormatError) as e:
        load_exported_program(path)
    assert e.value.message.startswith(
        "model.pt2: entry 'data/weights/weight_0' holds '0.weight' as a pickle"
    )
    assert "plain dense tensors" in e.value.hint
    assert not marker.exists()
    # control: torch.load(weights_only=False) runs the pickle, then fails on what it returned
    with pytest.raises(Exception):  # noqa: B017 - any error: what matters is the marker below
        torch.export.load(path)
    assert marker.exists()


@pytest.mark.parametrize("name, what", [("opaque_obj_0", "opaque"), ("custom_obj_0", "torchbind")])
def test_an_object_constant_is_refused(tmp_path, pt2, name, what):
    marker = tmp_path / "ran"
    config = {
        "config": {
            "obj": {"path_name": name, "is_param": False, "use_pickle": True, "tensor_meta": None}
        }
    }
    path = rebuild(
        tmp_path / "model.pt2",
        pt2,
        {
            "data/constants/model_constants_config.json": json.dumps(config).encode(),
            f"data/constants/{name}": pickle.dumps(Payload(marker)),
        },
    )
    with pytest.raises(ModelFormatError) as e:
        inspect_pt2(path)
    assert (
        f"entry 'data/constants/{name}' holds the object constant 'obj' as a pickle"
        in e.value.message
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    "entry, words",
    [
        ("serialized_state_dict.pt", "format before torch 2.8"),
        ("data/weights/model.pt", "holds the weights as one pickle"),
        ("data/aotinductor/model/model.so", "AOTInductor output"),
        ("data.pkl", "is a pickle"),
    ],
)
def test_old_layouts_pickles_and_compiled_code_are_refused(tmp_path, pt2, entry, words):
    path = rebuild(tmp_path / "model.pt2", pt2, {entry: b"\x80\x04N."})
    with pytest.raises(ModelFormatError) as e:
        inspect_pt2(path, "models/mlp/model.pt2")
    assert e.value.message.startswith("models/mlp/model.pt2: entry ") and entry in e.value.message
    assert words in e.value.message


def test_code_in_a_shape_expression_is_refused_before_torch_parses_it(tmp_path):
    class Reshape(torch.nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0] * 2, 4)

    buf = io.BytesIO()
    program = torch.export.export(
        Reshape(), (torch.randn(4, 8),), dynamic_shapes={"x": {0: torch.export.Dim.AUTO}}
    )
    torch.export.save(program, buf)
    path = tmp_path / "dynamic.pt2"
    path.write_bytes(buf.getvalue())
    load_exported_program(path)  # torch's own expressions (sympy srepr) pass
    marker = tmp_path / "ran"
    model = json.loads(entries(buf.getvalue())[1]["models/model.json"])
    sym = next(
        v for v in model["graph_module"]["graph"]["sym_int_values"].values() if v.get("as_expr")
    )
    # torch would hand this to sympy.sympify, which evaluates it as Python
    sym["as_expr"]["expr_str"] = (
        f"__import__('builtins').exec(\"open({str(marker)!r}, 'w').close()\")"
    )
    rebuild(path, buf.getvalue(), {"models/model.json": json.dumps(model).encode()})
    with pytest.raises(ModelFormatError) as e:
        load_exported_program(path)
    assert (
        "entry 'models/model.json' has a symbolic shape expression that is not plain arithmetic"
        in e.value.message
    )
    assert not marker.exists()
    try:  # control: torch parses the expression with sympy.sympify, which runs it
        torch.export.load(path)
    except Exception:
        pass
    assert marker.exists()


def test_guards_code_is_dropped_not_run(tmp_path, pt2):
    marker = tmp_path / "ran"
    _, files = entries(pt2)
    model = json.loads(files["models/model.json"])
    model["guards_code"] = [f"__import__('pathlib').Path({str(marker)!r}).touch() is None"]
    path = rebuild(tmp_path / "model.pt2", pt2, {"models/model.json": json.dumps(model).encode()})
    program = load_exported_program(path)
    program.module()(torch.randn(1, 8))
    assert not marker.exists()
    # control: torch turns guards_code into Python and runs it when the program becomes a module
    torch.export.load(path).module()(torch.randn(1, 8))
    assert marker.exists()


def test_a_node_calling_something_else_than_an_operator_is_refused(tmp_path, pt2):
    _, files = entries(pt2)
    model = json.loads(files["models/model.json"])
    model["graph_module"]["graph"]["nodes"][0]["target"] = "torch.save"
    path = rebuild(tmp_path / "model.pt2", pt2, {"models/model.json": json.dumps(model).encode()})
    with pytest.raises(ModelFormatError, match="calling 'torch.save', which is not an operator"):
        inspect_pt2(path)


@pytest.mark.parametrize(
    "target",
    [
        "torch.ops.aten.__class__.__init__",
        "torch.ops.__builtins__.exec.default",
        "torch.ops.aten.__and__.__globals__",
        "_operator.__getitem__",
    ],
)
def test_dunder_attribute_walks_are_refused_with_a_hint_that_says_why(tmp_path, pt2, target):
    _, files = entries(pt2)
    model = json.loads(files["models/model.json"])
    model["graph_module"]["graph"]["nodes"][0]["target"] = target
    path = rebuild(tmp_path / "model.pt2", pt2, {"models/model.json": json.dumps(model).encode()})
    with pytest.raises(ModelFormatError, match="which is not an operator") as e:
        inspect_pt2(path)
    assert "torch.ops.<namespace>.<operator>.<overload>" in e.value.hint


def test_aten_operators_named_after_python_s_are_accepted_and_load(tmp_path):
    """`a & b` on masks (as transformers' attention-mask code writes it) exports as
    torch.ops.aten.__and__.Tensor: a real operator, read and run like any other."""

    class Masked(torch.nn.Module):
        def forward(self, x, mask):
            keep = (mask > 0) & (x.sum(-1, keepdim=True) > -1e9) | (mask < -1)
            return x * keep.to(x.dtype)

    x, mask = torch.randn(2, 4), torch.tensor([[1.0], [0.0]])
    program = torch.export.export(Masked(), (x, mask))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"aten.__and__.Tensor", "aten.__or__.Tensor"} <= targets, targets
    path = tmp_path / "masked.pt2"
    torch.export.save(program, str(path))
    assert inspect_pt2(path).models == ["model"]
    out = load_exported_program(path).module()(x, mask)
    assert torch.equal(out, x * torch.tensor([[1.0], [0.0]]))


@pytest.mark.parametrize(
    "text, ok",
    [
        ("Mul(Integer(2), Symbol('s77', positive=True, integer=True))", True),
        ("Max(1, s0) + FloorDiv(s1, 2)", True),
        ("s0**2 <= 1024", True),
        ("__import__('os').system('true')", False),
        ("S('x')", False),
        ("Symbol('a b')", False),
        ("s0.func", False),
        ("(lambda: 1)()", False),
        ("2**2**2**99", False),
    ],
)
def test_shape_expressions_are_arithmetic_only(text, ok):
    assert safe_expression(text) is ok


def test_not_a_pt2_archive(tmp_path):
    path = tmp_path / "model.pt2"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError, match="model.pt2 is not a .pt2 archive"):
        inspect_pt2(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x/data.bin", b"1")
    with pytest.raises(ModelFormatError, match="no 'archive_format' entry"):
        inspect_pt2(path)


def test_a_pt2_named_as_weights_points_to_the_pytorch_field(tmp_path, pt2):
    path = tmp_path / "model.pt2"
    path.write_bytes(pt2)
    with pytest.raises(ModelFormatError) as e:
        detect_format(path)
    assert "PyTorch ExportedProgram (.pt2)" in e.value.message and "'pytorch:'" in e.value.hint
