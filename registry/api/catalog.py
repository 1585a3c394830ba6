"""The API of `registry catalog`: build the static catalog site of a registry clone, and serve a
built one for a local preview.

The work is done by `registry.catalog` (site, serve). The datasets and training tasks the site
gives a page each are read here, with `registry.training`'s loaders and its structure picture, and
handed to the catalog as plain records: the two are peers and do not import each other.

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import http.server

    from registry.catalog.records import TrainingCatalog
    from registry.catalog.site import BuildReport

__all__ = ["CatalogBuildRequest", "ServeRequest", "build", "serve"]


@dataclass(frozen=True, kw_only=True)
class CatalogBuildRequest:
    """The site to build (or bring up to date).

    Args:
        root: the registry clone (its working tree is what is published).
        output: the site's folder, kept up to date on later builds.
        repo_url: the registry's git URL in the pull commands (default: the clone's origin).
        packages: read the device package indexes from the public remote.
        force: rewrite every model's page, not only those that changed.
        jobs: worker processes (None: the CPUs available).
        training: give each dataset and training task a page.
    """

    root: Path
    output: Path = Path("site")
    repo_url: str | None = None
    packages: bool = True
    force: bool = False
    jobs: int | None = None
    training: bool = True


def build(request: CatalogBuildRequest) -> BuildReport:
    """Build the catalog: index pages, a page and a JSON per model, index.json
    (`registry catalog build`).

    Raises:
        UsageError: the output is a file or lies inside models/.
        StorageError: the public remote cannot be read (build with `packages=False`).
    """
    from registry.catalog.site import build_catalog

    return build_catalog(
        request.root,
        request.output,
        repo_url=request.repo_url,
        packages=request.packages,
        force=request.force,
        jobs=request.jobs,
        training=_training_catalog(request.root) if request.training else None,
    )


def _training_catalog(root: Path) -> TrainingCatalog:
    """The datasets and training tasks of a clone's working tree as the catalog's records, with
    each structure a task uses drawn as SVG (layers, types and connections: the catalog runs no
    network, so shapes and parameter counts are not shown).

    A file that does not load is left out (the bot reports it on its pull request); the results
    of an instance are shown from its results folder when it is there (`registry train` wrote it),
    else from the task's committed `results.json` (`registry train --register` wrote it).
    """
    from registry.catalog.records import TrainingCatalog
    from registry.training import DATASET_FILE, DATASETS_DIR, TASK_FILE, TRAINING_DIR

    root = Path(root)
    if not (root / DATASETS_DIR).is_dir() and not (root / TRAINING_DIR).is_dir():
        return TrainingCatalog()  # no training here: its code is not even loaded
    from registry.cards.schema import NAME_RE
    from registry.catalog.records import (
        CatalogDataset,
        CatalogInstance,
        CatalogResult,
        CatalogTask,
    )
    from registry.core.errors import RegistryError
    from registry.core.files import read_in_tree
    from registry.training.files import (
        RESERVED_TRAINING_FOLDERS,
        Dataset,
        Structure,
        TrainingTask,
        expand_instances,
        load_file,
        structure_path,
    )
    from registry.training.picture import render_structure
    from registry.training.results import list_results
    from registry.training.structure import LayerShape, plan

    def load(path: Path, kind, name: str):
        rel = path.relative_to(root).as_posix()
        try:  # never through a link: what is read is shown on the public site
            data = read_in_tree(root, rel)
        except RegistryError:
            return None
        loaded = load_file(data, rel, kind, expected_name=name)
        return loaded.value if loaded.value is not None and not loaded.findings else None

    def folders(parent: str) -> list[Path]:
        d = root / parent
        if d.is_symlink() or not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.is_symlink())

    datasets = []
    for folder in folders(DATASETS_DIR):
        d = load(folder / DATASET_FILE, Dataset, folder.name)
        if d is None:
            continue
        tensor = ("name", "shape", "dtype", "classes")
        datasets.append(
            CatalogDataset(
                name=d.name,
                task=d.task.value,
                format=d.format,
                description=d.description,
                license=d.license,
                source=d.source,
                splits=d.splits.model_dump(),
                input=d.input.model_dump(include=set(tensor)),
                label=d.label.model_dump(include=set(tensor)),
            )
        )
    tasks, pictures = [], {}
    for folder in folders(TRAINING_DIR):
        if folder.name in RESERVED_TRAINING_FOLDERS:
            continue
        t = load(folder / TASK_FILE, TrainingTask, folder.name)
        if t is None:
            continue
        results = {}
        try:
            results = {
                r.instance: r
                for r in list_results(root, t.name, summary=True)
                if r.state != "not run"
            }
        except (OSError, ValueError, RegistryError):  # results that cannot be read: none shown
            results = {}
        instances = []
        for i in expand_instances(t):
            r = results.get(i.name)
            instances.append(
                CatalogInstance(
                    name=i.name,
                    dataset=i.dataset,
                    algorithm=i.algorithm,
                    structure=i.structure,
                    hyperparameters=i.hyperparameters,
                    result=None
                    if r is None
                    else CatalogResult(
                        state=r.state,
                        value=r.value,
                        metrics={k: v for k, v in r.metrics.items() if isinstance(v, (int, float))},
                        epochs_run=r.epochs_run,
                        best=r.best,
                    ),
                )
            )
        structures: dict[str, str | None] = {}
        for name in dict.fromkeys(i.structure for i in instances if i.structure):
            if not NAME_RE.fullmatch(name):  # not a file name: the bot reports it
                continue
            if name not in pictures:
                s = load(root / structure_path(name), Structure, name)
                if s is not None:
                    p = plan(s)
                    rows = [
                        LayerShape(n, ty, src) for n, ty, src in zip(p.names, p.types, p.inputs)
                    ]
                    pictures[name] = render_structure(name, rows)
            structures[name] = f"structure-{name}.svg" if name in pictures else None
        tasks.append(
            CatalogTask(
                name=t.name,
                task=t.task.value,
                description=t.description,
                project=t.project,
                owners=t.owners,
                license=t.license,
                tags=t.tags,
                model=t.model,
                metric=t.metric,
                higher_is_better=t.higher_is_better,
                instances=instances,
                structures=structures,
            )
        )
    return TrainingCatalog(datasets=datasets, tasks=tasks, pictures=pictures)


@dataclass(frozen=True, kw_only=True)
class ServeRequest:
    """A built site (`directory`) to serve on 127.0.0.1:`port` (0: any free port)."""

    directory: Path = Path("site")
    port: int = 8000


def serve(request: ServeRequest) -> http.server.ThreadingHTTPServer:
    """The preview server of a built site, not yet started (`registry catalog serve`).

    Raises:
        UsageError: the folder holds no built catalog, or the port is taken.
    """
    from registry.catalog.serve import make_server

    return make_server(request.directory, request.port)
