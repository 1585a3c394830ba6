"""What the catalog knows about each model: typed records, and the source of its JSON schema.

`CatalogModel` is one model's page and its `models/<name>/model.json`; `IndexEntry` is one row of
the index pages, of `index.json` and (compacted) of the search index. Their field descriptions
are what docs/catalog.md and `catalog.schema.json` say about the format, whose version is
`CATALOG_FORMAT`: fields are only ever added within a format version.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from registry.catalog import CATALOG_FORMAT


class CatalogMetric(BaseModel):
    """One metric of one version, as its card states it."""

    name: str
    dataset: str
    value: float
    unit: str | None = None
    higher_is_better: bool | None = Field(
        None, description="as the card says; null when it does not"
    )


class CatalogPackage(BaseModel):
    """A device package of one version, from the version's package index on the public remote."""

    target: str
    file: str
    size: int = Field(description="bytes")
    sha256: str
    engine: str | None = Field(
        None, description="the inference engine setting the release's package runs with"
    )
    verified_on_device: bool | None = Field(
        None, description="the package's own verification result"
    )
    encrypted: bool = False
    pull: str = Field(description="the command that fetches it")


class CatalogVersion(BaseModel):
    """One published version: its tag, date, state, release notes, metrics and packages."""

    version: str
    tag: str
    commit: str
    date: datetime = Field(description="when the version was tagged")
    state: str = Field(description="'latest', 'release', 'pre-release' or 'withdrawn'")
    withdrawn_by: str | None = Field(None, description="the tag or card state that withdrew it")
    notes: str = Field("", description="release notes (Markdown), the tag's message")
    metrics: list[CatalogMetric] = Field(default_factory=list)
    packages: list[CatalogPackage] = Field(default_factory=list)
    commands: list[str] = Field(
        default_factory=list, description="commands that fetch this version"
    )


class GraphInfo(BaseModel):
    """The latest version's model graph, when its weights were available where the site was
    built."""

    available: bool
    reason: str | None = Field(None, description="why there is no picture, when there is none")
    picture: str | None = Field(
        None, description="path of the SVG picture, relative to the model's folder"
    )
    format: str | None = None
    inputs: list[str] = Field(default_factory=list, description="'name: dtype[shape]'")
    outputs: list[str] = Field(default_factory=list)
    opset: int | None = None
    operators: dict[str, int] = Field(
        default_factory=dict, description="op type -> number of nodes"
    )
    parameters: int | None = None
    file_size: int | None = None


class Lineage(BaseModel):
    """Where the model comes from and what was made from it."""

    derived_from: str | None = Field(
        None, description="'<name>@<version>' this model was derived from"
    )
    variants: list[str] = Field(
        default_factory=list, description="models whose card says they derive from this one"
    )
    training_task: str | None = Field(
        None,
        description="the training task that made it: its card's source is this repository's "
        "training/<task> folder (`registry train --register`)",
    )


class CatalogModel(BaseModel):
    """One model in the catalog: `models/<name>/model.json` and the model's page."""

    catalog_format: int = CATALOG_FORMAT
    name: str
    state: str = Field(description="the card's lifecycle state; 'deleted' when only tags remain")
    withdrawn: bool = Field(description="no version of the model can be chosen as latest")
    latest: str | None = Field(None, description="the version NAME@latest means")
    date: datetime | None = Field(
        None, description="when the latest (else the last) version was tagged"
    )
    task: str | None = None
    project: str | None = None
    owners: list[str] = Field(default_factory=list)
    license: str | None = None
    tags: list[str] = Field(default_factory=list)
    description: str | None = Field(
        None, description="Markdown, as the card has it (cut at 20,000 characters)"
    )
    description_truncated: bool = False
    source_repo: str | None = None
    source_commit: str | None = None
    size: int | None = Field(None, description="declared size of the weights, bytes")
    headline: CatalogMetric | None = Field(
        None, description="the first metric of the latest version"
    )
    lineage: Lineage = Field(default_factory=Lineage)
    graph: GraphInfo = Field(default_factory=lambda: GraphInfo(available=False))
    versions: list[CatalogVersion] = Field(default_factory=list, description="newest first")
    card_problem: str | None = Field(
        None, description="why the current card could not be read, if it could not"
    )


class IndexEntry(BaseModel):
    """One model's row in the index pages, `index.json` and the search index."""

    name: str
    state: str
    withdrawn: bool
    latest: str | None = None
    versions: int = 0
    date: datetime | None = None
    task: str | None = None
    project: str | None = None
    owners: list[str] = Field(default_factory=list)
    license: str | None = None
    tags: list[str] = Field(default_factory=list)
    headline: CatalogMetric | None = None
    summary: str = Field(
        "", description="the description's first paragraph, plain text, at most 200 characters"
    )
    url: str = Field(description="the model's page, relative to the site's root")
    json_url: str = Field(description="the model's JSON, relative to the site's root")


class TensorInfo(BaseModel):
    """One sample's input or label, as its dataset.yaml declares it."""

    name: str
    shape: list[int] = Field(default_factory=list, description="without the batch dimension")
    dtype: str
    classes: int | None = None


class CatalogDataset(BaseModel):
    """One dataset: `datasets/<name>/dataset.json` and its page."""

    catalog_format: int = CATALOG_FORMAT
    name: str
    task: str = Field(description="the task category its labels are for")
    format: str = Field(description="npz, csv or images")
    description: str | None = Field(None, description="Markdown, as dataset.yaml has it")
    license: str | None = None
    source: str | None = Field(None, description="where the data comes from (URL or citation)")
    splits: dict[str, float | int | bool] = Field(
        default_factory=dict, description="the train/validation/test split, as declared"
    )
    input: TensorInfo
    label: TensorInfo
    tasks: list[str] = Field(default_factory=list, description="training tasks that use it")
    models: list[str] = Field(
        default_factory=list, description="listed models made by those training tasks"
    )


class CatalogResult(BaseModel):
    """What an instance's results folder held where the catalog was built."""

    state: str = Field(description="done, partial or failed")
    value: float | None = Field(None, description="the task's metric")
    metrics: dict[str, float] = Field(default_factory=dict)
    epochs_run: int | None = None
    best: bool = Field(False, description="the instance `registry train --register` picks")


class CatalogInstance(BaseModel):
    """One instance of a training task: a dataset, an algorithm, a structure, hyperparameters."""

    name: str
    dataset: str
    algorithm: str
    structure: str
    hyperparameters: dict[str, float | int | bool | str | None] = Field(default_factory=dict)
    result: CatalogResult | None = Field(None, description="absent when no results were there")


class CatalogTask(BaseModel):
    """One training task: `training/<name>/task.json` and its page."""

    catalog_format: int = CATALOG_FORMAT
    name: str
    task: str = Field(description="the task category (as on a model card)")
    description: str | None = Field(None, description="Markdown, as task.yaml has it")
    project: str
    owners: list[str] = Field(default_factory=list)
    license: str | None = None
    tags: list[str] = Field(default_factory=list)
    model: str = Field(description="the model name its best instance is registered under")
    metric: str
    higher_is_better: bool | None = None
    instances: list[CatalogInstance] = Field(default_factory=list)
    structures: dict[str, str | None] = Field(
        default_factory=dict,
        description="structure name -> its SVG picture, relative to the task's folder "
        "(None: the structure could not be read)",
    )
    models: list[str] = Field(
        default_factory=list, description="listed models whose card names this task as source"
    )


class TrainingCatalog(BaseModel):
    """What the catalog is given about training: datasets, tasks and the structures' pictures.

    The API layer reads them (the catalog does not import training, its peer) and hands them in.
    """

    datasets: list[CatalogDataset] = Field(default_factory=list)
    tasks: list[CatalogTask] = Field(default_factory=list)
    pictures: dict[str, str] = Field(default_factory=dict, description="structure name -> SVG text")


class PageLink(BaseModel):
    """A dataset's or training task's entry in `index.json`."""

    name: str
    task: str
    url: str = Field(description="its page, relative to the site's root")
    json_url: str = Field(description="its JSON, relative to the site's root")
    models: list[str] = Field(default_factory=list)


class CatalogIndex(BaseModel):
    """`index.json`: every listed model (withdrawn ones included, marked), and the datasets and
    training tasks."""

    catalog_format: int = CATALOG_FORMAT
    generated_from: str = Field(description="the registry commit the site was built from")
    repository: str = Field(description="the registry's git URL, as the pull commands use it")
    datasets: list[PageLink] = Field(default_factory=list)
    tasks: list[PageLink] = Field(default_factory=list)
    models: list[IndexEntry] = Field(default_factory=list)
