"""`registry compress`: its flags parsed into a request of `registry.api.compress`, progress shown
on standard error, the report printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from registry.cli.options import (
    Invocation,
    file_path,
    folder_path,
    format_option,
    key_values,
    pass_invocation,
)
from registry.core.errors import UsageError


@click.command()
@click.argument("ref", required=False, metavar="NAME@VERSION")
@click.option(
    "--model",
    "model_path",
    type=file_path(),
    help="Compress a local ONNX file instead of a published version (with --card).",
)
@click.option(
    "--card",
    "card_file",
    type=file_path(),
    help="The card of --model; its folder holds the evaluation data. With NAME@VERSION: judge "
    "with this card's evaluation: section and data (e.g. models/NAME/model.yaml) instead of the "
    "tagged card's.",
)
@click.option(
    "--max-size", help="Largest weights file: bytes, '25KB', or a share of the original ('0.26x')."
)
@click.option(
    "--max-drop", "max_drop", help="Largest metric drop: absolute (0.01) or relative ('2%')."
)
@click.option("--max-latency", help="Largest median single-sample latency here, in ms.")
@click.option("--metric", help="Metric of the drop (must be the card's evaluation metric).")
@click.option("--methods", help="Comma-separated methods to try, in order (see --list-methods).")
@click.option(
    "--option",
    "raw_options",
    multiple=True,
    metavar="METHOD.KEY=VALUE",
    help="A method's setting, over the card's compress.options (a JSON value, else the text), "
    "e.g. dynamic-int8.per_channel=false; repeatable (see --list-methods).",
)
@click.option(
    "--search",
    type=click.Choice(["first", "best"]),
    default=None,
    help="first: stop at the first that meets the target; best: try all, keep the smallest.",
)
@click.option("--output-name", help="Name of the new model entry (default: NAME-lite).")
@click.option("--as-version", help="Write a new version of the same model instead of a new entry.")
@click.option(
    "--output-dir",
    type=folder_path(),
    help="Folder that receives the model folder (default: models/ in a registry, else the "
    "report folder).",
)
@click.option(
    "--report-dir",
    type=folder_path(),
    default=Path("compress-report"),
    show_default=True,
    help="Where the JSON report, the chart and a best-so-far model go.",
)
@click.option(
    "--push", is_flag=True, help="dvc add the new weights and push them to the staging remote."
)
@click.option(
    "--remote", default="public", show_default=True, help="Remote to read a published version from."
)
@format_option(
    "text", "json", help="text: progress and a table; json: the report on standard output."
)
@click.option(
    "--list-methods", is_flag=True, help="List the methods and their settings, then exit."
)
@pass_invocation
def compress(
    invocation: Invocation,
    ref: str | None,
    model_path: Path | None,
    card_file: Path | None,
    max_size: str | None,
    max_drop: str | None,
    max_latency: str | None,
    metric: str | None,
    methods: str | None,
    raw_options: tuple[str, ...],
    search: str | None,
    output_name: str | None,
    as_version: str | None,
    output_dir: Path | None,
    report_dir: Path,
    push: bool,
    remote: str,
    fmt: str,
    list_methods: bool,
) -> None:
    """Make a model lighter, trying method after method until the target is met.

    The target (size, metric drop, latency) comes from the card's `compress:` section or the
    options; the evaluation set and metric from its `evaluation:` section (for a published
    version whose tagged card has none: the working tree's card, or --card). The result is a new
    model folder whose card says `derived_from: NAME@VERSION`.

    \b
    Examples:
      registry compress digits-cnn@1.0.0 --max-size 25KB --max-drop 0.01
      registry compress --model model.onnx --card model.yaml --max-drop 2% \\
        --methods static-int8,fp16
      registry compress --list-methods
    Exit codes: 0 target met, 1 not met (best so far kept), 2 usage, 7 bad compression input.
    """
    from registry.api import compress as api
    from registry.compression.chain import render_table

    if list_methods:
        click.echo(_methods_text(api.list_methods()))
        return
    # the clone: where a published version is read, or where --push tracks the weights
    needs_clone = bool(ref) or (push and output_dir is None)
    request = api.CompressModelRequest(
        root=invocation.root if needs_clone else None,
        ref=ref,
        remote=remote,
        model=model_path,
        card=card_file,
        max_size=max_size,
        max_metric_drop=max_drop,
        max_latency=max_latency,
        metric=metric,
        search=search,
        output_name=output_name,
        as_version=as_version,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else None,
        options=_method_options(raw_options),
        output_dir=output_dir,
        report_dir=report_dir,
        push=push,
        raise_unexpected=invocation.traceback,
    )
    report = api.compress(
        request,
        progress=None if fmt == "json" else _progress_printer(),
        warn=lambda msg: click.echo(f"warning: {msg}", err=True),
    )
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(render_table(report), nl=False)
    sys.exit(0 if report.met else 1)


def _method_options(raw: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """`--option METHOD.KEY=VALUE` flags as {method: {key: value}}.

    Raises:
        UsageError: a key without the method's name.
    """
    options: dict[str, dict[str, object]] = {}
    for key, value in key_values(raw, "--option"):
        method, dot, setting = key.partition(".")
        if not dot or not method or not setting:
            raise UsageError(
                f"--option {key}=… does not name a method: write METHOD.KEY=VALUE",
                "e.g. --option dynamic-int8.per_channel=false (registry compress --list-methods)",
            )
        options.setdefault(method, {})[setting] = value
    return options


def _progress_printer():
    """A progress bar per attempt on standard error: '[#####.....]  50% method: step'."""
    last = {"method": None}

    def show(method: str, fraction: float, text: str) -> None:
        bar = "#" * int(fraction * 20)
        line = f"[{bar:<20}] {fraction:4.0%} {method}: {text}"
        end = "\n" if fraction >= 1.0 else ""
        if sys.stderr.isatty():
            click.echo("\r" + line[:110].ljust(110), err=True, nl=False)
            if end:
                click.echo("", err=True)
        elif end or last["method"] != method:
            click.echo(line, err=True)
        last["method"] = method

    return show


def _methods_text(methods: dict) -> str:
    """Each method with its cost and summary, then its settings with their defaults."""
    lines = []
    for name, cls in methods.items():
        lines.append(f"{name}  (cost {cls.cost}): {cls.summary}")
        for field, info in cls.Config.model_fields.items():
            default = info.default if info.default_factory is None else info.default_factory()
            lines.append(f"    {field} = {default!r}: {info.description}")
    return "\n".join(lines)


COMMANDS = (compress,)
