"""The registry's exceptions: one root, a few families, each with its own exit code.

Every message says what is wrong, where (file:line when there is one) and what to do about it.
The CLI turns these into one clear line and the exit code; nothing else should be shown to users.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Root of every error the registry reports to a user.

    Args:
        message: what is wrong and where.
        hint: what to do about it (printed on its own line).
    """

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(RegistryError):
    """The command was called wrongly: bad option, unknown model, bad revision."""

    exit_code = 2


class CardError(RegistryError):
    """A model card cannot be read at all (not YAML, too big, aliases, not a mapping)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
    ):
        super().__init__(message, hint)
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = (
            f"{self.path}:{self.line}: "
            if self.path and self.line
            else (f"{self.path}: " if self.path else "")
        )
        return where + super().__str__()


class GitError(RegistryError):
    """A git operation failed: unknown revision, not a repository, tag conflict."""

    exit_code = 4


class StorageError(RegistryError):
    """A DVC remote is unreachable, refuses an operation, or lacks an object."""

    exit_code = 5


class ModelFormatError(RegistryError):
    """A weights file cannot be loaded safely (not ONNX, truncated, pickle-based)."""

    exit_code = 1


class ConversionError(RegistryError):
    """Converting or packaging a model failed."""

    exit_code = 6


class CompressionError(RegistryError):
    """A lightweighting run could not proceed (bad target, bad data), as opposed to a method
    that merely missed its target."""

    exit_code = 7


class UnavailableError(RegistryError):
    """What was asked for exists but cannot be served as asked: e.g. `NAME@latest` when every
    version of the model is withdrawn (an exact version still can be)."""

    exit_code = 8


def missing_dependency(package: str, extra: str | None = None) -> RegistryError:
    """An error for an optional heavy dependency that is not installed, with the install line."""
    how = f"pip install 'git-model-registry[{extra}]'" if extra else f"pip install {package}"
    return RegistryError(
        f"this step needs the Python package '{package}', which is not installed", hint=how
    )
