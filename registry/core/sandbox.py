"""Running untrusted work in a child process: a fresh interpreter, nothing inherited, a memory cap
and a deadline.

The registry's two sandboxes stand on this: the one run of a pull request's ONNX model
(`registry.formats.onnx_run`) and the one training step of a pull request's code
(`registry.training.sandbox`). `run_child` starts `python -I` on an entry function, with an
environment of its own (no tokens, no cloud credentials; HOME and TMPDIR in the child's folder),
in a session of its own, feeds it its request on stdin, and kills its whole process group when
the deadline passes; `start_child` starts one before its request is known, so that it imports
while the parent works. The child calls `limit_memory` and `start_deadline` itself once its heavy
imports are done, so the limits measure the work, not the interpreter's start; the parent's
deadline allows for that start on top of the work's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# a child that dumps its stack at its own deadline (`start_deadline`) writes this to stderr
DEADLINE_MARK = "Timeout ("


@dataclass
class ChildResult:
    """How a sandboxed child ended and what it wrote."""

    stdout: bytes
    stderr: str
    returncode: int
    killed: bool  # the parent killed it at the deadline of `run_child`

    @property
    def timed_out(self) -> bool:
        """Whether it was stopped by a deadline: the parent's, or its own (`start_deadline`)."""
        return self.killed or DEADLINE_MARK in self.stderr

    def ended(self) -> str:
        """How it ended, for messages: 'killed by signal 9' or 'exit code 1'."""
        if self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        return f"exit code {self.returncode}"


def clean_env(home: Path) -> dict[str, str]:
    """The child's whole environment: nothing inherited, so no secret can leak into it."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": _package_root(),
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TMPDIR": str(home),
    }


def run_child(entry: str, request: bytes, *, workdir: Path, deadline: float) -> ChildResult:
    """Run `entry` in a sandboxed child and wait for it, at most `deadline` seconds.

    Args:
        entry: 'package.module:function', called without arguments in the child; it reads
            `request` from stdin.
        workdir: the child's working folder, HOME and TMPDIR (it holds nothing else of the
            parent's).
        deadline: seconds after which the child's process group is killed.
    """
    return start_child(entry, workdir=workdir).finish(request, deadline)


def start_child(entry: str, *, workdir: Path) -> Child:
    """Start `entry` in a sandboxed child now and send its request later (`Child.finish`): an
    entry that does its heavy imports before it reads stdin imports them while the parent works.

    Args: as `run_child`'s.
    """
    module, _, function = entry.partition(":")
    code = (
        f"import sys; sys.path.insert(0, sys.argv[1]); from {module} import {function}; "
        f"{function}()"
    )
    env = clean_env(workdir)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", code, env["PYTHONPATH"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=env,
        start_new_session=True,
    )
    return Child(proc, time.monotonic())


@dataclass
class Child:
    """A sandboxed child started by `start_child`, waiting for its request."""

    proc: subprocess.Popen
    started: float  # time.monotonic() at its start

    def finish(self, request: bytes, deadline: float) -> ChildResult:
        """Send `request` and wait for the child, at most until `deadline` seconds after its start;
        then its process group is killed."""
        killed = False
        try:
            stdout, stderr = self.proc.communicate(
                request, timeout=max(0.0, self.started + deadline - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(self.proc.pid, signal.SIGKILL)
            stdout, stderr = self.proc.communicate()
        return ChildResult(stdout, stderr.decode("utf-8", "replace"), self.proc.returncode, killed)

    def stop(self) -> None:
        """End a child that will get no request: kill its process group, then reap it."""
        if self.proc.poll() is None:  # not reaped yet, so its process group is still its own
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()


def limit_memory(extra: int) -> None:
    """Cap this process's address space at its current size plus `extra` bytes (Linux)."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (ImportError, OSError, ValueError, IndexError):
        return  # no /proc: the time limit still holds
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def start_deadline(seconds: float) -> None:
    """From now on, dump where this process is to stderr and exit after `seconds` (a watchdog
    thread does it, so it works while the work is stuck in native code); `cancel_deadline` stops
    the clock."""
    import faulthandler

    faulthandler.dump_traceback_later(seconds, exit=True)


def cancel_deadline() -> None:
    """Stop the clock of `start_deadline`."""
    import faulthandler

    faulthandler.cancel_dump_traceback_later()


def _package_root() -> str:
    """The folder that holds the `registry` package, for the child's `sys.path`."""
    return str(Path(__file__).resolve().parents[2])
