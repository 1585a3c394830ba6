"""The training file kinds: the examples load, mistakes come back with file, line and a fix, and
the JSON Schemas in docs/ are the ones the code makes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from factories import REPO_ROOT
from registry.core.errors import UsageError
from registry.training.data import load_arrays, split, split_indices
from registry.training.files import (
    SCHEMAS,
    Algorithm,
    Dataset,
    Structure,
    TrainingTask,
    expand_instances,
    json_schema,
    load_file,
    read_task,
)

EXAMPLES = {
    Dataset: ["datasets/digits/dataset.yaml", "datasets/wine/dataset.yaml"],
    Structure: [
        "training/structures/digits-cnn.yaml",
        "training/structures/digits-autoencoder.yaml",
        "training/structures/wine-mlp.yaml",
    ],
    Algorithm: ["training/algorithms/classification.yaml", "training/algorithms/autoencoder.yaml"],
    TrainingTask: [
        "training/digits-cnn/task.yaml",
        "training/digits-embedding/task.yaml",
        "training/wine-mlp/task.yaml",
    ],
}
SCHEMA_OF = {
    Dataset: "docs/dataset.schema.json",
    Structure: "docs/training-structure.schema.json",
    Algorithm: "docs/training-algorithm.schema.json",
    TrainingTask: "docs/training-task.schema.json",
}


@pytest.mark.parametrize(
    "kind,path", [(k, p) for k, ps in EXAMPLES.items() for p in ps], ids=lambda x: str(x)
)
def test_example_files_are_valid_and_point_editors_at_their_schema(kind, path):
    text = (REPO_ROOT / path).read_text()
    loaded = load_file(
        text,
        path,
        kind,
        expected_name=(
            Path(path).parent.name
            if path.endswith(("dataset.yaml", "task.yaml"))
            else Path(path).stem
        ),
    )
    assert loaded.findings == [] and loaded.value is not None
    first = text.splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    schema_file = (REPO_ROOT / path).parent / first.split("=", 1)[1]
    assert schema_file.resolve() == (REPO_ROOT / SCHEMA_OF[kind]).resolve()
    jsonschema.validate(yaml.safe_load(text), json.loads(schema_file.read_text()))


def test_committed_schemas_are_what_the_code_makes():
    for rel, (model, title) in SCHEMAS.items():
        assert json.loads((REPO_ROOT / rel).read_text()) == json_schema(model, title), (
            f"{rel} is stale: regenerate it with registry.training.files.write_schemas"
        )


def test_unknown_field_names_its_line_and_the_nearest_field():
    text = (
        "name: digits-cnn\nlayers:\n  - type: Linear\n    agrs: {in_features: 3, out_features: 2}\n"
    )
    loaded = load_file(text, "training/structures/digits-cnn.yaml", Structure)
    [f] = loaded.findings
    assert f.line == 4 and "layers.0.agrs" in f.message and f.hint == "did you mean 'args'?"


def test_missing_field_and_wrong_name_are_findings_not_errors():
    loaded = load_file(
        "name: other\nkind: classification\n",
        "training/algorithms/sgd.yaml",
        Algorithm,
        expected_name="sgd",
    )
    assert loaded.value is not None
    assert "does not match" in loaded.findings[0].message and loaded.findings[0].line == 1
    bad = load_file("name: t\n", "training/t/task.yaml", TrainingTask)
    assert {f.message for f in bad.findings} >= {
        "required field 'task' is missing",
        "required field 'model' is missing",
    }


def test_yaml_syntax_error_is_a_finding_with_its_line():
    loaded = load_file("name: x\nlayers: [\n", "training/structures/x.yaml", Structure)
    assert loaded.value is None and loaded.findings[0].line is not None
    assert "not valid YAML" in loaded.findings[0].message


def test_grid_expands_to_one_instance_per_combination():
    task = TrainingTask.model_validate(
        {
            "name": "t1",
            "task": "classification",
            "project": "p",
            "model": "m1",
            "metric": "accuracy",
            "dataset": "d",
            "algorithm": "a",
            "structure": "s",
            "hyperparameters": {"epochs": 3},
            "instances": [{"name": "base"}],
            "grid": {
                "prefix": "gr",
                "hyperparameters": {"learning_rate": [0.1, 0.01], "hidden": [8, 16]},
            },
        }
    )
    instances = expand_instances(task)
    assert [i.name for i in instances] == [
        "base",
        "gr-learning-rate-0-1-hidden-8",
        "gr-learning-rate-0-1-hidden-16",
        "gr-learning-rate-0-01-hidden-8",
        "gr-learning-rate-0-01-hidden-16",
    ]
    assert instances[2].hyperparameters == {"epochs": 3, "learning_rate": 0.1, "hidden": 16}


def test_read_task_suggests_a_known_task(training_registry):
    with pytest.raises(UsageError) as e:
        read_task(training_registry.root, "digit-cnn")
    assert "did you mean 'digits-cnn'" in str(e.value)


def test_npz_and_csv_datasets_load_with_their_schema_and_split_the_same_way_every_time(
    training_tree,
):
    digits = Dataset.model_validate(
        yaml.safe_load((REPO_ROOT / "datasets/digits/dataset.yaml").read_text())
    )
    x, y = load_arrays(training_tree, digits)
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and float(x.max()) == 1.0
    assert y.dtype == np.int64 and set(y.tolist()) == set(range(10))
    a, b = split(digits, x, y), split(digits, x, y)
    assert len(a.test.y) == 450 and np.array_equal(a.test.y, b.test.y)
    wine = Dataset.model_validate(
        yaml.safe_load((REPO_ROOT / "datasets/wine/dataset.yaml").read_text())
    )
    x, y = load_arrays(training_tree, wine)
    assert x.shape == (178, 13) and y.shape == (178,) and set(y.tolist()) == {0, 1, 2}


def test_the_split_picks_what_scikit_learns_train_test_split_picks():
    """The split is computed with numpy alone; it must keep giving the samples scikit-learn gave
    (the example models' held-out metrics were measured on them)."""
    from sklearn.model_selection import train_test_split

    labels = np.random.RandomState(0)
    for n, share, seed, classes in [
        (1797, 0.25, 0, 10),
        (1347, 0.1, 0, 10),
        (178, 0.25, 0, 3),
        (133, 0.25, 3, 3),
        (37, 0.2, 1, 4),
        (50, 0.3, 7, None),
        (12, 0.5, 2, 2),
    ]:
        y = None if classes is None else labels.randint(0, classes, n)
        if y is not None:
            y[: 2 * classes] = np.repeat(np.arange(classes), 2)  # at least two of each class
        want = train_test_split(np.arange(n), test_size=share, random_state=seed, stratify=y)
        got = split_indices(n, share, seed, y)
        assert [g.tolist() for g in got] == [w.tolist() for w in want], (n, share, seed, classes)


def test_a_class_too_small_for_a_stratified_split_names_the_dataset_and_the_fix():
    with pytest.raises(UsageError) as e:
        split_indices(11, 0.25, 0, np.array([0] * 10 + [1]), "tiny", "test")
    assert "dataset 'tiny'" in e.value.message and "class 1 has a single sample" in e.value.message
    assert "splits.stratify: false in datasets/tiny/dataset.yaml" in e.value.hint


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    folder = tmp_path / "datasets" / "shapes"
    for label, value in (("dark", 20), ("light", 230)):
        (folder / "images" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((6, 6), value + i, dtype=np.uint8)).save(
                folder / "images" / label / f"{i}.png"
            )
    ds = Dataset.model_validate(
        {
            "name": "shapes",
            "task": "classification",
            "format": "images",
            "path": "images",
            "input": {"name": "image", "shape": [1, 6, 6], "scale": 1 / 255},
            "label": {"name": "label", "dtype": "int64", "classes": 2},
        }
    )
    x, y = load_arrays(tmp_path, ds)
    assert x.shape == (8, 1, 6, 6) and y.tolist() == [0] * 4 + [1] * 4 and 0 < float(x.max()) <= 1


def test_missing_data_says_which_dvc_pull_to_run(tmp_path):
    ds = Dataset.model_validate(
        {
            "name": "gone",
            "task": "regression",
            "format": "npz",
            "path": "gone.npz",
            "input": {"name": "x", "shape": [2]},
            "label": {"name": "y"},
        }
    )
    with pytest.raises(UsageError) as e:
        load_arrays(tmp_path, ds)
    assert "dvc pull -r staging datasets/gone/gone.npz.dvc" in str(e.value)
