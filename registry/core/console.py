"""What a command shows on the terminal besides its result: progress of long steps, and none of the
third-party libraries' chatter unless asked for (`registry --verbose`).

Owns: `quiet_third_party` (warnings and library log records, held back for the length of a
command) and `StageProgress` (a bar per long step in a terminal, one plain line per step
elsewhere, so CI logs stay readable).
Imports only the standard library and tqdm; every other module may import it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def quiet_third_party(verbose: bool = False) -> Iterator[None]:
    """Hold back third-party noise for the length of a command; restore everything afterwards.

    Quiet (the default): Python warnings are ignored and log records below ERROR are dropped (the
    registry itself prints with click, not logging). Native libraries that print through Python's
    standard error are silenced where they are called (see
    registry.packaging.engines.executorch_runtime).
    The standard error descriptor itself is left alone: interactive prompts are written there.

    Args:
        verbose: show everything, as the libraries print it.
    """
    if verbose:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


class StageProgress:
    """Progress of a command's long steps, called as `progress(stage, done, total)`.

    A stage shows itself once it has run for `after` seconds. In a terminal it gets a tqdm bar that
    disappears when the stage ends (the command's own line then says what came of it). Elsewhere
    (CI logs, pipes) it prints one line when it has run `after` seconds and one with its duration
    when it ends: no redraws.
    """

    def __init__(
        self, stream: IO[str] | None = None, indent: str = "    ", after: float = 2.0
    ) -> None:
        self.stream = stream
        self.indent = indent
        self.after = after  # a stage shorter than this shows nothing
        self._stage: str | None = None
        self._bar = None
        self._announce: threading.Timer | None = None
        self._announced = False
        self._started = 0.0

    def _out(self) -> IO[str]:
        return self.stream or sys.stderr

    @property
    def interactive(self) -> bool:
        try:
            return self._out().isatty()
        except (AttributeError, ValueError):
            return False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self.close()
            self._open(stage, total)
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
        if done >= total:
            self.close()

    def _open(self, stage: str, total: int) -> None:
        self._stage, self._started, self._announced = stage, time.monotonic(), False
        if self.interactive:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=f"{self.indent}{stage}",
                file=self._out(),
                leave=False,
                delay=self.after,
                dynamic_ncols=True,
                bar_format="{desc}: {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
            )
        else:
            self._announce = threading.Timer(self.after, self._say_started, args=(stage,))
            self._announce.daemon = True
            self._announce.start()

    def _say_started(self, stage: str) -> None:
        if stage == self._stage:
            self._announced = True
            self._out().write(f"{self.indent}{stage}…\n")
            self._out().flush()

    def close(self) -> None:
        """End the current stage, if any (a stage that was announced says how long it took)."""
        if self._stage is None:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._announce is not None:
            self._announce.cancel()
            self._announce = None
        if self._announced:
            self._out().write(
                f"{self.indent}{self._stage}: done in {time.monotonic() - self._started:.1f} s\n"
            )
            self._out().flush()
        self._stage = None
