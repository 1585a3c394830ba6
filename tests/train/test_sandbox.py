"""The bot's dynamic check: pull-request code is built, stepped and exported in a sandboxed child;
syntax errors, missing classes, endless loops, memory bombs and NaN losses are findings with the
file and line, and the child sees none of the parent's secrets."""

from __future__ import annotations

import shutil
import textwrap

from registry.core.repo import WorkTree
from registry.training.validate import check_training


def _only_task(root, task: str) -> None:
    for other in ("digits-cnn", "digits-embedding", "wine-mlp"):
        if other != task:
            shutil.rmtree(root / "training" / other)


def _write(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))


def test_an_example_builds_steps_and_exports_in_the_sandbox_and_is_drawn(training_tree):
    _only_task(training_tree, "digits-embedding")
    report = check_training(WorkTree(training_tree), dynamic=True)
    assert report.passed, [f"{f.path}:{f.line}: {f.message}" for f in report.findings]
    rows = {r.name: r for r in report.layers["digits-autoencoder"]}
    assert rows["embed"].output_shape == ["N", 8] and rows["embed"].parameters == 264
    svg = report.pictures["digits-autoencoder"]
    assert svg.startswith("<svg") and "embed: Linear" in svg and "8 · 264 params" in svg


LAYER_HEADER = """\
    import os
    import torch
    from pydantic import BaseModel
    from torch import nn


    class Config(BaseModel):
        size: int = 1


"""


def test_hostile_and_broken_code_becomes_findings_with_file_and_line(training_tree, monkeypatch):
    monkeypatch.setenv("REGISTRY_STAGING_SECRET", "s3cr3t-value")
    _only_task(training_tree, "digits-cnn")
    cnn = (training_tree / "training/structures/digits-cnn.yaml").read_text()
    files = {
        "training/layers/spin.py": LAYER_HEADER
        + """\
    class Spin(nn.Module):
        def __init__(self, config: Config):
            super().__init__()

        def forward(self, x):
            while True:
                x = x + 0
    """,
        "training/layers/hog.py": LAYER_HEADER
        + """\
    class Hog(nn.Module):
        def __init__(self, config: Config):
            super().__init__()

        def forward(self, x):
            hoard = torch.ones(1 << 40)
            return x + hoard[0]
    """,
        "training/layers/peek.py": LAYER_HEADER
        + """\
    class Peek(nn.Module):
        def __init__(self, config: Config):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("saw " + os.environ.get("REGISTRY_STAGING_SECRET", "no secret"))
    """,
        "training/layers/typo.py": "from torch import nn\n\nclass Typo(nn.Module)\n    pass\n",
        "training/algorithms/nan.yaml": "name: nan\nkind: custom\ncode: nan.py\n",
        "training/algorithms/nan.py": """\
    class Algorithm:
        metrics = ["accuracy"]

        def loss(self, outputs, inputs, labels):
            return outputs["logits"].sum() * float("nan")
    """,
        "training/algorithms/empty.yaml": "name: empty\nkind: custom\ncode: empty.py\n",
        "training/algorithms/empty.py": "class Trainer:\n    pass\n",
        "training/digits-cnn/task.yaml": """\
    name: digits-cnn
    task: classification
    project: examples
    model: digits-cnn
    metric: accuracy
    dataset: digits
    algorithm: classification
    structure: digits-cnn
    instances:
      - {name: spin, structure: s-spin}
      - {name: hog, structure: s-hog}
      - {name: peek, structure: s-peek}
      - {name: typo, structure: s-typo}
      - {name: nan, algorithm: nan}
      - {name: empty, algorithm: empty}
    """,
    }
    for layer in ("spin", "hog", "peek", "typo"):
        files[f"training/structures/s-{layer}.yaml"] = cnn.replace(
            "name: digits-cnn", f"name: s-{layer}"
        ).replace("  - {type: Flatten}", f"  - {{type: {layer}}}\n  - {{type: Flatten}}")
    _write(training_tree, files)

    report = check_training(WorkTree(training_tree), dynamic=True, timeout=10)

    found = {f.path: f for f in report.findings}
    assert (
        found["training/layers/typo.py"].line == 3
        and "syntax error" in found["training/layers/typo.py"].message
    )
    assert found["training/algorithms/empty.py"].message.startswith("no `Algorithm` class")
    spin = found["training/layers/spin.py"]
    assert spin.line == 17 and "longer than 10 s" in spin.message
    hog = found["training/layers/hog.py"]
    assert hog.line == 16 and "more memory than allowed" in hog.message
    nan = found["training/algorithms/nan.py"]
    assert nan.line == 4 and "the loss is nan" in nan.message
    peek = found["training/layers/peek.py"]
    assert peek.line == 16 and "forward pass failed: RuntimeError: saw no secret" in peek.message
    assert not report.passed
    assert all("Traceback" not in f.message for f in report.findings)


STEP_WITHOUT_DYNAMO = """
import io
import sys

import torch

from registry.training.structure import without_dynamo


def step(make, export=False):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = make(net.parameters())
    x = torch.randn(5, 3)
    for _ in range(2):
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if export:
        torch.onnx.export(net.eval(), (x,), io.BytesIO(), dynamo=False)
    return [p.detach().clone() for p in net.parameters()]


makers = [
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: torch.optim.Adam(ps, lr=0.1),
    lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.01),
]
with without_dynamo():
    stood_in = [step(m, export=True) for m in makers]
print("torch._dynamo" in sys.modules, "sympy" in sys.modules)
real = [step(m) for m in makers]  # outside: the optimisers import the real dynamo
print("torch._dynamo" in sys.modules)
print(all(torch.allclose(a, b) for s, r in zip(stood_in, real) for a, b in zip(s, r)))
"""


def test_the_sandbox_steps_and_exports_without_dynamo_as_torch_would_with_it():
    import subprocess
    import sys

    from factories import REPO_ROOT

    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n" + STEP_WITHOUT_DYNAMO,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # SGD, Adam and AdamW step and the TorchScript exporter runs: no dynamo, no sympy imported
    assert proc.stdout.splitlines() == ["False False", "True", "True"]


def test_a_structure_that_cannot_be_exported_to_onnx_is_a_finding(training_tree):
    _only_task(training_tree, "digits-cnn")
    cnn = (training_tree / "training/structures/digits-cnn.yaml").read_text()
    _write(
        training_tree,
        {
            "training/layers/spectrum.py": LAYER_HEADER
            + """\
    class Spectrum(nn.Module):
        def __init__(self, config: Config):
            super().__init__()

        def forward(self, x):
            return torch.fft.fft(x).real  # runs in torch; ONNX has no such operator
    """,
            "training/structures/digits-cnn.yaml": cnn.replace(
                "  - {type: Flatten}", "  - {type: spectrum}\n  - {type: Flatten}"
            ),
        },
    )
    report = check_training(WorkTree(training_tree), dynamic=True)
    found = [f for f in report.findings if "ONNX" in f.message]
    assert len(found) == 3 and not report.passed  # one for each parameter set of the structure
    for f in found:
        assert f.path == "training/structures/digits-cnn.yaml"
        assert f.message.startswith("exporting to ONNX failed: ")
        assert "'aten::fft_fft'" in f.message and "Traceback" not in f.message
