"""`registry catalog`: `build` the static catalog site and `serve` a built one; each parses its
flags into a request of `registry.api.catalog` and prints the result.
"""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.options import Invocation, folder_path, format_option, pass_invocation


@click.group()
def catalog() -> None:
    """The public catalog: a static web site (and JSON) of every published model.

    \b
    Examples:
      registry catalog build -o site/
      registry catalog serve -d site/
    """


@catalog.command("build")
@click.option(
    "-o",
    "--output",
    type=folder_path(),
    default=Path("site"),
    show_default=True,
    help="Folder the site is written to (kept up to date on later builds).",
)
@click.option(
    "--repo-url", help="The registry's git URL in the pull commands (default: the clone's origin)."
)
@click.option(
    "--no-packages", is_flag=True, help="Do not read device package indexes from the public remote."
)
@click.option(
    "--force", is_flag=True, help="Rewrite every model's page, not only those that changed."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes (default: the CPUs available).",
)
@format_option("text", "json", help="json prints the build report for machines.")
@pass_invocation
def catalog_build(
    invocation: Invocation,
    output: Path,
    repo_url: str | None,
    no_packages: bool,
    force: bool,
    jobs: int | None,
    fmt: str,
) -> None:
    """Build the catalog site of the registry: index pages, a page and a JSON per model, dataset
    and training task, index.json.

    Only models whose cards, tags or packages changed since the last build into the same folder
    are rendered again. Unpublished models are not listed; withdrawn ones are marked.

    \b
    Example:
      registry catalog build -o site/ && registry catalog serve -d site/
    """
    from registry.api.catalog import CatalogBuildRequest, build

    report = build(
        CatalogBuildRequest(
            root=invocation.root,
            output=output,
            repo_url=repo_url,
            packages=not no_packages,
            force=force,
            jobs=jobs,
        )
    )
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(
        f"catalog of {report.models} models ({report.live} published, "
        f"{report.withdrawn} withdrawn), {report.datasets} datasets, {report.tasks} training "
        f"tasks in {report.output}/: {len(report.rewritten)} model pages "
        f"written, {len(report.removed)} removed, "
        f"{report.files_written} shared files updated, {report.seconds:.1f}s"
    )
    click.echo(
        f"  open {Path(report.output).resolve() / 'index.html'}, "
        f"or: registry catalog serve -d {report.output}"
    )


@catalog.command("serve")
@click.option(
    "-d",
    "--directory",
    type=folder_path(),
    default=Path("site"),
    show_default=True,
    help="The built site.",
)
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
def catalog_serve(directory: Path, port: int) -> None:
    """Preview a built catalog at http://127.0.0.1:PORT/ (local only; Ctrl+C stops it).

    \b
    Example:
      registry catalog serve -d site/ --port 8000
    """
    from registry.api.catalog import ServeRequest, serve

    server = serve(ServeRequest(directory=directory, port=port))
    click.echo(
        f"serving {directory}/ at http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C to stop)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


COMMANDS = (catalog,)
