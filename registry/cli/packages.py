"""Device packages: `package`, `run`, `verify` and `push-packages`; each parses its flags into a
request of `registry.api.packages` and prints the result.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from registry.cli.options import (
    Invocation,
    file_path,
    folder_path,
    format_option,
    key_options,
    key_values,
    pass_invocation,
)


def _target_options(
    quantize: str | None, optimize: bool | None, converter: str | None, raw_options: tuple[str, ...]
) -> dict[str, object]:
    """The target options the flags override: --quantize, --optimize, --converter and each
    --option KEY=VALUE (a JSON value, else the text as it is)."""
    overrides: dict[str, object] = {
        "quantize": quantize,
        "optimize": optimize,
        "converter": converter,
    }
    overrides.update(key_values(raw_options, "--option"))
    return overrides


def _print_targets(targets: list[dict], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(targets, indent=2))
        return
    for t in targets:
        click.echo(f"{t['name']}: {t['summary']}")
        click.echo(f"  produces:   {t['produces']}")
        click.echo("  converters: " + "; ".join(f"{k} ({v})" for k, v in t["converters"].items()))
        click.echo(f"  engines:    {', '.join(t['engines'])}   needs: {', '.join(t['needs'])}")
        click.echo(f"  runner:     {t['runner']}")
        click.echo("  options:    " + ", ".join(t["options"]))
    click.echo(
        "\noptions are described in docs/packaging.md; set them in the card's targets: entry "
        "or with --option KEY=VALUE"
    )


@click.command()
@click.argument("ref", required=False)
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    help="Target to build (repeatable; default: every target of the card).",
)
@click.option(
    "--model",
    type=file_path(),
    help="Local build: the source ONNX file (with --card) instead of NAME@VERSION.",
)
@click.option(
    "--card",
    type=file_path(),
    help="Local build: the model card (its folder holds calibration/sample files).",
)
@click.option(
    "-o",
    "--out",
    type=folder_path(),
    default=Path("dist"),
    show_default=True,
    help="Folder the packages are written to.",
)
@click.option(
    "--plan",
    "show_plan",
    is_flag=True,
    help="Print the card's targets with the runner each needs; build nothing.",
)
@click.option(
    "--list-targets", is_flag=True, help="List the targets, what each produces, needs and accepts."
)
@click.option(
    "--quantize",
    type=click.Choice(["dynamic", "static"]),
    help="Quantize to int8 (overrides the card).",
)
@click.option(
    "--optimize/--no-optimize",
    default=None,
    help="Apply offline graph optimisation (overrides the card).",
)
@click.option("--converter", help="Use only this converter (overrides the target's candidates).")
@click.option(
    "--option",
    "raw_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Target option (JSON value), e.g. --option repeats=50 --option 'threads=[1,4]'.",
)
@click.option(
    "--no-benchmark",
    is_flag=True,
    help="Skip timing the engine settings (the package is the same either way; the timings and "
    "their advice go beside it as NAME-VERSION-TARGET.benchmark.json).",
)
@key_options("Encrypt")
@format_option(
    "text", "json", help="json prints the plan, the targets or the built packages for machines."
)
@pass_invocation
def package(
    invocation: Invocation,
    ref: str | None,
    targets: tuple[str, ...],
    model: Path | None,
    card: Path | None,
    out: Path,
    show_plan: bool,
    list_targets: bool,
    quantize: str | None,
    optimize: bool | None,
    converter: str | None,
    raw_options: tuple[str, ...],
    no_benchmark: bool,
    key_env: str | None,
    key_file: Path | None,
    fmt: str,
) -> None:
    """Build verified device packages of a published version (or of local files).

    Each target's candidates are converted, verified against the source ONNX, timed, and the
    fastest is packed with manifest.json and a loader into NAME-VERSION-TARGET.tar.gz.

    \b
    Examples:
      registry package --list-targets
      registry package digits-cnn@1.2.0 --plan --format json
      registry package digits-cnn@1.2.0 --target linux-x86_64 --key-env PACKAGE_KEY
      registry package --model model.onnx --card model.yaml --target android-arm64 \\
        --quantize dynamic
    Exit codes: 0 built, 1 card, 2 usage, 5 storage, 6 conversion or verification failed.
    """
    from registry.api import packages as api

    if list_targets:
        _print_targets(api.list_targets(), fmt)
        return
    request = api.PackageRequest(
        root=invocation.root if ref and not model else None,
        ref=ref,
        model=model,
        card=card,
        targets=targets,
        out=out,
        key_env=key_env,
        key_file=key_file,
        benchmark=not no_benchmark,
        overrides=_target_options(quantize, optimize, converter, raw_options),
    )
    if show_plan:
        plan = api.plan(request)
        if fmt == "json":
            click.echo(plan.model_dump_json(indent=2))
        else:
            for t in plan.targets:
                click.echo(f"{t.target}\t{t.runner}\t{t.produces}")
        return
    from registry.core.console import StageProgress

    progress = StageProgress()

    def log(msg: str) -> None:
        progress.close()  # a step's line replaces its bar
        click.echo(msg, err=True)

    built = api.package(request, log=log, progress=progress)
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "target": r.manifest.target,
                        "path": str(r.path),
                        "sha256": r.sha256,
                        "verified": r.manifest.verified,
                        "engine": r.manifest.engine.label(),
                        "measured": r.manifest.benchmark.measured,
                        "benchmark": str(r.benchmark_file) if r.benchmark_file else None,
                        "advice": r.benchmark.advice if r.benchmark else None,
                    }
                    for r in built
                ],
                indent=2,
            )
        )
    else:
        for r in built:
            click.echo(r.path)


@click.command()
@click.argument("package_file", metavar="PACKAGE", type=file_path())
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    required=True,
    metavar="[NAME=]FILE",
    help="Input array (.npy; NAME= for multi-input models) or one .npz keyed by input name.",
)
@key_options("Decrypt")
@format_option("text", "json", help="json prints {output: nested list}.")
@click.option(
    "-o",
    "--output",
    type=file_path(),
    help="Also write the outputs: .npy (a model with one output) or .npz (keyed by output name).",
)
@pass_invocation
def run(
    invocation: Invocation,
    package_file: Path,
    inputs: tuple[str, ...],
    key_env: str | None,
    key_file: Path | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Run a device package: decrypt in memory, check hashes and runtime version, print the outputs.

    \b
    Example:
      registry run dist/digits-cnn-1.2.0-linux-x86_64.tar.gz --input digit.npy
      PACKAGE_KEY=… registry run pkg.tar.gz.enc --key-env PACKAGE_KEY --input x=a.npy
    Exit codes: 0 ran, 2 usage, 6 wrong key, altered/truncated package, or runtime too old.
    """
    import numpy as np

    from registry.api.packages import RunRequest
    from registry.api.packages import run as run_package

    def input_spec(spec: str) -> str:  # [NAME=]FILE, the file taken from the folder of -C
        name, sep, file = spec.rpartition("=")
        return f"{name}{sep}{invocation.path(file)}"

    result = run_package(
        RunRequest(
            package=package_file,
            inputs=tuple(map(input_spec, inputs)),
            key_env=key_env,
            key_file=key_file,
            output=output,
        )
    )
    if result.written is not None:
        click.echo(f"wrote {result.written} ({', '.join(result.outputs)})", err=True)
    if fmt == "json":
        click.echo(json.dumps({k: v.tolist() for k, v in result.outputs.items()}))
        return
    for name, value in result.outputs.items():
        click.echo(f"{name} {value.dtype} {list(value.shape)}")
        click.echo(np.array2string(value, precision=6, threshold=200))


@click.command()
@click.argument("package_files", metavar="PACKAGE...", nargs=-1, required=True, type=file_path())
@key_options("Decrypt")
@format_option("text", "json", help="json prints one verification record per package.")
def verify(
    package_files: tuple[Path, ...], key_env: str | None, key_file: Path | None, fmt: str
) -> None:
    """Verify device packages on this machine: run each on the inputs it stores and compare its
    outputs with the source model's, with the thresholds it was built with.

    The release workflow runs it on each target's runner, so a Core ML package (which runs only
    on macOS) is verified in the macOS job.

    \b
    Example:
      registry verify dist/digits-cnn-1.2.0-ios-arm64.tar.gz
    Exit codes: 0 every package passed, 2 usage (e.g. its runtime cannot run here), 6 a package
    failed, or is altered, truncated, or needs a newer runtime.
    """
    from registry.api.packages import VerifyRequest
    from registry.api.packages import verify as verify_packages

    report = verify_packages(
        VerifyRequest(packages=package_files, key_env=key_env, key_file=key_file)
    )
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {"package": str(r.package), **r.verification.model_dump(mode="json")}
                    for r in report.results
                ],
                indent=2,
            )
        )
    else:
        for r in report.results:
            click.echo(f"{r.package}: {r.verification.summary()}")
            click.echo(f"  {r.verification.where}")
    error = report.failure()
    if error is not None:
        raise error


@click.command("push-packages")
@click.argument("ref", metavar="NAME@VERSION")
@click.argument("folder", type=folder_path())
@format_option("text", "json", help="text for people, json for workflows.")
@pass_invocation
def push_packages(invocation: Invocation, ref: str, folder: Path, fmt: str) -> None:
    """Put a published version's device packages on the public remote, so `pull --target` finds
    them.

    Takes every NAME-VERSION-TARGET.tar.gz[.enc] in FOLDER, uploads it as an object of the
    public remote, reads it back (md5 and size), and then records it in the version's index
    packages/NAME/VERSION/index.json on that remote. Published packages are immutable: a target
    that already has different bytes is refused, and nothing is written. Running it again with
    the same files changes nothing.

    \b
    Example (the release workflow's last job):
      registry push-packages digits-cnn@1.2.0 dist
    Exit codes: 0 done, 2 usage (unknown version, no or misnamed packages), 5 storage or a
    conflicting published package.
    """
    from registry.api.packages import PushPackagesRequest
    from registry.api.packages import push_packages as push
    from registry.packaging.index import render_push

    def log(msg: str) -> None:  # with json on stdout, say on stderr what happens meanwhile
        if fmt == "json":
            click.echo(f"    {msg}", err=True)

    report = push(PushPackagesRequest(root=invocation.root, ref=ref, folder=folder), log=log)
    if report.warning:
        click.echo(f"warning: {report.warning}", err=True)
    click.echo(
        report.model_dump_json(indent=2) if fmt == "json" else render_push(report), nl=fmt == "json"
    )


COMMANDS = (package, run, verify, push_packages)
