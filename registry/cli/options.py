"""What every command shares: the invocation (the folder a command runs in, and the registry clone
found from it once; whether to show tracebacks), path parameters taken from that folder, and the
option objects written once (`--format`, the key options).

May import: `registry.core`. The CLI's other modules import it; it imports none of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from registry.core.errors import UsageError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass
class Invocation:
    """What the group's options say for one run of a command (the click context's object).

    Args:
        folder: the folder the command runs in (`-C`); None: the working directory.
        traceback: show the full traceback of unexpected errors (`--traceback`).
    """

    folder: Path | None = None
    traceback: bool = False

    @cached_property
    def root(self) -> Path:
        """The top folder of the registry clone the command runs in, found once, when a command
        first needs it (`registry pull --repo URL` needs none).

        Raises:
            UsageError: the folder is not inside a clone.
        """
        from registry.core.git import clone_root

        return clone_root(self.folder)

    def path(self, value: str | os.PathLike) -> str | os.PathLike:
        """A path given on the command line, relative ones taken from the folder of `-C`."""
        if self.folder is None or os.path.isabs(value):
            return value
        return self.folder / value


pass_invocation = click.make_pass_decorator(Invocation, ensure=True)


class LocalPath(click.Path):
    """A file or folder given on the command line (or answered at a prompt): a relative one is
    taken from the folder the command runs in, as if it had been started there (`-C`)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        ctx = ctx or click.get_current_context(silent=True)
        invocation = ctx.find_object(Invocation) if ctx is not None else None
        if invocation is not None and isinstance(value, (str, os.PathLike)):
            value = invocation.path(value)
        return super().convert(value, param, ctx)


def file_path(**kwargs: Any) -> LocalPath:
    """A file parameter (not a folder), as a `Path`."""
    return LocalPath(dir_okay=False, path_type=Path, **kwargs)


def folder_path(**kwargs: Any) -> LocalPath:
    """A folder parameter (not a file), as a `Path`."""
    return LocalPath(file_okay=False, path_type=Path, **kwargs)


class TaskChoice(click.Choice):
    """The card's task categories as a choice, loaded from the card schema only when the option is
    used or its help is shown (the schema's validation library is slow to import)."""

    def __init__(self) -> None:
        super().__init__([], case_sensitive=True)

    @property
    def choices(self):  # type: ignore[override]
        """The task values, in the schema's order."""
        from registry.cards.schema import Task

        return [t.value for t in Task]

    @choices.setter
    def choices(self, value) -> None:
        pass


def key_values(items: tuple[str, ...], flag: str) -> list[tuple[str, object]]:
    """`KEY=VALUE` flags in order: the value read as JSON (numbers, true/false, lists), else kept as
    the text it is.

    Raises:
        UsageError: an item without '='.
    """
    pairs = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r} is not KEY=VALUE")
        try:
            pairs.append((key, json.loads(text)))
        except json.JSONDecodeError:
            pairs.append((key, text))
    return pairs


def format_option(
    *choices: str, help: str = "text for people, json for scripts."
) -> Callable[[Callable], Callable]:
    """The `--format` option (parameter `fmt`): the first choice is the default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


def key_options(verb: str) -> Callable[[Callable], Callable]:
    """`--key-env VAR` and `--key-file PATH`: where the AES-256 key of a package comes from;
    `verb` says what it is used for (Encrypt, Decrypt)."""
    key_env = click.option(
        "--key-env",
        metavar="VAR",
        help=f"{verb} with the AES-256 key in this environment variable.",
    )
    key_file = click.option(
        "--key-file", type=file_path(), help=f"{verb} with the AES-256 key in this file."
    )
    return lambda f: key_env(key_file(f))
