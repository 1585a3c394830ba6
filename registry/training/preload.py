"""What the workers' fork server loads before it forks the first worker
(`registry.training.workers`).

Only the fork server imports this module. It imports what every worker needs, once for all of
them: torch with its optimisers (which import dynamo), the tracer of `torch.export` and the `onnx`
package the two exports use, Pillow for the plots, and the registry's training modules. Nothing
else (no scikit-learn, matplotlib or DVCLive: the runner does without them).

It then moves what those imports made (some 350 000 objects) out of the garbage collector's reach
(`gc.freeze`), as Python's documentation advises before forking: otherwise each worker's first full
collection walks them all (about half a second of a short instance's time) and, by writing to
every object's header, copies the server's memory pages into the worker.

It also makes the server end without Python's teardown of those modules, which takes seconds: the
server holds the command's stdout and stderr, so whoever reads them (a CI log, a pipe) waited that
long after the command itself had ended. The server has nothing to save when it ends.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys

MODULES = [
    "numpy",
    "torch",
    "torch.optim",
    "torch._dynamo",
    "onnx",
    # what the first torch.export.export imports (the names move between torch versions: a
    # missing one only leaves the import to the worker)
    "torch.export._trace",
    "torch._export.serde.serialize",
    "torch._export.passes.replace_set_grad_with_hop_pass",
    "torch._inductor.ir",
    "sympy.tensor.tensor",
    "PIL.Image",
    "PIL.ImageDraw",
    "PIL.ImageFont",
    "PIL.PngImagePlugin",
    "ruamel.yaml",
    "registry.formats.pt2",
    "registry.training.workers",
    "registry.training.runner",
    "registry.training.algorithms",
    "registry.training.data",
    "registry.training.export",
    "registry.training.layers",
    "registry.training.plots",
    "registry.training.structure",
]


def _in_fork_server() -> bool:
    """Whether this process is multiprocessing's fork server (`python -c 'from
    multiprocessing.forkserver import main; …'`)."""
    return any(
        arg.startswith("from multiprocessing.forkserver import main")
        for arg in getattr(sys, "orig_argv", [])
    )


for _name in MODULES:
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

if _in_fork_server():
    gc.freeze()  # the workers forked from here inherit the frozen objects
    atexit.register(os._exit, 0)  # runs before the teardown; the workers end with os._exit anyway
