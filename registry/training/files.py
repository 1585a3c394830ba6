"""The YAML kinds of training: dataset, structure, algorithm and task, with their JSON Schemas.

Each kind is a pydantic model; `load_file` reads one file the way the card loader does (size
limit, no aliases or duplicate keys, a line for every key path) and turns pydantic's errors into
findings with the file and line. `write_schemas` writes the schemas to `docs/`, where the
`yaml-language-server` line at the top of each file points editors.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from registry.cards.schema import NAME_RE, ParsedYaml, Task, parse_card_yaml
from registry.core.errors import CardError, UsageError
from registry.training import (
    ALGORITHMS_DIR,
    DATASET_FILE,
    DATASETS_DIR,
    RESULTS_SUMMARY,
    STRUCTURES_DIR,
    TASK_FILE,
    TRAIN_SUBCOMMANDS,
    TRAINING_DIR,
)

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
DTYPES = ("float32", "float64", "float16", "int64", "int32", "uint8", "bool")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_name(v: str) -> str:
    if not NAME_RE.fullmatch(v):
        raise ValueError(
            "must be 2-64 characters of lowercase letters, digits and '-', starting and "
            "ending with a letter or digit"
        )
    return v


# --------------------------------------------------------------------------- dataset.yaml


class TensorSpec(_Strict):
    """The input or label of one sample: name, shape (without the batch dimension) and dtype."""

    name: str = Field(
        description="name of the tensor; the input's name becomes the ONNX input name"
    )
    shape: list[int] = Field(
        default_factory=list,
        description="shape of ONE sample, without the batch "
        "dimension: [1, 8, 8] for an 8x8 grey image, [13] for 13 features, [] for a "
        "class label",
    )
    dtype: Literal[DTYPES] = Field("float32", description="element type: " + ", ".join(DTYPES))
    key: str | None = Field(
        None, description="npz: the array's name in the file (default: the tensor's name)"
    )
    columns: list[str] | None = Field(
        None, description="csv: the columns that make up this tensor, in order"
    )
    classes: int | None = Field(
        None,
        ge=1,
        description="label of a classification dataset: number of classes "
        "(labels are 0 … classes-1)",
    )
    scale: float | None = Field(
        None, description="multiply the values by this when loading (images: 1/255)"
    )

    @field_validator("shape")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(d < 1 for d in v):
            raise ValueError("every dimension must be a positive integer")
        return v


class Splits(_Strict):
    """How the data is split into train, validation and held-out test samples (seeded)."""

    test: float = Field(
        0.25, gt=0, lt=1, description="share of samples held out for the final metrics"
    )
    validation: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of the training samples used for early stopping (0: none)",
    )
    seed: int = Field(0, description="seed of the split")
    stratify: bool = Field(
        True, description="keep the class proportions in every split (classification)"
    )


class Dataset(_Strict):
    """A dataset (`datasets/<name>/dataset.yaml`): metadata, format, splits and the sample schema.

    The data file (or folder) next to it is tracked by DVC and pushed to the staging remote.
    """

    name: str = Field(description="dataset name; equals its folder under datasets/")
    task: Task = Field(description="the training task the labels are for")
    description: str | None = Field(None, description="what the data is")
    format: Literal["npz", "csv", "images"] = Field(
        description="npz: numpy arrays; csv: a table with a header "
        "row; images: one sub-folder of PNG/JPEG files per class"
    )
    path: str = Field(
        description="the data file or folder, relative to the dataset folder (DVC-tracked)"
    )
    license: str | None = Field(None, description="SPDX license id of the data")
    source: str | None = Field(None, description="where the data comes from (URL or citation)")
    splits: Splits = Field(default_factory=Splits, description="train/validation/test split")
    input: TensorSpec = Field(description="one sample's input")
    label: TensorSpec = Field(
        description="one sample's label (for an autoencoder, any label kept for evaluation)"
    )

    _name = field_validator("name")(lambda cls, v: _check_name(v))

    @model_validator(mode="after")
    def _format_fields(self) -> Dataset:
        if self.format == "csv":
            for which, spec in (("input", self.input), ("label", self.label)):
                if not spec.columns:
                    raise ValueError(f"a csv dataset names its {which} columns ({which}.columns)")
        if self.task in (Task.classification,) and self.label.classes is None:
            raise ValueError(
                "a classification dataset says how many classes its label has (label.classes)"
            )
        return self


# --------------------------------------------------------------------------- structures

Scalar = int | float | str | bool | None
ArgValue = Scalar | list[Any] | dict[str, Any]


class LayerSpec(_Strict):
    """One layer of a structure: its type, name, configuration and where its input comes from."""

    type: str = Field(
        description="a torch.nn layer by its class name (Conv2d, Linear, ReLU…), a registry "
        "layer (Add, Concat, Reshape) or a custom layer file's name (training/layers/<type>.py)"
    )
    name: str | None = Field(
        None,
        description="the layer's name (default: its type in lowercase and its "
        "position, e.g. linear3); other layers' `inputs` and the structure's "
        "`outputs` refer to it",
    )
    args: dict[str, ArgValue] = Field(
        default_factory=dict,
        description="the layer's configuration: keyword "
        "arguments of the torch.nn class or fields of the custom layer's "
        "Config; a string '$param' takes the structure parameter 'param'",
    )
    inputs: list[str] | None = Field(
        None,
        description="layers or structure inputs feeding this one, in "
        "order (default: the layer before it, or the structure's input for "
        "the first); two or more make a graph, e.g. a skip connection into Add",
    )

    @field_validator("name")
    @classmethod
    def _ident(cls, v: str | None) -> str | None:
        if v is not None and not IDENT_RE.fullmatch(v):
            raise ValueError("must be a word of letters, digits and '_' (e.g. conv1)")
        return v


class Structure(_Strict):
    """A model structure (`training/structures/<name>.yaml`): layers, connections, parameters."""

    name: str = Field(description="structure name; equals the file name without .yaml")
    description: str | None = Field(None, description="what the network is")
    inputs: list[str] = Field(
        default_factory=lambda: ["input"],
        min_length=1,
        max_length=1,
        description="the network's named input (one; it takes the dataset's input)",
    )
    outputs: dict[str, str] | None = Field(
        None,
        description="output name -> layer producing it (default: "
        "{output: the last layer}); the first is what the loss reads "
        "unless the algorithm says otherwise",
    )
    params: dict[str, Scalar] = Field(
        default_factory=dict,
        description="named parameters that layer args "
        "use as '$name'; a task instance's hyperparameters override them",
    )
    layers: list[LayerSpec] = Field(min_length=1, description="the layers, in the order they run")

    _name = field_validator("name")(lambda cls, v: _check_name(v))

    def layer_names(self) -> list[str]:
        """Each layer's name, the default one where none is given."""
        return [spec.name or f"{spec.type.lower()}{i}" for i, spec in enumerate(self.layers)]

    def output_map(self) -> dict[str, str]:
        """Output name -> layer name."""
        return dict(self.outputs) if self.outputs else {"output": self.layer_names()[-1]}


# --------------------------------------------------------------------------- algorithms


class OptimizerSpec(_Strict):
    """The optimiser and its settings."""

    name: Literal["adam", "adamw", "sgd"] = Field("adam", description="adam, adamw or sgd")
    learning_rate: float = Field(0.001, gt=0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty")
    momentum: float = Field(0.0, ge=0, description="sgd momentum")


class ScheduleSpec(_Strict):
    """How the learning rate changes over the epochs."""

    name: Literal["constant", "step", "cosine"] = Field(
        "constant",
        description="constant, step (times gamma "
        "every step_size epochs) or cosine (to 0 at the end)",
    )
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, description="step: factor per decay")


class EarlyStopping(_Strict):
    """Stop when the validation metric has not improved for `patience` epochs."""

    metric: str = Field(
        "loss", description="'loss' or one of the algorithm's metrics, on the validation split"
    )
    patience: int = Field(5, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as an improvement")


ALGORITHM_KINDS = ("classification", "regression", "autoencoder", "custom")
LOSSES = ("cross_entropy", "mse", "l1", "smooth_l1")


class Algorithm(_Strict):
    """A training procedure (`training/algorithms/<name>.yaml`): loss, optimiser, schedule, epochs…

    `kind` picks a built-in procedure; `kind: custom` with `code: <file>.py` runs the `Algorithm`
    class of that file (docs/training.md#custom-algorithms).
    """

    name: str = Field(description="algorithm name; equals the file name without .yaml")
    description: str | None = Field(None, description="what the procedure does")
    kind: Literal[ALGORITHM_KINDS] = Field(
        description="classification (cross-entropy, accuracy), regression "
        "(mse, mae), autoencoder (reconstruction mse of the input), or "
        "custom (the Algorithm class of `code`)"
    )
    code: str | None = Field(
        None, description="custom: the Python file in training/algorithms/ with the Algorithm class"
    )
    loss: Literal[LOSSES] | None = Field(None, description="built-in loss (default: the kind's)")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="optimiser")
    schedule: ScheduleSpec = Field(
        default_factory=ScheduleSpec, description="learning-rate schedule"
    )
    epochs: int = Field(10, ge=1, le=100_000, description="passes over the training split")
    batch_size: int = Field(32, ge=1, description="samples per optimiser step")
    seed: int = Field(0, description="seed of the initial weights and the shuffling")
    early_stopping: EarlyStopping | None = Field(
        None, description="stop early on a validation metric"
    )
    output: str | None = Field(
        None, description="the structure output the loss reads (default: the first)"
    )
    export: list[str] | None = Field(
        None,
        description="the structure outputs the exported ONNX model keeps "
        "(default: the one the loss reads)",
    )
    softmax: bool = Field(
        False,
        description="classification: export probabilities (softmax of the "
        "output), named 'probabilities'",
    )

    _name = field_validator("name")(lambda cls, v: _check_name(v))

    @model_validator(mode="after")
    def _custom_has_code(self) -> Algorithm:
        if self.kind == "custom" and not self.code:
            raise ValueError("a custom algorithm names its Python file (code: my_algorithm.py)")
        if self.code and self.kind != "custom":
            raise ValueError("`code` is only for kind: custom")
        if self.code and (
            not self.code.endswith(".py") or "/" in self.code or self.code.startswith(".")
        ):
            raise ValueError("`code` is a .py file name in training/algorithms/ (no folders)")
        return self


# hyperparameters a task instance may set on its algorithm, and where they go
ALGORITHM_HYPERPARAMETERS = {
    "epochs": ("epochs",),
    "batch_size": ("batch_size",),
    "seed": ("seed",),
    "learning_rate": ("optimizer", "learning_rate"),
    "weight_decay": ("optimizer", "weight_decay"),
    "momentum": ("optimizer", "momentum"),
}


# --------------------------------------------------------------------------- task.yaml


class InstanceSpec(_Strict):
    """One training instance: a dataset, an algorithm and a structure with hyperparameters."""

    name: str = Field(description="instance name, unique in the task (its results folder)")
    dataset: str | None = Field(None, description="dataset name (default: the task's)")
    algorithm: str | None = Field(None, description="algorithm name (default: the task's)")
    structure: str | None = Field(None, description="structure name (default: the task's)")
    hyperparameters: dict[str, Scalar] = Field(
        default_factory=dict,
        description="epochs, batch_size, seed, "
        "learning_rate, weight_decay, momentum, or a structure param",
    )

    _name = field_validator("name")(lambda cls, v: _check_name(v))


class GridSpec(_Strict):
    """Instances as every combination of some hyperparameter values."""

    prefix: str = Field("grid", description="instance names start with this")
    dataset: str | None = Field(None, description="dataset name (default: the task's)")
    algorithm: str | None = Field(None, description="algorithm name (default: the task's)")
    structure: str | None = Field(None, description="structure name (default: the task's)")
    hyperparameters: dict[str, list[Scalar]] = Field(
        description="name -> values; one instance per combination"
    )

    _prefix = field_validator("prefix")(lambda cls, v: _check_name(v))


class TrainingTask(_Strict):
    """A training task (`training/<task>/task.yaml`): metadata, instances, the model it makes."""

    name: str = Field(description="task name; equals its folder under training/")
    task: Task = Field(description="training task category (as on a model card)")
    description: str | None = Field(None, description="what is being trained")
    project: str = Field(description="business project the model belongs to")
    owners: list[str] = Field(default_factory=list, description="code owners (@user or @org/team)")
    model: str = Field(
        description="the model name the best result is registered under (models/<model>/)"
    )
    metric: str = Field(
        description="the held-out metric that picks the best instance (accuracy, mse…)"
    )
    higher_is_better: bool | None = Field(
        None, description="direction of the metric (default: by its name)"
    )
    license: str | None = Field(None, description="SPDX license id of the registered model")
    tags: list[str] = Field(default_factory=list, description="labels of the registered model")
    dataset: str | None = Field(None, description="default dataset of the instances")
    algorithm: str | None = Field(None, description="default algorithm of the instances")
    structure: str | None = Field(None, description="default structure of the instances")
    hyperparameters: dict[str, Scalar] = Field(
        default_factory=dict, description="defaults for every instance"
    )
    instances: list[InstanceSpec] = Field(
        default_factory=list, description="the instances, one by one"
    )
    grid: GridSpec | None = Field(
        None, description="more instances: every combination of some values"
    )

    _name = field_validator("name", "model")(lambda cls, v: _check_name(v))

    @model_validator(mode="after")
    def _has_instances(self) -> TrainingTask:
        if not self.instances and self.grid is None:
            raise ValueError("a task has instances (a list) or a grid, or both")
        return self


# --------------------------------------------------------------------------- results.json

RESULTS_FORMAT = 1
COMMIT_RE = r"^[0-9a-f]{40}$"


class RegisteredAs(_Strict):
    """The model entry an instance's result became."""

    model: str = Field(description="the model's name (models/<model>/)")
    version: str | None = Field(
        None, description="its card's version when registered (none: the publisher sets it)"
    )

    _name = field_validator("model")(lambda cls, v: _check_name(v))


class InstanceResult(_Strict):
    """One instance as it ended: state, held-out metrics, epochs run."""

    name: str = Field(description="the instance's name in task.yaml")
    state: Literal["done", "partial"] = Field(
        description="done: trained to the end; partial: stopped at a checkpoint"
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="metrics on the held-out (test) split"
    )
    epochs_run: int | None = Field(None, ge=0, description="epochs trained")
    commit: str | None = Field(
        None,
        pattern=COMMIT_RE,
        description="the commit this instance trained from, when not the summary's `commit`",
    )
    registered: RegisteredAs | None = Field(
        None, description="the model entry this instance's result was registered as"
    )


class TaskResults(_Strict):
    """The committed summary of a task's results (`training/<task>/results.json`), written by
    `registry train --register`: the results folders themselves stay out of git."""

    schema_ref: str | None = Field(
        None, alias="$schema", description="path of this JSON Schema, for editors"
    )
    format: Literal[1] = Field(description="version of this file's format")
    task: str = Field(description="the task's name; equals its folder under training/")
    commit: str = Field(pattern=COMMIT_RE, description="the commit the instances trained from")
    metric: str = Field(description="the task's metric that picked the registered instance")
    instances: list[InstanceResult] = Field(description="every instance with results")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    _name = field_validator("task")(lambda cls, v: _check_name(v))


def results_summary_path(task: str) -> str:
    """Repository-relative path of a task's committed results summary."""
    return f"{TRAINING_DIR}/{task}/{RESULTS_SUMMARY}"


@dataclass
class Instance:
    """A resolved training instance: every reference and hyperparameter filled in."""

    name: str
    dataset: str
    algorithm: str
    structure: str
    hyperparameters: dict[str, Any]
    origin: tuple = ()  # key path in task.yaml it comes from (for finding lines)


def expand_instances(task: TrainingTask) -> list[Instance]:
    """The task's instances: the listed ones, then the grid's combinations (sorted keys, given
    order).

    A missing dataset/algorithm/structure stays '' (the static check reports it).
    """
    out: list[Instance] = []
    for i, spec in enumerate(task.instances):
        out.append(
            Instance(
                spec.name,
                spec.dataset or task.dataset or "",
                spec.algorithm or task.algorithm or "",
                spec.structure or task.structure or "",
                {**task.hyperparameters, **spec.hyperparameters},
                ("instances", i),
            )
        )
    if task.grid is not None:
        g = task.grid
        keys = list(g.hyperparameters)
        for values in itertools.product(*(g.hyperparameters[k] for k in keys)):
            combo = dict(zip(keys, values))
            suffix = "-".join(f"{_slug(k)}-{_slug(v)}" for k, v in combo.items())
            out.append(
                Instance(
                    f"{g.prefix}-{suffix}" if suffix else g.prefix,
                    g.dataset or task.dataset or "",
                    g.algorithm or task.algorithm or "",
                    g.structure or task.structure or "",
                    {**task.hyperparameters, **combo},
                    ("grid",),
                )
            )
    return out


def _slug(v: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(v).lower()).strip("-") or "x"


# --------------------------------------------------------------------------- loading with lines

M = TypeVar("M", bound=BaseModel)


@dataclass
class FileFinding:
    """A problem in one training file: message, fix, file and line."""

    message: str
    hint: str | None
    path: str
    line: int | None = None


@dataclass
class LoadedFile:
    """A training file read and validated: the object when valid, else the findings."""

    path: str
    parsed: ParsedYaml | None
    value: Any
    findings: list[FileFinding] = field(default_factory=list)

    def line_of(self, *loc: Any) -> int | None:
        """Line of a key path in the file, when known."""
        return self.parsed.line_of(loc) if self.parsed else None


def load_file(
    data: bytes | str | None, path: str, model: type[M], *, expected_name: str | None = None
) -> LoadedFile:
    """Read one YAML file of a training kind; problems come back as findings, never raised.

    Args:
        data: the file's bytes (None: it does not exist).
        path: repository-relative path, for messages.
        model: the kind (`Dataset`, `Structure`, `Algorithm`, `TrainingTask`).
        expected_name: the `name:` the file must carry (its folder or file name).
    """
    if data is None:
        return LoadedFile(path, None, None, [FileFinding(f"{path} does not exist", None, path)])
    try:
        parsed = parse_card_yaml(data, path)
    except CardError as e:
        msg = e.message.replace("a model card", "a training file").replace("the card", "the file")
        hint = (e.hint or "").replace("model.yaml", Path(path).name) or None
        return LoadedFile(path, None, None, [FileFinding(msg, hint, path, e.line)])
    try:
        value = model.model_validate(parsed.data)
    except ValidationError as e:
        return LoadedFile(
            path, parsed, None, [_finding(err, parsed, path, model) for err in e.errors()]
        )
    loaded = LoadedFile(path, parsed, value)
    name = getattr(value, "name", None)
    if expected_name is not None and name != expected_name:
        loaded.findings.append(
            FileFinding(
                f"name '{name}' does not match the file's place ('{expected_name}')",
                f"write name: {expected_name}",
                path,
                parsed.line_of(("name",)),
            )
        )
    return loaded


def load_results_summary(data: bytes | str | None, path: str, task: str) -> LoadedFile:
    """Read a task's `results.json` (strict JSON, then the `TaskResults` schema, with lines);
    problems come back as findings naming the file, never raised.

    Args:
        task: the folder it sits in, which its `task` must name.
    """
    fix = "it is written by `registry train --register`: register again, or fix it by hand"
    if data is None:
        return LoadedFile(path, None, None, [FileFinding(f"{path} does not exist", None, path)])
    try:
        json.loads(data)
    except RecursionError:
        why = "nested too deeply to read"
        return LoadedFile(path, None, None, [FileFinding(f"not valid JSON: {why}", fix, path)])
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        line = getattr(e, "lineno", None)
        why = getattr(e, "msg", None) or str(e)
        return LoadedFile(
            path, None, None, [FileFinding(f"not valid JSON: {why}", fix, path, line)]
        )
    loaded = load_file(data, path, TaskResults)
    if loaded.value is not None and loaded.value.task != task:
        loaded.findings.append(
            FileFinding(
                f"task '{loaded.value.task}' does not match its folder ('{task}')",
                f'write "task": "{task}"',
                path,
                loaded.line_of("task"),
            )
        )
    return loaded


def _finding(err: dict, parsed: ParsedYaml, path: str, model: type[BaseModel]) -> FileFinding:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "file"
    line = parsed.line_of(loc)
    kind = err["type"]
    if kind == "missing":
        return FileFinding(
            f"required field '{where}' is missing",
            f"add '{loc[-1]}:'",
            path,
            parsed.line_of(loc[:-1]) or 1,
        )
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'?" if near else "known fields: " + ", ".join(known)
        return FileFinding(f"unknown field '{where}'", hint, path, line)
    msg = err["msg"].removeprefix("Value error, ")
    if (
        err.get("input") is not None
        and kind != "value_error"
        and not isinstance(err["input"], (dict, list))
    ):
        msg = f"{msg} (got {err['input']!r})"
    return FileFinding(f"'{where}': {msg}", "fix the value (see docs/training.md)", path, line)


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        f = current.model_fields.get(str(part))
        if f is None:
            break
        ann = f.annotation
        inner = [
            a
            for a in getattr(ann, "__args__", ())
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        current = (
            ann
            if isinstance(ann, type) and issubclass(ann, BaseModel)
            else (inner[0] if inner else None)
        )
    return (
        [f.alias or k for k, f in current.model_fields.items()]
        if isinstance(current, type) and issubclass(current, BaseModel)
        else []
    )


# --------------------------------------------------------------------------- where files are


def dataset_path(name: str) -> str:
    """Repository-relative path of a dataset's YAML file."""
    return f"{DATASETS_DIR}/{name}/{DATASET_FILE}"


def structure_path(name: str) -> str:
    """Repository-relative path of a structure file."""
    return f"{STRUCTURES_DIR}/{name}.yaml"


def algorithm_path(name: str) -> str:
    """Repository-relative path of an algorithm file."""
    return f"{ALGORITHMS_DIR}/{name}.yaml"


def task_path(name: str) -> str:
    """Repository-relative path of a task file."""
    return f"{TRAINING_DIR}/{name}/{TASK_FILE}"


RESERVED_TRAINING_FOLDERS = ("layers", "structures", "algorithms")


def task_names(snapshot) -> list[str]:
    """Every training task in a snapshot (folders of training/ holding a task.yaml)."""
    return [
        n
        for n in snapshot.list_dir(TRAINING_DIR)
        if n not in RESERVED_TRAINING_FOLDERS and snapshot.read(task_path(n)) is not None
    ]


def subcommand_clash(name: str) -> tuple[str, str] | None:
    """(message, fix) when a task's name is one of `registry train`'s subcommands, which take the
    place of the task on the command line; None for a name that can be trained."""
    if name not in TRAIN_SUBCOMMANDS:
        return None
    return (
        f"task '{name}' is named like the subcommand `registry train {name}`, which runs in its "
        "place, so this task cannot be trained",
        f"rename the task (its folder {TRAINING_DIR}/{name}/ and its `name:`) to a name that is "
        f"none of {', '.join(TRAIN_SUBCOMMANDS)}",
    )


def shadowed_task(root: Path, name: str) -> UsageError | None:
    """The error for a task of the working tree (`training/<name>/task.yaml`) whose name is a
    subcommand's (`subcommand_clash`), naming the file and the line of its `name:`; None when the
    name is free or no such task exists."""
    path = task_path(name)
    clash = subcommand_clash(name)
    if clash is None or not (Path(root) / path).is_file():
        return None
    line = load_file((Path(root) / path).read_bytes(), path, TrainingTask).line_of("name")
    return UsageError(f"{path}:{line}: {clash[0]}" if line else f"{path}: {clash[0]}", clash[1])


def read_task(root: Path, name: str) -> TrainingTask:
    """Load `training/<name>/task.yaml` from a working tree, or raise the first problem.

    Raises:
        UsageError: no such task, a task named like a subcommand (`shadowed_task`), or the file
            is invalid (file:line: message).
    """
    path = task_path(name)
    shadowed = shadowed_task(root, name)
    if shadowed is not None:
        raise shadowed
    if not (Path(root) / path).is_file():
        from registry.core.repo import WorkTree

        known = task_names(WorkTree(Path(root)))
        near = difflib.get_close_matches(name, known, n=1)
        raise UsageError(
            f"no training task '{name}' ({path} does not exist)",
            f"did you mean '{near[0]}'?"
            if near
            else ("known tasks: " + ", ".join(known))
            if known
            else "write training/<task>/task.yaml",
        )
    return require(
        load_file((Path(root) / path).read_bytes(), path, TrainingTask, expected_name=name)
    )


def require(loaded: LoadedFile):
    """The loaded value, or a `UsageError` naming the first finding with its file and line."""
    if loaded.value is not None and not loaded.findings:
        return loaded.value
    f = loaded.findings[0]
    where = f"{f.path}:{f.line}" if f.line else f.path
    raise UsageError(
        f"{where}: {f.message}", f.hint or "run `registry train check` for every problem"
    )


# --------------------------------------------------------------------------- schemas

SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "docs/dataset.schema.json": (Dataset, "Dataset (datasets/<name>/dataset.yaml)"),
    "docs/training-structure.schema.json": (
        Structure,
        "Model structure (training/structures/<name>.yaml)",
    ),
    "docs/training-algorithm.schema.json": (
        Algorithm,
        "Training algorithm (training/algorithms/<name>.yaml)",
    ),
    "docs/training-task.schema.json": (TrainingTask, "Training task (training/<task>/task.yaml)"),
    "docs/training-results.schema.json": (
        TaskResults,
        "Training results summary (training/<task>/results.json)",
    ),
}
SCHEMA_FOR_KIND = {
    "dataset": "docs/dataset.schema.json",
    "structure": "docs/training-structure.schema.json",
    "algorithm": "docs/training-algorithm.schema.json",
    "task": "docs/training-task.schema.json",
    "results": "docs/training-results.schema.json",
}


def json_schema(model: type[BaseModel], title: str) -> dict:
    """The JSON Schema of one kind, for editors (yaml-language-server)."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema


def write_schemas(root: Path) -> list[Path]:
    """Write every training kind's JSON Schema under `root/docs/`; return the paths."""
    written = []
    for rel, (model, title) in SCHEMAS.items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(json_schema(model, title), indent=2) + "\n")
        written.append(path)
    return written


def schema_line(kind: str, file_path: str) -> str:
    """The `# yaml-language-server: $schema=…` line for a file of `kind` at `file_path`
    (repo-relative)."""
    import os

    rel = os.path.relpath(SCHEMA_FOR_KIND[kind], os.path.dirname(file_path) or ".")
    return f"# yaml-language-server: $schema={rel}"
