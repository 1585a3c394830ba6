"""The `registry` command line: flags parsed into the API's requests, results printed; nothing more.

Every command is a thin layer over one function of `registry.api`. This package owns the entry
point `main`, and in `group` the click group, its global options (`-C`, `--traceback`,
`--verbose`) and its error funnel: a `RegistryError` prints one clear message and exits with its
class's code; anything else prints a short message and how to see the traceback (`--traceback`).
The commands live in one module per group: `models` (new, check, list, show, pull, schema,
sync-artifacts, codeowners), `lifecycle` (publish-request, unpublish, delete, edit), `publishing`
(publish, notes, verify-tag, gc), `packages` (package, run, verify, push-packages), `compress`,
`train` and `catalog`; what they share (the invocation, path parameters, `--format`, the key
options) is in `options`.

May import: every other subpackage (the CLI is the top layer); domain and API modules are
imported inside the commands, so that `registry --help` stays light, and the command modules are
imported when a command is looked up (`group.CommandGroup`), so that `registry list` imports only
its own. A plain `registry list` (its own options only, each given once) is answered before click
is imported (`_list_at_once`): the listing is read-only, so anything unusual, any error
included, is left to the click path, which runs it again and prints exactly what it always did.
"""

from __future__ import annotations

import gc as collector
import os
import sys

# `from registry.cli import cli` (and the group's other names) load the click group when asked for
_GROUP_NAMES = ("cli", "CommandGroup", "MODULES", "FAST")


def __getattr__(name: str):
    if name in _GROUP_NAMES:
        from registry.cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI through the error funnel.

    Run as the program (no `argv`), the collector runs less often: a command's imports (click,
    pydantic, DVC, git) make several hundred thousand long-lived objects that the default pace
    would sweep dozens of times for nothing (about a tenth of a second of `registry check --all`),
    and the commands make little cyclic garbage. The objects alive when the command ends are then
    frozen out of it, so the interpreter's final collection skips them too. Called with `argv`
    (tests, scripts), the collector is left as it is. As the program, it also sets
    `PYDANTIC_DISABLE_PLUGINS` unless already set (docs/architecture.md).
    """
    if argv is None:
        collector.set_threshold(50_000, 20, 20)
        # no registry code uses pydantic plug-ins: skip pydantic's scan of every installed
        # distribution's entry points (about 20 ms); set it (even empty) to have them loaded
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        if not _list_at_once(sys.argv[1:] if argv is None else argv):
            from registry.cli.group import run
            from registry.cli.options import Invocation

            run(argv, Invocation())
    finally:
        if argv is None:
            collector.freeze()


_LIST_OPTIONS = ("--task", "--project", "--state", "--rev", "--format")


def _list_at_once(args: list[str]) -> bool:
    """Answer `registry list [--task T] [--project P] [--state S] [--rev R] [--format F]` without
    click, as its click command does (`models.list_cmd`); False, having printed nothing, for any
    other command line, and whenever the listing fails (the click path then runs it again and
    reports the error through the funnel)."""
    utf8 = (sys.stdout.encoding or "").lower() in ("utf-8", "utf8")
    if not args or args[0] != "list" or not utf8:
        return False
    given: dict[str, str] = {}
    rest = iter(args[1:])
    for arg in rest:
        name, eq, value = arg.partition("=")
        if name not in _LIST_OPTIONS or name in given:
            return False
        if not eq:
            value = next(rest, None)
            if value is None:
                return False
        # a value like an option, or with a control character (click's echo would strip an
        # escape sequence from an error naming it): left to click
        if value.startswith("-") or not value.isprintable():
            return False
        given[name] = value
    fmt = given.get("--format", "text")
    if fmt not in ("text", "json"):
        return False
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as the group's quiet_third_party
            from registry.core.git import find_clone_root
            from registry.versions.listing import list_models

            root = find_clone_root()
            if root is None:
                return False  # the click path says so
            rows = list_models(
                root,
                task=given.get("--task"),
                project=given.get("--project"),
                state=given.get("--state"),
                rev=given.get("--rev"),
            )
            text = rows.to_json() if fmt == "json" else rows.render()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception:  # noqa: BLE001 - the click path runs it again and reports it
        return False
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except Exception as e:  # noqa: BLE001 - a closed pipe, reported as the funnel reports it
        from registry.cli.group import unexpected
        from registry.cli.options import Invocation

        unexpected(e, Invocation())
    return True
