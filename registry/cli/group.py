"""The `registry` click group, its global options and the error funnel every command runs through.

`CommandGroup` imports the command modules when a command is looked up (`registry list` and
`registry show` import only their own); `run` parses the arguments and turns the registry's errors
into a message and their class's exit code, anything else into a short message and how to see the
traceback (`--traceback`).
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

import click

from registry import __version__
from registry.cli.options import CONTEXT, Invocation, folder_path
from registry.core.errors import RegistryError

# the modules holding the commands, in the order their commands are added
MODULES = ("models", "lifecycle", "publishing", "packages", "compress", "train", "catalog")
# commands found without importing every module: the reads, which must start fast
FAST = {"list": "models", "show": "models"}


class CommandGroup(click.Group):
    """The `registry` group, whose command modules are imported when a command is looked up:
    `registry list` and `registry show` import only their own module; anything else (another
    command, `--help`, `.commands`) imports them all."""

    _loaded = False

    @property
    def commands(self) -> dict[str, click.Command]:
        """Every command by name (importing every command module the first time)."""
        if not self._loaded:
            self._loaded = True
            for name in MODULES:
                for command in importlib.import_module(f"registry.cli.{name}").COMMANDS:
                    self._commands[command.name] = command
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if not self._loaded and cmd_name in FAST:
            module = importlib.import_module(f"registry.cli.{FAST[cmd_name]}")
            for command in module.COMMANDS:
                if command.name == cmd_name:
                    return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=CommandGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="registry")
@click.option(
    "--traceback",
    "show_traceback",
    is_flag=True,
    help="Show the full traceback of unexpected errors.",
)
@click.option(
    "-C",
    "--repo-dir",
    type=folder_path(exists=True),
    default=None,
    help="Run as if started in this folder (a clone of the registry).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also show what third-party libraries print (warnings, log lines, native output).",
)
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool, repo_dir: Path | None, verbose: bool) -> None:
    """A Git-native model registry: model cards in git, weights in DVC remotes, change through
    pull requests.

    \b
    Example:
      registry check --base origin/main --head HEAD
    """
    from registry.core.console import quiet_third_party

    ctx.with_resource(quiet_third_party(verbose))
    invocation = ctx.ensure_object(Invocation)
    invocation.folder, invocation.traceback = repo_dir, show_traceback


def run(argv: list[str] | None, invocation: Invocation) -> None:
    """Run the command line `argv` (default: the program's arguments) through the error funnel."""
    try:
        cli.main(args=argv, prog_name="registry", standalone_mode=False, obj=invocation)
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
    except ModuleNotFoundError as e:
        from registry.core.dependencies import missing_module

        error = missing_module(e, _command(sys.argv[1:] if argv is None else argv))
        if error is None or invocation.traceback:
            unexpected(e, invocation)
        click.echo(f"error: {error.message}", err=True)
        click.echo(f"  hint: {error.hint}", err=True)
        sys.exit(error.exit_code)
    except OSError as e:
        if e.filename != "git" or invocation.traceback:
            unexpected(e, invocation)
        from registry.core.git import cannot_run_git

        error = cannot_run_git(e)  # git started by subprocess directly, not through run_git
        click.echo(f"error: {error.message}", err=True)
        click.echo(f"  hint: {error.hint}", err=True)
        sys.exit(error.exit_code)
    except Exception as e:  # noqa: BLE001 - the funnel: never a bare traceback unless asked for
        unexpected(e, invocation)


def unexpected(error: BaseException, invocation: Invocation) -> None:
    """Report an error the registry did not foresee, and exit 70."""
    if invocation.traceback:
        traceback.print_exception(error)
    else:
        click.echo(f"error: unexpected {type(error).__name__}: {error}", err=True)
        click.echo("  hint: re-run with --verbose --traceback and report it", err=True)
    sys.exit(70)


def _command(args: list[str]) -> str | None:
    """The command's name among the global options of `args` (`-C DIR`, `--traceback`, …)."""
    values = iter(args)
    for arg in values:
        if arg in ("-C", "--repo-dir"):
            next(values, None)
        elif not arg.startswith("-"):
            return arg
    return None
