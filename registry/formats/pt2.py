"""Reading a PyTorch ExportedProgram (`.pt2`) without running code from the file.

`torch.export.load` runs code from the archive in several places: the sample inputs
(`data/sample_inputs/<model>.pt`) and any weight or constant saved with `use_pickle: true` are
unpickled (falling back to `torch.load(weights_only=False)`), custom and opaque object constants
are always pickles, archives in the pre-2.8 layout (`serialized_*.pt`) are pickles throughout,
AOTInductor entries are compiled libraries it loads, symbolic shape expressions are parsed with
`sympy.sympify` (which evaluates Python), and `guards_code` lines are `exec`uted when the program
is turned back into a module.

So a `.pt2` is read in two steps. `inspect_pt2` reads the zip directory and the JSON entries
only, and refuses anything but the PT2 archive format with plain tensor payloads; it checks that
every shape expression is arithmetic and every graph node calls an operator. `load_exported_program`
then writes a clean copy of the archive (every entry taken from that inspection, the sample
inputs replaced by an empty payload — which the deserializer reads as "no sample inputs" — and
the guards dropped) and deserializes the copy with torch's archive reader, never through
`torch.export.load` (which retries a failed archive in the old, pickled layout).
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from registry.core.errors import ModelFormatError

FORMAT_HINT = (
    "save the program with torch.export.save(exported_program, 'model.pt2') from torch >= 2.8, "
    "with plain tensors as weights and constants, then dvc add the new file"
)
# Entries of the PT2 archive format that carry data only.
_FIXED = {
    "archive_format",
    "archive_version",
    "byteorder",
    ".data/version",
    ".data/serialization_id",
}
_PAYLOAD_RE = re.compile(r"^data/(weights|constants)/([A-Za-z0-9_.-]+)$")
_MODEL_RE = re.compile(r"^models/([A-Za-z0-9_.-]+)\.json$")
_SAMPLE_RE = re.compile(r"^data/sample_inputs/([A-Za-z0-9_.-]+)\.pt$")
# Graph nodes may call operators, and the symbolic-int helpers torch.export writes. No part may be
# a dunder name (`__class__`, `__globals__`: attribute walks, not operators) except the operators
# ATen itself names after Python's (`a & b` exports as torch.ops.aten.__and__.Tensor).
_TARGET_RE = re.compile(
    r"^(torch\.ops\.[A-Za-z_]\w*(\.[A-Za-z_]\w*){1,2}"
    r"|torch\._?sym_\w+|_operator\.\w+|math\.\w+)$"
)
_ATEN_DUNDER_RE = re.compile(
    r"^torch\.ops\.aten\.__(i?(and|or|xor|lshift|rshift))__(\.[A-Za-z][A-Za-z0-9_]*)?$"
)
TARGET_HINT = (
    "torch.export writes operator calls as torch.ops.<namespace>.<operator>.<overload>; a node "
    "that calls anything else (a Python function, an attribute such as __class__) is refused "
    "because loading the program would run it. Export the model without Python callables in "
    "its graph (torch.export.export(model, args) with standard modules)"
)
# Functions a shape expression may call: sympy's and torch.utils._sympy's (capitalised
# classes such as Max, Mod, FloorDiv, Eq, Piecewise) and a few lower-case sympy functions.
_SYM_CALL_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_SYM_LOWER = {"floor", "ceiling", "sqrt", "log", "exp", "sin", "cos", "tan", "tanh", "trunc"}
_SYM_DENY = {"S"}  # S('...') parses its argument again
_SYM_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SYM_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Constant,
    ast.keyword,
    ast.Load,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)
MAX_EXPRESSION = 2000
MAX_ENTRIES = 10_000  # entries of one archive
MAX_JSON_BYTES = (
    64 * 1024**2
)  # one JSON entry, decompressed (the program of a large model is a few MB)


class Pt2Input(BaseModel):
    """One user input of the exported program, as its JSON records it."""

    name: str
    shape: list[int | str] = Field(description="fixed sizes as numbers, symbolic ones as 's'")


class Pt2Archive(BaseModel):
    """What `inspect_pt2` found in a `.pt2` file."""

    root: str = Field(description="the archive's top folder")
    models: list[str] = Field(
        description="names of the exported programs it holds ('model' for torch.export.save)"
    )
    entries: list[str] = Field(description="every entry, relative to the root")
    tensors: int = Field(description="weights and constants stored as plain tensors")
    inputs: list[Pt2Input] = Field(
        default_factory=list, description="the program's user inputs, in order"
    )


def inspect_pt2(path: Path, shown: str | None = None) -> Pt2Archive:
    """Check that a `.pt2` holds an ExportedProgram in the PT2 archive format and nothing that runs
    code.

    Reads the zip directory and the JSON entries only; no payload is unpickled or loaded.

    Args:
        path: the file.
        shown: the name to use in messages (default: the file name).
    Raises:
        ModelFormatError: not a PT2 archive, an old (pickled) layout, a pickled weight, constant
            or object, compiled code, or a graph that is not plain operators and arithmetic; the
            message names the file and the entry.
    """
    shown = shown or Path(path).name
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_ENTRIES:
                raise ModelFormatError(
                    f"{shown} has {len(infos):,} entries, more than the {MAX_ENTRIES:,} a "
                    ".pt2 archive may have",
                    FORMAT_HINT,
                )
            names = [i.filename for i in infos if not i.is_dir()]
            return _inspect(z, names, shown)
    except zipfile.BadZipFile as e:
        raise ModelFormatError(
            f"{shown} is not a .pt2 archive (not a zip file: {e})", FORMAT_HINT
        ) from None
    except OSError as e:
        raise ModelFormatError(f"{shown} cannot be read: {e}") from None


def _refuse(shown: str, entry: str, why: str, hint: str = FORMAT_HINT) -> ModelFormatError:
    return ModelFormatError(f"{shown}: entry '{entry}' {why}", hint)


def _inspect(z: zipfile.ZipFile, names: list[str], shown: str) -> Pt2Archive:
    legacy = [n for n in names if PurePosixPath(n).name.startswith("serialized_") or n == "version"]
    if legacy:
        raise _refuse(
            shown,
            legacy[0],
            "belongs to the torch.export format before torch 2.8, whose state "
            "dict, constants and sample inputs are pickles; the registry does not unpickle "
            "uploaded files",
            "load it on a trusted machine and save it again with a current torch: "
            "torch.export.save(torch.export.load('old.pt2'), 'model.pt2')",
        )
    pickled = [n for n in names if n.endswith((".pkl", ".pickle"))]
    if pickled:
        raise _refuse(shown, pickled[0], "is a pickle; unpickling runs arbitrary code")
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        raise ModelFormatError(
            f"{shown} is not a .pt2 archive (its entries do not share one top folder)", FORMAT_HINT
        )
    root = roots.pop()
    rel = {n[len(root) + 1 :]: n for n in names}
    if (
        rel.get("archive_format") is None
        or _read_capped(z, rel["archive_format"], 64, shown, "archive_format").strip() != b"pt2"
    ):
        raise ModelFormatError(
            f"{shown} is not a .pt2 archive (no 'archive_format' entry saying pt2)", FORMAT_HINT
        )
    models = sorted(m.group(1) for r in rel if (m := _MODEL_RE.match(r)))
    if "model" not in models:
        raise ModelFormatError(
            f"{shown} holds no exported program named 'model' (models/model.json)", FORMAT_HINT
        )
    for r in sorted(rel):
        if r in _FIXED or _MODEL_RE.match(r) or r.startswith("extra/"):
            continue
        if (m := _SAMPLE_RE.match(r)) and m.group(1) in models:
            continue  # replaced by an empty payload before loading
        if _PAYLOAD_RE.match(r):
            continue  # checked against the payload configs below
        what = (
            "is AOTInductor output (compiled code the loader would run)"
            if r.startswith("data/aotinductor/")
            else "is not part of an ExportedProgram archive"
        )
        raise _refuse(
            shown, r, what, "save the exported program alone: torch.export.save(ep, 'model.pt2')"
        )
    tensors = 0
    inputs: list[Pt2Input] = []
    for model in models:
        for kind in ("weights", "constants"):
            legacy_file = f"data/{kind}/{model}.pt"
            if legacy_file in rel:
                raise _refuse(
                    shown,
                    legacy_file,
                    f"holds the {kind} as one pickle (the layout of torch 2.7); "
                    "the registry does not unpickle uploaded files",
                    "save it again with a current torch: torch.export.save(ep, 'model.pt2')",
                )
            config_name = f"data/{kind}/{model}_{kind}_config.json"
            if config_name not in rel:
                raise ModelFormatError(
                    f"{shown}: no entry '{config_name}' for program '{model}'", FORMAT_HINT
                )
            config = _json(z, rel[config_name], shown, config_name)
            tensors += _check_payloads(config, kind, rel, shown, config_name)
        program = _json(z, rel[f"models/{model}.json"], shown, f"models/{model}.json")
        _check_program(program, shown, f"models/{model}.json")
        if model == "model":
            inputs = _program_inputs(program)
    return Pt2Archive(root=root, models=models, entries=sorted(rel), tensors=tensors, inputs=inputs)


def _program_inputs(program: Any) -> list[Pt2Input]:
    """The user inputs of a serialized program and their sizes (empty when the JSON is not laid
    out as torch.export writes it)."""
    try:
        module = program["graph_module"]
        values = module["graph"]["tensor_values"]
        out = []
        for spec in module["signature"]["input_specs"]:
            if "user_input" not in spec:
                continue
            name = spec["user_input"]["arg"]["as_tensor"]["name"]
            sizes = values[name]["sizes"]
            out.append(
                Pt2Input(
                    name=name,
                    shape=[s.get("as_int", "s") for s in sizes],
                )
            )
        return out
    except (KeyError, TypeError):
        return []


def fixed_batch(
    pt2_inputs: list[Pt2Input], onnx_inputs: list[tuple[str, list]]
) -> list[tuple[str, int, str]]:
    """Inputs whose first axis the `.pt2` fixes while the ONNX model leaves it free: (the .pt2's
    input name, its fixed size, the ONNX input's name), by position."""
    out = []
    for ours, (oname, oshape) in zip(pt2_inputs, onnx_inputs):
        pt2_fixed = bool(ours.shape) and isinstance(ours.shape[0], int)
        onnx_free = bool(oshape) and (not isinstance(oshape[0], int) or oshape[0] <= 0)
        if pt2_fixed and onnx_free:
            out.append((ours.name, ours.shape[0], oname))
    return out


def fixed_batch_warning(shown: str, weights: str, found: list[tuple[str, int, str]]) -> str:
    """The message for `fixed_batch`'s findings: what the device packages will accept."""
    sizes = sorted({n for _, n, _ in found})
    names = ", ".join(f"'{p}' (the ONNX model's '{o}')" for p, _, o in found)
    return (
        f"{shown} takes a fixed batch of {' or '.join(map(str, sizes))} on input(s) {names}, "
        f"while {weights} takes any batch: the packages built from {shown} (android-arm64's "
        f"ExecuTorch, ios-arm64's Core ML) will accept batch {sizes[0]} only"
    )


FIXED_BATCH_HINT = (
    "export the .pt2 with a dynamic batch dimension: torch.export.export(model, args, "
    "dynamic_shapes={'<input>': {0: torch.export.Dim('batch')}}) (or Dim.AUTO), then "
    "torch.export.save(ep, 'model.pt2')"
)


def _read_capped(z: zipfile.ZipFile, name: str, cap: int, shown: str, entry: str) -> bytes:
    """An entry's bytes, decompressed no further than `cap` (the zip directory's sizes can lie,
    so the cap holds on what is actually inflated: a zip bomb stops at the cap)."""
    try:
        with z.open(name) as f:
            data = f.read(cap + 1)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error) as e:
        raise _refuse(shown, entry, f"cannot be read ({e})") from None
    if len(data) > cap:
        raise _refuse(
            shown, entry, f"inflates to more than {cap:,} bytes (a zip bomb, or not a .pt2 entry)"
        )
    return data


def _json(z: zipfile.ZipFile, name: str, shown: str, entry: str) -> Any:
    from registry.core.bounded import BoundedParseError, parse_json

    data = _read_capped(z, name, MAX_JSON_BYTES, shown, entry)
    try:
        return parse_json(
            data,
            what=".pt2 JSON entry",
            max_bytes=MAX_JSON_BYTES,
            max_nodes=50_000_000,
            max_depth=500,
        )
    except BoundedParseError as e:
        raise _refuse(shown, entry, f"is not usable JSON ({e.message})") from None


def _check_payloads(config: Any, kind: str, rel: dict[str, str], shown: str, entry: str) -> int:
    """Every weight or constant must be a plain tensor record of the archive."""
    items = config.get("config") if isinstance(config, dict) else None
    if not isinstance(items, dict):
        raise _refuse(shown, entry, "has no 'config' mapping")
    for fqn, meta in items.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
            raise _refuse(shown, entry, f"describes '{fqn}' without a path_name")
        payload = f"data/{kind}/{meta['path_name']}"
        name = meta["path_name"]
        if name.startswith(("custom_obj_", "opaque_obj_")):
            raise _refuse(
                shown,
                payload,
                f"holds the object constant '{fqn}' as a pickle (a custom class or "
                "opaque object); unpickling runs arbitrary code",
                "export a model whose constants are tensors (no torchbind or opaque objects)",
            )
        if meta.get("use_pickle"):
            raise _refuse(
                shown,
                payload,
                f"holds '{fqn}' as a pickle (use_pickle: true, as torch writes "
                "tensor subclasses and unusual layouts); unpickling runs arbitrary code",
                "make the weights plain dense tensors (e.g. dequantize or .contiguous()) before "
                "torch.export, then save again",
            )
        if not _PAYLOAD_RE.match(payload) or payload not in rel:
            raise _refuse(
                shown, entry, f"names '{payload}' for '{fqn}', which the archive does not hold"
            )
        if not isinstance(meta.get("tensor_meta"), dict):
            raise _refuse(shown, entry, f"describes '{fqn}' without tensor_meta")
    return len(items)


def _check_program(program: Any, shown: str, entry: str) -> None:
    """Graph nodes call operators only; shape expressions are arithmetic only."""
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key == "expr_str":
                if not isinstance(value, str) or not safe_expression(value):
                    raise _refuse(
                        shown,
                        entry,
                        f"has a symbolic shape expression that is not plain "
                        f"arithmetic ({str(value)[:80]!r}); torch would evaluate it as Python",
                    )
            elif key == "target" and {"inputs", "outputs"} <= item.keys():
                if not isinstance(value, str) or not is_operator_target(value):
                    raise _refuse(
                        shown,
                        entry,
                        f"has a graph node '{item.get('name', '?')}' calling "
                        f"'{str(value)[:80]}', which is not an operator",
                        TARGET_HINT,
                    )
            elif isinstance(value, (dict, list)):
                stack.append(value)


def is_operator_target(target: str) -> bool:
    """Whether a graph node's target names an operator (or torch.export's symbolic-int helpers)."""
    if _ATEN_DUNDER_RE.match(target):
        return True
    return bool(_TARGET_RE.match(target)) and "__" not in target


def safe_expression(text: str) -> bool:
    """Whether a sympy expression string (as torch writes them: `Mul(Integer(2), Symbol('s77',
    positive=True, integer=True))`, `s0 + 1`) is arithmetic on names and numbers, nothing else."""
    if len(text) > MAX_EXPRESSION:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    nodes = list(ast.walk(tree))
    if sum(isinstance(n, ast.Pow) for n in nodes) > 4:
        return False  # towers of powers would take the parser's memory
    for node in nodes:
        if not isinstance(node, _SYM_NODES):
            return False
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            return False
        if isinstance(node, ast.keyword) and (
            node.arg is None
            or node.arg.startswith("_")
            or not (isinstance(node.value, ast.Constant) and type(node.value.value) in (bool, int))
        ):
            return False
        if isinstance(node, ast.Constant) and not _plain_constant(node.value):
            return False
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name)
            and node.func.id not in _SYM_DENY
            and (_SYM_CALL_RE.match(node.func.id) or node.func.id in _SYM_LOWER)
        ):
            return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if isinstance(node.right, ast.Constant) and abs(node.right.value) > 64:
                return False
            if not isinstance(node.right, (ast.Constant, ast.Name, ast.UnaryOp)):
                return False
    return True


def _plain_constant(value: Any) -> bool:
    if type(value) is str:  # symbol names: Symbol('s77')
        return bool(_SYM_NAME_RE.match(value))
    if type(value) is int:
        return abs(value) <= 2**63
    return type(value) in (float, bool)


def load_exported_program(path: Path, shown: str | None = None):
    """Load the ExportedProgram named 'model' from a `.pt2`, after `inspect_pt2` found it safe.

    The archive is copied entry by entry (the sample inputs emptied, the guards dropped) into a
    temporary file, which torch's PT2 reader deserializes.

    Raises:
        ModelFormatError: what `inspect_pt2` raises, or torch cannot deserialize the program.
    """
    import torch  # noqa: F401  (the archive reader lives in torch)
    from torch.export.pt2_archive._package import PT2ArchiveWriter, load_pt2

    shown = shown or Path(path).name
    info = inspect_pt2(path, shown)
    with tempfile.TemporaryDirectory(prefix="registry-pt2-") as tmp:
        clean = Path(tmp) / "model.pt2"
        with zipfile.ZipFile(path) as z, PT2ArchiveWriter(str(clean)) as writer:
            for r in info.entries:
                if r in (".data/version", "byteorder", ".data/serialization_id"):
                    continue  # the writer records its own
                data = z.read(f"{info.root}/{r}")
                if _SAMPLE_RE.match(r):
                    data = b""  # the deserializer reads an empty payload as "no sample inputs"
                elif _MODEL_RE.match(r):
                    program = json.loads(data)
                    program["guards_code"] = []  # exec'd when unlifting; input checks only
                    data = json.dumps(program).encode()
                writer.write_bytes(r, data)
        try:
            contents = load_pt2(str(clean))
        except Exception as e:  # torch raises many types for a malformed program
            text = str(e).strip().splitlines()
            raise ModelFormatError(
                f"{shown}: torch cannot read the exported program "
                f"({type(e).__name__}: {text[0][:300] if text else ''})",
                FORMAT_HINT,
            ) from None
    if "model" not in contents.exported_programs:
        raise ModelFormatError(f"{shown} holds no exported program named 'model'", FORMAT_HINT)
    return contents.exported_programs["model"]


def input_signature(program) -> list[tuple[str, list, str]]:
    """(name, shape with symbolic dims as strings, numpy dtype name) of each user input of a
    program.

    Raises:
        ModelFormatError: an input that is not a tensor.
    """
    import torch

    users = set(program.graph_signature.user_inputs)
    sig = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in users:
            continue
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            raise ModelFormatError(
                f"input '{node.name}' of the exported program is not a tensor "
                f"({type(val).__name__})",
                "export the model with tensor inputs only",
            )
        shape = [int(d) if isinstance(d, int) else str(d) for d in val.shape]
        sig.append((node.name, shape, str(val.dtype).removeprefix("torch.")))
    return sig
