"""One instance trained in this process: the built-in procedures reproduce the example models'
figures (within tolerances), export what the algorithm says, and stop early on a validation
split."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from registry.training.files import Instance, expand_instances, read_task
from registry.training.runner import train_instance


def _instance(root, task: str, name: str) -> Instance:
    return next(i for i in expand_instances(read_task(root, task)) if i.name == name)


def test_the_autoencoder_task_reproduces_the_digits_embedding_model(training_tree):
    metrics = train_instance(
        training_tree, "digits-embedding", _instance(training_tree, "digits-embedding", "base")
    )
    # models/digits-embedding/model.yaml: reconstruction_mse 0.01701, knn_accuracy 0.9444
    assert metrics["reconstruction_mse"] == pytest.approx(0.017, abs=0.004)
    assert metrics["knn_accuracy"] == pytest.approx(0.944, abs=0.03)
    folder = training_tree / "training/digits-embedding/results/base"
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [
        "embedding"
    ]  # only what the algorithm exports
    assert [i.name for i in session.get_inputs()] == ["image"]
    [emb] = session.run(None, {"image": np.zeros((5, 1, 8, 8), np.float32)})
    assert emb.shape == (5, 8)
    summary = json.loads((folder / "metrics.json").read_text())
    assert summary["metric"] == "reconstruction_mse" and summary["higher_is_better"] is False
    # the same network as a torch.export program, with a batch of any size, computing the same
    assert summary["pytorch"] == "model.pt2"
    from registry.formats.pt2 import load_exported_program

    program = load_exported_program(folder / "model.pt2")
    x = np.linspace(0, 1, 7 * 64, dtype=np.float32).reshape(7, 1, 8, 8)
    [onnx_out] = session.run(None, {"image": x})
    torch_out = program.module()(__import__("torch").from_numpy(x)).detach().numpy()
    assert torch_out.shape == (7, 8) and np.allclose(torch_out, onnx_out, atol=1e-5)


def test_regression_on_a_csv_column_and_early_stopping_on_a_validation_split(training_tree):
    (training_tree / "datasets/wine-alcohol").mkdir()
    (training_tree / "datasets/wine-alcohol/wine.csv").write_bytes(
        (training_tree / "datasets/wine/wine.csv").read_bytes()
    )
    wine = yaml.safe_load((training_tree / "datasets/wine/dataset.yaml").read_text())
    wine.update(
        name="wine-alcohol", task="regression", splits={"test": 0.25, "validation": 0.25, "seed": 0}
    )
    wine["input"]["columns"] = wine["input"]["columns"][1:]
    wine["input"]["shape"] = [12]
    wine["label"] = {"name": "alcohol", "shape": [1], "dtype": "float32", "columns": ["alcohol"]}
    (training_tree / "datasets/wine-alcohol/dataset.yaml").write_text(yaml.safe_dump(wine))
    (training_tree / "training/structures/alcohol.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "alcohol",
                "inputs": ["features"],
                "layers": [
                    {"type": "BatchNorm1d", "args": {"num_features": 12}},
                    {"type": "Linear", "args": {"in_features": 12, "out_features": 16}},
                    {"type": "ReLU"},
                    {"type": "Linear", "args": {"in_features": 16, "out_features": 1}},
                ],
            }
        )
    )
    (training_tree / "training/algorithms/regression.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "regression",
                "kind": "regression",
                "optimizer": {"name": "adam", "learning_rate": 0.05},
                "epochs": 500,
                "batch_size": 16,
                "early_stopping": {"metric": "mse", "patience": 3},
            }
        )
    )
    inst = Instance("base", "wine-alcohol", "regression", "alcohol", {})
    metrics = train_instance(training_tree, "alcohol", inst)
    summary = json.loads((training_tree / "training/alcohol/results/base/metrics.json").read_text())
    assert summary["epochs_run"] < 500  # stopped early
    assert "stopping" in (training_tree / "training/alcohol/results/base/train.log").read_text()
    assert set(metrics) == {"mse", "mae"} and metrics["mae"] < 0.8  # alcohol spans 11-15 %


def test_training_is_deterministic_for_a_seed_and_differs_for_another(training_tree):
    task = training_tree / "training/seeds/task.yaml"
    task.parent.mkdir()
    task.write_text(
        yaml.safe_dump(
            {
                "name": "seeds",
                "task": "classification",
                "project": "p",
                "model": "seeds",
                "metric": "accuracy",
                "dataset": "wine",
                "algorithm": "classification",
                "structure": "wine-mlp",
                "hyperparameters": {"epochs": 2, "learning_rate": 0.001},
                "instances": [
                    {"name": "one", "hyperparameters": {"seed": 1}},
                    {"name": "again", "hyperparameters": {"seed": 1}},
                    {"name": "other", "hyperparameters": {"seed": 2}},
                ],
            }
        )
    )
    weights = {}
    for name in ("one", "again", "other"):
        train_instance(training_tree, "seeds", _instance(training_tree, "seeds", name))
        session = ort.InferenceSession(
            str(training_tree / f"training/seeds/results/{name}/model.onnx"),
            providers=["CPUExecutionProvider"],
        )
        x = np.linspace(0, 1, 13 * 4, dtype=np.float32).reshape(4, 13) * 100
        weights[name] = session.run(None, {"features": x})[0]
    assert np.allclose(weights["one"], weights["again"], atol=1e-6)
    assert not np.allclose(weights["one"], weights["other"], atol=1e-3)


def test_a_network_torch_export_cannot_capture_trains_and_its_results_say_why(training_tree, capfd):
    (training_tree / "training/layers/branchy.py").write_text(
        textwrap.dedent("""\
        from pydantic import BaseModel
        from torch import nn

        OUTPUT_SHAPE = "same"


        class Config(BaseModel):
            pass


        class Branchy(nn.Module):
            def __init__(self, config: Config):
                super().__init__()

            def forward(self, x):
                if x.sum() > -1e9:  # a branch on the data: torch.export cannot follow it
                    return x
                return -x
        """)
    )
    mlp = (training_tree / "training/structures/wine-mlp.yaml").read_text()
    (training_tree / "training/structures/branchy.yaml").write_text(
        mlp.replace("name: wine-mlp", "name: branchy").replace(
            "  - {type: ReLU}", "  - {type: ReLU}\n  - {type: branchy}"
        )
    )
    task = training_tree / "training/branchy/task.yaml"
    task.parent.mkdir()
    task.write_text(
        yaml.safe_dump(
            {
                "name": "branchy",
                "task": "classification",
                "project": "p",
                "model": "branchy",
                "metric": "accuracy",
                "dataset": "wine",
                "algorithm": "classification",
                "structure": "branchy",
                "hyperparameters": {"epochs": 2},
                "instances": [{"name": "base"}],
            }
        )
    )
    metrics = train_instance(training_tree, "branchy", _instance(training_tree, "branchy", "base"))
    folder = training_tree / "training/branchy/results/base"
    summary = json.loads((folder / "metrics.json").read_text())
    assert summary["metrics"] == metrics and (folder / "model.onnx").is_file()
    assert summary["pytorch"] is None and not (folder / "model.pt2").exists()
    assert summary["pytorch_note"].startswith("no model.pt2 (torch.export failed: ")
    out, err = capfd.readouterr()
    assert "def forward" not in out + err  # torch.export's graph dumps stay out of the output
    from registry.training.results import list_results, render_results

    table = render_results("branchy", list_results(training_tree, "branchy"))
    assert "base: no model.pt2 (torch.export failed: " in table


def test_a_chain_of_layers_and_a_graph_compute_the_same(training_tree):
    import torch

    from registry.training.files import Structure, load_file, require
    from registry.training.structure import build_network

    def network(name: str):
        path = training_tree / f"training/structures/{name}.yaml"
        structure = require(load_file(path.read_bytes(), path.name, Structure))
        torch.manual_seed(0)
        return build_network(structure, dict(structure.params), {})

    cnn = network("digits-cnn")
    assert cnn._chain is not None  # a chain: runs as a plain loop over its layers
    x = torch.rand(5, 1, 8, 8)
    chained = cnn(x)
    cnn._chain = None  # the same network through the general path, layer by layer by name
    assert chained.keys() == cnn(x).keys()
    assert torch.allclose(next(iter(chained.values())), next(iter(cnn(x).values())))
    assert network("digits-autoencoder")._chain is None  # two outputs: a graph
