"""Network layers: built-in ones by their `torch.nn` name, a few of the registry's, and custom
files.

A custom layer is `training/layers/<name>.py`: one `torch.nn.Module` subclass whose `__init__`
takes one argument, an instance of the file's pydantic `Config` model (the layer's typed
configuration, which the structure's `args` fill in). It may say `OUTPUT_SHAPE = "same"` when its
output has its input's shape, so the static check can follow shapes through it without running
it. `inspect_custom_layer` reads a file with `ast` only (nothing runs); `load_custom_layer`
imports it, which happens only in a worker or in the sandboxed child.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.training import LAYERS_DIR

# torch.nn classes that are not layers of a structure
_NOT_LAYERS = {
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Container",
    "LazyModuleMixin",
    "Identity",
}
REGISTRY_LAYERS = ("Add", "Concat", "Reshape")


def torch_layer_names() -> list[str]:
    """Every `torch.nn` class a structure may name (modules, without containers and losses)."""
    import torch.nn as nn

    names = []
    for name in dir(nn):
        obj = getattr(nn, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, nn.Module)
            and not name.startswith("_")
            and name not in _NOT_LAYERS
            and not name.endswith("Loss")
        ):
            names.append(name)
    return sorted(names + ["Identity"])


def registry_layer(name: str):
    """The class of one of the registry's own layers (Add, Concat, Reshape)."""
    import torch
    from torch import nn

    class Add(nn.Module):
        """Element-wise sum of its inputs (a residual / skip connection)."""

        def forward(self, *xs):
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

    class Concat(nn.Module):
        """Its inputs joined along `dim` (default 1, the channels or features)."""

        def __init__(self, dim: int = 1):
            super().__init__()
            self.dim = dim

        def forward(self, *xs):
            return torch.cat(xs, dim=self.dim)

    class Reshape(nn.Module):
        """Each sample reshaped to `shape` (the batch dimension is kept)."""

        def __init__(self, shape: list[int]):
            super().__init__()
            self.shape = list(shape)

        def forward(self, x):
            return x.reshape(x.shape[0], *self.shape)

    return {"Add": Add, "Concat": Concat, "Reshape": Reshape}[name]


@dataclass
class CustomLayerInfo:
    """What `ast` tells about a custom layer file, without running it."""

    path: str
    class_name: str | None = None
    class_line: int | None = None
    config_fields: dict[str, bool] = field(default_factory=dict)  # name -> required
    output_shape: str | None = None
    problems: list[tuple[str, str, int | None]] = field(
        default_factory=list
    )  # (message, hint, line)


def parse_python(source: bytes | str, path: str) -> ast.Module:
    """A pull request's Python file as a syntax tree, read without running it; what the compiler
    warns of on the way (an invalid escape such as "\\d") is left to the sandboxed run, so it
    never reaches the bot's log.

    Raises:
        SyntaxError: the file does not parse.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, filename=path)


def inspect_custom_layer(source: bytes | str, path: str) -> CustomLayerInfo:
    """Read a custom layer file with `ast`: its module class, its Config fields, OUTPUT_SHAPE.

    Problems (syntax error, no Module class, no Config) come back in `problems` with their line.
    """
    info = CustomLayerInfo(path)
    try:
        tree = parse_python(source, path)
    except SyntaxError as e:
        info.problems.append(
            (f"syntax error: {e.msg}", "fix the Python syntax at that line", e.lineno)
        )
        return info
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    modules = [
        c
        for c in classes
        if any(_base_name(b) in ("Module", "nn.Module", "torch.nn.Module") for b in c.bases)
    ]
    configs = [c for c in classes if c.name == "Config"]
    if len(modules) != 1:
        info.problems.append(
            (
                f"{'no' if not modules else len(modules)} torch.nn.Module classes in the file; "
                "a layer file holds exactly one",
                "define one `class MyLayer(nn.Module)`",
                1,
            )
        )
    else:
        info.class_name, info.class_line = modules[0].name, modules[0].lineno
    if not configs:
        info.problems.append(
            (
                "no `Config` class: a custom layer declares its configuration as a pydantic model",
                "add `class Config(BaseModel):` with one typed field per setting",
                1,
            )
        )
    else:
        for stmt in configs[0].body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                info.config_fields[stmt.target.id] = _required(stmt.value)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "OUTPUT_SHAPE" for t in stmt.targets
        ):
            try:
                info.output_shape = ast.literal_eval(stmt.value)
            except ValueError:
                info.problems.append(
                    (
                        "OUTPUT_SHAPE must be a literal ('same')",
                        'write OUTPUT_SHAPE = "same"',
                        stmt.lineno,
                    )
                )
    return info


def _required(value: ast.expr | None) -> bool:
    """Whether a pydantic field has no default: no value, or Field(...) / Field() without
    default."""
    if value is None:
        return True
    if isinstance(value, ast.Call) and _base_name(value.func) in ("Field", "pydantic.Field"):
        if any(k.arg in ("default", "default_factory") for k in value.keywords):
            return False
        return not value.args or (
            isinstance(value.args[0], ast.Constant) and value.args[0].value is Ellipsis
        )
    return False


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_base_name(node.value)}.{node.attr}"
    return ""


def custom_layer_path(name: str) -> str:
    """Repository-relative path of a custom layer file."""
    return f"{LAYERS_DIR}/{name}.py"


def load_custom_layer(root: Path, name: str):
    """Import `training/layers/<name>.py` under `root`; return (module class, Config class).

    Runs the file's code: call it only in a worker or the sandboxed child.
    """
    import torch.nn as nn
    from pydantic import BaseModel

    module = load_python_file(Path(root) / custom_layer_path(name), f"registry_layer_{name}")
    layer_classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__
    ]
    config = getattr(module, "Config", None)
    if len(layer_classes) != 1:
        raise LookupError(
            f"{custom_layer_path(name)} defines {len(layer_classes)} torch.nn.Module classes; "
            "a layer file holds exactly one"
        )
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise LookupError(f"{custom_layer_path(name)} has no pydantic `Config` class")
    return layer_classes[0], config


def load_python_file(path: Path, module_name: str):
    """Import one Python file as a module (its code runs)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def suggest(name: str, known: list[str]) -> str | None:
    """The nearest known name (case-insensitive), for a did-you-mean hint."""
    lowered = {k.lower(): k for k in known}
    near = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[near[0]] if near else None


def substitute(args: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Replace '$name' strings (also inside lists) by the parameters; return (args, unknown
    names)."""
    unknown: list[str] = []

    def sub(v):
        if isinstance(v, str) and v.startswith("$"):
            key = v[1:]
            if key in params:
                return params[key]
            unknown.append(key)
            return v
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v

    return {k: sub(v) for k, v in args.items()}, unknown
