"""Device packages: convert, verify, benchmark, describe and pack a model for one target.

`build_package` is the one-step packaging of SPEC §2/§3:

1. prepare the source ONNX: merge the declared pre/post-processing (the function library), then
   optionally quantize to int8 and apply offline graph optimisation (the acceleration library);
2. convert it with each candidate converter of the target (or the one named explicitly); the
   ExecuTorch and Core ML converters start from the card's PyTorch source (`.pt2`) instead;
3. verify each candidate against the source in float32 (`registry.packaging.verify`); drop failures;
4. time the verified candidates under each engine setting and keep the fastest (`registry.packaging.benchmark`);
5. write the description block (`registry.packaging.protocol`) into the model and the manifest, and pack a
   deterministic archive with the model, `manifest.json` and a minimal loader, optionally
   encrypted (`registry.packaging.encryption`).

`run_package` opens a package (decrypting in memory), checks hashes and runtime compatibility,
and runs it. `verify_package` runs it on the verification inputs stored in the package and
compares the outputs with the source model's, on whatever machine it is called (the release
workflow runs it on each target's runner, e.g. Core ML on macOS).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import BaseModel, Field

from registry import __version__
from registry.packaging.benchmark import BenchmarkReport, Progress, choose, machine_info, shipping_setting
from registry.cards.schema import ModelCard, TargetSpec, load_card
from registry.packaging.converters import Candidate, get_converter
from registry.packaging.encryption import PackageIntegrityError, decrypt, encrypt, is_encrypted
from registry.packaging.engines import EngineSetting, get_engine
from registry.core.errors import ConversionError, UsageError
from registry.core.files import write_atomic
from registry.packaging.protocol import (
    METADATA_KEY,
    DescriptionBlock,
    Quantization,
    RuntimeTooOldError,
    check_runtime,
    parse_block,
    write_onnx_block,
)
from registry.packaging.targets import Target, TargetOptions, get_target, load_all
from registry.packaging.verify import (
    Verification,
    input_signature,
    judge,
    reference_outputs,
    sample_inputs,
    verify_candidate,
)

MANIFEST = "manifest.json"
LOADER = "loader.py"
REFERENCE = "verification/reference.npz"
PACKAGE_FORMAT = 1


class ModelSource(BaseModel):
    """The model to package: its card, its ONNX weights, and the folder that holds card files."""

    name: str
    version: str
    card: ModelCard
    weights: Path = Field(description="the source ONNX file")
    folder: Path = Field(description="folder with the card's other files (calibration, sample inputs)")
    pytorch: Path | None = Field(None, description="the card's PyTorch source (.pt2), when it has one")


class Manifest(BaseModel):
    """`manifest.json` of a package."""

    package_format: int = PACKAGE_FORMAT
    model: str = Field(description="'<name>@<version>'")
    target: str
    model_file: str = Field(description="path of the model inside the package (a folder for .mlpackage)")
    files: dict[str, str] = Field(description="SHA-256 of every file of the package but the manifest")
    description: DescriptionBlock
    engine: EngineSetting = Field(description="the engine setting chosen by the benchmark")
    inputs: list[dict] = Field(description="name, shape and dtype of each input")
    outputs: list[str] = Field(description="output names, in order")
    verified: bool = Field(description="whether the chosen model was verified numerically on the build machine "
                           "(false only for a model this machine cannot run, packaged because it was asked "
                           "for explicitly: `registry verify` on its platform checks it)")
    verified_on_device: bool = Field(description="whether that verification ran on the target's own kind of "
                                     "device and runtime (false for cross-built targets)")
    verification_note: str = Field(description="what ran the verification and what could not run here")
    verification: list[Verification]
    engine_verification: Verification = Field(description="the chosen candidate re-verified with the "
                                              "chosen engine setting")
    benchmark: BenchmarkReport
    reference: str | None = Field(None, description="npz in the package with the verification inputs "
                                  "('input/<name>') and the source model's outputs ('output/<name>'), first "
                                  "axis = sample, for `registry verify`")
    built_with: str = Field(description="registry version that built the package")


class PackageResult(BaseModel):
    """What `build_package` made."""

    path: Path
    manifest: Manifest
    sha256: str


class PlanEntry(BaseModel):
    """One target of a release plan."""

    target: str
    runner: str = Field(description="GitHub Actions runner label that builds and verifies it")
    os: str
    arch: str
    produces: str


class Plan(BaseModel):
    """The targets a version's card asks for, mapped to runners (the release workflow's matrix)."""

    name: str
    version: str
    tag: str
    targets: list[PlanEntry]
    matrix: dict = Field(description="{'include': [{'target', 'runner'}]} for a workflow matrix")


# --------------------------------------------------------------------------- sources

def source_from_tag(ref: str, repo_root: Path, workdir: Path) -> ModelSource:
    """The card at tag `<name>@v<version>` and its files: the weights, the PyTorch source and the
    targets' calibration and sample inputs (from git, or from the public remote when DVC-tracked),
    fetched by `registry.versions.resolve`.

    Raises:
        UsageError: not NAME@VERSION, or no such version. CardError: the card or the folder at the
            tag is unusable, or names a file the version does not have.
        StorageError: a DVC-tracked file is not in the public remote (or is damaged there).
    """
    from registry.core.git import clone_root
    from registry.versions.resolve import fetch_files, find_version

    root = clone_root(repo_root)
    version = find_version(root, ref, allow_latest=False)
    card = version.card
    folder = workdir / "source"
    wanted = [card.weights] + ([card.pytorch] if card.pytorch else []) + [
        p for t in card.targets for p in (t.calibration, t.inputs) if p]
    fetch_files(root, version, wanted, folder)
    return ModelSource(name=version.name, version=version.version, card=card,
                       weights=folder / card.weights, folder=folder,
                       pytorch=folder / card.pytorch if card.pytorch else None)


def card_at_tag(ref: str, repo_root: Path) -> ModelCard:
    """The card of NAME@VERSION as committed at its version tag (no weights needed).

    Raises:
        UsageError: not NAME@VERSION, or no such version.
        CardError: the card at the tag is invalid.
    """
    from registry.core.git import clone_root
    from registry.versions.resolve import find_version

    return find_version(clone_root(repo_root), ref, allow_latest=False).card


def source_from_files(model: Path, card_file: Path) -> ModelSource:
    """A local build: an ONNX file and a card file (their folder holds the card's other files).

    Raises:
        UsageError: a file is missing. CardError: the card is invalid.
    """
    for p in (model, card_file):
        if not p.is_file():
            raise UsageError(f"{p} does not exist")
    card = load_card(card_file.read_bytes(), str(card_file)).require()
    pytorch = card_file.parent / card.pytorch if card.pytorch else None
    if pytorch is not None and not pytorch.is_file():
        raise UsageError(f"{card_file} names pytorch: {card.pytorch}, which is not in {card_file.parent}",
                         f"put the .pt2 there (dvc pull {pytorch}.dvc), or drop 'pytorch:' from the card")
    return ModelSource(name=card.name, version=card.version or "0.0.0", card=card, weights=model,
                       folder=card_file.parent, pytorch=pytorch)


# --------------------------------------------------------------------------- plan

def plan(card: ModelCard) -> Plan:
    """The release plan of a card: its targets with the runner each needs.

    Raises:
        UsageError: a target name that does not exist (with the nearest one).
    """
    entries = []
    for spec in card.targets:
        t = get_target(spec.name)
        entries.append(PlanEntry(target=t.name, runner=t.runner, os=t.os, arch=t.arch, produces=t.produces))
    version = card.version or "0.0.0"
    return Plan(name=card.name, version=version, tag=f"{card.name}@v{version}", targets=entries,
                matrix={"include": [{"target": e.target, "runner": e.runner} for e in entries]})


def target_catalog() -> list[dict]:
    """Every registered target with what it produces, needs and accepts (for --list-targets)."""
    from registry.packaging.converters import load_all as load_converters

    converters = load_converters()
    out = []
    for name, cls in load_all().items():
        options = {k: f.description for k, f in cls.Options.model_fields.items()}
        out.append({"name": name, "summary": cls.summary, "produces": cls.produces,
                    "converters": {c: converters[c].summary for c in cls.converters},
                    "engines": list(cls.engines), "needs": list(cls.needs), "runner": cls.runner,
                    "options": options})
    return out


# --------------------------------------------------------------------------- build

def target_options(target: Target, spec: TargetSpec | None, overrides: dict) -> TargetOptions:
    """Merge the card's target entry and command-line overrides into the target's options.

    Raises:
        UsageError: an unknown or bad option.
    """
    data: dict = {}
    if spec is not None:
        for key in ("quantize", "converter", "calibration"):
            if getattr(spec, key) is not None:
                data[key] = getattr(spec, key)
        if spec.optimize:
            data["optimize"] = True
        data.update(spec.options)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return target.parse_options(data, f"target {target.name}")


class _Prepared(BaseModel):
    """The source ONNX after processing (the reference) and after int8/optimisation (to convert)."""

    reference: Path
    prepared: Path
    precision: str
    quantization: Quantization | None
    optimized: str | None
    steps: list[str]


def build_package(source: ModelSource, target_name: str, out_dir: Path, *,
                  overrides: dict | None = None, key: bytes | None = None,
                  benchmark: bool = True, log=lambda msg: None,
                  progress: Progress | None = None) -> PackageResult:
    """Build the package of one target.

    Args:
        source: the model (see `source_from_tag`, `source_from_files`).
        target_name: a registered target.
        out_dir: where the archive is written.
        overrides: options that win over the card's (e.g. {"quantize": "dynamic"}).
        key: 32-byte AES key to encrypt with (None: not encrypted).
        benchmark: time the candidates (native targets); off, the first verified one is kept.
        log: called with one line per step.
        progress: called as `progress(stage, done, total)` during the long steps (conversions,
            verification, timing the engines).
    Raises:
        ConversionError: a conversion failed, or no candidate passed verification (with numbers).
        UsageError: bad target name or options.
    """
    target = get_target(target_name)
    spec = next((t for t in source.card.targets if t.name == target.name), None)
    options = target_options(target, spec, overrides or {})
    ref = f"{source.name}@{source.version}"
    with tempfile.TemporaryDirectory(prefix="registry-package-") as tmp:
        work = Path(tmp)
        prep = _prepare(source, spec, target, options, work, log)
        declared = None
        if spec and spec.inputs:
            from registry.packaging.quantization import load_arrays

            names_in = [n for n, _, _ in input_signature(prep.reference)]
            declared = load_arrays(source.folder / spec.inputs, names_in)
        inputs = sample_inputs(prep.reference, samples=options.samples, seed=options.seed, declared=declared)
        names, ref_out = reference_outputs(prep.reference, inputs)
        candidates, skipped, failed = _convert(source, target, options, prep, work, log, progress)

        providers = target.verify_providers()
        verifications: list[Verification] = []
        for cand in candidates:
            if progress:
                progress(f"verifying {cand.converter}", 0, 1)
            verifications.append(verify_candidate(cand, names, ref_out, inputs,
                                                  options.limits(cand.precision), providers))
            if progress:
                progress(f"verifying {cand.converter}", 1, 1)
            log(f"verify {verifications[-1].summary()}")
        verified = [c for c, v in zip(candidates, verifications) if v.passed]
        # a model this machine cannot run is packaged (unverified) only when asked for by name
        unverifiable = [(c, v) for c, v in zip(candidates, verifications) if v.status == "not-run"]
        table = verifications + failed
        if not verified and not (options.converter and unverifiable):
            detail = "; ".join([v.summary() for v in table] + skipped) or "no candidate converter"
            raise ConversionError(f"{ref} for {target.name}: no candidate passed verification: {detail}",
                                  "see docs/packaging.md#verification: a lossy option (quantize, fp16) may "
                                  "be too coarse for this model, or thresholds too tight")

        if verified:
            native, why = target.native_here()
            report = choose(verified, inputs[0], native=native, benchmark=benchmark, why_not=why,
                            threads=options.threads, providers=target.providers(),
                            warmup=options.warmup, repeats=options.repeats, progress=progress)
            chosen, engine_check = _confirm_choice(report, verified, names, ref_out, inputs, options, providers,
                                                   log)
            log(f"chosen: {report.chosen_converter} {report.chosen_setting.label()} ({report.reason})")
            on_device, scope = target.verification_scope(providers, chosen.engine)
            where = verifications[candidates.index(chosen)].where
            note = f"{where}; {scope}"
        else:
            chosen, engine_check = unverifiable[0]
            report = BenchmarkReport(measured=False, machine=machine_info(), chosen_converter=chosen.converter,
                                     chosen_setting=shipping_setting(chosen, target.providers()),
                                     reason=f"not timed: {engine_check.message}")
            on_device = False
            note = (f"NOT VERIFIED: {engine_check.message}; built here because the packaging instruction "
                    f"names the {chosen.converter} converter")
            log(f"chosen: {chosen.converter}, not verified on this machine ({engine_check.message})")
        sig = [{"name": n, "shape": [d if isinstance(d, int) else str(d) for d in shape],
                "dtype": np.dtype(dt).name} for n, shape, dt in input_signature(prep.reference)]
        if get_converter(chosen.converter).source_format == "pt2":  # the program's own (fixed) dimensions
            sig = _pytorch_shapes(source, sig)
        files: dict[str, bytes] = {f"model/{p.relative_to(chosen.path.parent).as_posix()}": p.read_bytes()
                                   for p in chosen.files}
        files[LOADER] = (Path(__file__).resolve().parents[1] / "templates" / "package_loader.py").read_bytes()
        files[REFERENCE] = reference_npz(inputs, names, ref_out)
        manifest = Manifest(
            model=ref, target=target.name, model_file=f"model/{chosen.path.name}",
            files={k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())},
            description=chosen.block, engine=report.chosen_setting, inputs=sig, outputs=names,
            verified=bool(verified), verified_on_device=on_device,
            verification_note=note, verification=table, engine_verification=engine_check,
            benchmark=report, reference=REFERENCE, built_with=__version__)
        return _pack(f"{source.name}-{source.version}-{target.name}", files, manifest, out_dir, key)


def _confirm_choice(report: BenchmarkReport, verified: list[Candidate], names, ref_out, inputs,
                    options: TargetOptions, providers: list[str], log) -> tuple[Candidate, Verification]:
    """Re-verify the fastest setting (optimisation levels may change numerics); fall back in rank order.

    Raises:
        ConversionError: no timed setting reproduces the source's outputs.
    """
    by_name = {c.converter: c for c in verified}
    rejected: list[Verification] = []
    for converter, setting in report.ranked():
        cand = by_name[converter]
        check = verify_candidate(cand, names, ref_out, inputs, options.limits(cand.precision), providers,
                                 setting=setting)
        if check.passed:
            if rejected:
                report.chosen_converter, report.chosen_setting = converter, setting
                report.reason += ("; faster settings failed verification: "
                                  + "; ".join(f"{v.setting}: {v.summary()}" for v in rejected))
            return cand, check
        log(f"setting {setting.label()} rejected: {check.summary()}")
        rejected.append(check)
    raise ConversionError("no engine setting reproduces the source's outputs: "
                          + "; ".join(f"{v.setting}: {v.summary()}" for v in rejected),
                          "see docs/packaging.md#engine-choice")


def _prepare(source: ModelSource, spec: TargetSpec | None, target: Target, options: TargetOptions,
             work: Path, log) -> _Prepared:
    """Load and check the source, merge processing, then quantize and optimise as asked."""
    import onnx

    from registry.packaging.processing import apply_steps, parse_steps

    try:
        model = onnx.load(str(source.weights))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types for a bad file
        raise ConversionError(f"{source.weights}: not a valid ONNX model ({e})",
                              "packaging starts from the published ONNX weights") from e
    steps = apply_steps(model, parse_steps(spec.processing)) if spec and spec.processing else []
    reference = work / "reference.onnx"
    onnx.save(model, str(reference))
    _check_ops(reference, source.weights.name, target)
    prep = _Prepared(reference=reference, prepared=reference, precision="fp32", quantization=None,
                     optimized=None, steps=steps)
    if options.quantize:
        from registry.packaging.quantization import quantize

        calib = source.folder / options.calibration if options.calibration else None
        prep.prepared = work / "quantized.onnx"
        prep.quantization = quantize(reference, prep.prepared, options.quantize,
                                     per_channel=options.per_channel, calibration=calib)
        prep.precision = "int8"
        log(f"quantized to int8 ({options.quantize}, {prep.quantization.granularity})")
    if options.optimize:
        from registry.packaging.acceleration import optimize_offline

        # Fusions that need the target's own CPU only where this machine is that CPU.
        prep.optimized = "extended" if target.native_here()[0] else "basic"
        dest = work / "optimized.onnx"
        optimize_offline(prep.prepared, dest, prep.optimized)
        prep.prepared = dest
        log(f"offline graph optimisation: {prep.optimized}")
    return prep


def _convert(source: ModelSource, target: Target, options: TargetOptions, prep: _Prepared, work: Path,
             log, progress: Progress | None = None) -> tuple[list[Candidate], list[str], list[Verification]]:
    """Run each candidate converter; every candidate carries its final description block.

    Returns the candidates, the converters skipped (with why) and the `.pt2` candidates whose
    conversion failed while others remain (as 'error' verifications, for the manifest's table).
    """
    import onnx

    ref = f"{source.name}@{source.version}"
    candidates: list[Candidate] = []
    skipped: list[str] = []
    failed: list[Verification] = []
    pytorch_checked = False
    for cname in target.candidate_converters(options, pytorch=source.pytorch is not None):
        converter = get_converter(cname)
        ok, hint = converter.available()
        if not ok:
            skipped.append(f"{cname}: not installed ({hint})")
            log(f"candidate {cname}: skipped, not installed ({hint})")
            continue
        cdir = work / "candidates" / cname
        if converter.source_format == "pt2":
            why = _pytorch_not_applicable(prep)
            if why and options.converter:
                raise ConversionError(f"{ref} for {target.name}: the {cname} converter cannot build this package: "
                                      f"{why}", "drop the option, or pick a converter of the ONNX model")
            if why:
                skipped.append(f"{cname}: {why}")
                log(f"candidate {cname}: skipped, {why}")
                continue
            if not pytorch_checked:
                _check_pytorch_inputs(source, prep.reference)
                pytorch_checked = True
            block = _block(source, ref, target, cname, prep, None)
            if progress:
                progress(f"converting {cname} (from {source.pytorch.name})", 0, 1)
            try:
                cand = converter.convert(source.pytorch, _fresh(cdir), precision=prep.precision,
                                         runtime=target.runtime, options=options, block=block)
            except ConversionError as e:
                if options.converter:
                    raise
                failed.append(Verification(converter=cname, precision=prep.precision, status="error",
                                           where="conversion on the build machine",
                                           thresholds=options.limits(prep.precision), message=e.message))
                log(f"candidate {cname}: conversion failed: {e.message}")
                continue
            candidates.append(cand)
            log(f"candidate {cname}: {cand.format} {cand.precision} (from {source.pytorch.name})")
            continue
        if progress:
            progress(f"converting {cname}", 0, 1)
        staged = _fresh(cdir) / "input.onnx"
        staged_model = onnx.load(str(prep.prepared))
        block = _block(source, ref, target, cname, prep, staged_model)
        write_onnx_block(staged_model, block)
        onnx.save(staged_model, str(staged))
        cand = converter.convert(staged, _fresh(cdir / "out"), precision=prep.precision,
                                 runtime=target.runtime, options=options)
        final = _final_block(cand, block, target)
        write_onnx_block(staged_model, final)
        onnx.save(staged_model, str(staged))
        if cand.format == "onnx":
            model_out = onnx.load(str(cand.path))
            write_onnx_block(model_out, final)
            onnx.save(model_out, str(cand.path))
        else:  # files that cannot be edited after conversion are converted again with the final block
            cand = converter.convert(staged, _fresh(cdir / "final"), precision=prep.precision,
                                     runtime=target.runtime, options=options)
        candidates.append(cand.model_copy(update={"block": final}))
        log(f"candidate {cname}: {cand.format} {cand.precision}")
    return candidates, skipped, failed


def _pytorch_not_applicable(prep: _Prepared) -> str | None:
    """Why the `.pt2` cannot stand for the prepared ONNX (steps applied to the ONNX only), or None."""
    if prep.steps:
        return "processing steps are merged into the ONNX model only, not into the .pt2"
    if prep.quantization is not None:
        return "int8 quantization applies to the ONNX model only"
    return None


def _pytorch_shapes(source: ModelSource, sig: list[dict]) -> list[dict]:
    """The package's input signature with the dimensions the `.pt2` fixes (e.g. a batch of 1)."""
    from registry.formats.pt2 import input_signature as pt2_signature
    from registry.formats.pt2 import load_exported_program

    theirs = pt2_signature(load_exported_program(source.pytorch))
    return [{**entry, "shape": [t if isinstance(t, int) else o for t, o in zip(shape, entry["shape"])]}
            for entry, (_, shape, _) in zip(sig, theirs)]


def _check_pytorch_inputs(source: ModelSource, reference: Path) -> None:
    """The `.pt2` must take the ONNX model's inputs, in order (its candidates get them by position).

    Raises:
        ModelFormatError: the `.pt2` is unsafe or unreadable.
        ConversionError: a different number of inputs, a different dtype, or a different fixed dimension.
    """
    from registry.formats.pt2 import input_signature as pt2_signature
    from registry.formats.pt2 import load_exported_program

    theirs = pt2_signature(load_exported_program(source.pytorch))
    ours = input_signature(reference)
    shown = source.pytorch.name
    hint = ("export the .pt2 and the ONNX from the same module with the same inputs in the same order "
            "(docs/model-card.md#pytorch-source)")
    if len(theirs) != len(ours):
        raise ConversionError(f"{shown} takes {len(theirs)} input(s) ({', '.join(n for n, _, _ in theirs)}), "
                              f"the ONNX model {len(ours)} ({', '.join(n for n, _, _ in ours)})", hint)
    for (tname, tshape, tdtype), (oname, oshape, odtype) in zip(theirs, ours):
        fixed_differs = len(tshape) != len(oshape) or any(
            isinstance(a, int) and isinstance(b, int) and b > 0 and a != b for a, b in zip(tshape, oshape))
        if tdtype != np.dtype(odtype).name or fixed_differs:
            raise ConversionError(f"{shown}: input '{tname}' is {tdtype} {tshape}, but the ONNX model's input "
                                  f"'{oname}' is {np.dtype(odtype).name} {oshape}", hint)


def _pack(root: str, files: dict[str, bytes], manifest: Manifest, out_dir: Path,
          key: bytes | None) -> PackageResult:
    """Write the archive (encrypted when a key is given) under a temporary name, then rename it."""
    files = {**files, MANIFEST: (json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True)
                                 + "\n").encode()}
    archive = deterministic_tar(root, files)
    suffix = ".tar.gz"
    if key is not None:
        archive = encrypt(archive, key)
        suffix += ".enc"
    dest = out_dir / f"{root}{suffix}"
    write_atomic(dest, archive)
    return PackageResult(path=dest, manifest=manifest, sha256=hashlib.sha256(archive).hexdigest())


def _block(source: ModelSource, ref: str, target: Target, converter: str, prep: _Prepared,
           model) -> DescriptionBlock:
    """The block as known before conversion; the converter's facts complete it (`_final_block`).

    `model` is the staged ONNX ModelProto, or None for a converter of the `.pt2` (whose hash is
    then the block's source hash: the file the conversion started from).
    """
    import onnx

    onnx_model = model is not None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None) if onnx_model else None
    started_from = source.weights if onnx_model else source.pytorch
    return DescriptionBlock(
        runtime=target.runtime, min_runtime_version="0", execution_providers=target.providers(),
        format="onnx", opset=opset, ir_version=model.ir_version if onnx_model else None,
        weight_dtype="int8" if prep.precision == "int8" else "float32",
        quantized=prep.quantization is not None, quantization=prep.quantization,
        optimized=prep.optimized if onnx_model else None,  # ONNX Runtime's optimiser never saw a .pt2
        processing=prep.steps, source_model=ref,
        source_sha256=hashlib.sha256(started_from.read_bytes()).hexdigest(), target=target.name,
        converter=converter,
        tools={"registry": __version__, **({"onnx": onnx.__version__} if onnx_model else {})})


def _final_block(cand: Candidate, block: DescriptionBlock, target: Target) -> DescriptionBlock:
    """Complete the block with the converter's facts (runtime, format, minimum version, tools)."""
    return block.model_copy(update={
        "runtime": cand.runtime, "min_runtime_version": cand.min_runtime_version, "format": cand.format,
        "weight_dtype": cand.weight_dtype, "tools": {**block.tools, **cand.tools},
        "execution_providers": target.providers() if cand.engine == "onnxruntime" else []})


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def _check_ops(path: Path, shown: str, target: Target) -> None:
    """Fail early, naming the op, node and target, when the target's runtime cannot run a node."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    known = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
    versions = {o.domain: o.version for o in model.opset_import}
    for i, node in enumerate(model.graph.node):
        domain = node.domain or ""
        if domain not in known or not onnx.defs.has(node.op_type, versions.get(domain, 1), domain) and (
                domain != "com.microsoft"):
            op = f"{domain}:{node.op_type}" if domain else node.op_type
            raise ConversionError(f"{shown}: target {target.name} cannot convert op {op} "
                                  f"(node '{node.name or f'#{i}'}'): {target.runtime} has no kernel for it",
                                  f"replace {op} in the model, or drop {target.name} from the card's targets")
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:
        text = str(e).replace(str(path), shown)
        m = re.search(r"[Nn]ode[^']*'([^']*)'.*?(?:op(?:_type)?|type)[^\w]*(\w+)", text)
        node_op = f"op {m.group(2)} (node '{m.group(1)}')" if m else "a node"
        raise ConversionError(f"{shown}: target {target.name} cannot convert {node_op}: "
                              f"{text.splitlines()[0][:300]}",
                              f"replace the op in the model, or drop {target.name} from the card's targets") from e


# --------------------------------------------------------------------------- archive

def deterministic_tar(root: str, files: dict[str, bytes]) -> bytes:
    """A gzip'd tar of `files` under `root/`: sorted names, fixed times, owners and modes, gzip mtime 0."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(PurePosixPath(root, n).parent) for n in files} | {root})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            _fix(info)
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mode = len(files[name]), 0o644
            _fix(info)
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _fix(info: tarfile.TarInfo) -> None:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def reference_npz(inputs: list[dict[str, np.ndarray]], names: list[str],
                  outputs: list[list[np.ndarray]]) -> bytes:
    """The verification inputs and the source's outputs as one deterministic .npz: arrays
    'input/<name>' and 'output/<name>', first axis = sample (fixed zip times, stored, sorted)."""
    arrays = {f"input/{k}": np.stack([feed[k] for feed in inputs]) for k in inputs[0]}
    arrays.update({f"output/{n}": np.stack([np.asarray(o[i]) for o in outputs]) for i, n in enumerate(names)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for key in sorted(arrays):
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data.getvalue())
    return buf.getvalue()


def read_reference(data: bytes, inputs: list[str], outputs: list[str],
                   where: str) -> tuple[list[dict[str, np.ndarray]], list[list[np.ndarray]]]:
    """The samples of a package's reference file: inputs per sample, the source's outputs per sample.

    Raises:
        PackageIntegrityError: the file lacks an input or output of the manifest.
    """
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    missing = [f"input/{n}" for n in inputs if f"input/{n}" not in arrays] + [
        f"output/{n}" for n in outputs if f"output/{n}" not in arrays]
    if missing:
        raise PackageIntegrityError(f"{where}: the reference data lacks {', '.join(missing)}")
    count = len(arrays[f"input/{inputs[0]}"]) if inputs else 0
    feeds = [{n: arrays[f"input/{n}"][i] for n in inputs} for i in range(count)]
    expected = [[arrays[f"output/{n}"][i] for n in outputs] for i in range(count)]
    return feeds, expected


# --------------------------------------------------------------------------- open and run

class OpenedPackage(BaseModel):
    """A package read into memory and checked."""

    manifest: Manifest
    model_bytes: bytes = Field(description="the model file (empty for a folder format such as .mlpackage)")
    files: dict[str, bytes]


def open_package(path: Path, key: bytes | None = None) -> OpenedPackage:
    """Read a package (decrypting in memory), check every file against the manifest's hashes.

    Raises:
        PackageKeyError / PackageIntegrityError: wrong key, altered or truncated file.
        ConversionError: not a package, or a file whose hash does not match the manifest.
    """
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    data = path.read_bytes()
    if is_encrypted(data):
        data = decrypt(data, key, str(path))
    members = _read_members(data, path)
    manifest_bytes = members.pop(MANIFEST)
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except Exception as e:
        raise PackageIntegrityError(f"{path}: {MANIFEST} is not valid ({str(e).splitlines()[0]})") from e
    for name, digest in manifest.files.items():
        got = members.get(name)
        if got is None:
            raise PackageIntegrityError(f"{path}: {name} is listed in the manifest but missing")
        if hashlib.sha256(got).hexdigest() != digest:
            raise PackageIntegrityError(f"{path}: {name} does not match the manifest's hash "
                                        f"(sha256 {hashlib.sha256(got).hexdigest()[:16]}…, manifest "
                                        f"{digest[:16]}…)", "the package was altered; rebuild or download it again")
    members = {n: b for n, b in members.items() if n in manifest.files}  # nothing unlisted is ever used
    members[MANIFEST] = manifest_bytes
    if manifest.model_file in members and manifest.model_file.endswith(".onnx"):
        members[manifest.model_file] = confine_onnx(members[manifest.model_file], manifest.model_file,
                                                    members, path)
    # a folder format (.mlpackage) has no single model file
    return OpenedPackage(manifest=manifest, model_bytes=members.get(manifest.model_file, b""), files=members)


MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 4 * 1024 ** 3
MAX_PACKAGE_BYTES = 8 * 1024 ** 3
MAX_MANIFEST_BYTES = 4 * 1024 ** 2


def _members(data: bytes, path: Path):
    """The regular-file members of a package archive as (name inside the package, TarInfo, tar),
    within `MAX_MEMBERS`, with safe names only.

    Raises:
        PackageIntegrityError: not a gzip'd tar, too many members, an unsafe name.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            count = 0
            while (m := tar.next()) is not None:
                count += 1
                if count > MAX_MEMBERS:
                    raise PackageIntegrityError(f"{path}: more than {MAX_MEMBERS:,} members in the archive",
                                                "a package holds a model and a few files; rebuild it")
                if not m.isfile():
                    continue
                parts = PurePosixPath(m.name).parts
                if ".." in parts or m.name.startswith("/"):
                    raise PackageIntegrityError(f"{path}: unsafe path {m.name} in the archive")
                yield "/".join(parts[1:]), m, tar
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise PackageIntegrityError(f"{path}: not a readable package archive ({e})",
                                    "download the package again") from e


def _manifest_bytes(data: bytes, path: Path) -> bytes:
    for name, m, tar in _members(data, path):
        if name == MANIFEST:
            if m.size > MAX_MANIFEST_BYTES:
                raise PackageIntegrityError(f"{path}: {MANIFEST} is {m.size:,} bytes, over "
                                            f"{MAX_MANIFEST_BYTES:,}", "rebuild the package")
            return tar.extractfile(m).read(MAX_MANIFEST_BYTES + 1)
    raise PackageIntegrityError(f"{path}: no {MANIFEST} in the archive")


def _read_members(data: bytes, path: Path) -> dict[str, bytes]:
    """The manifest and the members it lists, each read only when listed and within its size cap
    (`MAX_MEMBER_BYTES`, `MAX_PACKAGE_BYTES` in all): a member the manifest does not list is never
    decompressed into memory.

    Raises:
        PackageIntegrityError: as `_members`, or a member over its cap.
    """
    manifest = _manifest_bytes(data, path)
    try:
        listed = set(json.loads(manifest).get("files", {}))
    except (ValueError, AttributeError) as e:
        raise PackageIntegrityError(f"{path}: {MANIFEST} is not valid ({e})") from e
    members, total = {MANIFEST: manifest}, 0
    for name, m, tar in _members(data, path):
        if name not in listed:
            continue
        total += m.size
        if m.size > MAX_MEMBER_BYTES or total > MAX_PACKAGE_BYTES:
            raise PackageIntegrityError(f"{path}: {name} makes the package bigger than this registry reads "
                                        f"({m.size:,} bytes; caps {MAX_MEMBER_BYTES:,} per file, "
                                        f"{MAX_PACKAGE_BYTES:,} in all)", "rebuild the package")
        members[name] = tar.extractfile(m).read(m.size)
    return members


def confine_onnx(model: bytes, model_file: str, members: dict[str, bytes], path: Path | str) -> bytes:
    """An ONNX model whose external data comes only from the package: every tensor stored outside the
    model must name a listed (hashed) member of the package, relative to the model file; its bytes
    are then put inside the model, so the runtime never opens a file of its own accord (from a
    bytes model it would read `location` relative to the current directory: a user's clone and its
    credentials).

    Raises:
        PackageIntegrityError: external data that is not a listed member, or out of its bounds.
    """
    import onnx
    from onnx import TensorProto

    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(model)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise PackageIntegrityError(f"{path}: {model_file} is not an ONNX model ({e})") from e
    folder = PurePosixPath(model_file).parent
    changed = False
    for tensor in _all_tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        rel = PurePosixPath(location)
        member = (folder / rel).as_posix() if str(folder) != "." else rel.as_posix()
        if not location or rel.is_absolute() or ".." in rel.parts or "\\" in location or member not in members:
            raise PackageIntegrityError(
                f"{path}: {model_file} reads tensor '{tensor.name}' from '{location}', which is not a listed "
                "member of the package; a package's model reads nothing outside it",
                "rebuild the package with `registry package` (external data is packed and hashed)")
        data = members[member]
        offset, length = int(info.get("offset", 0) or 0), info.get("length")
        end = len(data) if length in (None, "") else offset + int(length)
        if offset < 0 or end > len(data):
            raise PackageIntegrityError(f"{path}: tensor '{tensor.name}' reads past the end of {member}")
        tensor.raw_data = data[offset:end]
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
        changed = True
    return proto.SerializeToString() if changed else model


def _all_tensors(proto):
    """Every tensor of a model: initializers, constants and attributes, subgraphs included."""
    graphs = [proto.graph]
    while graphs:
        g = graphs.pop()
        yield from g.initializer
        yield from (s.values for s in g.sparse_initializer)
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("g"):
                    graphs.append(a.g)
                graphs.extend(a.graphs)


def check_compatibility(manifest: Manifest, model_bytes: bytes | None = None,
                        files: dict[str, bytes] | None = None) -> None:
    """Refuse a runtime that is missing, cannot run here, or is older than the block's minimum, and a
    model whose embedded description block differs from the manifest's.

    Args:
        model_bytes: the model file, to compare its embedded block (ONNX, ExecuTorch).
        files: the package's files, for folder formats (Core ML).
    Raises:
        RuntimeTooOldError: the installed runtime is older, of the wrong kind, or unavailable here.
        PackageIntegrityError: the embedded block differs from the manifest's.
    """
    block = manifest.description
    engine = get_engine(manifest.engine.engine)
    installed = engine.version()
    if installed is None:
        _, why = engine.runs_here()
        hint = ("run it on a Mac or an iOS device" if engine.name == "coreml"
                else f"pip install '{engine.name}>={block.min_runtime_version}'")
        raise RuntimeTooOldError(f"{manifest.model} ({manifest.target}) needs {block.runtime} "
                                 f">= {block.min_runtime_version}, which is not available here: {why}", hint)
    check_runtime(block, engine.name, installed)
    inner = _embedded_block(manifest, model_bytes, files or {})
    if inner is not None and parse_block(inner, manifest.model_file) != block:
        raise PackageIntegrityError(f"{manifest.model_file}: its description block differs from the manifest's",
                                    "the package was altered; rebuild it")


def _embedded_block(manifest: Manifest, model_bytes: bytes | None, files: dict[str, bytes]) -> str | None:
    """The JSON text of the block stored inside the model (None where there is none to read)."""
    fmt = manifest.description.format
    if fmt == "onnx" and model_bytes:
        import onnx

        model = onnx.load_from_string(model_bytes)
        return next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    if fmt == "pte" and model_bytes:
        from executorch.runtime import Runtime

        from registry.packaging.converters.executorch_pte import BLOCK_METHOD

        program = Runtime.get().load_program(model_bytes)
        if BLOCK_METHOD not in program.method_names:
            return None
        return str(program.load_method(BLOCK_METHOD).execute([])[0])
    if fmt == "mlpackage":
        from registry.packaging.converters.coreml_package import SPEC_FILE

        spec_bytes = files.get(f"{manifest.model_file}/{SPEC_FILE}")
        if spec_bytes is None:
            return None
        try:
            from coremltools.proto import Model_pb2
        except ImportError:
            return None
        spec = Model_pb2.Model()
        spec.ParseFromString(spec_bytes)
        return spec.description.metadata.userDefined.get(METADATA_KEY)
    return None


def run_package(package: Path | OpenedPackage, feeds: dict[str, np.ndarray],
                key: bytes | None = None) -> dict[str, np.ndarray]:
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
        raise UsageError(f"the package needs input(s) {', '.join(missing)}",
                         "pass --input NAME=file.npy for each (or one file for a one-input model)")
    feeds = {n: np.asarray(feeds[n]).astype(next(i["dtype"] for i in m.inputs if i["name"] == n))
             for n in expected}
    run = get_engine(m.engine.engine).open_bytes(pkg.files, m.model_file, m.engine)
    try:
        values = run(feeds)
    except Exception as e:  # the runtime's own complaint about shapes or types
        raise UsageError(f"the model refused the inputs: {str(e).splitlines()[0][:300]}",
                         f"inputs: {json.dumps(m.inputs)}") from e
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
        raise UsageError(f"{m.model} ({m.target}) cannot be verified on this machine: {why}",
                         "run `registry verify` where its runtime runs")
    if not m.reference or m.reference not in pkg.files:
        raise UsageError(f"{m.model} ({m.target}) holds no reference data to verify against",
                         "rebuild the package with this registry version")
    check_compatibility(m, pkg.model_bytes, pkg.files)
    feeds, expected = read_reference(pkg.files[m.reference], [i["name"] for i in m.inputs], m.outputs,
                                     f"{m.model} ({m.target})")
    check = m.engine_verification
    result = Verification(converter=m.description.converter, precision=check.precision, status="passed",
                          where=(f"{engine.name} {engine.version()} on {platform.system()} "
                                 f"{platform.machine()} (registry verify)"),
                          setting=m.engine.label(), thresholds=check.thresholds)
    run = engine.open_bytes(pkg.files, m.model_file, m.engine)
    try:
        outputs = [run({i["name"]: np.asarray(feed[i["name"]]).astype(i["dtype"]) for i in m.inputs})
                   for feed in feeds]
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
            raise UsageError(f"the model has {len(expected)} inputs ({', '.join(expected)})",
                             "pass --input NAME=file.npy for each")
        feeds[expected[0]] = feeds.pop("__only__")
    return feeds
