"""The model card: `models/<name>/model.yaml`, its schema, and a safe loader that keeps line
numbers.

A card is read in two steps. `parse_card_yaml` turns the text into plain data plus a map from
each key path to its line (so every finding can point at the exact YAML line), refusing what a
card must never contain: more than `MAX_CARD_BYTES`, aliases (the "billion laughs" bomb),
duplicate keys, tags that build Python objects, or anything but a mapping at the top.
A card in the common plain shape (`registry.cards.plaincard`) is
read without the YAML parser, to the same data and lines; any other goes through the parser.
`ModelCard.model_validate` then checks fields and types. `load_card` does both and turns
pydantic's errors into `CardFinding`s with file, line and a fix.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from registry.cards.metrics import METRIC_NAMES
from registry.cards.plaincard import read_plain_lines
from registry.cards.sizes import format_size as format_size  # re-exported: the old home
from registry.cards.sizes import parse_size
from registry.core.errors import CardError
from registry.core.layout import CARD_FILE, MODELS_DIR, NAME_RE
from registry.core.semver import SEMVER_RE

if TYPE_CHECKING:  # pragma: no cover
    from registry.core.repo import Snapshot

# `source.repo` of training code kept in the registry's own repository (checked offline, by commit)
SELF_REPO = "self"
MAX_CARD_BYTES = 256 * 1024
SCHEMA_URL = "https://raw.githubusercontent.com/{repo}/main/docs/model-card.schema.json"

try:  # the C loader is ~10x faster; `check --all` over 10,000 cards depends on it
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class Task(str, Enum):
    """Training task categories a card may name (see docs/model-card.md)."""

    classification = "classification"
    detection = "detection"
    segmentation = "segmentation"
    embedding = "embedding"
    regression = "regression"
    keypoints = "keypoints"
    ocr = "ocr"
    speech_recognition = "speech-recognition"
    text_classification = "text-classification"
    token_classification = "token-classification"
    generation = "generation"
    translation = "translation"
    anomaly_detection = "anomaly-detection"
    tracking = "tracking"
    depth_estimation = "depth-estimation"
    super_resolution = "super-resolution"


class Status(str, Enum):
    """Lifecycle states of SPEC.md §1; the card's `status` is the state a pull request asks for."""

    unpublished = "unpublished"
    published = "published"
    updated = "updated"
    offline = "offline"


class Source(BaseModel):
    """Where the training code lives."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(
        description="git URL of the training code (https://, ssh://, git@host:path), or "
        f"'{SELF_REPO}' when the code lives in this registry's own repository"
    )
    commit: str | None = Field(
        None,
        description="commit of the training code (7-40 hex digits); required "
        f"with repo '{SELF_REPO}'",
    )
    path: str | None = Field(
        None,
        description="file or folder of the training code inside the repository, "
        f"e.g. scripts/train.py; required with repo '{SELF_REPO}'",
    )

    @field_validator("repo")
    @classmethod
    def _repo_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a git URL, not empty")
        return v.strip()

    @field_validator("commit")
    @classmethod
    def _commit_hex(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-f]{7,40}", v):
            raise ValueError("must be a commit id: 7 to 40 lowercase hex digits")
        return v

    @field_validator("path")
    @classmethod
    def _path_relative(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v.startswith("/") or ".." in v.split("/")):
            raise ValueError("must be a path relative to the repository's root, without '..'")
        return v

    @model_validator(mode="after")
    def _self_is_pinned(self) -> Source:
        if self.repo == SELF_REPO and (self.commit is None or self.path is None):
            raise ValueError(
                f"repo '{SELF_REPO}' needs both commit (the commit that holds the "
                "training code) and path (where the code is in this repository)"
            )
        return self

    @property
    def is_self(self) -> bool:
        """Whether the training code lives in the registry's own repository."""
        return self.repo == SELF_REPO


_EXPONENT_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+")


class Metric(BaseModel):
    """One training/evaluation metric, on a named dataset."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="metric name, e.g. accuracy, top5, f1, map, loss, latency_ms")
    value: float = Field(description="the measured value (a number: not a string, not true/false)")
    dataset: str = Field(description="evaluation set the value was measured on")

    @field_validator("value", mode="before")
    @classmethod
    def _a_number(cls, v: object) -> object:
        # pydantic would read `true` as 1.0 and "0.93" as 0.93: a metric is written as a number.
        # One string form is a number all the same: YAML 1.1 (PyYAML) reads `1.2e3` as a string.
        if isinstance(v, str) and _EXPONENT_RE.fullmatch(v.strip()):
            return float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"must be a number, not {type(v).__name__} {v!r}")
        return v

    unit: str | None = Field(
        None, description="'%' or 'ratio' for accuracy-like metrics, 'ms' for latency…"
    )
    higher_is_better: bool | None = Field(
        None, description="direction; inferred from the name when absent"
    )

    @field_validator("name", "dataset")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class TargetSpec(BaseModel):
    """A device target to package on release, with its options."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="target name, see `registry package --list-targets`")
    quantize: Literal["dynamic", "static"] | None = Field(
        None, description="quantize to int8: dynamic, or static with the card's calibration data"
    )
    optimize: bool = Field(False, description="apply offline graph optimisation")
    converter: str | None = Field(
        None, description="force one converter instead of the target's candidates"
    )
    calibration: str | None = Field(
        None,
        description="static int8: calibration inputs (.npz keyed by input "
        "name) in the model folder",
    )
    inputs: str | None = Field(
        None,
        description="sample inputs for verification (.npz keyed by input name) in "
        "the model folder; generated from the input signature when absent",
    )
    processing: list[dict[str, Any]] = Field(
        default_factory=list,
        description="pre/post-processing merged "
        "into the graph: normalize, softmax, topk (docs/packaging.md)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="target-specific options, see `registry package --list-targets`",
    )

    @field_validator("calibration", "inputs")
    @classmethod
    def _data_inside_folder(cls, v: str | None) -> str | None:
        return None if v is None else check_relative_path(v)


class EvaluationSpec(BaseModel):
    """The card's `evaluation:` section: the data set and metric a model is judged by."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(
        description="DVC-tracked .npz evaluation set relative to the model folder "
        "(arrays: one per model input, or 'inputs'; plus 'labels')"
    )
    metric: str = Field(description="metric name: " + ", ".join(METRIC_NAMES))
    dataset: str | None = Field(
        None, description="name of the evaluation set in reports (default: the file name)"
    )
    k: int = Field(5, ge=1, description="k of the top-k metric")
    output: str | None = Field(
        None, description="model output the metric reads (default: the first)"
    )
    inputs: dict[str, str] | None = Field(
        None, description="model input name -> array name in the .npz, when they differ"
    )
    labels: str = Field("labels", description="name of the labels array in the .npz")

    @field_validator("data")
    @classmethod
    def _data_inside(cls, v: str) -> str:
        return check_relative_path(v)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in METRIC_NAMES:
            near = difflib.get_close_matches(v, METRIC_NAMES, n=1, cutoff=0.5)
            raise ValueError(
                f"unknown metric '{v}'"
                + (f"; did you mean '{near[0]}'?" if near else "")
                + " (known: "
                + ", ".join(METRIC_NAMES)
                + ")"
            )
        return v


class CompressSpec(BaseModel):
    """The card's `compress:` section: the lightweighting target and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    max_size: int | str | None = Field(
        None,
        description="largest acceptable weights file: bytes, '25MB', or a share of the "
        "original's size ('0.26x')",
    )
    max_metric_drop: float | str | None = Field(
        None,
        description="largest acceptable drop of the metric: absolute (0.01) or relative ('2%')",
    )
    max_latency: float | str | None = Field(
        None,
        description="largest acceptable median single-sample latency on the machine that runs it, "
        "in ms (12.5 or '12.5ms')",
    )
    metric: str | None = Field(
        None, description="metric the drop is measured on (default: evaluation.metric)"
    )
    methods: list[str] | None = Field(
        None, description="methods to try, in order (default: cheapest first)"
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="settings per method name, see `registry compress --list-methods`",
    )
    search: Literal["first", "best"] = Field(
        "first",
        description="first: stop at the first candidate that meets the target; best: try all, keep "
        "the best",
    )
    calibration_data: str | None = Field(
        None,
        description="DVC-tracked .npz of inputs for static quantization (default: the evaluation "
        "set)",
    )
    train_data: str | None = Field(
        None,
        description="DVC-tracked .npz of training inputs and labels, for pruning fine-tune, "
        "distillation and training a small model",
    )

    @field_validator("max_size")
    @classmethod
    def _size(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, str) and parse_size_share(v) is None:
            parse_size(v)
        elif isinstance(v, int) and v <= 0:
            raise ValueError("must be a positive number of bytes")
        return v

    @field_validator("max_metric_drop")
    @classmethod
    def _drop(cls, v: float | str | None) -> float | str | None:
        if v is not None:
            parse_drop(v)
        return v

    @field_validator("max_latency")
    @classmethod
    def _latency(cls, v: float | str | None) -> float | str | None:
        if v is not None:
            parse_latency(v)
        return v

    @field_validator("calibration_data", "train_data")
    @classmethod
    def _inside(cls, v: str | None) -> str | None:
        return None if v is None else check_relative_path(v)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        return None if v is None else EvaluationSpec._known_metric(v)

    @field_validator("methods")
    @classmethod
    def _some_methods(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError(
                "name at least one method, or leave 'methods' out for the default order"
            )
        return v


def parse_drop(v: float | str) -> tuple[float, bool]:
    """Parse a metric-drop bound into (value, relative): 0.01 -> (0.01, False); '2%' -> (0.02,
    True)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        value, relative = float(v), False
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", str(v))
        if not m:
            raise ValueError(
                f"'{v}' is not a metric drop: write an absolute number (0.01) or a percentage "
                f"('2%')"
            )
        value, relative = float(m.group(1)) / (100 if m.group(2) else 1), bool(m.group(2))
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be zero or a positive number")
    return value, relative


def parse_latency(v: float | str) -> float:
    """Parse a latency bound in milliseconds: 12.5, '12.5ms', '0.5s'."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        ms = float(v)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", str(v))
        if not m:
            raise ValueError(
                f"'{v}' is not a latency: write milliseconds (12.5 or '12.5ms') or seconds ('0.5s')"
            )
        ms = float(m.group(1)) * (1000 if m.group(2) == "s" else 1)
    if not math.isfinite(ms) or ms <= 0:
        raise ValueError("must be a positive number of milliseconds")
    return ms


class ModelCard(BaseModel):
    """The metadata of one model in the registry (`models/<name>/model.yaml`).

    `source.repo`, `config`, `weights` (and `pytorch`, when present) together identify a published
    version: changing any of them needs a new `version`.
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    name: str = Field(
        description="model name: lowercase letters, digits and '-', 2 to 64 characters; equals the "
        "folder name"
    )
    version: str | None = Field(
        None, description="SemVer without a leading 'v' (1.2.0); required once published"
    )
    status: Status = Field(Status.unpublished, description="lifecycle state this change asks for")
    task: Task = Field(description="training task category")
    project: str = Field(description="business project the model belongs to")
    source: Source = Field(description="training code")
    config: str = Field(description="config file, relative to the model folder (yaml or json)")
    weights: str = Field(
        description="weights/structure file relative to the model folder, DVC-tracked (ONNX)"
    )
    pytorch: str | None = Field(
        None,
        description="PyTorch source of the same model: a .pt2 ExportedProgram "
        "(torch.export.save) relative to the model folder, DVC-tracked; device "
        "targets convert it for ExecuTorch and Core ML",
    )
    size: int | str | None = Field(
        None, description="storage size of the weights: bytes, or '12.5MB'; must match DVC"
    )
    metrics: list[Metric] = Field(default_factory=list, description="training/evaluation metrics")
    description: str | None = Field(None, description="what the model does, free text")
    owners: list[str] = Field(default_factory=list, description="code owners (@user or @org/team)")
    license: str | None = Field(None, description="SPDX license id")
    tags: list[str] = Field(default_factory=list, description="free labels")
    targets: list[TargetSpec] = Field(
        default_factory=list, description="device targets to package on release"
    )
    derived_from: str | None = Field(
        None, description="'<name>@<version>' this model was derived from (compression)"
    )
    compress: CompressSpec | None = Field(
        None, description="lightweighting target and settings, see docs/compress.md"
    )
    evaluation: EvaluationSpec | None = Field(
        None, description="evaluation data and metric used by compress/package"
    )

    @field_validator("name")
    @classmethod
    def _name_format(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError(
                "must be 2-64 characters of lowercase letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        return v

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith("v"):
            raise ValueError(f"write the version without a leading 'v': {v[1:]}")
        if not SEMVER_RE.fullmatch(v):
            raise ValueError("must be a SemVer version such as 1.2.0")
        return v

    @field_validator("config", "weights")
    @classmethod
    def _inside_folder(cls, v: str) -> str:
        return check_relative_path(v)

    @field_validator("pytorch")
    @classmethod
    def _pt2_inside_folder(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = check_relative_path(v)
        if not v.endswith(".pt2"):
            raise ValueError(
                "must name a .pt2 file (torch.export.save(exported_program, 'model.pt2'))"
            )
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, str):
            parse_size(v)
        elif isinstance(v, int) and v < 0:
            raise ValueError("must not be negative")
        return v

    @field_validator("targets", mode="before")
    @classmethod
    def _target_shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": t} if isinstance(t, str) else t for t in v]
        return v

    @model_validator(mode="after")
    def _version_when_published(self) -> ModelCard:
        if self.status is not Status.unpublished and self.version is None:
            raise ValueError(f"'version' is required when status is '{self.status.value}'")
        return self

    @property
    def size_bytes(self) -> int | None:
        """The declared size in bytes (None when not declared)."""
        if self.size is None:
            return None
        return self.size if isinstance(self.size, int) else int(parse_size(self.size)[0])

    @property
    def tag(self) -> str | None:
        """The git tag of this version, `<name>@v<version>` (None without a version)."""
        return f"{self.name}@v{self.version}" if self.version else None


_DRIVE = re.compile(r"[A-Za-z]:")  # a Windows drive, at the start


def check_relative_path(v: str) -> str:
    """Refuse a path that is absolute or climbs out of the model's folder; return it normalised."""
    if not v or not v.strip():
        raise ValueError("must be a file name inside the model folder")
    if v.startswith(("/", "\\")) or _DRIVE.match(v):
        raise ValueError("must be relative to the model folder, not absolute")
    if "/" not in v and "\\" not in v and v not in (".", ".."):
        return v  # a plain file name: what the normalisation below returns, without its cost
    parts = PurePosixPath(v.replace("\\", "/")).parts
    if ".." in parts:
        raise ValueError("must stay inside the model folder ('..' is not allowed)")
    return str(PurePosixPath(*parts))


def parse_size_share(text: str) -> float | None:
    """A size written as a share of the original's ('0.26x' -> 0.26), or None for any other text.

    Raises:
        ValueError: a share that is not above 0.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[xX]\s*", text)
    if not m:
        return None
    share = float(m.group(1))
    if share <= 0:
        raise ValueError(f"'{text}' is no share of the original: write e.g. 0.26x")
    return share


# --------------------------------------------------------------------------- YAML with lines


@dataclass
class ParsedYaml:
    """Plain data of a YAML document plus the line (1-based) of every key path in it."""

    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, loc: tuple) -> int | None:
        """Line of the deepest known prefix of `loc` (a key path such as ('metrics', 0,
        'value'))."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get(())


def parse_card_yaml(text: str | bytes, path: str = CARD_FILE) -> ParsedYaml:
    """Parse card YAML safely, recording line numbers.

    Raises:
        CardError: too big, not UTF-8, not YAML, aliases, duplicate keys, or not a mapping.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_CARD_BYTES:
            raise CardError(
                f"the card is {len(text):,} bytes, over the {MAX_CARD_BYTES:,}-byte limit",
                "keep model.yaml to metadata; put long text in a README next to it",
                path=path,
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CardError(
                f"the card is not UTF-8 text (byte {e.start})",
                "save model.yaml as UTF-8",
                path=path,
            ) from None
    elif len(text.encode("utf-8", "surrogatepass")) > MAX_CARD_BYTES:
        raise CardError(
            f"the card is over the {MAX_CARD_BYTES:,}-byte limit",
            "keep model.yaml to metadata; put long text in a README next to it",
            path=path,
        )
    plain = read_plain_lines(text)
    if plain is not None:  # the common shape, read without the YAML parser: the same data, sooner
        return ParsedYaml(*plain)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise CardError(
                "the card is empty",
                "fill in the fields; `registry new` writes a template",
                path=path,
                line=1,
            )
        lines: dict[tuple, int] = {}
        _walk(node, (), lines, set(), path)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        context = ""
        if e.context and e.context_mark and (mark is None or e.context_mark.line != mark.line):
            context = f" ({e.context} started at line {e.context_mark.line + 1})"
        raise CardError(
            f"not valid YAML: {e.problem or e}{context}",
            "fix the YAML syntax at that line (indentation, quotes, ':' after keys)",
            path=path,
            line=line,
        ) from None
    except yaml.YAMLError as e:
        raise CardError(f"not valid YAML: {e}", "fix the YAML syntax", path=path) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise CardError(
            f"the card is {kind}, not a mapping of fields",
            "write the card as 'field: value' lines (name:, task:, …)",
            path=path,
            line=1,
        )
    return ParsedYaml(data, lines)


def _walk(node: yaml.Node, loc: tuple, lines: dict, seen: set, path: str) -> None:
    """Record lines, refuse aliases (a node met twice) and duplicate keys."""
    if id(node) in seen:
        raise CardError(
            "YAML anchors and aliases are not allowed in a model card",
            "write the repeated value out in full",
            path=path,
            line=node.start_mark.line + 1,
        )
    seen.add(id(node))
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: set = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise CardError(
                    "keys must be plain words",
                    "write 'key: value'",
                    path=path,
                    line=key_node.start_mark.line + 1,
                )
            key = key_node.value
            if key == "<<":
                raise CardError(
                    "YAML merge keys ('<<') are not allowed in a model card",
                    "write the fields out in full",
                    path=path,
                    line=key_node.start_mark.line + 1,
                )
            if key in keys:
                raise CardError(
                    f"key '{key}' appears twice",
                    "keep one of them",
                    path=path,
                    line=key_node.start_mark.line + 1,
                )
            keys.add(key)
            lines[loc + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, loc + (key,), lines, seen, path)
            lines[loc + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, loc + (i,), lines, seen, path)


# --------------------------------------------------------------------------- validation


@dataclass
class CardFinding:
    """One problem in a card's fields: where it is and how to fix it."""

    message: str
    hint: str
    line: int | None
    loc: tuple = ()


@dataclass
class LoadedCard:
    """The outcome of reading a card: the card when valid, else the findings."""

    path: str
    parsed: ParsedYaml | None
    card: ModelCard | None
    findings: list[CardFinding]

    def line_of(self, *loc: Any) -> int | None:
        """Line of a field in the card file, when known."""
        return self.parsed.line_of(loc) if self.parsed else None

    def require(self, prefix: str = "") -> ModelCard:
        """The card, or a `CardError` naming the first finding (its message after `prefix`), file
        and line."""
        if self.card is not None:
            return self.card
        f = self.findings[0]
        raise CardError(prefix + f.message, f.hint, path=self.path, line=f.line)


KNOWN_FIELDS = tuple(ModelCard.model_fields)


def load_card(text: str | bytes, path: str = CARD_FILE) -> LoadedCard:
    """Read and validate a card, returning findings instead of raising on field errors.

    Raises:
        CardError: only when the text cannot be read as a card at all (see `parse_card_yaml`).
    """
    parsed = parse_card_yaml(text, path)
    try:
        card = ModelCard.model_validate(parsed.data)
    except ValidationError as e:
        return LoadedCard(path, parsed, None, [_finding(err, parsed) for err in e.errors()])
    # NaN/inf metric values are well-typed floats; the `metrics` check judges them.
    return LoadedCard(path, parsed, card, [])


_MODEL_FOR_LOC: dict[str, type[BaseModel]] = {
    "source": Source,
    "metrics": Metric,
    "targets": TargetSpec,
    "compress": CompressSpec,
    "evaluation": EvaluationSpec,
}


def _finding(err: dict, parsed: ParsedYaml) -> CardFinding:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "card"
    kind = err["type"]
    line = parsed.line_of(loc)
    if kind == "missing":
        field_ = loc[-1]
        desc = _description(loc)
        return CardFinding(
            f"required field '{where}' is missing",
            f"add '{field_}:' ({desc})" if desc else f"add '{field_}:'",
            parsed.line_of(loc[:-1]) or 1,
            loc,
        )
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = (
            f"did you mean '{near[0]}'?" if near else "remove it; known fields: " + ", ".join(known)
        )
        return CardFinding(f"unknown field '{where}'", hint, line, loc)
    if kind == "enum" and loc and loc[-1] in ("task", "status"):
        allowed = [t.value for t in (Task if loc[-1] == "task" else Status)]
        got = str(err.get("input"))
        near = difflib.get_close_matches(got, allowed, n=1, cutoff=0.5)
        hint = (f"did you mean '{near[0]}'? " if near else "") + "allowed: " + ", ".join(allowed)
        return CardFinding(f"'{where}': '{got}' is not a known {loc[-1]}", hint, line, loc)
    msg = err["msg"].removeprefix("Value error, ")
    if (
        err.get("input") is not None
        and kind != "value_error"
        and not isinstance(err["input"], (dict, list))
    ):
        msg = f"{msg} (got {err['input']!r})"
    desc = _description(loc)
    return CardFinding(
        f"'{where}': {msg}", f"expected {desc}" if desc else "fix the value", line, loc
    )


def _known_keys(parent: tuple) -> list[str]:
    named = [p for p in parent if isinstance(p, str)]
    model = _MODEL_FOR_LOC.get(named[-1]) if named else ModelCard
    return list((model or ModelCard).model_fields)


def _description(loc: tuple) -> str | None:
    model: type[BaseModel] | None = ModelCard
    desc = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        f = model.model_fields.get(str(part))
        if f is None:
            return None
        desc = f.description
        model = _MODEL_FOR_LOC.get(str(part))
    return desc


def card_json_schema() -> dict:
    """JSON Schema of the model card, for editors (yaml-language-server) and `registry schema`."""
    schema = ModelCard.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Model card (models/<name>/model.yaml)"
    return schema


def card_path(name: str) -> str:
    """Repository-relative path of a model's card."""
    return f"{MODELS_DIR}/{name}/{CARD_FILE}"


def says_offline(card_bytes: bytes | None) -> bool:
    """Whether a card's text asks for status offline (the model was unpublished); False for no card
    or one that does not load."""
    if card_bytes is None:
        return False
    try:
        loaded = load_card(card_bytes)
    except CardError:
        return False
    return loaded.card is not None and loaded.card.status is Status.offline


def read_card(snapshot: Snapshot, name: str) -> tuple[LoadedCard | None, CardError | None]:
    """The card of `name` in a snapshot: (card, None), (None, error) or (None, None) if absent."""
    path = f"{MODELS_DIR}/{name}/{CARD_FILE}"
    data = snapshot.read(path)
    if data is None:
        return None, None
    try:
        return load_card(data, path), None
    except CardError as e:
        return None, e
