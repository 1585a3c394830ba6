"""Release notes: what changed between two versions of a model, generated from the diff.

`build_notes` compares two `ModelVersion`s (a card plus where its weights live) and returns typed
`ReleaseNotes`: card fields changed (old → new), metric deltas per (metric, dataset) with their
direction and a regression mark, and the model's own diff (inputs/outputs, opset, op-type counts,
parameter count, file size). A version with no predecessor gets a first-release summary instead.
`render_notes` turns them into Markdown through `registry/templates/release_notes.md.j2`.

Notes are deterministic for a given pair of versions (the date is the version commit's date, not
the time of the run), so re-running a publish produces the same tag message and changelog entry.
"""

from __future__ import annotations

import functools
import math
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from registry.cards.schema import CARD_FILE, MODELS_DIR, ModelCard, format_size, load_card
from registry.core.errors import CardError, RegistryError, UsageError
from registry.core.repo import GitRevision, RegistryRepo, Snapshot
from registry.core.semver import semver_key
from registry.core.storage import PUBLIC, Storage, recorded_md5
from registry.versions.tags import tagged_commits

# Metric names whose smaller values are better, when a card does not say `higher_is_better`.
_LOWER_IS_BETTER = re.compile(
    r"(loss|error|err\b|\berr|latency|time|_ms\b|\bms\b|duration|wer|cer|mae|mse|rmse|perplexity|"
    r"\bppl\b|fpr|fnr|eer|size|memory|flops|miss)",
    re.IGNORECASE,
)
# Card fields with their own section (or implied by the heading) rather than an old → new line.
_NOT_FIELDS = {"version", "status", "metrics"}


# --------------------------------------------------------------------------- versions


def previous_version(versions: dict[str, str] | list[str], version: str) -> str | None:
    """The highest published version below `version`, or None for a first release."""
    lower = [v for v in versions if semver_key(v) < semver_key(version)]
    return max(lower, key=semver_key) if lower else None


def normalize_version(text: str) -> str:
    """'v1.2.0' or '1.2.0' → '1.2.0'."""
    return text[1:] if text[:1] in ("v", "V") and text[1:2].isdigit() else text


# --------------------------------------------------------------------------- typed notes


class FieldChange(BaseModel):
    """One card field whose value differs between the versions."""

    field: str
    old: str | None
    new: str | None


class MetricDelta(BaseModel):
    """A metric on one dataset, compared between the versions."""

    name: str
    dataset: str
    unit: str | None = None
    old: float | None = None
    new: float | None = None
    delta: float | None = None
    percent: float | None = Field(None, description="change relative to the old value, in percent")
    higher_is_better: bool
    direction_inferred: bool = Field(description="direction guessed from the metric's name")
    verdict: Literal["improved", "regressed", "unchanged", "added", "removed"]


class TensorChange(BaseModel):
    """An input or output that was added, removed or changed (shape or dtype)."""

    name: str
    change: Literal["added", "removed", "changed"]
    old: str | None = None
    new: str | None = None


class OpCountChange(BaseModel):
    """How many nodes of one op type each version has."""

    op: str
    old: int
    new: int

    @property
    def change(self) -> str:
        return "added" if self.old == 0 else "removed" if self.new == 0 else "changed"


class ModelFacts(BaseModel):
    """The structure of one version's model, for a first release or as the base of a diff."""

    inputs: list[str] = Field(description="'name: dtype[shape]' per input")
    outputs: list[str]
    opset: int | None
    op_counts: dict[str, int]
    parameters: int
    file_size: int


class ModelDiff(BaseModel):
    """The model's own diff between two versions."""

    inputs: list[TensorChange] = Field(default_factory=list)
    outputs: list[TensorChange] = Field(default_factory=list)
    opset_old: int | None = None
    opset_new: int | None = None
    ops: list[OpCountChange] = Field(default_factory=list)
    parameters_old: int
    parameters_new: int
    size_old: int
    size_new: int
    same_weights: bool = Field(False, description="both versions point at the same weights object")

    @property
    def opset_changed(self) -> bool:
        return self.opset_old != self.opset_new


class ReleaseNotes(BaseModel):
    """The release notes of one version of one model."""

    name: str
    version: str
    previous: str | None = Field(
        None, description="the version compared with; None for a first release"
    )
    date: str | None = Field(None, description="date of the version's commit (YYYY-MM-DD)")
    first_release: bool
    task: str
    project: str
    description: str | None = None
    fields: list[FieldChange] = Field(default_factory=list)
    config: list[FieldChange] = Field(
        default_factory=list,
        description="values of the config file that differ (nested keys by dotted path)",
    )
    config_unreadable: str | None = Field(
        None, description="why the config files could not be compared"
    )
    metrics: list[MetricDelta] = Field(default_factory=list)
    model: ModelDiff | None = None
    facts: ModelFacts | None = Field(None, description="the new version's structure")
    model_unavailable: str | None = Field(
        None, description="why the model diff is missing, if it is"
    )

    @property
    def regressions(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.verdict == "regressed"]


# --------------------------------------------------------------------------- comparing


def metric_direction(name: str, declared: bool | None) -> tuple[bool, bool]:
    """(higher_is_better, inferred) for a metric: the card's word, else a guess from its name."""
    if declared is not None:
        return declared, False
    return not _LOWER_IS_BETTER.search(name), True


def compare_metrics(old: ModelCard | None, new: ModelCard) -> list[MetricDelta]:
    """Deltas per (metric name, dataset), in the new card's order, then the removed ones."""
    before = {(m.name, m.dataset): m for m in (old.metrics if old else [])}
    out: list[MetricDelta] = []
    seen = set()
    for m in new.metrics:
        key = (m.name, m.dataset)
        seen.add(key)
        prev = before.get(key)
        higher, inferred = metric_direction(
            m.name,
            m.higher_is_better
            if m.higher_is_better is not None
            else (prev.higher_is_better if prev else None),
        )
        if prev is None:
            out.append(
                MetricDelta(
                    name=m.name,
                    dataset=m.dataset,
                    unit=m.unit,
                    new=m.value,
                    higher_is_better=higher,
                    direction_inferred=inferred,
                    verdict="added",
                )
            )
            continue
        delta = m.value - prev.value
        percent = (
            (delta / abs(prev.value) * 100) if prev.value and math.isfinite(prev.value) else None
        )
        if math.isclose(delta, 0.0, abs_tol=1e-12):
            verdict = "unchanged"
        else:
            verdict = "improved" if (delta > 0) == higher else "regressed"
        out.append(
            MetricDelta(
                name=m.name,
                dataset=m.dataset,
                unit=m.unit or prev.unit,
                old=prev.value,
                new=m.value,
                delta=delta,
                percent=percent,
                higher_is_better=higher,
                direction_inferred=inferred,
                verdict=verdict,
            )
        )
    for key, prev in before.items():
        if key not in seen:
            higher, inferred = metric_direction(prev.name, prev.higher_is_better)
            out.append(
                MetricDelta(
                    name=prev.name,
                    dataset=prev.dataset,
                    unit=prev.unit,
                    old=prev.value,
                    higher_is_better=higher,
                    direction_inferred=inferred,
                    verdict="removed",
                )
            )
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def _show(value: Any) -> str | None:
    if value is None or value == [] or value == {}:
        return None
    if isinstance(value, list):
        return ", ".join(
            _show(v) or ""
            if not isinstance(v, dict)
            else "{" + ", ".join(f"{k}: {x}" for k, x in v.items() if x not in (None, False)) + "}"
            for v in value
        )
    return str(value)


def compare_fields(old: ModelCard, new: ModelCard) -> list[FieldChange]:
    """Card fields whose values differ (nested ones by dotted path), metrics/version/status
    aside.

    A field that neither card writes is left out even when its default appears or changes with
    its section (a new `evaluation:` section does not bring `evaluation.k: 5` into the notes).
    """
    a = _flatten({k: v for k, v in old.model_dump(mode="json").items() if k not in _NOT_FIELDS})
    b = _flatten({k: v for k, v in new.model_dump(mode="json").items() if k not in _NOT_FIELDS})
    written = set(_flatten(old.model_dump(mode="json", exclude_unset=True))) | set(
        _flatten(new.model_dump(mode="json", exclude_unset=True))
    )
    changes = []
    for key in list(b) + [k for k in a if k not in b]:
        if key not in written:
            continue
        if _show(a.get(key)) != _show(b.get(key)):
            changes.append(FieldChange(field=key, old=_show(a.get(key)), new=_show(b.get(key))))
    return changes


def config_changes(old: ModelVersion, new: ModelVersion) -> tuple[list[FieldChange], str | None]:
    """Values of the config file that differ between two versions (by dotted path), and why the
    files could not be compared, if they could not. A renamed config file is compared too."""
    from registry.cards.config import ConfigSyntaxError, parse_config

    values = []
    for version in (old, new):
        path = f"{MODELS_DIR}/{version.card.name}/{version.card.config}"
        data = version.snapshot.read(path)
        if data is None:
            return [], f"{path} is missing at v{version.card.version}"
        try:
            values.append(_flatten(parse_config(data, version.card.config)))
        except ConfigSyntaxError as e:
            return [], f"{path} at v{version.card.version} does not parse: {e.message}"
        except RecursionError:
            return [], f"{path} at v{version.card.version} is nested too deeply to compare"
    a, b = values
    changes = []
    for key in list(b) + [k for k in a if k not in b]:
        if _show(a.get(key)) != _show(b.get(key)):
            changes.append(
                FieldChange(
                    field=key or "(whole file)", old=_show(a.get(key)), new=_show(b.get(key))
                )
            )
    return changes, None


# Dimension names exporters make up (torch's `s77`, `Divembedding_dim_1`, ONNX Runtime's `unk__3`):
# they say nothing to a reader and change from one export to the next, so they show as "?".
_GENERATED_DIM_RE = re.compile(r"^(s\d+|unk__\d+|.*_dim_\d+|[A-Z][a-z]+[A-Za-z]*_\w*\d+)$")


def _dim_text(d) -> str:
    if d is None or (isinstance(d, str) and (not d or _GENERATED_DIM_RE.match(d))):
        return "?"
    return str(d)


def _tensor_text(t) -> str:
    if t.shape is None:
        return f"{t.dtype}[unknown rank]"
    dims = ", ".join(_dim_text(d) for d in t.shape)
    return f"{t.dtype}[{dims}]"


def _opset(summary) -> int | None:
    """The default-domain opset of a `GraphSummary` (None for formats without one)."""
    return summary.opsets.get("ai.onnx", summary.opsets.get(""))


def facts_of(summary) -> ModelFacts:
    """ModelFacts from a `registry.formats.summary.GraphSummary`."""
    return ModelFacts(
        inputs=[f"{t.name}: {_tensor_text(t)}" for t in summary.inputs],
        outputs=[f"{t.name}: {_tensor_text(t)}" for t in summary.outputs],
        opset=_opset(summary),
        op_counts=dict(summary.op_counts),
        parameters=summary.parameter_count,
        file_size=summary.file_size,
    )


def _tensor_changes(old: list, new: list) -> list[TensorChange]:
    a = {t.name: _tensor_text(t) for t in old}
    b = {t.name: _tensor_text(t) for t in new}
    out = [TensorChange(name=n, change="added", new=b[n]) for n in b if n not in a]
    out += [TensorChange(name=n, change="removed", old=a[n]) for n in a if n not in b]
    out += [
        TensorChange(name=n, change="changed", old=a[n], new=b[n])
        for n in b
        if n in a and a[n] != b[n]
    ]
    return out


def diff_models(old, new, same_weights: bool = False) -> ModelDiff:
    """The diff of two `GraphSummary`s."""
    ops = sorted(set(old.op_counts) | set(new.op_counts))
    return ModelDiff(
        inputs=_tensor_changes(old.inputs, new.inputs),
        outputs=_tensor_changes(old.outputs, new.outputs),
        opset_old=_opset(old),
        opset_new=_opset(new),
        ops=[
            OpCountChange(op=op, old=old.op_counts.get(op, 0), new=new.op_counts.get(op, 0))
            for op in ops
            if old.op_counts.get(op, 0) != new.op_counts.get(op, 0)
        ],
        parameters_old=old.parameter_count,
        parameters_new=new.parameter_count,
        size_old=old.file_size,
        size_new=new.file_size,
        same_weights=same_weights,
    )


# --------------------------------------------------------------------------- versions to compare


@dataclass
class ModelVersion:
    """One version of a model as notes see it: its card, the files it came with, where its weights
    are.

    Args:
        card: the version's card.
        snapshot: the registry at that version (a tag's commit, or a pull request's head).
        remote: the DVC remote its weights are read from (`public` once published, else `staging`).
    """

    card: ModelCard
    snapshot: Snapshot
    remote: str = PUBLIC

    @property
    def weights_pointer(self) -> str:
        return f"{MODELS_DIR}/{self.card.name}/{self.card.weights}.dvc"

    def weights_md5(self) -> str | None:
        """The md5 its weights pointer records (None when the pointer is missing or unreadable)."""
        return recorded_md5(self.snapshot.read(self.weights_pointer))

    def date(self) -> str | None:
        """Date of the version's commit (None for a working tree)."""
        if isinstance(self.snapshot, GitRevision):
            ts = self.snapshot.commit.committed_date
            return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")
        return None


def card_at(snapshot: Snapshot, name: str) -> ModelCard | None:
    """The valid card of `name` in a snapshot, or None when it is absent or invalid."""
    data = snapshot.read(f"{MODELS_DIR}/{name}/{CARD_FILE}")
    if data is None:
        return None
    try:
        return load_card(data, f"{MODELS_DIR}/{name}/{CARD_FILE}").card
    except CardError:
        return None


def tagged_version(repo: RegistryRepo, name: str, version: str) -> ModelVersion:
    """The published version `name@v<version>`, read from its tag's commit.

    Raises:
        UsageError: no such tag, or the card at the tag is unreadable.
    """
    commit = tagged_commits(repo).get(name, {}).get(version)
    if commit is None:
        known = ", ".join(sorted(tagged_commits(repo).get(name, {}), key=semver_key)) or "none"
        raise UsageError(
            f"{name} has no published version {version} (no tag {name}@v{version})",
            f"published versions: {known}",
        )
    snap = repo.snapshot(commit)
    card = card_at(snap, name)
    if card is None:
        raise UsageError(
            f"the card of {name} at tag {name}@v{version} cannot be read",
            f"inspect it with: git show {name}@v{version}:models/{name}/model.yaml",
        )
    return ModelVersion(card=card, snapshot=snap, remote=PUBLIC)


def _summary(version: ModelVersion, storage: Storage, workdir: Path):
    from registry.formats.summary import summarize

    md5 = version.weights_md5()
    if md5 is None:
        raise RegistryError(f"no readable weights pointer {version.weights_pointer}")
    local = storage.remote(version.remote)
    if local.is_local:
        path = Path(local.object_path(md5))  # read the object where it lies: no copy
        if not path.is_file():
            path = storage.fetch(md5, version.remote)
    else:
        path = storage.fetch(md5, version.remote)
    # Objects are addressed by md5 and verified when copied or fetched: no need to hash them again.
    return summarize(path, md5=md5)


def build_notes(
    new: ModelVersion,
    old: ModelVersion | None,
    storage: Storage | None,
    *,
    workdir: Path | None = None,
) -> ReleaseNotes:
    """Release notes of `new` compared with `old` (None: a first release).

    With `storage` None the model diff is left out (card and metrics only). A model that cannot
    be summarised (not ONNX, weights unreachable) leaves `model_unavailable` saying why; the rest
    of the notes are still produced.
    """
    card = new.card
    notes = ReleaseNotes(
        name=card.name,
        version=card.version or "unversioned",
        previous=old.card.version if old else None,
        date=new.date(),
        first_release=old is None,
        task=card.task.value,
        project=card.project,
        description=card.description,
        fields=compare_fields(old.card, card) if old else [],
        metrics=compare_metrics(old.card if old else None, card),
    )
    if old is not None:
        notes.config, notes.config_unreadable = config_changes(old, new)
    if storage is None:
        notes.model_unavailable = "model content not read (content checks turned off)"
        return notes
    with tempfile.TemporaryDirectory(prefix="registry-notes-") as tmp:
        work = workdir or Path(tmp)
        try:
            head = _summary(new, storage, work)
            notes.facts = facts_of(head)
            if old is not None:
                base = _summary(old, storage, work)
                notes.model = diff_models(
                    base, head, same_weights=old.weights_md5() == new.weights_md5()
                )
        except RegistryError as e:
            notes.model_unavailable = e.message
    return notes


def notes_between(
    repo: RegistryRepo,
    storage: Storage | None,
    name: str,
    to: str | None = None,
    from_: str | None = None,
) -> ReleaseNotes:
    """Notes of published version `to` (default: the latest) against `from_` (default: the one
    before).

    Raises:
        UsageError: unknown model or version, or `from_` not older than `to`.
    """
    versions = tagged_commits(repo).get(name, {})
    if not versions:
        raise UsageError(
            f"{name} has no published versions (no {name}@v* tags)",
            "notes compare published versions; see `git tag -l '{name}@v*'`",
        )
    to = normalize_version(to) if to else max(versions, key=semver_key)
    new = tagged_version(repo, name, to)
    if from_ is None:
        prev = previous_version(versions, to)
        old = tagged_version(repo, name, prev) if prev else None
    else:
        from_ = normalize_version(from_)
        if semver_key(from_) >= semver_key(to):
            raise UsageError(f"--from {from_} is not older than --to {to}", "swap them")
        old = tagged_version(repo, name, from_)
    return build_notes(new, old, storage)


# --------------------------------------------------------------------------- rendering


@functools.cache
def notes_template():
    """The compiled release-notes template (compiled once per process)."""
    return _environment().get_template("release_notes.md.j2")


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("registry", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["size"] = format_size
    env.filters["num"] = _num
    env.filters["signed"] = lambda v, unit=None: (
        ("+" if v > 0 else "") + _num(v) + (f" {unit}" if unit else "")
    )
    env.filters["pct"] = lambda v: "" if v is None else f" ({'+' if v > 0 else ''}{v:.1f}%)"
    env.filters["code"] = lambda v: f"`{v}`"
    env.filters["verdict"] = _verdict
    env.filters["opchange"] = _op_change
    env.filters["article"] = _article
    return env


def _num(v: float | int | None) -> str:
    """A number as a reader wants it: 4 significant digits, thousands separated, and never rounded
    to a value it is not (0.9999999 stays 0.9999999, not 1)."""
    if v is None:
        return "–"
    if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1000:
        return f"{int(v):,}"
    for digits in range(4, 17):
        text = f"{v:.{digits}g}"
        if float(text) == v or ("." in text and float(text) != round(float(text))):
            return text
    return repr(float(v))


def _article(word: str) -> str:
    """'a' or 'an' before a word (by its first letter: the task names are plain English words)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _verdict(m: MetricDelta) -> str:
    change = ("+" if (m.delta or 0) > 0 else "") + _num(m.delta)
    if m.percent is not None:
        change += f" ({'+' if m.percent > 0 else ''}{m.percent:.1f}%)"
    if m.verdict == "regressed":
        return f"**⚠ regression** {change}"
    if m.verdict == "improved":
        return f"improved {change}"
    return m.verdict


def _op_change(o: OpCountChange) -> str:
    if o.change == "added":
        return f"{o.op} added (×{o.new})"
    if o.change == "removed":
        return f"{o.op} removed (was ×{o.old})"
    return f"{o.op} ×{o.old} → ×{o.new}"


def render_notes(notes: ReleaseNotes, fmt: str = "md") -> str:
    """The notes as Markdown (`md`) or JSON (`json`)."""
    if fmt == "json":
        return notes.model_dump_json(indent=2) + "\n"
    if fmt != "md":
        raise UsageError(f"unknown notes format '{fmt}'", "use md or json")
    return notes_template().render(n=notes).strip() + "\n"
