"""The `registry` command line: flags mapped to calls of the Python API, nothing more.

Every command is a thin layer over a function of a domain module. Errors come through one funnel
(`main`): a `RegistryError` prints one clear message and exits with its class's code; anything
else prints a short message and how to see the traceback (`--traceback` or REGISTRY_TRACEBACK=1).
"""

from __future__ import annotations

import gc as collector
import json
import os
import sys
import traceback
from pathlib import Path

# A command's start-up imports (click, pydantic, DVC, git) create several hundred thousand
# long-lived objects; the collector's default pace would sweep them dozens of times for nothing.
# Collect less often: the commands make little cyclic garbage.
collector.set_threshold(50_000, 20, 20)

import click  # noqa: E402

from registry import __version__  # noqa: E402
from registry.cards.schema import Task  # noqa: E402
from registry.core.errors import CardError, ConversionError, RegistryError, UsageError  # noqa: E402

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="registry")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback of unexpected errors.")
@click.option("-C", "--repo-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run as if started in this folder (a clone of the registry).")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show what third-party libraries print (warnings, log lines, native output).")
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool, repo_dir: Path | None, verbose: bool) -> None:
    """A Git-native model registry: model cards in git, weights in DVC remotes, change through pull requests.

    \b
    Example:
      registry check --base origin/main --head HEAD
    """
    from registry.core.console import quiet_third_party

    ctx.with_resource(quiet_third_party(verbose))
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
    from registry.cards.schema import card_json_schema

    text = json.dumps(card_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


# --------------------------------------------------------------------------- check

@cli.command(context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Check every model folder in the registry.")
@click.option("--base", help="Base revision of a pull request: check only the models the diff touches.")
@click.option("--head", help="Head revision of a pull request (default: the working tree).")
@click.option("--offline", is_flag=True, help="Do not contact source repositories; reachability becomes a warning.")
@click.option("--no-content", is_flag=True, help="Skip the checks that read weights (storage, graph).")
@click.option("--only", "only", multiple=True, metavar="CHECK",
              help="Run only this check (repeatable); names as in docs/checks.md.")
@click.option("--forbid-local-urls/--allow-local-urls", default=True, show_default=True,
              help="Refuse file:// URLs, local paths and loopback, link-local or private hosts as source.repo "
                   "(the default); --allow-local-urls accepts them, e.g. for a registry on one machine.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds allowed for each network operation, such as git ls-remote on source.repo.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default="text",
              show_default=True,
              help="text for people, json for machines, markdown for a report, github for workflow "
                   "annotations, the step summary and step outputs.")
@click.option("--comment-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the pull-request comment body (Markdown) to this file.")
@click.option("--artifacts-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each model's graph picture as <model>.svg here (for upload as a run artifact).")
def check(names: tuple[str, ...], all_models: bool, base: str | None, head: str | None, offline: bool,
          no_content: bool, only: tuple[str, ...], forbid_local_urls: bool, timeout: float, fmt: str,
          comment_file: Path | None, artifacts_dir: Path | None) -> None:
    """Validate models against the registry's standards (the pull-request bot).

    \b
    Examples:
      registry check digits-cnn              # one model in the working tree
      registry check --all --no-content      # every card, fast
      registry check --base origin/main --head HEAD --format github --comment-file comment.md
    Exit codes: 0 pass (warnings alone pass), 1 findings, 2 usage, 4 git, 5 storage.
    """
    from registry.checks import CheckOptions, check_revisions
    from registry.core.repo import RegistryRepo

    options = CheckOptions(offline=offline, content=not no_content, allow_local_urls=not forbid_local_urls,
                           timeout=timeout, only=list(only) or None)
    report = check_revisions(RegistryRepo(), names=names, all_models=all_models, base=base, head=head,
                             options=options)
    from registry.checks import report as render

    if fmt == "json":
        click.echo(render.render_json(report), nl=False)
    elif fmt == "markdown":
        click.echo(render.render_markdown(report), nl=False)
    elif fmt == "github":
        from registry.checks import github

        click.echo(github.publish(report, comment_file, artifacts_dir), nl=False)
        click.echo(github.inert_block(render.render_text(report)), nl=False)
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(render.render_text(report, color=color), nl=False, color=color)
    if comment_file and fmt != "github":
        from registry.checks import github

        github.write_comment(report, comment_file, artifacts_dir)
    elif artifacts_dir and not comment_file:
        render.write_pictures(report, artifacts_dir)
    sys.exit(0 if report.passed else 1)


# --------------------------------------------------------------------------- new

def stdin_is_terminal() -> bool:
    """Whether `registry new` may ask questions (standard input is a terminal)."""
    return sys.stdin.isatty()


_NEW_REQUIRED = {"weights": "--weights", "config": "--config", "task": "--task", "project": "--project",
                 "source_repo": "--source-repo"}


@cli.command("new", context_settings=CONTEXT)
@click.argument("name")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights/structure file (ONNX) to copy in and track with DVC.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Training config (yaml or json) to copy in.")
@click.option("--task", type=click.Choice([t.value for t in Task]), help="Training task category.")
@click.option("--project", help="Business project the model belongs to.")
@click.option("--source-repo", help="Git URL of the training code.")
@click.option("--source-commit", help="Commit of the training code (optional).")
@click.option("--version", "model_version", help="SemVer version (optional until publishing).")
@click.option("--description", help="What the model does (optional).")
@click.option("--license", "license_id", help="SPDX license id (optional), e.g. Apache-2.0.")
@click.option("--owner", "owners", multiple=True, help="Code owner (@user or @org/team); repeatable.")
@click.option("--tag", "tags", multiple=True, help="Free label; repeatable.")
@click.option("--metric", "metrics", multiple=True, metavar="NAME=VALUE@DATASET",
              help="Evaluation metric, e.g. accuracy=0.93@digits-test; repeatable.")
@click.option("--pytorch", type=click.Path(dir_okay=False, path_type=Path),
              help="PyTorch source of the same model (.pt2 from torch.export.save) for the native mobile "
                   "runtimes; copied in and tracked with DVC (optional).")
@click.option("--push", is_flag=True, help="Push the weights to the staging remote (dvc push -r staging).")
@click.option("--interactive/--no-interactive", default=None,
              help="Ask for missing fields (default: when standard input is a terminal).")
def new(name: str, weights: Path | None, config_file: Path | None, task: str | None, project: str | None,
        source_repo: str | None, source_commit: str | None, model_version: str | None,
        description: str | None, license_id: str | None, owners: tuple[str, ...], tags: tuple[str, ...],
        metrics: tuple[str, ...], pytorch: Path | None, push: bool, interactive: bool | None) -> None:
    """Scaffold models/NAME: the card (model.yaml), the config and the DVC-tracked weights.

    In a terminal it asks for what the options did not give; otherwise every required option
    (--weights, --config, --task, --project, --source-repo) must be given. The card's size is
    filled in from what DVC recorded. Nothing is written if any step fails.

    \b
    Example:
      registry new digits-mlp --weights out/model.onnx --config out/train.yaml \\
        --task classification --project demo --source-repo https://github.com/org/train.git \\
        --metric accuracy=0.95@digits-test --push
    """
    from registry.core.repo import RegistryRepo
    from registry.cards.scaffold import NewModel, check_new_folder, new_model, parse_metric

    root = RegistryRepo().root
    check_new_folder(root, name)  # fail before asking anything
    values = {"weights": weights, "config": config_file, "task": task, "project": project,
              "source_repo": source_repo}
    parsed_metrics = [parse_metric(m) for m in metrics]
    if interactive is None:
        interactive = stdin_is_terminal()
    if interactive:
        existing = click.Path(exists=True, dir_okay=False, path_type=Path)
        if values["weights"] is None:
            values["weights"] = click.prompt("weights file (ONNX)", type=existing)
        if values["config"] is None:
            values["config"] = click.prompt("config file (yaml/json)", type=existing)
        if values["task"] is None:
            values["task"] = click.prompt("task", type=click.Choice([t.value for t in Task]),
                                          default="classification")
        if values["project"] is None:
            values["project"] = click.prompt("project")
        if values["source_repo"] is None:
            values["source_repo"] = click.prompt("source repo (git URL of the training code)")
        if model_version is None:
            model_version = click.prompt("version (empty: set it when publishing)", default="",
                                         show_default=False) or None
        if description is None:
            description = click.prompt("description (optional)", default="", show_default=False) or None
        if license_id is None:
            license_id = click.prompt("license, SPDX id (optional)", default="", show_default=False) or None
        if not parsed_metrics:
            while text := click.prompt("metric NAME=VALUE@DATASET (empty to finish)", default="",
                                       show_default=False):
                try:
                    parsed_metrics.append(parse_metric(text))
                except UsageError as e:
                    click.echo(f"  {e.message}; {e.hint}", err=True)
    missing = [flag for key, flag in _NEW_REQUIRED.items() if not values[key]]
    if missing:
        raise UsageError(f"missing required option{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
                         "give them as options, or run `registry new` in a terminal to be asked")
    request = NewModel(name=name, version=model_version, description=description, license=license_id,
                       source_commit=source_commit, owners=list(owners), tags=list(tags),
                       metrics=parsed_metrics, pytorch=pytorch, **{k: v for k, v in values.items()})
    result = new_model(root, request, push=push)
    rel = result.folder.relative_to(root)
    click.echo(f"created {rel}/ ({result.card.weights}: {result.card.size} bytes, md5 {result.md5})")
    click.echo("  pushed the weights to the staging remote" if result.pushed else
               f"  push the weights: dvc push -r staging {rel}/{result.pointer.name}")
    # every file the pull request needs: the folder (card, config, pointer, DVC's .gitignore) and
    # the model's entry in dvc.yaml
    from registry.cards.artifacts import DVC_YAML

    click.echo(f"  next: registry check {name} && git add {rel} {DVC_YAML} && git commit, "
               "then open a pull request")
# --------------------------------------------------------------------------- package

@cli.command(context_settings=CONTEXT)
@click.argument("ref", required=False)
@click.option("-t", "--target", "targets", multiple=True,
              help="Target to build (repeatable; default: every target of the card).")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path),
              help="Local build: the source ONNX file (with --card) instead of NAME@VERSION.")
@click.option("--card", type=click.Path(dir_okay=False, path_type=Path),
              help="Local build: the model card (its folder holds calibration/sample files).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"),
              show_default=True, help="Folder the packages are written to.")
@click.option("--plan", "show_plan", is_flag=True,
              help="Print the card's targets with the runner each needs; build nothing.")
@click.option("--list-targets", is_flag=True, help="List the targets, what each produces, needs and accepts.")
@click.option("--quantize", type=click.Choice(["dynamic", "static"]), help="Quantize to int8 (overrides the card).")
@click.option("--optimize/--no-optimize", default=None, help="Apply offline graph optimisation (overrides the card).")
@click.option("--converter", help="Use only this converter (overrides the target's candidates).")
@click.option("--option", "raw_options", multiple=True, metavar="KEY=VALUE",
              help="Target option (JSON value), e.g. --option repeats=50 --option 'threads=[1,4]'.")
@click.option("--no-benchmark", is_flag=True,
              help="Keep the first verified candidate without timing (rebuilds are byte-identical).")
@click.option("--key-env", metavar="VAR", help="Encrypt with the AES-256 key in this environment variable.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Encrypt with the AES-256 key in this file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json prints the plan, the targets or the built packages for machines.")
def package(ref: str | None, targets: tuple[str, ...], model: Path | None, card: Path | None, out: Path,
            show_plan: bool, list_targets: bool, quantize: str | None, optimize: bool | None,
            converter: str | None, raw_options: tuple[str, ...], no_benchmark: bool,
            key_env: str | None, key_file: Path | None, fmt: str) -> None:
    """Build verified device packages of a published version (or of local files).

    Each target's candidates are converted, verified against the source ONNX, timed, and the
    fastest is packed with manifest.json and a loader into NAME-VERSION-TARGET.tar.gz.

    \b
    Examples:
      registry package --list-targets
      registry package digits-cnn@1.2.0 --plan --format json
      registry package digits-cnn@1.2.0 --target linux-x86_64 --key-env PACKAGE_KEY
      registry package --model model.onnx --card model.yaml --target android-arm64 --quantize dynamic
    Exit codes: 0 built, 1 card, 2 usage, 5 storage, 6 conversion or verification failed.
    """
    import tempfile

    from registry.packaging import build as pkg
    from registry.core.console import StageProgress
    from registry.packaging.encryption import load_key

    if list_targets:
        catalog = pkg.target_catalog()
        if fmt == "json":
            click.echo(json.dumps(catalog, indent=2))
            return
        for t in catalog:
            click.echo(f"{t['name']}: {t['summary']}")
            click.echo(f"  produces:   {t['produces']}")
            click.echo("  converters: " + "; ".join(f"{k} ({v})" for k, v in t["converters"].items()))
            click.echo(f"  engines:    {', '.join(t['engines'])}   needs: {', '.join(t['needs'])}")
            click.echo(f"  runner:     {t['runner']}")
            click.echo("  options:    " + ", ".join(t["options"]))
        click.echo("\noptions are described in docs/packaging.md; set them in the card's targets: entry "
                   "or with --option KEY=VALUE")
        return
    if bool(model) != bool(card):
        raise UsageError("a local build needs both --model and --card")
    if not ref and not model:
        raise UsageError("say what to package: NAME@VERSION, or --model PATH --card PATH",
                         "see `registry package --help`")
    overrides: dict = {"quantize": quantize, "optimize": optimize, "converter": converter}
    for item in raw_options:
        k, sep, v = item.partition("=")
        if not sep:
            raise UsageError(f"--option {item!r} is not KEY=VALUE")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    with tempfile.TemporaryDirectory(prefix="registry-source-") as tmp:
        if model:
            source = pkg.source_from_files(model, card)
        elif show_plan:
            source = None
        else:
            source = pkg.source_from_tag(ref, Path.cwd(), Path(tmp))
        if show_plan:
            result = pkg.plan(source.card if source else pkg.card_at_tag(ref, Path.cwd()))
            if targets:
                keep = set(targets)
                result.targets = [t for t in result.targets if t.target in keep]
                result.matrix = {"include": [i for i in result.matrix["include"] if i["target"] in keep]}
            if fmt == "json":
                click.echo(result.model_dump_json(indent=2))
            else:
                for t in result.targets:
                    click.echo(f"{t.target}\t{t.runner}\t{t.produces}")
            return
        key = load_key(key_env, key_file)
        names = list(targets) or [t.name for t in source.card.targets]
        if not names:
            raise UsageError(f"the card of {source.name} lists no targets", "pass --target NAME")
        built = []
        progress = StageProgress()

        def log(msg: str) -> None:
            progress.close()  # a step's line replaces its bar
            click.echo(f"    {msg}", err=True)

        for name in names:
            click.echo(f"==> {source.name}@{source.version} for {name}", err=True)
            result = pkg.build_package(source, name, out, overrides=overrides, key=key,
                                       benchmark=not no_benchmark, log=log, progress=progress)
            progress.close()
            built.append(result)
            click.echo(f"    wrote {result.path} (sha256 {result.sha256[:16]}…)", err=True)
    if fmt == "json":
        click.echo(json.dumps([{"target": r.manifest.target, "path": str(r.path), "sha256": r.sha256,
                                "verified": r.manifest.verified, "engine": r.manifest.engine.label(),
                                "measured": r.manifest.benchmark.measured} for r in built], indent=2))
    else:
        for r in built:
            click.echo(r.path)


@cli.command(context_settings=CONTEXT)
@click.argument("package_file", metavar="PACKAGE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-i", "--input", "inputs", multiple=True, required=True, metavar="[NAME=]FILE",
              help="Input array (.npy; NAME= for multi-input models) or one .npz keyed by input name.")
@click.option("--key-env", metavar="VAR", help="Decrypt with the AES-256 key in this environment variable.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Decrypt with the key in this file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json prints {output: nested list}.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the outputs: .npy (a model with one output) or .npz (keyed by output name).")
def run(package_file: Path, inputs: tuple[str, ...], key_env: str | None, key_file: Path | None,
        fmt: str, output: Path | None) -> None:
    """Run a device package: decrypt in memory, check hashes and runtime version, print the outputs.

    \b
    Example:
      registry run dist/digits-cnn-1.2.0-linux-x86_64.tar.gz --input digit.npy
      PACKAGE_KEY=… registry run pkg.tar.gz.enc --key-env PACKAGE_KEY --input x=a.npy
    Exit codes: 0 ran, 2 usage, 6 wrong key, altered/truncated package, or runtime too old.
    """
    import numpy as np

    from registry.packaging.encryption import load_key
    from registry.packaging.build import open_package, read_inputs, run_package

    opened = open_package(package_file, load_key(key_env, key_file))
    expected = [i["name"] for i in opened.manifest.inputs]
    outputs = run_package(opened, read_inputs(list(inputs), expected))
    if output is not None:
        _save_outputs(output, {k: np.asarray(v) for k, v in outputs.items()})
    if fmt == "json":
        click.echo(json.dumps({k: np.asarray(v).tolist() for k, v in outputs.items()}))
        return
    for name, value in outputs.items():
        value = np.asarray(value)
        click.echo(f"{name} {value.dtype} {list(value.shape)}")
        click.echo(np.array2string(value, precision=6, threshold=200))


def _save_outputs(path: Path, outputs: dict) -> None:
    """Write a run's outputs as .npy (one output) or .npz, whole or not at all."""
    import os
    import tempfile

    import numpy as np

    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise UsageError(f"--output {path}: write .npy or .npz", "name the file outputs.npy or outputs.npz")
    if suffix == ".npy" and len(outputs) != 1:
        raise UsageError(f"--output {path}: the model has {len(outputs)} outputs ({', '.join(outputs)}), "
                         "and a .npy file holds one", f"write {path.with_suffix('.npz')} instead")
    folder = path.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if suffix == ".npy":
                np.save(f, next(iter(outputs.values())))
            else:
                np.savez(f, **outputs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    click.echo(f"wrote {path} ({', '.join(outputs)})", err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("package_files", metavar="PACKAGE...", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key-env", metavar="VAR", help="Decrypt with the AES-256 key in this environment variable.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Decrypt with the key in this file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json prints one verification record per package.")
def verify(package_files: tuple[Path, ...], key_env: str | None, key_file: Path | None, fmt: str) -> None:
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
    from registry.packaging.encryption import load_key
    from registry.packaging.build import verify_package

    key = load_key(key_env, key_file)
    results = []
    for path in package_files:
        results.append((path, verify_package(path, key)))
    if fmt == "json":
        click.echo(json.dumps([{"package": str(p), **v.model_dump(mode="json")} for p, v in results], indent=2))
    else:
        for p, v in results:
            click.echo(f"{p}: {v.summary()}")
            click.echo(f"  {v.where}")
    failed = [p for p, v in results if not v.passed]
    if failed:
        raise ConversionError(f"{len(failed)} of {len(results)} package(s) failed verification on this machine: "
                              + ", ".join(str(p) for p in failed),
                              "see the numbers above; docs/packaging.md#verification")


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

    from registry.cards.schema import load_card
    from registry.compression.chain import CompressRequest, compress as run_compress, open_registry_model, render_table

    if list_methods:
        click.echo(_methods_text())
        return
    if bool(ref) == bool(model_path):
        raise UsageError("give NAME@VERSION, or --model PATH with --card PATH")
    with tempfile.TemporaryDirectory(prefix="registry-compress-in-") as tmp:
        repo_root = None
        if ref:
            from registry.core.repo import RegistryRepo

            repo_root = RegistryRepo().root
            opened = open_registry_model(repo_root, ref, Path(tmp), remote=remote)
            if opened.withdrawn:
                click.echo(f"warning: {ref} was withdrawn ({opened.withdrawn}); a model derived from it "
                           "inherits that: check that it is still wanted", err=True)
            card, model_file, model_dir = opened.card, opened.model_path, opened.model_dir
            out_root = output_dir or repo_root / "models"
        else:
            if card_file is None:
                raise UsageError("--model needs --card (the card that names the evaluation data)")
            if not card_file.is_file():
                raise UsageError(f"card {card_file} does not exist")
            card = load_card(card_file.read_bytes(), str(card_file)).require()
            model_file, model_dir = model_path, card_file.parent
            out_root = output_dir
            if push:
                from registry.core.repo import RegistryRepo

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
    from registry.compression.methods import load_methods

    lines = []
    for name, cls in load_methods().items():
        lines.append(f"{name}  (cost {cls.cost}): {cls.summary}")
        for field, info in cls.Config.model_fields.items():
            default = info.default if info.default_factory is None else info.default_factory()
            lines.append(f"    {field} = {default!r}: {info.description}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- consume

def _root() -> Path:
    from registry.core.git import clone_root

    return clone_root()


@cli.command("list", context_settings=CONTEXT)
@click.option("--task", help="Only models of this task (classification, detection, …).")
@click.option("--project", help="Only models of this business project.")
@click.option("--state", help="Only models in this state: unpublished, published, updated, offline, invalid.")
@click.option("--rev", help="Read the cards at this git revision instead of the working tree.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts.")
def list_cmd(task: str | None, project: str | None, state: str | None, rev: str | None, fmt: str) -> None:
    """List models with their state, latest version and task.

    \b
    Examples:
      registry list
      registry list --task detection --state published --format json
    """
    from registry.versions.listing import list_models, render_list

    rows = list_models(_root(), task=task, project=project, state=state, rev=rev)
    if fmt == "json":
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    else:
        click.echo(render_list(rows))


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts.")
def show(spec: str, fmt: str) -> None:
    """Show a model: card, state, versions with dates (withdrawn marked), release notes, how to get it.

    \b
    Examples:
      registry show digits-cnn
      registry show digits-cnn@1.0.0 --format json
    """
    from registry.versions.listing import render_details, show_model
    from registry.versions.tags import LATEST, parse_version_spec

    name, version = parse_version_spec(spec)
    details = show_model(_root(), name, None if version == LATEST else version)
    click.echo(details.model_dump_json(indent=2) if fmt == "json" else render_details(details))


@cli.command(context_settings=CONTEXT)
@click.argument("spec", metavar="NAME@VERSION|NAME@latest")
@click.option("-t", "--target", "targets", multiple=True, metavar="TARGET",
              help="Fetch the version's device package for this target instead of its weights (repeatable).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the model into (default: ./NAME-VERSION).")
@click.option("--repo", "repo_url", metavar="URL",
              help="The registry's git URL: pull from any directory, without a clone.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts.")
def pull(spec: str, targets: tuple[str, ...], out_dir: Path | None, repo_url: str | None, fmt: str) -> None:
    """Fetch a published version (weights from the public remote, verified; card and config from git).

    With --target, fetch the device package the release built for that target instead (verified
    against the md5, size and SHA-256 its index on the public remote records).

    \b
    Examples:
      registry pull digits-cnn@1.0.0 -o models-in-use/digits
      registry pull digits-cnn@latest --repo https://github.com/acme/model-registry.git
      registry pull digits-cnn@1.0.0 --target android-arm64 -o app/src/main/assets
    A withdrawn (unpublished) version is still fetched, with a warning.
    Exit codes: 0 fetched, 1 card, 2 usage (unknown version or target), 4 git, 5 storage.
    """
    from registry.consuming.pull import pull as pull_version

    result = pull_version(spec, out_dir, repo_url=repo_url, targets=targets)
    if result.warning:
        click.echo(f"warning: {result.warning}", err=True)
    if fmt == "json":
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(f"pulled {result.name} {result.version} ({result.tag}, {result.commit[:8]}) into {result.out_dir}")
        for f in result.files:
            digest = f"sha256 {f.sha256}" if f.sha256 else f"md5 {f.md5}"
            where = f"already there, verified ({f.source} not contacted)" if f.kept else f"from {f.source}"
            click.echo(f"  {f.path}  {f.size} bytes  {digest}  {where}")


@cli.command("push-packages", context_settings=CONTEXT)
@click.argument("ref", metavar="NAME@VERSION")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for workflows.")
def push_packages(ref: str, folder: Path, fmt: str) -> None:
    """Put a published version's device packages on the public remote, so `pull --target` finds them.

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
    from registry.packaging.index import push_packages as push, render_push

    report = push(ref, folder, log=lambda msg: click.echo(f"    {msg}", err=True) if fmt == "json" else None)
    if report.warning:
        click.echo(f"warning: {report.warning}", err=True)
    click.echo(report.model_dump_json(indent=2) if fmt == "json" else render_push(report), nl=fmt == "json")


def _print_request(request, fmt: str) -> None:
    from registry.publishing.lifecycle_ops import render_request

    if fmt == "json":
        click.echo(json.dumps({**request.model_dump(), "push_command": request.push_command,
                               "pr_command": request.pr_command}, indent=2))
    else:
        click.echo(render_request(request))


_FMT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                    help="text for people, json for scripts.")
_BASE = click.option("--base", default="HEAD", show_default=True, help="Revision whose card is changed.")
_BRANCH = click.option("--branch", help="Name of the new branch (default: registry/<operation>-<name>-<version>).")


@cli.command("publish-request", context_settings=CONTEXT)
@click.argument("name")
@click.option("--version", "version", required=True, help="The version to publish (SemVer, above the last one).")
@_BASE
@_BRANCH
@_FMT
def publish_request(name: str, version: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to publish a version: set version and status on a new branch, for a pull request.

    \b
    Example:
      registry publish-request digits-cnn --version 1.1.0
    The merge of that pull request publishes (copy to public, tag, release notes).
    """
    from registry.publishing.lifecycle_ops import request_publish

    _print_request(request_publish(_root(), name, version, base=base, branch=branch), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@_BASE
@_BRANCH
@_FMT
def unpublish(name: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to unpublish a model (status: offline) on a new branch, for a pull request.

    \b
    Example:
      registry unpublish digits-cnn
    Its versions stay fetchable for pinned consumers, with a warning.
    """
    from registry.publishing.lifecycle_ops import request_unpublish

    _print_request(request_unpublish(_root(), name, base=base, branch=branch), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@_BASE
@_BRANCH
@_FMT
def delete(name: str, base: str, branch: str | None, fmt: str) -> None:
    """Ask to delete an unpublished or offline model on a new branch, for a pull request.

    \b
    Example:
      registry delete old-detector
    Storage and version tags are kept; `registry gc` reclaims storage explicitly.
    """
    from registry.publishing.lifecycle_ops import request_delete

    _print_request(request_delete(_root(), name, base=base, branch=branch), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", required=True,
              help="A field to change (dotted paths: source.commit=…, metrics.0.value=0.95). Repeatable.")
@_BASE
@_BRANCH
@_FMT
def edit(name: str, assignments: tuple[str, ...], base: str, branch: str | None, fmt: str) -> None:
    """Ask to change card fields that do not identify a version, on a new branch, for a pull request.

    \b
    Example:
      registry edit digits-cnn --set description="Handwritten digits, 8x8" --set license=MIT
    source.repo, config and weights of a published version need a new version instead.
    """
    from registry.publishing.lifecycle_ops import request_edit

    _print_request(request_edit(_root(), name, list(assignments), base=base, branch=branch), fmt)


@cli.command("sync-artifacts", context_settings=CONTEXT)
@click.option("--check", is_flag=True, help="Only compare; exit 1 when dvc.yaml is out of date.")
def sync_artifacts_cmd(check: bool) -> None:
    """Declare every model as a DVC artifact in dvc.yaml (for dvc artifacts get and GTO).

    \b
    Examples:
      registry sync-artifacts
      registry sync-artifacts --check     # in CI
    """
    from registry.cards.artifacts import sync_artifacts

    result = sync_artifacts(_root(), check=check)
    for label, names in (("added", result.added), ("changed", result.changed), ("removed", result.removed)):
        if names:
            click.echo(f"{label}: {', '.join(names)}")
    if result.in_sync:
        click.echo("dvc.yaml declares every model")
    elif check:
        click.echo("dvc.yaml is out of date: run `registry sync-artifacts` and commit dvc.yaml", err=True)
        sys.exit(1)
    else:
        click.echo(f"wrote {result.path}")


# --------------------------------------------------------------------------- publish

@cli.command(context_settings=CONTEXT)
@click.option("--base", required=True, help="Revision before the merge (the push event's 'before').")
@click.option("--head", default="HEAD", show_default=True, help="Revision after the merge; tags go on this commit.")
@click.option("--push/--no-push", default=True, show_default=True, help="Push the tags to the git remote.")
@click.option("--remote-name", default="origin", show_default=True, help="Git remote that receives the tags.")
@click.option("--changelog/--no-changelog", default=True, show_default=True,
              help="Add the notes to models/<name>/CHANGELOG.md in the working tree.")
@click.option("--notes-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each published version's notes to DIR/<tag>.md (for release pages).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for workflows.")
def publish(base: str, head: str, push: bool, remote_name: str, changelog: bool, notes_dir: Path | None,
            fmt: str) -> None:
    """Publish what a merge asks for: copy weights staging → public, verify, tag, push, changelog.

    Safe to run again: a re-run completes an interrupted run and changes nothing after a complete one.

    \b
    Example (the publish workflow, on push to main):
      registry publish --base "$BEFORE" --head "$AFTER" --format json
    Exit codes: 0 done, 1 invalid card, 4 git (tag conflict, push), 5 storage.
    """
    from registry.publishing.publish import PublishOptions, publish as run_publish, render_report
    from registry.core.repo import RegistryRepo

    report = run_publish(RegistryRepo(), PublishOptions(base=base, head=head, push=push, remote_name=remote_name,
                                                        changelog=changelog, notes_dir=notes_dir))
    click.echo(report.model_dump_json(indent=2) if fmt == "json" else render_report(report), nl=fmt == "json")
    if report.failed:
        first = report.failed[0].error
        error = RegistryError(f"{len(report.failed)} model(s) not published: "
                              + "; ".join(f"{m.name}: {m.error.message}" for m in report.failed), first.hint)
        error.exit_code = first.exit_code  # the first failure's class decides the exit code
        raise error


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--from", "from_", metavar="VERSION", help="Older version (default: the one before --to).")
@click.option("--to", metavar="VERSION", help="Newer version (default: the latest published).")
@click.option("--no-content", is_flag=True, help="Leave out the model diff (do not read weights).")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="md for people and release pages, json for machines.")
def notes(name: str, from_: str | None, to: str | None, no_content: bool, fmt: str) -> None:
    """Print the release notes between two published versions of a model.

    \b
    Example:
      registry notes digits-cnn --from 1.0.0 --to 1.1.0
    """
    from registry.publishing.notes import notes_between, render_notes
    from registry.core.repo import RegistryRepo
    from registry.core.storage import Storage

    repo = RegistryRepo()
    storage = None if no_content else Storage(repo.root)
    click.echo(render_notes(notes_between(repo, storage, name, to, from_), fmt), nl=False)


@cli.command("codeowners", context_settings=CONTEXT)
@click.option("--maintainer", "maintainers", multiple=True, metavar="OWNER",
              help="A maintainer (@user, @org/team or e-mail; repeatable). Default: those the current file names.")
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 when the file is out of date.")
def codeowners(maintainers: tuple[str, ...], check_only: bool) -> None:
    """Write .github/CODEOWNERS from the cards' owners; maintainers own everything else.

    \b
    Examples:
      registry codeowners --maintainer @org/registry-maintainers   # first time
      registry codeowners                                          # after a card's owners changed
    """
    from registry.cards import codeowners as co
    from registry.core.repo import RegistryRepo

    repo = RegistryRepo()
    if check_only:
        current = repo.snapshot().read_text(co.FILE)
        expected = co.render(repo.snapshot(), list(maintainers) or co.maintainers_of(current))
        if current != expected:
            raise CardError(f"{co.FILE} is out of date with the cards' owners", "run `registry codeowners`",
                            path=co.FILE)
        click.echo(f"{co.FILE} is up to date")
        return
    _, changed = co.write(repo.root, repo.snapshot(), list(maintainers) or None)
    click.echo(f"{'wrote' if changed else 'unchanged:'} {co.FILE}")


@cli.command("verify-tag", context_settings=CONTEXT)
@click.argument("tag")
@click.option("--branch", help="The default branch's ref (default: origin's HEAD, else HEAD).")
def verify_tag_command(tag: str, branch: str | None) -> None:
    """Check that TAG is a version the publish workflow made: its commit is on the default branch
    and the card there says published/updated with that version. The release workflow runs it
    first, from the default branch's code, so a hand-pushed tag builds nothing.

    \b
    Example:
      registry verify-tag digits-cnn@v1.2.0 --branch origin/main
    Exit codes: 0 a published version, 2 not a version tag, 4 no such tag or a stray tag.
    """
    from registry.versions.tags import verify_tag
    from registry.core.git import clone_root

    v = verify_tag(clone_root(), tag, branch)
    click.echo(f"{v.tag}: published version {v.version} of {v.name} at {v.commit[:10]}")


@cli.command(context_settings=CONTEXT)
@click.option("--remote", "remote_name", type=click.Choice(["public", "staging"]), default="public",
              show_default=True, help="The DVC remote to clean.")
@click.option("--apply", is_flag=True, help="Remove the unreferenced objects (default: only list them).")
@click.option("--grace", "grace_days", type=click.FloatRange(min=0), default=None,
              help="Keep unreferenced objects younger than this many days (default: 14 on staging, 0 on public).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for machines.")
def gc(remote_name: str, apply: bool, grace_days: float | None, fmt: str) -> None:
    """List (or with --apply remove) remote objects that no version tag refers to.

    Never removes an object any version tag refers to (withdrawn versions included); on staging,
    objects of every branch head are kept too.

    \b
    Examples:
      registry gc                      # dry run on public
      registry gc --remote staging --apply
    """
    from registry.cards.schema import format_size
    from registry.publishing.gc import collect_garbage
    from registry.core.repo import RegistryRepo
    from registry.core.storage import Storage

    repo = RegistryRepo()
    report = collect_garbage(repo, Storage(repo.root), remote_name, apply,
                             None if grace_days is None else grace_days * 86400)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
        return
    verb = "removed" if apply else "would remove"
    for o in report.unreferenced:
        click.echo(f"{verb} {o.md5} ({format_size(o.size or 0)})")
    for p in report.partial:
        click.echo(f"{verb} {p} (left by an interrupted copy)")
    if report.kept_young:
        click.echo(f"kept {len(report.kept_young)} unreferenced objects younger than "
                   f"{report.grace_seconds / 86400:g} days (--grace)")
    click.echo(f"{report.remote}: {report.objects} objects, {len(report.unreferenced)} unreferenced "
               f"({format_size(report.unreferenced_bytes)}); {verb} {len(report.unreferenced)}"
               + ("" if apply or not report.unreferenced else "; run with --apply to remove them"))


# --------------------------------------------------------------------------- catalog

@cli.group(context_settings=CONTEXT)
def catalog() -> None:
    """The public catalog: a static web site (and JSON) of every published model.

    \b
    Examples:
      registry catalog build -o site/
      registry catalog serve -d site/
    """


@catalog.command("build", context_settings=CONTEXT)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="Folder the site is written to (kept up to date on later builds).")
@click.option("--repo-url", help="The registry's git URL in the pull commands (default: the clone's origin).")
@click.option("--no-packages", is_flag=True, help="Do not read device package indexes from the public remote.")
@click.option("--force", is_flag=True, help="Rewrite every model's page, not only those that changed.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: the CPUs available).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json prints the build report for machines.")
def catalog_build(output: Path, repo_url: str | None, no_packages: bool, force: bool, jobs: int | None,
                  fmt: str) -> None:
    """Build the catalog site of the registry: index pages, a page and a JSON per model, index.json.

    Only models whose cards, tags or packages changed since the last build into the same folder
    are rendered again. Unpublished models are not listed; withdrawn ones are marked.

    \b
    Example:
      registry catalog build -o site/ && registry catalog serve -d site/
    """
    from registry.catalog.site import build_catalog
    from registry.core.git import clone_root

    report = build_catalog(clone_root(), output, repo_url=repo_url, packages=not no_packages, force=force,
                           jobs=jobs)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(f"catalog of {report.models} models ({report.live} published, {report.withdrawn} withdrawn) in "
               f"{report.output}/: {len(report.rewritten)} model pages written, {len(report.removed)} removed, "
               f"{report.files_written} shared files updated, {report.seconds:.1f}s")
    click.echo(f"  open {Path(report.output).resolve() / 'index.html'}, or: registry catalog serve -d {report.output}")


@catalog.command("serve", context_settings=CONTEXT)
@click.option("-d", "--directory", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="The built site.")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
def catalog_serve(directory: Path, port: int) -> None:
    """Preview a built catalog at http://127.0.0.1:PORT/ (local only; Ctrl+C stops it).

    \b
    Example:
      registry catalog serve -d site/ --port 8000
    """
    from registry.catalog.serve import make_server

    server = make_server(directory, port)
    click.echo(f"serving {directory}/ at http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


# --------------------------------------------------------------------------- train

class _TrainGroup(click.Group):
    """`registry train TASK …` runs a task; `registry train results|check|plan …` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@cli.group("train", cls=_TrainGroup, context_settings=CONTEXT)
def train() -> None:
    """Train the tasks declared in training/<task>/task.yaml (datasets, structures, algorithms in git).

    \b
    Examples:
      registry train digits-cnn --workers 2            # every instance, two worker processes
      registry train digits-cnn --instance base --register
      registry train results digits-cnn                 # compare the instances
      registry train check --base origin/main --head HEAD --dynamic   # the pull-request bot
    """


@train.command("run", context_settings=CONTEXT)
@click.argument("task")
@click.option("--instance", "instances", multiple=True, metavar="NAME", help="Train only this instance; repeatable.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Instances trained at once, each in its own process.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Where to train.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads per worker (default: the CPUs shared out among the workers).")
@click.option("--register", is_flag=True, help="Then make the best instance models/<model> on branch train/<model>.")
@click.option("--push/--no-push", default=True, show_default=True, help="With --register: push the weights to staging.")
@click.option("--branch", help="With --register: the branch to commit the new model on (default train/<model>).")
@click.option("--progress", type=click.Choice(["auto", "plain", "jsonl"]), default="auto", show_default=True,
              help="auto: a live table in a terminal, plain lines otherwise; jsonl: events as JSON lines on stdout.")
def train_run(task: str, instances: tuple[str, ...], workers: int, device: str, threads: int | None, register: bool,
              push: bool, branch: str | None, progress: str) -> None:
    """Train a task's instances (re-running resumes from the last checkpoint).

    \b
    Example:
      registry train digits-cnn --workers 2 --register
    Exit codes: 0 every instance trained, 1 an instance failed, 130 stopped by Ctrl-C.
    """
    from registry.core.repo import RegistryRepo
    from registry.training.results import list_results, render_results
    from registry.training.workers import ProgressView, train_task

    root = RegistryRepo().root
    view = ProgressView(sys.stdout if progress == "jsonl" else sys.stderr, jsonl=progress == "jsonl",
                        plain=progress == "plain" or not sys.stderr.isatty())
    run = train_task(root, task, instances=list(instances) or None, workers=workers, device=device, threads=threads,
                     view=view)
    rows = list_results(root, task)
    if progress != "jsonl":
        click.echo(render_results(task, rows), nl=False)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(render_results(task, rows, markdown=True))
    if run.interrupted:
        sys.exit(130)
    if register:
        from registry.training.register import register_best

        made = register_best(root, task, push=push, branch=branch)
        click.echo(f"registered models/{made.model} from instance {made.instance} on branch {made.branch}"
                   + (" (weights pushed to staging)" if made.pushed else ""), err=progress == "jsonl")
        click.echo(f"  next: git push -u origin {made.branch}, then open its pull request", err=progress == "jsonl")
    sys.exit(1 if run.failed else 0)


@train.command("register", context_settings=CONTEXT)
@click.argument("task")
@click.option("--push/--no-push", default=True, show_default=True, help="Push the weights to the staging remote.")
@click.option("--branch", help="The branch to commit the new model on (default train/<model>).")
def train_register(task: str, push: bool, branch: str | None) -> None:
    """Make the best finished instance of TASK the model entry models/<model> (trains nothing).

    \b
    Example:
      registry train register digits-cnn --branch train/digits-cnn-2
    """
    from registry.core.repo import RegistryRepo
    from registry.training.register import register_best

    made = register_best(RegistryRepo().root, task, push=push, branch=branch)
    click.echo(f"registered models/{made.model} from instance {made.instance} on branch {made.branch}"
               + (" (weights pushed to staging)" if made.pushed else ""))
    click.echo(f"  next: git push -u origin {made.branch}, then open its pull request")


@train.command("results", context_settings=CONTEXT)
@click.argument("task")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="text for people, json for machines, markdown for a step summary.")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path),
              help="Copy the results (weights, metrics, config, plots, log) of --instance (default: the best) here.")
@click.option("--instance", help="With --download: the instance to copy.")
def train_results(task: str, fmt: str, download: Path | None, instance: str | None) -> None:
    """List and compare a task's instances (the best by the task's metric is marked).

    \b
    Example:
      registry train results digits-cnn --download out/
    """
    from registry.core.repo import RegistryRepo
    from registry.training.results import best_result, fetch_result, list_results, render_results, results_json

    root = RegistryRepo().root
    rows = list_results(root, task)
    click.echo(results_json(task, rows) if fmt == "json" else render_results(task, rows, markdown=fmt == "markdown"),
               nl=False)
    if download:
        target = fetch_result(root, task, instance or best_result(root, task).instance, download)
        click.echo(f"copied to {target}", err=True)


@train.command("check", context_settings=CONTEXT)
@click.option("--head", help="Revision to check, read from git objects (default: the working tree).")
@click.option("--base", help="Base of a pull request: check when the diff touches datasets/ or training/, and "
              "build only the tasks it affects.")
@click.option("--dynamic", is_flag=True, help="Also build, step and export each structure in the sandboxed child.")
@click.option("--task", "tasks", multiple=True, help="Only these tasks' instances; repeatable.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds the sandboxed step may take.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default="text",
              show_default=True, help="Output: text, json, markdown, or github (annotations + step summary).")
@click.option("--artifacts-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the structure pictures (SVG) here.")
def train_check(head: str | None, base: str | None, dynamic: bool, tasks: tuple[str, ...], timeout: float,
                fmt: str, artifacts_dir: Path | None) -> None:
    """Validate datasets, layers, structures, algorithms and tasks (the pull-request bot).

    \b
    Example:
      registry train check --base origin/main --head HEAD --dynamic --format github --artifacts-dir pictures
    Exit codes: 0 pass, 1 findings, 2 usage, 4 git.
    """
    from registry.core.repo import RegistryRepo
    from registry.training import validate

    repo = RegistryRepo()
    snapshot = repo.snapshot(head)
    if base:
        changed = validate.changed_paths(repo.root, base, head)
        if not changed:
            click.echo("no training files changed", err=True)
            sys.exit(0)
        tasks = tasks or tuple(validate.affected_tasks(snapshot, changed)) or ("-",)  # "-": none to build
    report = validate.check_training(snapshot, dynamic=dynamic, tasks=list(tasks) or None, timeout=timeout)
    if fmt == "github":
        click.echo(validate.publish_github(report, artifacts_dir), nl=False)
    else:
        pictures = validate.write_pictures(report, artifacts_dir) if artifacts_dir else {}
        click.echo(json.dumps(report.to_json(), indent=2) if fmt == "json" else
                   validate.render_markdown(report, pictures) if fmt == "markdown" else validate.render_text(report),
                   nl=fmt != "text")
    sys.exit(0 if report.passed else 1)


@train.command("plan", context_settings=CONTEXT)
@click.argument("tasks", nargs=-1)
@click.option("--base", help="With --head: plan the tasks whose files the diff BASE..HEAD touches.")
@click.option("--head", help="Head revision for --base (default: the working tree).")
@click.option("--instance", "instances", multiple=True, metavar="NAME", help="Only these instances; repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help='json: {"include": [{"task", "instance"}, …]}, the matrix of the train workflow.')
def train_plan(tasks: tuple[str, ...], base: str | None, head: str | None, instances: tuple[str, ...],
               fmt: str) -> None:
    """List the instances to train (grids expanded): one job each in the train workflow's matrix.

    \b
    Examples:
      registry train plan digits-cnn --format json
      registry train plan --base origin/main --head HEAD --format json
    """
    from registry.core.repo import RegistryRepo
    from registry.training.workers import plan_instances

    plan = plan_instances(RegistryRepo().root, list(tasks), base=base, head=head, instances=list(instances))
    if fmt == "json":
        click.echo(json.dumps({"include": [{"task": t, "instance": i.name} for t, i in plan]}))
    else:
        for t, i in plan:
            click.echo(f"{t}/{i.name}: dataset {i.dataset}, structure {i.structure}, algorithm {i.algorithm}"
                       + (f", {json.dumps(i.hyperparameters)}" if i.hyperparameters else ""))


# --------------------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI through the error funnel.

    Run as the program (no `argv`), the objects alive when the command ends are frozen out of the
    collector: the interpreter's final collection then skips the few hundred thousand objects the
    imports made, which would otherwise cost a tenth of a second at every exit.
    """
    try:
        _run(argv)
    finally:
        if argv is None:
            collector.freeze()


def _run(argv: list[str] | None) -> None:
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
            click.echo("  hint: re-run with --verbose --traceback (or REGISTRY_TRACEBACK=1) and report it",
                       err=True)
        sys.exit(70)
