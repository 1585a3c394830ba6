"""What to install when an optional package is missing: the extra of this distribution that has it.

The registry's base installs only what `registry check` and the read commands need; packaging,
mobile runtimes, lightweighting and training each come as an extra (pyproject.toml). A command of
a capability whose extra is not installed fails on an import deep inside it; `missing_module`
turns that `ModuleNotFoundError` into a `RegistryError` that names the package and the install
line, read from this distribution's own metadata so that it stays what pyproject.toml says.
"""

from __future__ import annotations

import re
from importlib import metadata

from registry.core.errors import RegistryError

DISTRIBUTION = "git-model-registry"
# Import names that differ from the name of the distribution that provides them.
PROVIDED_BY = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "ruamel": "ruamel.yaml",
    "git": "gitpython",
    "dvc_s3": "dvc-s3",
    "playwright": "playwright",
}
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def normal(name: str) -> str:
    """A distribution's name as package indexes compare names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extras_providing(distribution: str, requirements: list[str] | None = None) -> list[str]:
    """The extras of this distribution that install `distribution` directly, in the order
    pyproject.toml lists them; [] when none does or the metadata cannot be read (a source tree
    run without installing it)."""
    if requirements is None:
        try:
            requirements = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError:
            return []
    wanted, found = normal(distribution), []
    for line in requirements:
        name, extra = _NAME.match(line), _EXTRA.search(line)
        if name and extra and normal(name.group(1)) == wanted and extra.group(1) not in found:
            found.append(extra.group(1))
    return found


def missing_module(
    error: ModuleNotFoundError, command: str | None = None, requirements: list[str] | None = None
) -> RegistryError | None:
    """The error to show for a third-party module that is not installed, or None when the missing
    module is part of the registry itself (a broken install: the caller reports it as unexpected).

    Args:
        error: the import's error; its `name` is the module that was not found.
        command: the command that was run, preferred among the extras that provide the package
            (`registry train` suggests `[train]` for torch, `registry compress` `[compress]`).
        requirements: this distribution's requirement lines (default: its installed metadata).
    """
    module = (error.name or "").split(".")[0]
    if not module or module == "registry":
        return None
    package = PROVIDED_BY.get(module, module.replace("_", "-"))
    extras = [e for e in extras_providing(package, requirements) if e != "dev"] or (
        extras_providing(package, requirements)
    )
    if command in extras:
        extras.remove(command)
        extras.insert(0, command)
    if extras:
        also = ", ".join(f"[{e}]" for e in extras[1:])
        extra = extras[0]
        hint = f"pip install '{DISTRIBUTION}[{extra}]' (in a clone: scripts/bootstrap {extra})"
        hint += f"; the extras {also} have it too" if also else ""
        need = f"the '{extras[0]}' extra's Python package '{package}'"
    else:
        hint = f"pip install {package}, or reinstall the registry: scripts/bootstrap"
        need = f"the Python package '{package}'"
    what = f"`registry {command}`" if command else "this command"
    return RegistryError(f"{what} needs {need} (module '{module}'), which is not installed", hint)


def require(modules: tuple[str, ...], command: str) -> None:
    """Stop before a command starts when a module its extra installs cannot be imported.

    Raises:
        RegistryError: naming the first missing module's package and the install line.
    """
    from importlib.util import find_spec

    for module in modules:
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise missing_module(ModuleNotFoundError(name=module), command)
