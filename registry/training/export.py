"""Exporting a trained structure: ONNX (the outputs the algorithm keeps, a dynamic batch
dimension) and the same module as a `.pt2` torch.export program."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

from registry.core.files import write_atomic

OPSET = 17


def export_module(net, procedure, structure):
    """The module that is exported, and its output names: the algorithm's export outputs of the
    structure (a classifier with `softmax: true` gives probabilities, named so)."""
    import torch
    from torch import nn

    names = procedure.export_names(list(structure.output_map()))
    softmax = bool(procedure.spec.softmax)

    class Exported(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            outs = self.net(x)
            values = [outs[n] for n in names]
            if softmax:
                values[0] = torch.softmax(values[0], dim=-1)
            return tuple(values) if len(values) > 1 else values[0]

    out_names = ["probabilities" if softmax and i == 0 else n for i, n in enumerate(names)]
    return Exported(), out_names


def export_onnx(net, procedure, structure, dataset, example, path: Path) -> Path:
    """Write the ONNX model of a trained network (opset 17, dynamic batch) atomically to `path`."""
    import torch

    module, out_names = export_module(net, procedure, structure)
    module.eval()
    in_name = dataset.input.name
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=[in_name],
            output_names=out_names,
            dynamic_axes={in_name: {0: "batch"}, **{n: {0: "batch"} for n in out_names}},
        )
    path = Path(path)
    write_atomic(path, buf.getvalue())
    return path


def export_pt2(net, procedure, structure, example, path: Path) -> Path:
    """Write the trained network as a `.pt2` ExportedProgram (`torch.export`) atomically to `path`.

    The program has the ONNX model's outputs (`export_module`). Its batch dimension is dynamic
    where the network allows it: it is traced on a batch of two (a batch of one would fix it at 1).

    Raises:
        whatever `torch.export.export` raises for a network it cannot capture.
    """
    import torch

    module, _ = export_module(net, procedure, structure)
    module.eval()
    batch = torch.cat([example[:1]] * 2)
    with _quiet():
        program = torch.export.export(
            module, (batch,), dynamic_shapes=({0: torch.export.Dim.AUTO},)
        )
    buf = io.BytesIO()
    torch.export.save(program, buf)
    path = Path(path)
    write_atomic(path, buf.getvalue())
    return path


@contextlib.contextmanager
def _quiet():
    """Keep torch.export's own reports (warnings, logged and printed graphs of what it could not
    capture) out of the command's output: the exception it raises says what failed."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
