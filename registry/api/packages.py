"""The API of device packages: `package` (its targets, its plan, the builds), `run`, `verify` and
`push-packages`.

Owns their requests, the choice between a published version and local files as the source of a
build, the plan narrowed to the targets asked for, writing a run's outputs, and how failed
verifications add up to one error. The work is done by `registry.packaging` (build, encryption,
index).

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.errors import ConversionError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from registry.packaging.archive import PackageResult
    from registry.packaging.index import PushReport
    from registry.packaging.plan import Plan
    from registry.packaging.verify import Verification

__all__ = [
    "PackageRequest",
    "PackageVerification",
    "PushPackagesRequest",
    "RunRequest",
    "RunResult",
    "VerifyReport",
    "VerifyRequest",
    "list_targets",
    "package",
    "plan",
    "push_packages",
    "run",
    "verify",
]

Log = Callable[[str], None]


def list_targets() -> list[dict]:
    """Every target with what it produces, needs and accepts (`registry package --list-targets`)."""
    from registry.packaging.plan import target_catalog

    return target_catalog()


# --------------------------------------------------------------------------- package


@dataclass(frozen=True, kw_only=True)
class PackageRequest:
    """What to package, for which targets, and how.

    The source is a published version (`ref`, read in the clone `root`) or local files (`model`
    with `card`, whose folder holds the card's calibration and sample files).

    Args:
        targets: targets to build (empty: every target of the card).
        out: folder the packages are written to.
        overrides: target options that win over the card's (quantize, optimize, converter…).
        key_env, key_file: encrypt with the AES-256 key in this environment variable or file.
        benchmark: time the candidates; off, the first verified one is kept.
    """

    root: Path | None = None
    ref: str | None = None
    model: Path | None = None
    card: Path | None = None
    targets: tuple[str, ...] = ()
    out: Path = Path("dist")
    overrides: dict[str, object] = field(default_factory=dict)
    key_env: str | None = None
    key_file: Path | None = None
    benchmark: bool = True


def _check_source(request: PackageRequest) -> None:
    if bool(request.model) != bool(request.card):
        raise UsageError("a local build needs both --model and --card")
    if not request.ref and not request.model:
        raise UsageError(
            "say what to package: NAME@VERSION, or --model PATH --card PATH",
            "see `registry package --help`",
        )


def plan(request: PackageRequest) -> Plan:
    """The card's targets (those of `request.targets`, when given) with the runner each needs, and
    the release workflow's matrix (`registry package --plan`); builds nothing.

    Raises:
        UsageError: no source, no such tag, an unknown target. CardError: the card is invalid.
    """
    from registry.packaging.plan import plan
    from registry.packaging.source import card_at_tag, source_from_files

    _check_source(request)
    if request.model:
        card = source_from_files(request.model, request.card).card
    else:
        card = card_at_tag(request.ref, request.root)
    result = plan(card)
    if request.targets:
        keep = set(request.targets)
        result.targets = [t for t in result.targets if t.target in keep]
        result.matrix = {"include": [i for i in result.matrix["include"] if i["target"] in keep]}
    return result


def package(
    request: PackageRequest,
    *,
    log: Log = lambda msg: None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[PackageResult]:
    """Build one verified package per target (`registry package`).

    Args:
        log: called with one line per target and per step (steps indented).
        progress: called as `progress(stage, done, total)` during the long steps.

    Raises:
        UsageError: no source, a card without targets, bad options or key arguments.
        StorageError: the version's files are not on the public remote.
        ConversionError: a conversion failed, or no candidate passed verification.
    """
    from registry.packaging import build as pkg
    from registry.packaging.encryption import load_key
    from registry.packaging.source import source_from_files, source_from_tag

    _check_source(request)
    with tempfile.TemporaryDirectory(prefix="registry-source-") as tmp:
        if request.model:
            source = source_from_files(request.model, request.card)
        else:
            source = source_from_tag(request.ref, request.root, Path(tmp))
        key = load_key(request.key_env, request.key_file)
        names = list(request.targets) or [t.name for t in source.card.targets]
        if not names:
            raise UsageError(f"the card of {source.name} lists no targets", "pass --target NAME")
        built = []
        for name in names:
            log(f"==> {source.name}@{source.version} for {name}")
            result = pkg.build_package(
                source,
                name,
                request.out,
                overrides=dict(request.overrides),
                key=key,
                benchmark=request.benchmark,
                log=lambda msg: log(f"    {msg}"),
                progress=progress,
            )
            built.append(result)
            log(f"    wrote {result.path} (sha256 {result.sha256[:16]}…)")
    return built


# --------------------------------------------------------------------------- run


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """A device package to run, on which inputs.

    Args:
        package: the package file (.tar.gz, or .tar.gz.enc with a key).
        inputs: `FILE` (.npy, the only input), `NAME=FILE`, or one .npz keyed by input name.
        key_env, key_file: decrypt with the AES-256 key in this environment variable or file.
        output: also write the outputs here: .npy (one output) or .npz (keyed by output name).
    """

    package: Path
    inputs: tuple[str, ...]
    key_env: str | None = None
    key_file: Path | None = None
    output: Path | None = None


@dataclass(frozen=True)
class RunResult:
    """The package's outputs by name, and the file they were written to (if asked)."""

    outputs: dict[str, np.ndarray]
    written: Path | None = None


def run(request: RunRequest) -> RunResult:
    """Decrypt in memory, check hashes and runtime version, run the package (`registry run`).

    Raises:
        UsageError: missing or mismatched inputs, an output file that is not .npy/.npz or a .npy
            for several outputs.
        ConversionError: a wrong key, an altered or truncated package, a runtime too old.
    """
    import numpy as np

    from registry.packaging.archive import open_package
    from registry.packaging.encryption import load_key
    from registry.packaging.run import read_inputs, run_package

    if request.output is not None and request.output.suffix.lower() not in (".npy", ".npz"):
        raise UsageError(
            f"--output {request.output}: write .npy or .npz",
            "name the file outputs.npy or outputs.npz",
        )
    opened = open_package(request.package, load_key(request.key_env, request.key_file))
    expected = [i["name"] for i in opened.manifest.inputs]
    outputs = run_package(opened, read_inputs(list(request.inputs), expected))
    outputs = {k: np.asarray(v) for k, v in outputs.items()}
    if request.output is not None:
        _save_outputs(request.output, outputs)
    return RunResult(outputs=outputs, written=request.output)


def _save_outputs(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """Write a run's outputs as .npy (one output) or .npz, whole or not at all."""
    import numpy as np

    suffix = path.suffix.lower()
    if suffix == ".npy" and len(outputs) != 1:
        raise UsageError(
            f"--output {path}: the model has {len(outputs)} outputs "
            f"({', '.join(outputs)}), and a .npy file holds one",
            f"write {path.with_suffix('.npz')} instead",
        )
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


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True, kw_only=True)
class VerifyRequest:
    """Device packages to verify on this machine, decrypted with the key of `key_env` or
    `key_file`."""

    packages: tuple[Path, ...]
    key_env: str | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class PackageVerification:
    """The verdict on one package."""

    package: Path
    verification: Verification


@dataclass(frozen=True)
class VerifyReport:
    """The verdict on every package, in the order asked."""

    results: list[PackageVerification]

    def failure(self) -> ConversionError | None:
        """The error the failed packages add up to (exit 6), or None when every package passed."""
        failed = [r.package for r in self.results if not r.verification.passed]
        if not failed:
            return None
        return ConversionError(
            f"{len(failed)} of {len(self.results)} package(s) failed "
            "verification on this machine: " + ", ".join(map(str, failed)),
            "see the numbers above; docs/packaging.md#verification",
        )


def verify(request: VerifyRequest) -> VerifyReport:
    """Run each package on the inputs it stores and compare with the source model's outputs, with
    the thresholds it was built with (`registry verify`). A package that fails is in the report
    (see `VerifyReport.failure`), not raised.

    Raises:
        UsageError: a runtime that cannot run here, no reference data, bad key arguments.
        ConversionError: a wrong key, an altered or truncated package, a runtime too old.
    """
    from registry.packaging.encryption import load_key
    from registry.packaging.run import verify_package

    key = load_key(request.key_env, request.key_file)
    return VerifyReport([PackageVerification(p, verify_package(p, key)) for p in request.packages])


# --------------------------------------------------------------------------- push-packages


@dataclass(frozen=True, kw_only=True)
class PushPackagesRequest:
    """The packages of a published version (`ref`, NAME@VERSION) built into `folder`, for the
    public remote of the clone `root`."""

    root: Path
    ref: str
    folder: Path


def push_packages(request: PushPackagesRequest, *, log: Log = lambda msg: None) -> PushReport:
    """Upload, read back and index a version's packages on the public remote
    (`registry push-packages`); `log` gets one line per package.

    Raises:
        UsageError: an unknown version, no or misnamed packages.
        PackageConflictError: a target already published with other bytes (nothing written).
        StorageError: the remote refuses or does not read back what was written.
    """
    from registry.packaging.index import push_packages as push

    return push(request.ref, request.folder, root=request.root, log=log)
