"""A structure turned into a network, and shapes followed from the input through every layer.

`build_network` makes a `StructureNet` (a `torch.nn.Module` that runs the layers in order, each on
the outputs of the layers it names: sequential or a graph with skip connections). `trace` runs a
network layer by layer and records each layer's output shape and parameter count; on the `meta`
device it computes shapes without computing values, which is how the static check follows shapes
through the built-in layers without running any code from a pull request.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from registry.training.files import Structure
from registry.training.layers import (
    REGISTRY_LAYERS,
    registry_layer,
    substitute,
    suggest,
    torch_layer_names,
)


class LayerProblem(Exception):
    """A layer cannot be built or cannot take its input; `index` is its position in `layers`."""

    def __init__(
        self, index: int | None, message: str, hint: str | None = None, field_: str | None = None
    ):
        super().__init__(message)
        self.index, self.message, self.hint, self.field = index, message, hint, field_


@dataclass
class LayerShape:
    """One layer as traced: output shape (batch dimension first, as 'N') and parameter count."""

    name: str
    type: str
    inputs: list[str]
    output_shape: list[int | str] | None = None  # None: not known (an opaque custom layer)
    parameters: int | None = None
    trainable: int | None = None


@dataclass
class Plan:
    """The order the layers run in, and what feeds each."""

    names: list[str]
    inputs: list[list[str]]
    types: list[str]
    outputs: dict[str, str]
    input_names: list[str]
    problems: list[LayerProblem] = field(default_factory=list)


def plan(structure: Structure) -> Plan:
    """Check names and connections: unique names, inputs that exist and come earlier, known
    outputs."""
    names = structure.layer_names()
    p = Plan(
        names,
        [],
        [s.type for s in structure.layers],
        structure.output_map(),
        list(structure.inputs),
    )
    seen: set[str] = set(structure.inputs)
    for i, (spec, name) in enumerate(zip(structure.layers, names)):
        if name in seen:
            p.problems.append(
                LayerProblem(
                    i, f"layer name '{name}' is used twice", "give each layer its own name", "name"
                )
            )
        sources = (
            spec.inputs
            if spec.inputs is not None
            else ([names[i - 1]] if i else [structure.inputs[0]])
        )
        for src in sources:
            if src not in seen:
                later = src in names[i:]
                near = suggest(src, sorted(seen))
                p.problems.append(
                    LayerProblem(
                        i,
                        f"layer '{name}' takes input '{src}', "
                        + (
                            "which comes after it (layers run in the order listed)"
                            if later
                            else "which does not exist"
                        ),
                        f"did you mean '{near}'?"
                        if near and not later
                        else "list the layers in the order they run; inputs name earlier layers or "
                        "the structure's input",
                        "inputs",
                    )
                )
        p.inputs.append(list(sources))
        seen.add(name)
    for out, layer in p.outputs.items():
        if layer not in names:
            near = suggest(layer, names)
            p.problems.append(
                LayerProblem(
                    None,
                    f"output '{out}' names layer '{layer}', which does not exist",
                    f"did you mean '{near}'?" if near else "name one of the layers",
                    "outputs",
                )
            )
    return p


def layer_kind(type_name: str, custom: set[str]) -> str | None:
    """'custom', 'registry' or 'torch' for a layer type; None when unknown."""
    if type_name in custom:
        return "custom"
    if type_name in REGISTRY_LAYERS:
        return "registry"
    if type_name in _torch_names():
        return "torch"
    return None


_TORCH_NAMES: list[str] | None = None


def _torch_names() -> list[str]:
    global _TORCH_NAMES
    if _TORCH_NAMES is None:
        _TORCH_NAMES = torch_layer_names()
    return _TORCH_NAMES


def known_layer_types(custom: set[str]) -> list[str]:
    """Every layer type a structure may name."""
    return sorted(set(_torch_names()) | set(REGISTRY_LAYERS) | set(custom))


def make_layer(
    index: int, type_name: str, args: dict[str, Any], custom: dict[str, tuple] | set[str]
):
    """Build one layer module (on the current default device).

    Args:
        custom: name -> (module class, Config class) of loaded custom layers; a set of names when
            they are not loaded (static check: such a layer is not built and None comes back).

    Raises:
        LayerProblem: unknown type (with did-you-mean), unknown or bad arguments.
    """
    from pydantic import ValidationError

    names = set(custom)
    kind = layer_kind(type_name, names)
    if kind is None:
        near = suggest(type_name, known_layer_types(names))
        raise LayerProblem(
            index,
            f"unknown layer type '{type_name}'",
            f"did you mean '{near}'?"
            if near
            else "use a torch.nn class name (Linear, Conv2d…), Add, Concat, Reshape, or a file in "
            "training/layers/",
            "type",
        )
    if kind == "custom":
        if not isinstance(custom, dict):
            return None
        cls, config = custom[type_name]
        try:
            return cls(config(**args))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise LayerProblem(
                index,
                f"layer type '{type_name}': argument '{where}': {err['msg']}",
                f"see the Config of training/layers/{type_name}.py",
                "args",
            ) from None
    if kind == "registry":
        cls = registry_layer(type_name)
    else:
        import torch.nn as nn

        cls = getattr(nn, type_name)
    sig = inspect.signature(cls.__init__)
    accepted = [
        n
        for n, prm in sig.parameters.items()
        if n != "self" and prm.kind in (prm.POSITIONAL_OR_KEYWORD, prm.KEYWORD_ONLY)
    ]
    takes_any = any(prm.kind is prm.VAR_KEYWORD for prm in sig.parameters.values())
    for key in args:
        if key not in accepted and not takes_any:
            near = suggest(key, accepted)
            raise LayerProblem(
                index,
                f"{type_name} has no argument '{key}'",
                f"did you mean '{near}'?" if near else "its arguments: " + ", ".join(accepted),
                "args",
            )
    try:
        return cls(**args)
    except (TypeError, ValueError, RuntimeError) as e:
        raise LayerProblem(
            index,
            f"{type_name}({_args_text(args)}) cannot be built: {_first_line(e)}",
            "fix the layer's args (torch.nn documentation of " + type_name + ")",
            "args",
        ) from None


def _args_text(args: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


class StructureNetBase:
    """Marker for isinstance checks without importing torch at module import."""


def _net_class():
    from torch import nn

    class StructureNet(nn.Module, StructureNetBase):
        """A structure's layers run in order; returns {output name: tensor}."""

        def __init__(self, p: Plan, modules: list):
            super().__init__()
            self.plan = p
            self.layers = nn.ModuleDict({n: m for n, m in zip(p.names, modules)})
            # a chain (each layer takes the one before, the last is the one output) runs as a
            # plain loop: no per-layer lookups in the training loop's every step
            chain = [[p.input_names[0]], *([n] for n in p.names[:-1])]
            self._chain = (
                list(modules)
                if len(p.input_names) == 1
                and [list(s) for s in p.inputs] == chain
                and list(p.outputs.values()) == p.names[-1:]
                else None
            )
            self._output = next(iter(p.outputs)) if self._chain is not None else None

        def forward(self, *inputs):
            if self._chain is not None:
                x = inputs[0]
                for layer in self._chain:
                    x = layer(x)
                return {self._output: x}
            values = dict(zip(self.plan.input_names, inputs))
            for name, sources in zip(self.plan.names, self.plan.inputs):
                values[name] = self.layers[name](*(values[s] for s in sources))
            return {out: values[layer] for out, layer in self.plan.outputs.items()}

    return StructureNet


def build_network(structure: Structure, params: dict[str, Any], custom: dict[str, tuple]):
    """The network of a structure with `params` (structure defaults overridden by hyperparameters).

    Raises:
        LayerProblem: the first layer that cannot be built, or a connection problem.
    """
    p = plan(structure)
    if p.problems:
        raise p.problems[0]
    values = {**structure.params, **params}
    modules = []
    for i, spec in enumerate(structure.layers):
        args, unknown = substitute(spec.args, values)
        if unknown:
            raise LayerProblem(
                i,
                f"layer '{p.names[i]}' uses parameter '${unknown[0]}', which the structure "
                "does not define",
                "add it under `params:` or set it as a hyperparameter",
                "args",
            )
        modules.append(make_layer(i, spec.type, args, custom))
    return _net_class()(p, modules)


def shape_text(shape) -> str:
    """[N, 1, 8, 8]: a shape with its batch dimension."""
    if shape is None:
        return "?"
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _expected(module, got: list) -> str | None:
    """The input shape a layer expects, for the common layers, in the same notation."""
    from torch import nn

    if isinstance(module, nn.Linear):
        return shape_text(["N", *(["…"] if len(got) > 2 else []), module.in_features])
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        spatial = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(module)]
        return shape_text(["N", module.in_channels, *(["…"] * spatial)])
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return shape_text(["N", module.num_features, "…"])
    if isinstance(module, nn.LayerNorm):
        return shape_text(["N", "…", *module.normalized_shape])
    return None


@contextlib.contextmanager
def without_dynamo() -> Iterator[None]:
    """Run torch eagerly without importing `torch._dynamo` (a few CPU seconds, and sympy with it).

    Torch's eager code asks dynamo for two things that do nothing outside a `torch.compile` trace.
    Functions marked "not to be traced by dynamo" through `torch._disable_dynamo` (torch's Python
    reference kernels, which `meta` tensors run for ReLU, additions…; an optimiser's
    `add_param_group` and its update functions) import `torch._dynamo` on their first call only to
    ask `torch._dynamo.disable(fn)` for a wrapper, which outside a trace just calls `fn`; and an
    optimiser's `step` calls `torch._dynamo.graph_break()`, which outside a trace returns None.
    Nothing is compiled here (the static check follows shapes on `meta`; the sandbox builds one
    structure, runs one step and exports it with the TorchScript exporter), so for that time
    `torch._dynamo` is a stand-in whose `disable` returns `fn` itself and whose `graph_break` does
    nothing: the very same kernels and optimiser code run. Torch asking the stand-in for anything
    else gets the real module (imported then), and on the way out the stand-in and the wrappers it
    handed out are removed, so later code sees torch as it was. Single-threaded use only.
    """
    import sys
    import types

    import torch

    name = "torch._dynamo"
    if name in sys.modules:  # the real one is here already: nothing to save
        yield
        return
    handed: list = []

    def disable(fn=None, recursive=True, wrapping=True, **kwargs):
        if fn is None or kwargs:
            return _real().disable(fn, recursive, wrapping=wrapping, **kwargs)
        handed.append(fn)
        return fn

    def _real():
        if sys.modules.get(name) is stub:
            del sys.modules[name]
            if torch.__dict__.get("_dynamo") is stub:
                del torch._dynamo
        import torch._dynamo as real  # noqa: PLC0415 - the fallback, only when torch needs it

        return real

    def _getattr(attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            # a module's metadata (`inspect.getmodule` asks every module for `__file__`): the
            # stand-in has none, and nobody needs dynamo for that
            raise AttributeError(attr)
        return getattr(_real(), attr)

    stub = types.ModuleType(name, "stand-in while torch runs eagerly (registry.training)")
    stub.disable = disable
    stub.graph_break = lambda msg="": None
    stub.__getattr__ = _getattr
    sys.modules[name] = stub
    torch._dynamo = stub
    try:
        yield
    finally:
        for fn in handed:  # torch._compile caches the wrapper on the function
            if getattr(fn, "__dict__", {}).get("__dynamo_disable") is fn:
                del fn.__dynamo_disable
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        if torch.__dict__.get("_dynamo") is stub:
            del torch._dynamo


def trace(
    net,
    example_inputs: list,
    *,
    opaque: dict[str, str | None] | None = None,
    on_layer: Callable[[str], None] | None = None,
) -> list[LayerShape]:
    """Run `net` layer by layer on `example_inputs`; record output shapes and parameter counts.

    Args:
        opaque: layers that are not built (custom layers in the static check): name -> their
            OUTPUT_SHAPE ('same' passes the input's shape through; None makes it unknown).
        on_layer: called with each layer's name before it runs (the sandbox's progress marker).

    Raises:
        LayerProblem: the first layer that cannot take its input, naming both shapes.
    """
    opaque = opaque or {}
    p: Plan = net.plan
    values: dict[str, Any] = dict(zip(p.input_names, example_inputs))
    shapes: dict[str, list | None] = {n: ["N", *list(x.shape[1:])] for n, x in values.items()}
    traced: list[LayerShape] = []
    for i, (name, sources) in enumerate(zip(p.names, p.inputs)):
        module = net.layers[name] if name in net.layers else None  # noqa: SIM401 - a ModuleDict
        row = LayerShape(name, p.types[i], list(sources))
        if module is not None:
            row.parameters = sum(t.numel() for t in module.parameters())
            row.trainable = sum(t.numel() for t in module.parameters() if t.requires_grad)
        if any(shapes.get(s) is None for s in sources):
            shapes[name] = None
        elif name in opaque:
            shapes[name] = shapes[sources[0]] if opaque[name] == "same" else None
            values[name] = values[sources[0]] if opaque[name] == "same" else None
        else:
            if on_layer:
                on_layer(name)
            try:
                out = module(*(values[s] for s in sources))
            except (RuntimeError, ValueError, TypeError, IndexError) as e:
                if "can't allocate memory" in str(e) or type(module).__module__.startswith(
                    "registry_layer_"
                ):
                    raise  # not a shape problem: memory, or an error in a custom layer's own code
                got = " and ".join(shape_text(shapes[s]) for s in sources)
                expected = _expected(module, shapes[sources[0]]) if len(sources) == 1 else None
                raise LayerProblem(
                    i,
                    f"layer '{name}' ({p.types[i]}) cannot take its input: got {got}"
                    + (f", expects {expected}" if expected else "")
                    + f" ({_first_line(e)})",
                    "change this layer's arguments or the layer before it so the shapes agree",
                    "type",
                ) from None
            if not hasattr(out, "shape"):
                raise LayerProblem(
                    i,
                    f"layer '{name}' ({p.types[i]}) returned {type(out).__name__}, not a tensor",
                    "a layer in a structure returns one tensor",
                    "type",
                )
            values[name] = out
            shapes[name] = ["N", *list(out.shape[1:])]
        row.output_shape = shapes[name]
        traced.append(row)
    return traced
