"""The function library: pre/post-processing merged into the ONNX graph.

Steps are declared per target in the card (`targets[].processing`) and applied in order:

    processing:
      - normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}   # input, channel
      axis 1
      - softmax: {axis: -1}                                                    # first output
      - topk: {k: 3}                                                           # values + indices

A merged graph keeps its input and output names (top-k replaces an output `y` by `y_values` and
`y_indices`), so a device calls the package like the model, minus its own pre/post code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from registry.core.errors import ConversionError, UsageError


class Normalize(BaseModel):
    """(x - mean) / std on an input, broadcast along one axis."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["normalize"] = "normalize"
    mean: list[float] = Field(description="per-channel mean (one value broadcasts to all)")
    std: list[float] = Field(description="per-channel standard deviation, non-zero")
    input: str | None = Field(None, description="input name (default: the first input)")
    axis: int = Field(1, description="channel axis of the input (1 for NCHW)")


class Softmax(BaseModel):
    """Softmax over an axis of an output (turns logits into probabilities)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["softmax"] = "softmax"
    axis: int = Field(-1, description="axis to normalise over")
    output: str | None = Field(None, description="output name (default: the first output)")


class TopK(BaseModel):
    """The k largest values of an output and their indices."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["topk"] = "topk"
    k: int = Field(ge=1, description="how many values to keep")
    axis: int = Field(-1, description="axis to select along")
    output: str | None = Field(None, description="output name (default: the first output)")


Step = Annotated[Normalize | Softmax | TopK, Field(discriminator="kind")]
_STEPS = TypeAdapter(list[Step])


def parse_steps(items: list) -> list[Normalize | Softmax | TopK]:
    """Read card entries such as `{normalize: {mean: [...], std: [...]}}` into steps.

    Raises:
        UsageError: an unknown step or a bad parameter, naming the step.
    """
    flat = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and len(item) == 1):
            raise UsageError(
                f"processing[{i}]: write one step per entry, e.g. '- softmax: {{axis: -1}}'"
            )
        ((kind, params),) = item.items()
        if kind not in ("normalize", "softmax", "topk"):
            raise UsageError(
                f"processing[{i}]: unknown step '{kind}'", "known steps: normalize, softmax, topk"
            )
        flat.append({"kind": kind, **(params or {})})
    try:
        return _STEPS.validate_python(flat)
    except ValidationError as e:
        err = e.errors()[0]
        raise UsageError(
            f"processing[{err['loc'][0]}]: {'.'.join(map(str, err['loc'][2:]))}: {err['msg']}",
            "see docs/packaging.md#processing",
        ) from e


def apply_steps(model, steps: list) -> list[str]:
    """Merge the steps into an ONNX ModelProto in place; return their descriptions.

    Raises:
        ConversionError: a step names an input or output the model lacks, or a zero std.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    done = []
    for n, step in enumerate(steps):
        if isinstance(step, Normalize):
            inits = {i.name for i in graph.initializer}
            inputs = [i for i in graph.input if i.name not in inits]
            target = _pick(inputs, step.input, "input")
            if any(s == 0 for s in step.std):
                raise ConversionError("processing normalize: std must not contain 0")
            rank = len(target.type.tensor_type.shape.dim) or 4
            shape = [1] * rank
            count = max(len(step.mean), len(step.std))
            shape[step.axis] = count
            mean = np.broadcast_to(np.asarray(step.mean, np.float32), (count,)).reshape(shape)
            std = np.broadcast_to(np.asarray(step.std, np.float32), (count,)).reshape(shape)
            inner = f"{target.name}__normalized{n}"
            for node in graph.node:
                node.input[:] = [inner if x == target.name else x for x in node.input]
            mname, sname, centred = f"pre{n}_mean", f"pre{n}_std", f"{target.name}__centred{n}"
            graph.initializer.extend(
                [numpy_helper.from_array(mean, mname), numpy_helper.from_array(std, sname)]
            )
            graph.node.insert(
                0, helper.make_node("Div", [centred, sname], [inner], name=f"pre{n}_div")
            )
            graph.node.insert(
                0, helper.make_node("Sub", [target.name, mname], [centred], name=f"pre{n}_sub")
            )
            done.append(f"normalize({target.name}, mean={step.mean}, std={step.std})")
        else:
            out = _pick(list(graph.output), step.output, "output")
            raw = f"{out.name}__raw{n}"
            for node in graph.node:
                node.output[:] = [raw if x == out.name else x for x in node.output]
                node.input[:] = [raw if x == out.name else x for x in node.input]
            if isinstance(step, Softmax):
                graph.node.append(
                    helper.make_node(
                        "Softmax", [raw], [out.name], axis=step.axis, name=f"post{n}_softmax"
                    )
                )
                done.append(f"softmax({out.name}, axis={step.axis})")
            else:
                kname = f"post{n}_k"
                graph.initializer.append(
                    numpy_helper.from_array(np.array([step.k], np.int64), kname)
                )
                values, indices = f"{out.name}_values", f"{out.name}_indices"
                graph.node.append(
                    helper.make_node(
                        "TopK",
                        [raw, kname],
                        [values, indices],
                        axis=step.axis,
                        name=f"post{n}_topk",
                    )
                )
                position = list(graph.output).index(out)
                elem = out.type.tensor_type.elem_type
                del graph.output[position]
                graph.output.insert(
                    position, helper.make_tensor_value_info(indices, TensorProto.INT64, None)
                )
                graph.output.insert(position, helper.make_tensor_value_info(values, elem, None))
                done.append(f"topk({out.name}, k={step.k})")
    return done


def _pick(items, name: str | None, what: str):
    if name is None:
        return items[0]
    for item in items:
        if item.name == name:
            return item
    raise ConversionError(
        f"processing names {what} '{name}', which the model does not have",
        f"model {what}s: {', '.join(i.name for i in items)}",
    )
