"""The bot's static checks of training files: references, hyperparameters, layer types and shapes
from the dataset's input through every layer to the loss, each a finding with file and line."""

from __future__ import annotations

from registry.core.repo import RegistryRepo, WorkTree
from registry.training.validate import check_training


class _Tree:
    def __init__(self, root):
        self.root = root

    def write(self, files: dict) -> None:
        import textwrap

        for rel, text in files.items():
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_text(textwrap.dedent(text))


def _edit(reg, rel: str, old: str, new: str) -> None:
    path = reg.root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def _line_of(reg, rel: str, needle: str) -> int:
    return next(
        i for i, ln in enumerate((reg.root / rel).read_text().splitlines(), 1) if needle in ln
    )


def test_the_examples_pass_with_every_layer_shape_and_parameter_count(training_tree):
    training_registry = _Tree(training_tree)
    report = check_training(WorkTree(training_registry.root))
    assert report.passed, [f.message for f in report.findings]
    cnn = {r.name: r for r in report.layers["digits-cnn"]}
    assert cnn["conv1"].output_shape == ["N", 8, 8, 8] and cnn["conv1"].parameters == 80
    assert cnn["classifier"].output_shape == ["N", 10] and cnn["classifier"].parameters == 650
    # the custom layer says OUTPUT_SHAPE = "same", so shapes are followed through it without running
    # it
    assert [r.output_shape for r in report.layers["wine-mlp"]][-1] == ["N", 3]
    assert report.layers["digits-autoencoder"][-1].output_shape == ["N", 1, 8, 8]
    assert "<svg" in report.pictures["digits-cnn"] and "650 params" in report.pictures["digits-cnn"]


def test_shape_mismatch_names_the_layer_both_shapes_and_the_line(training_tree):
    training_registry = _Tree(training_tree)
    rel = "training/structures/digits-cnn.yaml"
    _edit(training_registry, rel, "in_features: 64", "in_features: 32")
    report = check_training(WorkTree(training_registry.root))
    [f] = [f for f in report.findings if f.path == rel]
    assert (
        "layer 'classifier' (Linear)" in f.message
        and "[N, 64]" in f.message
        and "[N, 32]" in f.message
    )
    assert f.line == _line_of(training_registry, rel, "name: classifier")


def test_output_that_does_not_fit_the_loss(training_tree):
    training_registry = _Tree(training_tree)
    rel = "training/structures/digits-cnn.yaml"
    _edit(training_registry, rel, "out_features: 10", "out_features: 9")
    report = check_training(WorkTree(training_registry.root))
    [f] = [f for f in report.findings if f.path == rel]
    assert (
        "cross-entropy over 10 classes" in f.message
        and "[N, 10]" in f.message
        and "[N, 9]" in f.message
    )


def test_unknown_layer_type_suggests_the_torch_name(training_tree):
    training_registry = _Tree(training_tree)
    rel = "training/structures/digits-cnn.yaml"
    _edit(
        training_registry,
        rel,
        "type: Conv2d, args: {in_channels: 1",
        "type: Conv2D, args: {in_channels: 1",
    )
    report = check_training(WorkTree(training_registry.root))
    [f] = [f for f in report.findings if f.path == rel]
    assert "unknown layer type 'Conv2D'" in f.message and f.hint == "did you mean 'Conv2d'?"
    assert f.line == _line_of(training_registry, rel, "name: conv1")


def test_unknown_layer_argument_and_custom_layer_setting(training_tree):
    training_registry = _Tree(training_tree)
    _edit(
        training_registry,
        "training/structures/digits-cnn.yaml",
        "kernel_size: 3, padding: 1}}",
        "kernal_size: 3, padding: 1}}",
    )
    _edit(training_registry, "training/structures/wine-mlp.yaml", "      std:", "      sdt:")
    report = check_training(WorkTree(training_registry.root))
    msgs = {f.message: f for f in report.findings}
    assert msgs["Conv2d has no argument 'kernal_size'"].hint == "did you mean 'kernel_size'?"
    assert msgs["custom layer 'standardise' has no setting 'sdt'"].hint == "did you mean 'std'?"
    assert "needs setting 'std'" in " ".join(msgs)


def test_references_and_hyperparameters_resolve(training_tree):
    training_registry = _Tree(training_tree)
    rel = "training/digits-cnn/task.yaml"
    _edit(training_registry, rel, "structure: digits-cnn", "structure: digit-cnn")
    _edit(
        training_registry,
        "training/wine-mlp/task.yaml",
        "learning_rate: 0.01}",
        "learning_rate: 0.01, hiden: 4}",
    )
    report = check_training(WorkTree(training_registry.root))
    f = next(f for f in report.findings if f.path == rel)
    assert (
        "structure 'digit-cnn' does not exist" in f.message
        and f.hint == "did you mean 'digits-cnn'?"
    )
    assert f.line == _line_of(training_registry, rel, "structure: digit-cnn")
    h = next(f for f in report.findings if "hiden" in f.message)
    assert h.hint == "did you mean 'hidden'?" and h.path == "training/wine-mlp/task.yaml"


def test_a_skip_connection_is_a_graph_and_a_bad_input_is_named(training_tree):
    training_registry = _Tree(training_tree)
    training_registry.write(
        {
            "training/structures/residual.yaml": """\
        name: residual
        inputs: [features]
        layers:
          - {name: fc1, type: Linear, args: {in_features: 13, out_features: 13}}
          - {name: act, type: ReLU}
          - {name: skip, type: Add, inputs: [act, features]}
          - {name: head, type: Linear, args: {in_features: 13, out_features: 3}}
        """,
            "training/res/task.yaml": """\
        name: res
        task: classification
        project: examples
        model: wine-residual
        metric: accuracy
        dataset: wine
        algorithm: classification
        structure: residual
        instances: [{name: base}]
        """,
        }
    )
    report = check_training(WorkTree(training_registry.root))
    assert report.passed, [f.message for f in report.findings]
    skip = next(r for r in report.layers["residual"] if r.name == "skip")
    assert skip.inputs == ["act", "features"] and skip.output_shape == ["N", 13]
    _edit(
        training_registry,
        "training/structures/residual.yaml",
        "inputs: [act, features]",
        "inputs: [act, feature]",
    )
    report = check_training(WorkTree(training_registry.root))
    f = next(f for f in report.findings if f.path == "training/structures/residual.yaml")
    assert (
        "takes input 'feature', which does not exist" in f.message
        and f.hint == "did you mean 'features'?"
    )


def test_checks_a_git_revision_without_a_checkout(training_registry):
    reg = training_registry
    reg.git("switch", "-q", "-c", "change")
    _edit(reg, "training/structures/digits-cnn.yaml", "in_features: 64", "in_features: 32")
    head = reg.commit(message="break the structure")
    reg.git("switch", "-q", "main")
    repo = RegistryRepo(reg.root)
    assert check_training(repo.snapshot("main")).passed
    assert not check_training(repo.snapshot(head)).passed


FRESH_PROCESS_CHECK = """
import sys
from pathlib import Path
from registry.core.repo import WorkTree
from registry.training.structure import without_dynamo
from registry.training.validate import check_training

report = check_training(WorkTree(Path(sys.argv[1])))
print(report.passed, "torch._dynamo" in sys.modules, report.layers["digits-cnn"][-1].output_shape)
import torch

# torch as it was: the real dynamo comes when asked for, and compiling still works
with without_dynamo():  # torch asking the stand-in for more gets the real module
    print(torch._dynamo.config.__name__)
print(sys.modules["torch._dynamo"].disable.__module__)
net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
print(len(torch.export.export(net, (torch.randn(2, 3),)).graph.nodes))
print(torch.relu(torch.empty(2, 3, device="meta")).shape)
"""


def test_static_shapes_do_not_import_dynamo_and_leave_torch_as_it_was(training_tree):
    import subprocess
    import sys

    from factories import REPO_ROOT

    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_CHECK, str(training_tree)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "True False ['N', 10]"  # the same shapes, without torch._dynamo
    assert lines[1] == "torch._dynamo.config"
    assert lines[2].startswith("torch._dynamo")  # the real module's disable
    assert int(lines[3]) > 0
    assert lines[4] == "torch.Size([2, 3])"


def test_a_misplaced_file_is_named_not_ignored(training_tree):
    """Files and folders nothing reads (a task.yaml among the layers, a structure saved as .yml, a
    task folder without task.yaml, a dataset folder without dataset.yaml) are warnings naming
    each with where it belongs; READMEs and hidden files are left alone."""
    tree = _Tree(training_tree)
    assert check_training(WorkTree(tree.root)).findings == []
    tree.write(
        {
            "training/layers/task.yaml": "name: lost\n",
            "training/layers/README.md": "# our layers\n",
            "training/structures/wide.yml": "name: wide\n",
            "training/structures/.draft.yaml.swp": "",
            "training/algorithms/notes.txt": "todo\n",
            "training/forgotten/config.yaml": "epochs: 3\n",
            "datasets/iris/iris.csv.dvc": "outs: []\n",
        }
    )
    report = check_training(WorkTree(tree.root))
    assert report.passed  # warnings: the examples still check and build
    strays = {f.path: f for f in report.findings}
    assert sorted(strays) == [
        "datasets/iris",
        "training/algorithms/notes.txt",
        "training/forgotten",
        "training/layers/task.yaml",
        "training/structures/wide.yml",
    ]
    assert all(f.severity.value == "warning" for f in strays.values())
    assert strays["training/layers/task.yaml"].hint.endswith(
        "training/<task>/task.yaml: move it there"
    )
    assert "<name>.yaml" in strays["training/structures/wide.yml"].hint
    assert "no task.yaml" in strays["training/forgotten"].message
    assert "no dataset.yaml" in strays["datasets/iris"].message


def test_a_compiler_warning_in_a_layer_file_stays_out_of_the_bot_log(training_tree):
    """An invalid escape in a pull request's Python is a SyntaxWarning when the file is read into a
    syntax tree (Python 3.12 prints it); the static check reads the file without printing it."""
    import warnings

    tree = _Tree(training_tree)
    layer = tree.root / "training/layers/standardise.py"
    layer.write_text(layer.read_text() + '\nPATTERN = "\\d+"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the check run here
        report = check_training(WorkTree(tree.root))
    assert report.passed, [f.message for f in report.findings]
