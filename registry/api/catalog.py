"""The API of `registry catalog`: build the static catalog site of a registry clone, and serve a
built one for a local preview.

The work is done by `registry.catalog` (site, serve).

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import http.server

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
    """

    root: Path
    output: Path = Path("site")
    repo_url: str | None = None
    packages: bool = True
    force: bool = False
    jobs: int | None = None


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
    )


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
