"""Device packages: convert, verify, benchmark, describe and pack a model for one target.

`build_package` is the one-step packaging of SPEC §2/§3:

1. prepare the source ONNX: merge the declared pre/post-processing (the function library), then
   optionally quantize to int8 and apply offline graph optimisation (the acceleration library);
2. convert it with each candidate converter of the target (or the one named explicitly);
3. verify each candidate against the source in float32 (`registry.verify`); drop failures;
4. time the verified candidates under each engine setting and keep the fastest (`registry.benchmark`);
5. write the description block (`registry.protocol`) into the model and the manifest, and pack a
   deterministic archive with the model, `manifest.json` and a minimal loader, optionally
   encrypted (`registry.encryption`).

`run_package` opens a package (decrypting in memory), checks hashes and runtime compatibility,
and runs it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import BaseModel, Field

from registry import __version__
from registry.benchmark import BenchmarkReport, choose
from registry.card import ModelCard, TargetSpec, card_path, load_card
from registry.converters import Candidate, get_converter
from registry.encryption import PackageIntegrityError, decrypt, encrypt, is_encrypted
from registry.engines import EngineSetting, get_engine
from registry.errors import ConversionError, StorageError, UsageError
from registry.protocol import (
    DescriptionBlock,
    Quantization,
    RuntimeTooOldError,
    check_runtime,
    parse_block,
    write_onnx_block,
)
from registry.targets import Target, TargetOptions, get_target, load_all
from registry.verify import (
    Verification,
    input_signature,
    reference_outputs,
    sample_inputs,
    verify_candidate,
)

MANIFEST = "manifest.json"
LOADER = "loader.py"
PACKAGE_FORMAT = 1
_REF_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*[a-z0-9])@v?(?P<version>\d+\.\d+\.\d+\S*)$")


class ModelSource(BaseModel):
    """The model to package: its card, its ONNX weights, and the folder that holds card files."""

    name: str
    version: str
    card: ModelCard
    weights: Path = Field(description="the source ONNX file")
    folder: Path = Field(description="folder with the card's other files (calibration, sample inputs)")


class Manifest(BaseModel):
    """`manifest.json` of a package."""

    package_format: int = PACKAGE_FORMAT
    model: str = Field(description="'<name>@<version>'")
    target: str
    model_file: str = Field(description="path of the model inside the package")
    files: dict[str, str] = Field(description="SHA-256 of every file of the package but the manifest")
    description: DescriptionBlock
    engine: EngineSetting = Field(description="the engine setting chosen by the benchmark")
    inputs: list[dict] = Field(description="name, shape and dtype of each input")
    outputs: list[str] = Field(description="output names, in order")
    verified: bool = Field(description="whether the chosen model was verified numerically on the build machine")
    verified_on_device: bool = Field(description="whether that verification ran on the target's own kind of "
                                     "device and runtime (false for cross-built targets)")
    verification_note: str = Field(description="what ran the verification and what could not run here")
    verification: list[Verification]
    engine_verification: Verification = Field(description="the chosen candidate re-verified with the "
                                              "chosen engine setting")
    benchmark: BenchmarkReport
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

def parse_ref(ref: str) -> tuple[str, str]:
    """'digits-cnn@1.2.0' (or '@v1.2.0') → ('digits-cnn', '1.2.0').

    Raises:
        UsageError: not NAME@VERSION.
    """
    m = _REF_RE.match(ref.strip())
    if not m:
        raise UsageError(f"'{ref}' is not NAME@VERSION", "e.g. registry package digits-cnn@1.2.0")
    return m["name"], m["version"]


def source_from_tag(ref: str, repo_root: Path, workdir: Path) -> ModelSource:
    """The card at tag `<name>@v<version>` and its weights from the public remote.

    Raises:
        UsageError: no such tag. CardError: the card at the tag is invalid.
        StorageError: the weights are not in the public remote.
    """
    from registry.repo import RegistryRepo
    from registry.storage import PointerError, Storage, parse_pointer

    card = card_at_tag(ref, repo_root)
    name, version = parse_ref(ref)
    repo = RegistryRepo(repo_root)
    tag = f"{name}@v{version}"
    snap = repo.snapshot(tag)
    folder = workdir / "source"
    folder.mkdir(parents=True, exist_ok=True)
    public = Storage(repo.root).remote("public")
    wanted = [card.weights] + [p for t in card.targets for p in (t.calibration, t.inputs) if p]
    for rel in dict.fromkeys(wanted):
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = snap.read(f"models/{name}/{rel}")
        if data is not None:
            dest.write_bytes(data)
            continue
        pointer = snap.read(f"models/{name}/{rel}.dvc")
        if pointer is None:
            raise StorageError(f"models/{name}/{rel} is neither in git nor DVC-tracked at {tag}",
                               "the card names a file the version does not have")
        try:
            md5 = parse_pointer(pointer).md5
        except PointerError as e:
            raise StorageError(f"models/{name}/{rel}.dvc at {tag}: {e}") from e
        public.download(md5, dest)
    return ModelSource(name=name, version=version, card=card, weights=folder / card.weights, folder=folder)


def card_at_tag(ref: str, repo_root: Path) -> ModelCard:
    """The card of NAME@VERSION as committed at its version tag (no weights needed).

    Raises:
        UsageError: no such tag. CardError: the card at the tag is invalid.
    """
    from registry.repo import RegistryRepo

    name, version = parse_ref(ref)
    repo = RegistryRepo(repo_root)
    tag = f"{name}@v{version}"
    if version not in repo.version_tags.get(name, {}):
        known = ", ".join(sorted(repo.version_tags.get(name, {}))) or "none"
        raise UsageError(f"no version tag {tag} in {repo.root}", f"published versions of {name}: {known}")
    path = card_path(name)
    return load_card(repo.snapshot(tag).read(path) or b"", path).require(f"{tag}: ")


def source_from_files(model: Path, card_file: Path) -> ModelSource:
    """A local build: an ONNX file and a card file (their folder holds the card's other files).

    Raises:
        UsageError: a file is missing. CardError: the card is invalid.
    """
    for p in (model, card_file):
        if not p.is_file():
            raise UsageError(f"{p} does not exist")
    card = load_card(card_file.read_bytes(), str(card_file)).require()
    return ModelSource(name=card.name, version=card.version or "0.0.0", card=card, weights=model,
                       folder=card_file.parent)


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
    from registry.converters import load_all as load_converters

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
                  benchmark: bool = True, log=lambda msg: None) -> PackageResult:
    """Build the package of one target.

    Args:
        source: the model (see `source_from_tag`, `source_from_files`).
        target_name: a registered target.
        out_dir: where the archive is written.
        overrides: options that win over the card's (e.g. {"quantize": "dynamic"}).
        key: 32-byte AES key to encrypt with (None: not encrypted).
        benchmark: time the candidates (native targets); off, the first verified one is kept.
        log: called with one line per step.
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
            from registry.quantization import load_arrays

            names_in = [n for n, _, _ in input_signature(prep.reference)]
            declared = load_arrays(source.folder / spec.inputs, names_in)
        inputs = sample_inputs(prep.reference, samples=options.samples, seed=options.seed, declared=declared)
        names, ref_out = reference_outputs(prep.reference, inputs)
        candidates, skipped = _convert(source, target, options, prep, work, log)

        providers = target.verify_providers()
        verifications: list[Verification] = []
        for cand in candidates:
            verifications.append(verify_candidate(cand, names, ref_out, inputs,
                                                  options.limits(cand.precision), providers))
            log(f"verify {verifications[-1].summary()}")
        verified = [c for c, v in zip(candidates, verifications) if v.passed]
        if not verified:
            detail = "; ".join([v.summary() for v in verifications] + skipped) or "no candidate converter"
            raise ConversionError(f"{ref} for {target.name}: no candidate passed verification: {detail}",
                                  "see docs/packaging.md#verification: a lossy option (quantize, fp16) may "
                                  "be too coarse for this model, or thresholds too tight")

        native, why = target.native_here()
        report = choose(verified, inputs[0], native=native and benchmark,
                        why_not=why if not native else "benchmark turned off",
                        threads=options.threads, providers=target.providers(),
                        warmup=options.warmup, repeats=options.repeats)
        chosen, engine_check = _confirm_choice(report, verified, names, ref_out, inputs, options, providers, log)
        log(f"chosen: {report.chosen_converter} {report.chosen_setting.label()} ({report.reason})")
        on_device, scope = target.verification_scope(providers)
        sig = [{"name": n, "shape": [d if isinstance(d, int) else str(d) for d in shape],
                "dtype": np.dtype(dt).name} for n, shape, dt in input_signature(prep.reference)]
        files: dict[str, bytes] = {f"model/{p.name}": p.read_bytes() for p in chosen.files}
        files[LOADER] = (Path(__file__).parent / "templates" / "package_loader.py").read_bytes()
        manifest = Manifest(
            model=ref, target=target.name, model_file=f"model/{chosen.path.name}",
            files={k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())},
            description=chosen.block, engine=report.chosen_setting, inputs=sig, outputs=names,
            verified=True, verified_on_device=on_device,
            verification_note=f"{verifications[0].where}; {scope}", verification=verifications,
            engine_verification=engine_check,
            benchmark=report, built_with=__version__)
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

    from registry.processing import apply_steps, parse_steps

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
        from registry.quantization import quantize

        calib = source.folder / options.calibration if options.calibration else None
        prep.prepared = work / "quantized.onnx"
        prep.quantization = quantize(reference, prep.prepared, options.quantize,
                                     per_channel=options.per_channel, calibration=calib)
        prep.precision = "int8"
        log(f"quantized to int8 ({options.quantize}, {prep.quantization.granularity})")
    if options.optimize:
        from registry.acceleration import optimize_offline

        # Fusions that need the target's own CPU only where this machine is that CPU.
        prep.optimized = "extended" if target.native_here()[0] else "basic"
        dest = work / "optimized.onnx"
        optimize_offline(prep.prepared, dest, prep.optimized)
        prep.prepared = dest
        log(f"offline graph optimisation: {prep.optimized}")
    return prep


def _convert(source: ModelSource, target: Target, options: TargetOptions, prep: _Prepared, work: Path,
             log) -> tuple[list[Candidate], list[str]]:
    """Run each candidate converter; every candidate carries its final description block."""
    import onnx

    ref = f"{source.name}@{source.version}"
    candidates: list[Candidate] = []
    skipped: list[str] = []
    for cname in target.candidate_converters(options):
        converter = get_converter(cname)
        ok, hint = converter.available()
        if not ok:
            skipped.append(f"{cname}: not installed ({hint})")
            log(f"candidate {cname}: skipped, not installed ({hint})")
            continue
        cdir = work / "candidates" / cname
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
    return candidates, skipped


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
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{root}{suffix}"
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(archive)
    os.replace(part, dest)
    return PackageResult(path=dest, manifest=manifest, sha256=hashlib.sha256(archive).hexdigest())


def _block(source: ModelSource, ref: str, target: Target, converter: str, prep: _Prepared,
           model) -> DescriptionBlock:
    """The block as known before conversion; the converter's facts complete it (`_final_block`)."""
    import onnx

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return DescriptionBlock(
        runtime=target.runtime, min_runtime_version="0", execution_providers=target.providers(),
        format="onnx", opset=opset, ir_version=model.ir_version,
        weight_dtype="int8" if prep.precision == "int8" else "float32",
        quantized=prep.quantization is not None, quantization=prep.quantization, optimized=prep.optimized,
        processing=prep.steps, source_model=ref,
        source_sha256=hashlib.sha256(source.weights.read_bytes()).hexdigest(), target=target.name,
        converter=converter, tools={"registry": __version__, "onnx": onnx.__version__})


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


# --------------------------------------------------------------------------- open and run

class OpenedPackage(BaseModel):
    """A package read into memory and checked."""

    manifest: Manifest
    model_bytes: bytes
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
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = {}
            for m in tar.getmembers():
                if m.isfile():
                    parts = PurePosixPath(m.name).parts
                    if ".." in parts or m.name.startswith("/"):
                        raise PackageIntegrityError(f"{path}: unsafe path {m.name} in the archive")
                    members["/".join(parts[1:])] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as e:
        raise PackageIntegrityError(f"{path}: not a readable package archive ({e})",
                                    "download the package again") from e
    if MANIFEST not in members:
        raise PackageIntegrityError(f"{path}: no {MANIFEST} in the archive")
    try:
        manifest = Manifest.model_validate_json(members[MANIFEST])
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
    return OpenedPackage(manifest=manifest, model_bytes=members[manifest.model_file], files=members)


def check_compatibility(manifest: Manifest, model_bytes: bytes | None = None) -> None:
    """Refuse a runtime that is missing or older than the description block's minimum.

    Raises:
        RuntimeTooOldError: the installed runtime is older, or of the wrong kind.
    """
    block = manifest.description
    engine = get_engine(manifest.engine.engine)
    installed = engine.version()
    if installed is None:
        raise RuntimeTooOldError(f"{manifest.model} ({manifest.target}) needs {block.runtime} "
                                 f">= {block.min_runtime_version}, which is not installed",
                                 f"pip install '{engine.name}>={block.min_runtime_version}'")
    check_runtime(block, engine.name, installed)
    if model_bytes is not None and block.format == "onnx":
        import onnx

        model = onnx.load_from_string(model_bytes)
        inner = next((p.value for p in model.metadata_props if p.key == "registry.description"), None)
        if inner is not None and parse_block(inner, manifest.model_file) != block:
            raise PackageIntegrityError(f"{manifest.model_file}: its description block differs from the manifest's",
                                        "the package was altered; rebuild it")


def run_package(package: Path | OpenedPackage, feeds: dict[str, np.ndarray],
                key: bytes | None = None) -> dict[str, np.ndarray]:
    """Open (or take an opened package), check and run it on named inputs; return outputs by name.

    Raises:
        UsageError: inputs that do not match the package's.
        and what `open_package` and `check_compatibility` raise.
    """
    pkg = package if isinstance(package, OpenedPackage) else open_package(package, key)
    m = pkg.manifest
    check_compatibility(m, pkg.model_bytes)
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
