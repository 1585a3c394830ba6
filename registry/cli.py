"""The `registry` command line: flags mapped to calls of the Python API, nothing more.

Every command is a thin layer over a function of a domain module. Errors come through one funnel
(`main`): a `RegistryError` prints one clear message and exits with its class's code; anything
else prints a short message and how to see the traceback (`--traceback` or REGISTRY_TRACEBACK=1).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from registry import __version__
from registry.errors import RegistryError, UsageError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="registry")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback of unexpected errors.")
@click.option("-C", "--repo-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run as if started in this folder (a clone of the registry).")
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool, repo_dir: Path | None) -> None:
    """A Git-native model registry: model cards in git, weights in DVC remotes, change through pull requests.

    \b
    Example:
      registry check --base origin/main --head HEAD
    """
    if show_traceback:
        os.environ["REGISTRY_TRACEBACK"] = "1"
    if repo_dir is not None:
        os.chdir(repo_dir)


# --------------------------------------------------------------------------- schema

@cli.command(context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file instead of standard output.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the model card (models/<name>/model.yaml).

    \b
    Example:
      registry schema -o docs/model-card.schema.json
    """
    from registry.card import card_json_schema

    text = json.dumps(card_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- check

@cli.command(context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Check every model in the registry.")
@click.option("--base", help="Base revision of a pull request: check only the models the diff touches.")
@click.option("--head", help="Head revision of a pull request (default: the working tree).")
@click.option("--offline", is_flag=True, help="Do not contact source repositories; reachability becomes a warning.")
@click.option("--no-content", is_flag=True, help="Skip the checks that read weights (storage, graph).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
              help="text for people, json for machines, github for workflow annotations and summaries.")
def check(names: tuple[str, ...], all_models: bool, base: str | None, head: str | None, offline: bool,
          no_content: bool, fmt: str) -> None:
    """Validate models against the registry's standards (the pull-request bot).

    \b
    Examples:
      registry check digits-cnn              # one model in the working tree
      registry check --all --no-content      # every card, fast
      registry check --base origin/main --head HEAD --format github
    Exit codes: 0 pass, 1 findings, 2 usage, 4 git, 5 storage.
    """
    from registry.checks import CheckOptions, run_checks
    from registry.repo import RegistryRepo

    repo = RegistryRepo()
    if sum(bool(x) for x in (names, all_models, base)) != 1:
        raise UsageError("say which models to check: NAME…, --all, or --base REV [--head REV]")
    head_snap = repo.snapshot(head)
    base_snap = repo.snapshot(base) if base else None
    if base:
        selected = repo.changed_models(base, head or "HEAD") if head else _changed_vs_worktree(repo, base)
    elif all_models:
        selected = head_snap.model_names()
    else:
        selected = list(names)
        known = set(head_snap.model_names())
        unknown = [n for n in selected if n not in known]
        if unknown:
            raise UsageError(f"no model named {', '.join(unknown)} in {head_snap.label}",
                             "see `registry list`, or models/ for the folder names")
    options = CheckOptions(offline=offline, content=not no_content)
    report = run_checks(selected, head_snap, base_snap, repo, options)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
    else:
        for model in report.models:
            mark = "PASS" if model.passed else "FAIL"
            click.echo(f"{mark} {model.name}")
            for f in model.findings:
                where = f"{f.path}:{f.line}" if f.path and f.line else (f.path or model.name)
                click.echo(f"  {f.severity.value}: {where}: {f.message} [{f.check}]")
                if f.hint:
                    click.echo(f"    fix: {f.hint}")
        if not report.models:
            click.echo("no models to check")
    sys.exit(0 if report.passed else 1)


def _changed_vs_worktree(repo, base: str) -> list[str]:
    """Models whose folders differ between `base` and the working tree (committed or not)."""
    from registry.repo import run_git

    out = run_git(repo.root, "diff", "--name-only", "-z", base, "--", "models")
    out += run_git(repo.root, "ls-files", "--others", "--exclude-standard", "-z", "models")
    return sorted({p.split("/")[1] for p in out.split("\0") if p.count("/") >= 2})


# --------------------------------------------------------------------------- compress

@cli.command(context_settings=CONTEXT)
@click.argument("ref", required=False, metavar="NAME@VERSION")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Compress a local ONNX file instead of a published version (with --card).")
@click.option("--card", "card_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The card of --model; its folder holds the evaluation data.")
@click.option("--max-size", help="Largest weights file: bytes or '25KB'.")
@click.option("--max-drop", "max_drop", help="Largest metric drop: absolute (0.01) or relative ('2%').")
@click.option("--max-latency", help="Largest median single-sample latency here, in ms.")
@click.option("--metric", help="Metric of the drop (must be the card's evaluation metric).")
@click.option("--methods", help="Comma-separated methods to try, in order (see --list-methods).")
@click.option("--search", type=click.Choice(["first", "best"]), default=None,
              help="first: stop at the first that meets the target; best: try all, keep the smallest.")
@click.option("--output-name", help="Name of the new model entry (default: NAME-lite).")
@click.option("--as-version", help="Write a new version of the same model instead of a new entry.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder that receives the model folder (default: models/ in a registry, else the report folder).")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("compress-report"),
              show_default=True, help="Where the JSON report, the chart and a best-so-far model go.")
@click.option("--push", is_flag=True, help="dvc add the new weights and push them to the staging remote.")
@click.option("--remote", default="public", show_default=True, help="Remote to read a published version from.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: progress and a table; json: the report on standard output.")
@click.option("--list-methods", is_flag=True, help="List the methods and their settings, then exit.")
def compress(ref: str | None, model_path: Path | None, card_file: Path | None, max_size: str | None,
             max_drop: str | None, max_latency: str | None, metric: str | None, methods: str | None,
             search: str | None, output_name: str | None, as_version: str | None, output_dir: Path | None,
             report_dir: Path, push: bool, remote: str, fmt: str, list_methods: bool) -> None:
    """Make a model lighter, trying method after method until the target is met.

    The target (size, metric drop, latency) comes from the card's `compress:` section or the
    options; the evaluation set and metric from its `evaluation:` section. The result is a new
    model folder whose card says `derived_from: NAME@VERSION`.

    \b
    Examples:
      registry compress digits-cnn@1.0.0 --max-size 25KB --max-drop 0.01
      registry compress --model model.onnx --card model.yaml --max-drop 2% --methods static-int8,fp16
      registry compress --list-methods
    Exit codes: 0 target met, 1 not met (best so far kept), 2 usage, 7 bad compression input.
    """
    import tempfile

    from registry.card import load_card
    from registry.compress import CompressRequest, compress as run_compress, open_registry_model, render_table

    if list_methods:
        click.echo(_methods_text())
        return
    if bool(ref) == bool(model_path):
        raise UsageError("give NAME@VERSION, or --model PATH with --card PATH")
    with tempfile.TemporaryDirectory(prefix="registry-compress-in-") as tmp:
        repo_root = None
        if ref:
            from registry.repo import RegistryRepo

            repo_root = RegistryRepo().root
            opened = open_registry_model(repo_root, ref, Path(tmp), remote=remote)
            card, model_file, model_dir = opened.card, opened.model_path, opened.model_dir
            out_root = output_dir or repo_root / "models"
        else:
            if card_file is None:
                raise UsageError("--model needs --card (the card that names the evaluation data)")
            if not card_file.is_file():
                raise UsageError(f"card {card_file} does not exist")
            loaded = load_card(card_file.read_bytes(), str(card_file))
            if loaded.card is None:
                from registry.errors import CardError

                f = loaded.findings[0]
                raise CardError(f.message, f.hint, path=str(card_file), line=f.line)
            card, model_file, model_dir = loaded.card, model_path, card_file.parent
            out_root = output_dir
            if push:
                from registry.repo import RegistryRepo

                repo_root = RegistryRepo(out_root or Path.cwd()).root
        request = CompressRequest(
            card=card, model_path=model_file, model_dir=model_dir, max_size=max_size, max_metric_drop=max_drop,
            max_latency=max_latency, metric=metric, search=search, output_root=out_root,
            methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
            output_name=output_name, as_version=as_version, report_dir=report_dir, push=push,
            repo_root=repo_root)
        progress = None if fmt == "json" else _progress_printer()
        report = run_compress(request, progress)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(render_table(report), nl=False)
    sys.exit(0 if report.met else 1)


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


def _methods_text() -> str:
    from registry.methods import load_methods

    lines = []
    for name, cls in load_methods().items():
        lines.append(f"{name}  (cost {cls.cost}): {cls.summary}")
        for field, info in cls.Config.model_fields.items():
            default = info.default if info.default_factory is None else info.default_factory()
            lines.append(f"    {field} = {default!r}: {info.description}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI through the error funnel."""
    try:
        cli.main(args=argv, prog_name="registry", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except RegistryError as e:
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"  hint: {e.hint}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # the funnel: never a bare traceback unless asked for
        if os.environ.get("REGISTRY_TRACEBACK"):
            traceback.print_exc()
        else:
            click.echo(f"error: unexpected {type(e).__name__}: {e}", err=True)
            click.echo("  hint: re-run with --traceback (or REGISTRY_TRACEBACK=1) and report it", err=True)
        sys.exit(70)
