"""The one run of pull-request code: build, forward, backward, optimiser step and ONNX export,
sandboxed.

A pull request's custom layers and algorithms are Python, so the bot runs them only here: in a
fresh child process (`python -I`, entry `child_main`) started with an empty environment
(no tokens, no cloud credentials, HOME in a temporary folder), in a temporary folder that holds
nothing but the training files, with its address space capped (`RLIMIT_AS`) and a deadline after
which it dumps where it was (`faulthandler`) and is killed (the child process, its environment
and its limits are `registry.core.sandbox`'s, shared with the ONNX model's one run). A batch
shaped like the dataset is made up; no data is read. The first child starts as soon as the check
knows it will run one (`Sandbox`), before the files are read, and imports torch and ONNX while
the parent does its static checks; only then does it read its request, and only then do its
limits and clock start. Nothing in it is compiled, so it runs torch without importing dynamo
(`structure.without_dynamo`).

Whatever happens (syntax error, missing class, exception, endless loop, memory bomb, NaN loss,
export failure) comes back as a problem with the file and line of the pull request's code where
there is one, never as a traceback. The parent then checks the exported ONNX file itself, so a
child that only claims success does not pass.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from registry.core.sandbox import Child, cancel_deadline, limit_memory, start_child, start_deadline

SANDBOX_TIMEOUT = 60.0  # seconds for one build + step + export
SANDBOX_MEMORY = 2 << 30  # bytes of address space on top of what the interpreter and torch take
BATCH = 4
IMPORT_ALLOWANCE = 90.0  # seconds to start, import and wait for the parent's static checks


class Request(BaseModel):
    """What the child builds and runs (plain data; the files are under `root`)."""

    root: str = Field(
        description="folder holding training/layers/*.py and training/algorithms/*.py"
    )
    structure: dict[str, Any]
    algorithm: dict[str, Any]
    dataset: dict[str, Any]
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    custom_layers: list[str] = Field(default_factory=list)


@dataclass
class Problem:
    """One thing that went wrong, and where: a file and line of code, or a place in a YAML file."""

    message: str
    hint: str | None = None
    path: str | None = None  # repository-relative code file
    line: int | None = None
    where: str = "structure"  # structure | algorithm: the YAML to point at when `path` is None
    layer: int | None = None  # index in the structure's layers
    field: str | None = None  # a field of the algorithm YAML


@dataclass
class Outcome:
    """What the sandbox reports: problems (empty on success) and the traced layers."""

    problems: list[Problem] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------- parent side

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _code_location(text: str, root: Path) -> tuple[str | None, int | None]:
    """The first frame of a faulthandler dump (most recent first) that is in the pull request's
    code."""
    real = str(root.resolve())
    for path, line in _FRAME.findall(text):
        resolved = str(Path(path).resolve()) if path.startswith("/") else path
        if resolved.startswith(real + os.sep):
            return Path(resolved).relative_to(real).as_posix(), int(line)
    return None, None


class Sandbox:
    """The sandboxed children of one check, and the temporary folder (`root`) that holds the pull
    request's custom files for them.

    The first child starts at once, before the files are known, and imports while the parent
    works; `add_file` puts a file under `root`, `run` hands the child the combinations, and `close`
    (or the end of a `with` block) stops a child that `run` never used and removes the folder.
    """

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="registry-train-check-"))
        self._child: Child | None = _start(self.root)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_file(self, rel: str, data: bytes) -> None:
        """Write a custom layer or algorithm file at `rel` (repository-relative) under `root`."""
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.root / rel).write_bytes(data)

    def run(
        self,
        requests: list[Request],
        *,
        timeout: float = SANDBOX_TIMEOUT,
        memory: int = SANDBOX_MEMORY,
    ) -> list[Outcome]:
        """Run the combinations (each with `root` = this sandbox's): one child takes them in turn,
        each with its own deadline; after a combination kills or stalls its child, a fresh child
        takes the rest. Problems come back, nothing is raised."""
        outcomes: dict[int, Outcome] = {}
        todo = list(range(len(requests)))
        while todo:
            child, self._child = self._child or _start(self.root), None
            done, stuck = _one_child(child, self.root, requests, todo, timeout, memory)
            outcomes.update(done)
            if stuck is not None:
                outcomes[stuck[0]] = stuck[1]
            todo = [i for i in todo if i not in outcomes]
        return [outcomes[i] for i in range(len(requests))]

    def close(self) -> None:
        """Stop the child started for `run` if it was not used; remove the folder."""
        if self._child is not None:
            self._child.stop()
            self._child = None
        shutil.rmtree(self.root, ignore_errors=True)


def _start(root: Path) -> Child:
    """A child in a fresh `root/.sandbox` folder (its working folder, HOME and output)."""
    out = root / ".sandbox"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    return start_child("registry.training.sandbox:child_main", workdir=out)


def _one_child(
    child: Child, root: Path, requests: list[Request], todo: list[int], timeout: float, memory: int
):
    """Run `todo` in `child`; return ({index: outcome} finished, (index, outcome) of the one that
    stopped the child, or None)."""
    out = root / ".sandbox"
    payload = json.dumps(
        {
            "requests": [requests[i].model_dump(mode="json") for i in todo],
            "timeout": timeout,
            "memory": memory,
            "out": str(out),
        }
    )
    result = child.finish(payload.encode(), deadline=IMPORT_ALLOWANCE + (timeout + 5) * len(todo))
    err_text = result.stderr
    done: dict[int, Outcome] = {}
    for line in (
        (out / "results.jsonl").read_text().splitlines()
        if (out / "results.jsonl").is_file()
        else []
    ):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        pos = item.get("index")
        if isinstance(pos, int) and 0 <= pos < len(todo):
            o = Outcome([Problem(**p) for p in item.get("problems", [])], item.get("layers", []))
            if not o.problems:
                o.problems += _check_export(out / f"model-{pos}.onnx", requests[todo[pos]])
            done[todo[pos]] = o
    left = [i for i in todo if i not in done]
    if not left:
        return done, None
    current = left[0]  # the child runs them in order: the first unfinished one stopped it
    limits = (
        f"code in a pull request must build and run one step within {timeout:g} s and "
        f"{memory / (1 << 30):g} GiB"
    )
    path, line = _code_location(err_text, root)
    if result.timed_out:
        return done, (
            current,
            Outcome(
                [
                    Problem(
                        f"one training step took longer than {timeout:g} s and was stopped"
                        + (" (an endless loop?)" if path else ""),
                        limits,
                        path,
                        line,
                    )
                ]
            ),
        )
    stopped = (
        f"the training step stopped without a report ({result.ended()}); it may have needed "
        "more memory than allowed"
    )
    return done, (current, Outcome([Problem(stopped, limits, path, line)]))


def _check_export(path: Path, request: Request) -> list[Problem]:
    """The exported file is real ONNX, with the dataset's input (the parent checks; it runs
    nothing)."""
    from registry.core.errors import ModelFormatError
    from registry.formats.summary import summarize_onnx

    try:
        summary = summarize_onnx(path)
    except (ModelFormatError, OSError) as e:
        return [
            Problem(
                f"the ONNX export is not a readable model: {getattr(e, 'message', e)}",
                "check the layers' forward for operations ONNX cannot express",
                where="algorithm",
            )
        ]
    want = request.dataset["input"]["name"]
    if [i.name for i in summary.inputs] != [want]:
        return [
            Problem(
                f"the ONNX export has inputs {[i.name for i in summary.inputs]}, not ['{want}']",
                "the structure's input takes the dataset's input",
                where="structure",
            )
        ]
    return []


# --------------------------------------------------------------------------- child side


def child_main() -> None:
    """Entry of the child: import, read the requests from stdin, run each, append to results.jsonl
    (never raises)."""
    # The heavy imports come first: while the parent does its static checks, before the clock.
    import onnx  # noqa: F401 - the export writes with it
    import torch  # noqa: F401
    import torch.onnx  # noqa: F401

    import registry.training.algorithms  # noqa: F401
    import registry.training.export  # noqa: F401
    from registry.training.structure import without_dynamo

    msg = json.loads(sys.stdin.read())
    out = Path(msg["out"])
    limit_memory(msg["memory"])
    for pos, raw in enumerate(msg["requests"]):
        start_deadline(msg["timeout"])
        try:
            with without_dynamo():  # nothing is compiled: no dynamo, no sympy (seconds)
                result = _child_run(Request(**raw), out / f"model-{pos}.onnx")
        except BaseException as e:  # noqa: BLE001 - everything becomes a problem
            result = Outcome([_problem_from(e, Path(raw["root"]), "the training step failed")])
        cancel_deadline()
        with open(out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "index": pos,
                        "problems": [asdict(p) for p in result.problems],
                        "layers": result.layers,
                    }
                )
                + "\n"
            )
        if pos + 1 < len(msg["requests"]):  # after the last one, the process just ends
            _forget_custom_modules()
    sys.stdout.flush()
    os._exit(0)


def _forget_custom_modules() -> None:
    """Drop the pull request's modules between combinations, so each loads its files afresh."""
    for name in [
        n for n in sys.modules if n.startswith(("registry_layer_", "registry_algorithm_"))
    ]:
        del sys.modules[name]
    import gc

    gc.collect()


def _problem_from(e: BaseException, root: Path, what: str, **where) -> Problem:
    """A problem for an exception: its message and the deepest frame in the pull request's code."""
    real = str(root.resolve())
    path = line = None
    chain = [e]
    if e.__context__ is not None:
        chain.append(e.__context__)
    for exc in chain:
        for frame in traceback.extract_tb(exc.__traceback__):
            fn = (
                str(Path(frame.filename).resolve())
                if frame.filename.startswith("/")
                else frame.filename
            )
            if fn.startswith(real + os.sep):
                path, line = Path(fn).relative_to(real).as_posix(), frame.lineno
        if path:
            break
    if (
        isinstance(e, SyntaxError)
        and e.filename
        and str(Path(e.filename).resolve()).startswith(real + os.sep)
    ):
        return Problem(
            f"syntax error: {e.msg}",
            "fix the Python syntax at that line",
            Path(e.filename).resolve().relative_to(real).as_posix(),
            e.lineno,
        )
    text = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
    if (
        isinstance(e, MemoryError)
        or "can't allocate memory" in text
        or "DefaultCPUAllocator" in text
    ):
        return Problem(
            "the training step needed more memory than allowed",
            "code in a pull request must build "
            "and run one step within the bot's memory limit; check tensor sizes",
            path,
            line,
            **where,
        )
    msg = getattr(e, "message", None) or f"{type(e).__name__}: {text}"
    return Problem(
        f"{what}: {msg}",
        getattr(e, "hint", None) or "fix the code at that line"
        if path
        else getattr(e, "hint", None),
        path,
        line,
        **where,
    )


def _child_run(req: Request, onnx_path: Path) -> Outcome:
    import warnings

    import torch

    from registry.training.algorithms import apply_hyperparameters, load_procedure, make_optimizer
    from registry.training.files import Algorithm, Dataset, Structure
    from registry.training.layers import load_custom_layer
    from registry.training.structure import LayerProblem, build_network, trace

    torch.set_num_threads(1)
    root = Path(req.root)
    structure = Structure.model_validate(req.structure)
    ds = Dataset.model_validate(req.dataset)
    algo, params = apply_hyperparameters(
        Algorithm.model_validate(req.algorithm), req.hyperparameters
    )
    outcome = Outcome()
    custom = {}
    for name in req.custom_layers:
        try:
            custom[name] = load_custom_layer(root, name)
        except BaseException as e:  # noqa: BLE001
            outcome.problems.append(
                _problem_from(e, root, f"custom layer '{name}' cannot be loaded")
            )
            if not outcome.problems[-1].path:
                outcome.problems[-1].path = f"training/layers/{name}.py"
            return outcome
    try:
        procedure = load_procedure(algo, root)
    except BaseException as e:  # noqa: BLE001
        p = _problem_from(
            e, root, f"algorithm '{algo.name}' cannot be loaded", where="algorithm", field="code"
        )
        p.path = p.path or f"training/algorithms/{algo.code}"
        outcome.problems.append(p)
        return outcome
    torch.manual_seed(algo.seed)
    try:
        net = build_network(structure, params, custom)
    except LayerProblem as p:
        outcome.problems.append(_layer_problem(p, root))
        return outcome
    except BaseException as e:  # noqa: BLE001 - a custom layer's __init__
        outcome.problems.append(_problem_from(e, root, "building the structure failed"))
        return outcome
    x = _example(ds.input, BATCH)
    y = _example(ds.label, BATCH)
    try:
        rows = trace(net, [x])
    except LayerProblem as p:
        outcome.problems.append(_layer_problem(p, root))
        return outcome
    except BaseException as e:  # noqa: BLE001 - a custom layer's forward
        outcome.problems.append(_problem_from(e, root, "the structure's forward pass failed"))
        return outcome
    outcome.layers = [vars(r) for r in rows]
    optimizer = make_optimizer(algo, net.parameters())
    net.train()
    try:
        loss = procedure.loss(net(x), x, y)
        if not (hasattr(loss, "dim") and loss.dim() == 0):
            outcome.problems.append(
                Problem(
                    "the loss is not a scalar tensor",
                    "return one number per batch (.mean())",
                    where="algorithm",
                    field="loss",
                    **_loss_location(procedure, root),
                )
            )
            return outcome
        if not math.isfinite(float(loss)):
            outcome.problems.append(
                Problem(
                    f"the loss is {float(loss)} on the first batch",
                    "check the loss and the layers for division by zero or log of 0",
                    where="algorithm",
                    field="loss",
                    **_loss_location(procedure, root),
                )
            )
            return outcome
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            after = procedure.loss(net(x), x, y)
        if not math.isfinite(float(after)):
            outcome.problems.append(
                Problem(
                    f"the loss is {float(after)} after one optimiser step",
                    "lower the learning rate or check the loss",
                    where="algorithm",
                    field="optimizer",
                    **_loss_location(procedure, root),
                )
            )
            return outcome
    except BaseException as e:  # noqa: BLE001
        outcome.problems.append(
            _problem_from(e, root, "the training step failed", where="algorithm")
        )
        return outcome
    from registry.training.export import export_onnx

    net.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(net, procedure, structure, ds, x[:1], onnx_path)
    except BaseException as e:  # noqa: BLE001
        outcome.problems.append(_problem_from(e, root, "exporting to ONNX failed"))
    return outcome


def _loss_location(procedure, root: Path) -> dict:
    """path/line of a custom algorithm's loss method (None for built-ins)."""
    import inspect

    if procedure.custom is None:
        return {}
    try:
        fn = type(procedure.custom).loss
        file = Path(inspect.getsourcefile(fn)).resolve()
        return {
            "path": file.relative_to(root.resolve()).as_posix(),
            "line": inspect.getsourcelines(fn)[1],
        }
    except (TypeError, OSError, ValueError, AttributeError):
        return {}


def _layer_problem(p, root: Path) -> Problem:
    prob = Problem(p.message, p.hint, layer=p.index)
    ctx = p.__context__
    if ctx is not None:
        code = _problem_from(ctx, root, "")
        if code.path:
            prob.path, prob.line = code.path, code.line
    return prob


def _example(spec, n: int):
    import torch

    shape = (n, *spec.shape)
    dtype = getattr(torch, spec.dtype)
    g = torch.Generator().manual_seed(0)
    if spec.classes:
        return torch.randint(0, spec.classes, shape, generator=g).to(dtype)
    if dtype.is_floating_point:
        return torch.rand(shape, generator=g).to(dtype)
    return torch.randint(0, 2, shape, generator=g).to(dtype)
