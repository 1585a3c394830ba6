"""Running a package on this machine: the runtime check, a run on given inputs, and verification.

`run_package` opens a package (decrypting in memory), checks hashes and runtime compatibility,
and runs it. `verify_package` runs it on the verification inputs stored in the package and
compares the outputs with the source model's, on whatever machine it is called (the release
workflow runs it on each target's runner, e.g. Core ML on macOS). `check_compatibility` refuses
a missing or older runtime, a model whose embedded description block (read by the converter
that wrote it) differs from the manifest's, and a block the model itself contradicts (int8 claimed
on float weights with no quantized operator, quantized operators in a model said to be float, or
another weight type; `registry.packaging.protocol.ModelFacts`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from registry.core.errors import UsageError
from registry.packaging.archive import Manifest, OpenedPackage, open_package, read_reference
from registry.packaging.converters import load_all as load_converters
from registry.packaging.encryption import PackageIntegrityError
from registry.packaging.engines import get_engine
from registry.packaging.protocol import RuntimeTooOldError, check_runtime, parse_block
from registry.packaging.verify import Verification, judge


def check_compatibility(
    manifest: Manifest, model_bytes: bytes | None = None, files: dict[str, bytes] | None = None
) -> None:
    """Refuse a runtime that is missing, cannot run here, or is older than the block's minimum, and
    a
    model whose embedded description block differs from the manifest's.

    Args:
        model_bytes: the model file, to compare its embedded block (ONNX, ExecuTorch).
        files: the package's files, for folder formats (Core ML).
    Raises:
        RuntimeTooOldError: the installed runtime is older, of the wrong kind, or unavailable here.
        PackageIntegrityError: the embedded block is missing or differs from the manifest's.
    """
    block = manifest.description
    engine = get_engine(manifest.engine.engine)
    installed = engine.version()
    if installed is None:
        _, why = engine.runs_here()
        hint = (
            "run it on a Mac or an iOS device"
            if engine.name == "coreml"
            else f"pip install '{engine.name}>={block.min_runtime_version}'"
        )
        raise RuntimeTooOldError(
            f"{manifest.model} ({manifest.target}) needs {block.runtime} "
            f">= {block.min_runtime_version}, which is not available here: {why}",
            hint,
        )
    check_runtime(block, engine.name, installed)
    inner = _embedded_block(manifest, model_bytes, files or {})
    if inner == "":
        raise PackageIntegrityError(
            f"{manifest.model_file}: its description block is missing (the manifest says "
            f"{block.converter} stores one in the model)",
            "the package was altered; rebuild it",
        )
    if inner is not None and parse_block(inner, manifest.model_file) != block:
        raise PackageIntegrityError(
            f"{manifest.model_file}: its description block differs from the manifest's",
            "the package was altered; rebuild it",
        )
    converter = load_converters().get(block.converter)
    facts = (
        converter().model_facts(
            model_bytes or b"", files or {}, manifest.model_file, inner or block.model_dump_json()
        )
        if converter is not None
        else None
    )
    wrong = facts.contradicts(block) if facts is not None else None
    if wrong:
        raise PackageIntegrityError(
            f"{manifest.model_file}: {wrong}",
            "the block does not describe this model: the package was altered or mislabelled; "
            "rebuild it with `registry package`",
        )


def _embedded_block(
    manifest: Manifest, model_bytes: bytes | None, files: dict[str, bytes]
) -> str | None:
    """The JSON text of the block stored inside the model, read by the converter that made it (None
    where there is none to read, or the converter is not one this registry knows)."""
    converter = load_converters().get(manifest.description.converter)
    if converter is None:
        return None
    return converter().embedded_block(model_bytes or b"", files, manifest.model_file)


def run_package(
    package: Path | OpenedPackage, feeds: dict[str, np.ndarray], key: bytes | None = None
) -> dict[str, np.ndarray]:
    """Open (or take an opened package), check and run it on named inputs; return outputs by name.

    Raises:
        UsageError: inputs that do not match the package's.
        and what `open_package` and `check_compatibility` raise.
    """
    pkg = package if isinstance(package, OpenedPackage) else open_package(package, key)
    m = pkg.manifest
    check_compatibility(m, pkg.model_bytes, pkg.files)
    expected = [i["name"] for i in m.inputs]
    missing = [n for n in expected if n not in feeds]
    if missing:
        raise UsageError(
            f"the package needs input(s) {', '.join(missing)}",
            "pass --input NAME=file.npy for each (or one file for a one-input model)",
        )
    feeds = {
        n: np.asarray(feeds[n]).astype(next(i["dtype"] for i in m.inputs if i["name"] == n))
        for n in expected
    }
    run = get_engine(m.engine.engine).open_bytes(pkg.files, m.model_file, m.engine)
    try:
        values = run(feeds)
    except Exception as e:  # the runtime's own complaint about shapes or types
        raise UsageError(
            f"the model refused the inputs: {str(e).splitlines()[0][:300]}",
            f"inputs: {json.dumps(m.inputs)}",
        ) from e
    return dict(zip(m.outputs, values))


def verify_package(package: Path | OpenedPackage, key: bytes | None = None) -> Verification:
    """Run a package on this machine over the verification inputs it stores and compare its outputs
    with the source model's, with the thresholds it was built with.

    This is how a model built where it cannot run (Core ML off macOS) is verified on its platform,
    and how any package is checked where it will run.

    Raises:
        UsageError: the package holds no reference data (built before it did), or its engine
            cannot run here (e.g. Core ML off macOS).
        and what `open_package` and `check_compatibility` raise.
    """
    import platform

    pkg = package if isinstance(package, OpenedPackage) else open_package(package, key)
    m = pkg.manifest
    engine = get_engine(m.engine.engine)
    runs, why = engine.runs_here()
    if not runs:
        raise UsageError(
            f"{m.model} ({m.target}) cannot be verified on this machine: {why}",
            "run `registry verify` where its runtime runs",
        )
    if not m.reference or m.reference not in pkg.files:
        raise UsageError(
            f"{m.model} ({m.target}) holds no reference data to verify against",
            "rebuild the package with this registry version",
        )
    check_compatibility(m, pkg.model_bytes, pkg.files)
    feeds, expected = read_reference(
        pkg.files[m.reference], [i["name"] for i in m.inputs], m.outputs, f"{m.model} ({m.target})"
    )
    check = m.engine_verification
    result = Verification(
        converter=m.description.converter,
        precision=check.precision,
        status="passed",
        where=(
            f"{engine.name} {engine.version()} on {platform.system()} "
            f"{platform.machine()} (registry verify)"
        ),
        setting=m.engine.label(),
        thresholds=check.thresholds,
    )
    run = engine.open_bytes(pkg.files, m.model_file, m.engine)
    try:
        outputs = [
            run({i["name"]: np.asarray(feed[i["name"]]).astype(i["dtype"]) for i in m.inputs})
            for feed in feeds
        ]
    except Exception as e:  # the runtime's own error: report it as the verdict
        result.status, result.message = "error", f"{type(e).__name__}: {e}".splitlines()[0][:400]
        return result
    return judge(result, m.outputs, expected, outputs)


def read_inputs(specs: list[str], expected: list[str] | None = None) -> dict[str, np.ndarray]:
    """Inputs from `--input` values: 'file.npy' (the only input), 'NAME=file.npy', or one .npz.

    Raises:
        UsageError: a missing or unreadable file.
    """
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        name, _, file = spec.rpartition("=") if "=" in spec else ("", "", spec)
        p = Path(file)
        if not p.is_file():
            raise UsageError(f"input file {p} does not exist")
        try:
            data = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise UsageError(f"{p} is not a .npy/.npz file ({e})", "save it with numpy.save") from e
        if isinstance(data, np.ndarray):
            feeds[name or "__only__"] = data
        else:
            with data:
                feeds.update({k: data[k] for k in data.files})
    if "__only__" in feeds and expected:
        if len(expected) != 1:
            raise UsageError(
                f"the model has {len(expected)} inputs ({', '.join(expected)})",
                "pass --input NAME=file.npy for each",
            )
        feeds[expected[0]] = feeds.pop("__only__")
    return feeds
