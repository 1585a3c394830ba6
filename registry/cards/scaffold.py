"""Scaffolding a new model folder: `models/<name>/` with its card, config and DVC-tracked weights.

`new_model` is what `registry new` calls. It builds the whole folder under a temporary name inside
`models/` (so `dvc add` runs inside the registry's DVC project), validates the card it wrote,
optionally pushes the weights to the `staging` remote, and only then renames the folder into
place: a failure at any step leaves nothing behind but DVC's content-addressed cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import yaml
from pydantic import BaseModel, Field, ValidationError

from registry.cards.schema import (
    CARD_FILE,
    MODELS_DIR,
    NAME_RE,
    Metric,
    ModelCard,
    Source,
    Status,
    Task,
)
from registry.cards.writer import render_card, schema_reference
from registry.core.errors import StorageError, UsageError
from registry.core.storage import dvc_add, dvc_push

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
NAME_RULE = (
    "2 to 64 characters of lowercase letters, digits and '-', "
    "starting and ending with a letter or digit (e.g. digits-cnn)"
)


_CARD = ModelCard.model_fields
_SOURCE = Source.model_fields


class NewModel(BaseModel):
    """What a publisher says about a model they add (the answers of `registry new`).

    The card's own fields come with the card's defaults and descriptions (`ModelCard`); `weights`,
    `config` and `pytorch` are the files to copy in, and `source_*` make the card's `source`.
    """

    name: str = _CARD["name"]
    weights: Path = Field(description="weights/structure file to copy in and track with DVC (ONNX)")
    config: Path = Field(
        description="config file to copy in (yaml or json): the training hyper-parameters"
    )
    task: Task = _CARD["task"]
    project: str = _CARD["project"]
    source_repo: str = _SOURCE["repo"]
    source_commit: str | None = _SOURCE["commit"]
    source_path: str | None = _SOURCE["path"]
    version: str | None = _CARD["version"]
    description: str | None = _CARD["description"]
    license: str | None = _CARD["license"]
    owners: list[str] = _CARD["owners"]
    tags: list[str] = _CARD["tags"]
    metrics: list[Metric] = _CARD["metrics"]
    pytorch: Path | None = Field(
        None,
        description="PyTorch source of the same model (.pt2 ExportedProgram) to "
        "copy in and track with DVC, for the native mobile runtimes",
    )


# The card fields a request gives as they are; its files are copied in under their own names.
_FILES = ("weights", "config", "pytorch")
_GIVEN = [k for k in NewModel.model_fields if k in _CARD and k not in _FILES]


class NewModelResult(BaseModel):
    """What `new_model` wrote."""

    folder: Path = Field(description="the new model folder")
    card: ModelCard = Field(description="the card written to model.yaml")
    pointer: Path = Field(description="the DVC pointer of the weights")
    md5: str = Field(description="md5 of the weights, as DVC recorded it")
    pushed: bool = Field(False, description="whether the weights were pushed to the staging remote")
    warnings: list[str] = Field(
        default_factory=list, description="what works but will surprise (a fixed-batch .pt2)"
    )


def check_name(name: str) -> str:
    """Refuse a model name that breaks the naming rule; return it.

    Raises:
        UsageError: with the rule and, for upper case or '_', the name it probably meant.
    """
    if NAME_RE.fullmatch(name):
        return name
    fixed = name.strip().lower().replace("_", "-").replace(" ", "-")
    hint = f"try '{fixed}'" if NAME_RE.fullmatch(fixed) else "choose another name"
    raise UsageError(f"'{name}' is not a valid model name: a name is {NAME_RULE}", hint)


def check_new_folder(root: Path, name: str) -> Path:
    """The folder a new model `name` would get; refuses an invalid name or an existing model.

    Raises:
        UsageError: invalid name, or models/<name> already exists (any case).
    """
    check_name(name)
    models = Path(root) / MODELS_DIR
    folder = models / name
    clash = (
        [p.name for p in models.iterdir() if p.name.lower() == name.lower()]
        if models.is_dir()
        else []
    )
    if folder.exists() or clash:
        raise UsageError(
            f"{MODELS_DIR}/{clash[0] if clash else name} already exists; `registry new` "
            "never overwrites a model",
            "choose another name, or edit that model's files in a pull request",
        )
    return folder


def check_weights(path: Path) -> None:
    """Refuse a weights file that is missing, empty or pickle-based.

    Raises:
        UsageError: the file does not exist or is empty.
        ModelFormatError: the file is pickle-based; loading it could run arbitrary code.
    """
    if not path.is_file():
        raise UsageError(
            f"weights file {path} does not exist", "give the path of the exported model file"
        )
    if path.stat().st_size == 0:
        raise UsageError(f"weights file {path} is empty", "export the model again")
    from registry.formats.weights import detect_format

    detect_format(
        path
    )  # refuses pickle-based and unreadable formats by their bytes, loading nothing


def check_pytorch(path: Path, weights: Path | None = None) -> list[str]:
    """Refuse a PyTorch source that is missing or not a plain PT2 archive (inspected, never loaded);
    return warnings: a batch the `.pt2` fixes while the ONNX `weights` leave it free.

    Raises:
        UsageError: missing or not named .pt2. ModelFormatError: pickled or compiled entries.
    """
    from registry.formats.pt2 import inspect_pt2

    if not path.is_file():
        raise UsageError(
            f"PyTorch source {path} does not exist",
            "give the path of the .pt2 from torch.export.save",
        )
    if path.suffix != ".pt2":
        raise UsageError(
            f"PyTorch source {path.name} is not a .pt2 file",
            "save the ExportedProgram with torch.export.save(ep, 'model.pt2')",
        )
    archive = inspect_pt2(path, path.name)
    return pytorch_warnings(archive, path.name, weights)


def pytorch_warnings(archive, shown: str, weights: Path | None) -> list[str]:
    """Warnings about a `.pt2` (its `inspect_pt2` result) next to its ONNX `weights`: a fixed
    batch where the ONNX model takes any."""
    from registry.core.errors import ModelFormatError
    from registry.formats.pt2 import FIXED_BATCH_HINT, fixed_batch, fixed_batch_warning
    from registry.formats.summary import summarize_onnx

    if weights is None or weights.suffix.lower() != ".onnx":
        return []
    try:
        onnx_inputs = [(t.name, t.shape or []) for t in summarize_onnx(weights).inputs]
    except ModelFormatError:
        return []
    found = fixed_batch(archive.inputs, onnx_inputs)
    if not found:
        return []
    return [f"{fixed_batch_warning(shown, weights.name, found)}; {FIXED_BATCH_HINT}"]


def check_config(path: Path) -> None:
    """Refuse a config file that is missing, not yaml/json, or does not parse.

    Raises:
        UsageError: naming the file and what to fix.
    """
    if not path.is_file():
        raise UsageError(
            f"config file {path} does not exist",
            "give the training config (yaml or json) the model was trained with",
        )
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise UsageError(
            f"config file {path} is not yaml or json", "convert it to a .yaml or .json file"
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise UsageError(
            f"config file {path} does not parse: {e}".splitlines()[0],
            "fix the file's syntax, then run the command again",
        ) from None


def new_model(root: str | os.PathLike, request: NewModel, *, push: bool = False) -> NewModelResult:
    """Scaffold `models/<name>/`: copy the weights and config, `dvc add` the weights, write the
    card.

    Args:
        root: the registry clone (holds `.dvc/` and `models/`).
        request: the model's fields.
        push: also push the weights to the `staging` remote (before the folder appears).

    Returns:
        what was written, with the md5 and size DVC recorded.

    Raises:
        UsageError: invalid name, existing model, missing/unparsable input files, not a DVC project.
        ModelFormatError: pickle-based weights.
        StorageError: `dvc add` or the push failed.
    """
    root = Path(root).resolve()
    if not (root / ".dvc").is_dir():
        raise UsageError(
            f"{root} is not a registry clone (no .dvc folder)", "run this inside the registry"
        )
    folder = check_new_folder(root, request.name)
    weights, config = Path(request.weights), Path(request.config)
    check_weights(weights)
    check_config(config)
    pytorch = Path(request.pytorch) if request.pytorch else None
    warnings = check_pytorch(pytorch, weights) if pytorch is not None else []
    weights_name, config_name = weights.name, config.name
    if config_name in (CARD_FILE, weights_name):
        config_name = "config" + config.suffix.lower()
    pytorch_name = pytorch.name if pytorch is not None else None
    if pytorch_name in (weights_name, config_name):
        raise UsageError(
            f"the PyTorch source and another file are both called '{pytorch_name}'",
            "rename the .pt2 file",
        )
    for what, name in (("weights", weights_name), ("config", config_name)):
        if PurePosixPath(name).suffix == ".dvc" or name == CARD_FILE or name.startswith("."):
            raise UsageError(
                f"the {what} file cannot be called '{name}' in a model folder",
                f"rename the {what} file",
            )

    folder.parent.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".new-{request.name}-", dir=folder.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a model folder is not
        shutil.copyfile(weights, tmp / weights_name)
        shutil.copyfile(config, tmp / config_name)
        pointer = dvc_add(root, tmp / weights_name)
        pointer_path = tmp / (weights_name + ".dvc")
        pointers = [pointer_path]
        if pytorch is not None:
            shutil.copyfile(pytorch, tmp / pytorch_name)
            dvc_add(root, tmp / pytorch_name)
            pointers.append(tmp / (pytorch_name + ".dvc"))
        card = _build_card(
            **{k: getattr(request, k) for k in _GIVEN},
            status=Status.unpublished,
            source={
                "repo": request.source_repo,
                "commit": request.source_commit,
                "path": request.source_path,
            },
            config=config_name,
            weights=weights_name,
            size=pointer.size,
            pytorch=pytorch_name,
        )
        text = render_card(card, schema=schema_reference(folder, root))
        (tmp / CARD_FILE).write_text(text, encoding="utf-8")
        if push:
            try:
                dvc_push(root, pointers)
            except StorageError as e:
                raise StorageError(
                    e.message, f"{e.hint}; nothing was written to {MODELS_DIR}/"
                ) from None
        if folder.exists():
            raise UsageError(
                f"{MODELS_DIR}/{request.name} appeared while scaffolding; not overwriting it"
            )
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Declare the model in dvc.yaml so `dvc artifacts get` and GTO find it at every tag.
    from registry.cards.artifacts import sync_artifacts

    sync_artifacts(root)
    return NewModelResult(
        folder=folder,
        card=card,
        pointer=folder / pointer_path.name,
        md5=pointer.md5,
        pushed=push,
        warnings=warnings,
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _build_card(**fields) -> ModelCard:
    """The card for the answers; a bad value (version, commit…) is a usage error naming the
    field."""
    try:
        return ModelCard(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "card"
        raise UsageError(
            f"'{where}': {err['msg'].removeprefix('Value error, ')}",
            "correct that option and run the command again",
        ) from None


def parse_metric(text: str) -> Metric:
    """Read a metric written as `NAME=VALUE@DATASET` (VALUE may end in '%', e.g.
    `accuracy=93.5%@test`).

    Raises:
        UsageError: when the text does not have that shape or VALUE is not a number.
    """
    name, eq, rest = text.partition("=")
    value, at, dataset = rest.rpartition("@")
    if not (eq and at and name.strip() and value.strip() and dataset.strip()):
        raise UsageError(
            f"metric '{text}' is not NAME=VALUE@DATASET", "e.g. --metric accuracy=0.93@digits-test"
        )
    value = value.strip()
    unit = "%" if value.endswith("%") else None
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise UsageError(
            f"metric '{text}': '{value}' is not a number", "e.g. --metric accuracy=0.93@digits-test"
        ) from None
    return Metric(name=name.strip(), value=number, dataset=dataset.strip(), unit=unit)
