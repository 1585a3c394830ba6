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


class CatalogIndex(BaseModel):
    """`index.json`: every listed model (withdrawn ones included, marked)."""

    catalog_format: int = CATALOG_FORMAT
    generated_from: str = Field(description="the registry commit the site was built from")
    repository: str = Field(description="the registry's git URL, as the pull commands use it")
    models: list[IndexEntry] = Field(default_factory=list)
