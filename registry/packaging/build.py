"""The build of one device package (SPEC §2/§3): from a model source to a written archive.

`build_package` is the one-step packaging:

1. prepare the source ONNX (`registry.packaging.prepare`): merge the declared pre/post-processing,
   then optionally quantize to int8 and apply offline graph optimisation;
2. convert it with each candidate converter of the target (or the one named explicitly); the
   ExecuTorch and Core ML converters start from the card's PyTorch source (`.pt2`) instead, read
   once per build;
3. verify each candidate against the source in float32 (`registry.packaging.verify`); drop failures;
4. ship the first verified candidate with its engine's default setting (or the one the card
   pins), and time every verified candidate under each engine setting for the advice written
   beside the package (`registry.packaging.benchmark`): timings never change the package's bytes;
5. write the description block (`registry.packaging.protocol`) into the model, through its
   converter, and into the manifest, and write the archive with the model, `manifest.json`, a
   minimal loader and the verification reference (`registry.packaging.archive`), optionally
   encrypted (`registry.packaging.encryption`).

What a card asks to build is `registry.packaging.plan`; running and verifying a package is
`registry.packaging.run`; what a build starts from (a published version's tag, or local files)
is `registry.packaging.source`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from registry import __version__
from registry.core.errors import ConversionError
from registry.core.files import write_atomic
from registry.packaging.archive import (
    MODEL_DIR,
    REFERENCE,
    Manifest,
    PackageResult,
    member_sha256,
    package_files,
    reference_npz,
    write_package,
)
from registry.packaging.benchmark import (
    BenchmarkReport,
    Progress,
    choose_engine,
    machine_info,
    shipping_setting,
)
from registry.packaging.converters import Candidate, get_converter
from registry.packaging.plan import target_options
from registry.packaging.prepare import Prepared, prepare
from registry.packaging.protocol import METADATA_KEY, DescriptionBlock
from registry.packaging.source import ModelSource
from registry.packaging.targets import Target, TargetOptions, get_target
from registry.packaging.verify import (
    Verification,
    input_signature,
    reference_outputs,
    sample_inputs,
    verify_candidate,
)

# --------------------------------------------------------------------------- build


def build_package(
    source: ModelSource,
    target_name: str,
    out_dir: Path,
    *,
    overrides: dict | None = None,
    key: bytes | None = None,
    benchmark: bool = True,
    log=lambda msg: None,
    progress: Progress | None = None,
) -> PackageResult:
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
    _free_large_blocks()
    target = get_target(target_name)
    spec = next((t for t in source.card.targets if t.name == target.name), None)
    options = target_options(target, spec, overrides or {})
    ref = f"{source.name}@{source.version}"
    if source.pytorch is None and source.pytorch_missing is not None:
        from_pt2 = [n for n in target.converters if get_converter(n).source_format == "pt2"]
        if options.converter in from_pt2 or (from_pt2 and len(from_pt2) == len(target.converters)):
            source.require_pytorch(
                f"target {target.name} (converter {options.converter or from_pt2[0]})"
            )
        if from_pt2:
            log(
                f"{source.pytorch_missing.name} is not here: converters from it "
                f"({', '.join(from_pt2)}) are left out"
            )
    with tempfile.TemporaryDirectory(prefix="registry-package-") as tmp:
        work = Path(tmp)
        prep = prepare(source, spec, target, options, work, log)
        declared = None
        if spec and spec.inputs:
            from registry.packaging.quantization import load_arrays

            names_in = [n for n, _, _ in input_signature(prep.reference)]
            declared = load_arrays(source.folder / spec.inputs, names_in)
        inputs = sample_inputs(
            prep.reference, samples=options.samples, seed=options.seed, declared=declared
        )
        names, ref_out = reference_outputs(prep.reference, inputs)
        _trim()
        pytorch = _PytorchSource(source.pytorch) if source.pytorch else None
        candidates, skipped, failed = _convert(
            source, pytorch, target, options, prep, work, log, progress
        )

        providers = target.verify_providers()
        verifications: list[Verification] = []
        for cand in candidates:
            if progress:
                progress(f"verifying {cand.converter}", 0, 1)
            verifications.append(
                verify_candidate(
                    cand, names, ref_out, inputs, options.limits(cand.precision), providers
                )
            )
            _trim()
            if progress:
                progress(f"verifying {cand.converter}", 1, 1)
            log(f"verify {verifications[-1].summary()}")
        verified = [c for c, v in zip(candidates, verifications) if v.passed]
        # a model this machine cannot run is packaged (unverified) only when asked for by name
        unverifiable = [(c, v) for c, v in zip(candidates, verifications) if v.status == "not-run"]
        table = verifications + failed
        if not verified and not (options.converter and unverifiable):
            detail = "; ".join([v.summary() for v in table] + skipped) or "no candidate converter"
            raise ConversionError(
                f"{ref} for {target.name}: no candidate passed verification: {detail}",
                threshold_hint(source.name, target.name, table, spec is not None and spec.inputs),
            )

        if verified:
            native, why = target.native_here()
            report = choose_engine(
                verified,
                inputs[0],
                native=native,
                benchmark=benchmark,
                why_not=why,
                threads=options.threads,
                providers=target.providers(),
                warmup=options.warmup,
                repeats=options.repeats,
                pinned=options.engine,
                progress=progress,
            )
            chosen, engine_check = _confirm_choice(
                report, verified, names, ref_out, inputs, options, providers, log
            )
            log(
                f"chosen: {report.chosen_converter} {report.chosen_setting.label()} "
                f"({report.reason})"
            )
            if report.advice:
                log(f"benchmark: {report.advice}")
            on_device, scope = target.verification_scope(providers, chosen.engine)
            where = verifications[candidates.index(chosen)].where
            note = f"{where}; {scope}"
        else:
            chosen, engine_check = unverifiable[0]
            report = BenchmarkReport(
                measured=False,
                machine=machine_info(),
                chosen_converter=chosen.converter,
                chosen_setting=shipping_setting(chosen, target.providers()),
                reason=f"not timed: {engine_check.message}",
            )
            on_device = False
            note = (
                f"NOT VERIFIED: {engine_check.message}; built here because the packaging "
                f"instruction "
                f"names the {chosen.converter} converter"
            )
            log(
                f"chosen: {chosen.converter}, not verified on this machine ({engine_check.message})"
            )
        sig = [
            {
                "name": n,
                "shape": [d if isinstance(d, int) else str(d) for d in shape],
                "dtype": np.dtype(dt).name,
            }
            for n, shape, dt in input_signature(prep.reference)
        ]
        if get_converter(chosen.converter).source_format == "pt2":  # the program's fixed dims
            onnx_sig, theirs = sig, pytorch.read(prep.reference)[1]
            sig = _pytorch_shapes(theirs, sig)
            fixed = [
                (t[0], p["shape"][0], o["name"])
                for o, p, t in zip(onnx_sig, sig, theirs)
                if o["shape"]
                and not isinstance(o["shape"][0], int)
                and isinstance(p["shape"][0], int)
            ]
            if fixed:
                from registry.formats.pt2 import FIXED_BATCH_HINT, fixed_batch_warning

                log(
                    "warning: "
                    + fixed_batch_warning(pytorch.path.name, source.weights.name, fixed)
                    + f"; {FIXED_BATCH_HINT}"
                )
        files = package_files(
            {p.relative_to(chosen.path.parent).as_posix(): p for p in chosen.files},
            reference_npz(inputs, names, ref_out),
        )
        manifest = Manifest(
            model=ref,
            target=target.name,
            model_file=f"{MODEL_DIR}/{chosen.path.name}",
            files={k: member_sha256(v) for k, v in sorted(files.items())},
            description=chosen.block,
            engine=report.chosen_setting,
            inputs=sig,
            batch=_batch(sig),
            outputs=names,
            verified=bool(verified),
            verified_on_device=on_device,
            verification_note=note,
            verification=table,
            engine_verification=engine_check,
            benchmark=report.in_package(),
            reference=REFERENCE,
            built_with=__version__,
        )
        root = f"{source.name}-{source.version}-{target.name}"
        result = write_package(root, files, manifest, out_dir, key)
        return write_benchmark(result, report)


def write_benchmark(result: PackageResult, report: BenchmarkReport) -> PackageResult:
    """Write the full benchmark report (timings, machine, advice) beside the package as
    `<package>.benchmark.json`, when timings were taken: it varies between builds, so it is never
    inside the package, whose bytes a rebuild reproduces."""
    if not report.measured:
        return result
    name = result.path.name.removesuffix(".enc").removesuffix(".tar.gz") + ".benchmark.json"
    side = result.path.with_name(name)
    write_atomic(side, (report.model_dump_json(indent=2) + "\n").encode())
    return result.model_copy(update={"benchmark": report, "benchmark_file": side})


def threshold_hint(
    model: str, target: str, verifications: list[Verification], real_inputs: bool
) -> str:
    """What to change when no candidate passed: the card fields, with values that accept the
    numbers measured (the closest candidate's), and real inputs when the card gives none."""
    import json

    changes = [(v, v.failing_limits()) for v in verifications if v.status == "failed"]
    changes = [(v, c) for v, c in changes if c]
    inputs = (
        ""
        if real_inputs
        else "; or verify on real inputs: `inputs: samples.npz` (keyed by input name) in the "
        "same entry"
    )
    if not changes:
        return (
            "see docs/packaging.md#verification: a lossy option (quantize, fp16) may be too "
            "coarse for this model" + inputs
        )
    v, change = min(changes, key=lambda vc: len(vc[1]))
    values = ", ".join(f"{k}: {val:g}" for k, val in sorted(change.items()))
    option = json.dumps({v.precision: dict(sorted(change.items()))})
    return (
        f"if {v.converter} ({v.precision})'s numbers are acceptable for this model, raise its "
        f"limit(s) in models/{model}/model.yaml, in the targets entry '{target}': "
        f"`options: {{thresholds: {{{v.precision}: {{{values}}}}}}}` "
        f"(or --option 'thresholds={option}'; docs/packaging.md#verification)" + inputs
    )


def _trim() -> None:
    """Give the memory freed by a finished step (a conversion, a verification) back to the
    system: glibc keeps small freed blocks in each thread's arena, and the runtimes' thread pools
    leave many there. Nothing happens on other C libraries."""
    import ctypes
    import ctypes.util
    import gc
    import sys

    gc.collect()  # a converter's model objects may sit in reference cycles
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _free_large_blocks() -> None:
    """Have glibc give large freed blocks back to the system at once.

    A build loads the model several times over (checker, converters, runtimes), each copy freed
    after its step; glibc's allocator otherwise keeps such blocks for reuse once its adaptive
    threshold has grown, so the process would hold every step's copies at the same time. A fixed
    threshold of 4 MiB maps each large block on its own and unmaps it when freed, which keeps a
    build's peak near the largest single step. Nothing changes on other C libraries.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 4 << 20)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        pass


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def _confirm_choice(
    report: BenchmarkReport,
    verified: list[Candidate],
    names,
    ref_out,
    inputs,
    options: TargetOptions,
    providers: list[str],
    log,
) -> tuple[Candidate, Verification]:
    """Re-verify the fastest setting (optimisation levels may change numerics); fall back in rank
    order.

    Raises:
        ConversionError: no timed setting reproduces the source's outputs.
    """
    by_name = {c.converter: c for c in verified}
    rejected: list[Verification] = []
    for converter, setting in report.ranked():
        cand = by_name[converter]
        check = verify_candidate(
            cand, names, ref_out, inputs, options.limits(cand.precision), providers, setting=setting
        )
        if check.passed:
            if rejected:
                report.chosen_converter, report.chosen_setting = converter, setting
                report.reason += (
                    "; settings before it in the fixed order failed verification: "
                    + "; ".join(f"{v.setting}: {v.summary()}" for v in rejected)
                )
            return cand, check
        log(f"setting {setting.label()} rejected: {check.summary()}")
        rejected.append(check)
    raise ConversionError(
        "no engine setting reproduces the source's outputs: "
        + "; ".join(f"{v.setting}: {v.summary()}" for v in rejected),
        "see docs/packaging.md#engine-choice",
    )


def _convert(
    source: ModelSource,
    pytorch: _PytorchSource | None,
    target: Target,
    options: TargetOptions,
    prep: Prepared,
    work: Path,
    log,
    progress: Progress | None = None,
) -> tuple[list[Candidate], list[str], list[Verification]]:
    """Run each candidate converter; every candidate carries its final description block.

    Returns the candidates, the converters skipped (with why) and the candidates whose conversion
    failed (as 'error' verifications, for the manifest's table): a failed conversion drops that
    candidate only, unless it was asked for by name (`--converter`), which stops the build.
    """
    ref = f"{source.name}@{source.version}"
    candidates: list[Candidate] = []
    skipped: list[str] = []
    failed: list[Verification] = []
    for cname in target.candidate_converters(options, pytorch=pytorch is not None):
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
                raise ConversionError(
                    f"{ref} for {target.name}: the {cname} converter cannot build this package: "
                    f"{why}",
                    "drop the option, or pick a converter of the ONNX model",
                )
            if why:
                skipped.append(f"{cname}: {why}")
                log(f"candidate {cname}: skipped, {why}")
                continue
            program, _ = pytorch.read(prep.reference)
            block = _block(source, ref, target, cname, prep, None)
            if progress:
                progress(f"converting {cname} (from {pytorch.path.name})", 0, 1)
            try:
                cand = converter.convert(
                    pytorch.path,
                    _fresh(cdir),
                    program=program,
                    precision=prep.precision,
                    runtime=target.runtime,
                    options=options,
                    block=block,
                )
            except ConversionError as e:
                if options.converter:
                    raise
                failed.append(_conversion_failed(cname, prep, options, e, log))
                continue
            candidates.append(cand)
            log(f"candidate {cname}: {cand.format} {cand.precision} (from {pytorch.path.name})")
            continue
        if progress:
            progress(f"converting {cname}", 0, 1)
        staged = _fresh(cdir) / "input.onnx"
        header = _onnx_header(prep.prepared)
        block = _block(source, ref, target, cname, prep, header)
        _stage(prep.prepared, staged, block)
        try:
            cand = converter.convert(
                staged,
                _fresh(cdir / "out"),
                precision=prep.precision,
                runtime=target.runtime,
                options=options,
            )
            final = _final_block(cand, block, target)
            _stage(prep.prepared, staged, final)
            if not converter.store_block(cand, final):  # not editable: convert again, block in
                cand = converter.convert(
                    staged,
                    _fresh(cdir / "final"),
                    precision=prep.precision,
                    runtime=target.runtime,
                    options=options,
                )
        except ConversionError as e:  # this candidate is dropped; the others may still pass
            if options.converter:
                raise
            failed.append(_conversion_failed(cname, prep, options, e, log))
            continue
        candidates.append(cand.model_copy(update={"block": final}))
        _trim()
        log(f"candidate {cname}: {cand.format} {cand.precision}")
    return candidates, skipped, failed


def _conversion_failed(
    cname: str, prep: Prepared, options: TargetOptions, e: ConversionError, log
) -> Verification:
    """The manifest's record of a candidate whose conversion failed while others remain."""
    log(f"candidate {cname}: conversion failed: {e.message}")
    return Verification(
        converter=cname,
        precision=prep.precision,
        status="error",
        where="conversion on the build machine",
        thresholds=options.limits(prep.precision),
        message=e.message,
    )


def _pytorch_not_applicable(prep: Prepared) -> str | None:
    """Why the `.pt2` cannot stand for the prepared ONNX (steps applied to the ONNX only), or
    None."""
    if prep.steps:
        return "processing steps are merged into the ONNX model only, not into the .pt2"
    if prep.quantization is not None:
        return "int8 quantization applies to the ONNX model only"
    return None


class _PytorchSource:
    """The card's `.pt2`, read at most once per build: the program its converters convert, and the
    input signature the package's input shapes take their fixed dimensions from."""

    def __init__(self, path: Path):
        self.path = path
        self._read: tuple[object, list[tuple[str, list, str]]] | None = None

    def read(self, reference: Path) -> tuple[object, list[tuple[str, list, str]]]:
        """(ExportedProgram, input signature), loaded on first use and checked against the inputs
        of the ONNX `reference`.

        Raises:
            ModelFormatError: the `.pt2` is unsafe or unreadable.
            ConversionError: its inputs differ from the ONNX model's (see `_check_pytorch_inputs`).
        """
        if self._read is None:
            from registry.formats.pt2 import input_signature as pt2_signature
            from registry.formats.pt2 import load_exported_program

            program = load_exported_program(self.path)
            theirs = pt2_signature(program)
            _check_pytorch_inputs(self.path.name, theirs, reference)
            self._read = (program, theirs)
        return self._read


def _batch(sig: list[dict]) -> int | str | None:
    """The batch the packaged model accepts: a number when its inputs fix the first axis, 'any'
    when it is free (None for a model without inputs)."""
    firsts = [s["shape"][0] for s in sig if s["shape"]]
    if not firsts:
        return None
    fixed = [d for d in firsts if isinstance(d, int) and d > 0]
    return min(fixed) if fixed else "any"


def _pytorch_shapes(theirs: list[tuple[str, list, str]], sig: list[dict]) -> list[dict]:
    """The package's input signature with the dimensions the `.pt2` fixes (e.g. a batch of 1)."""
    return [
        {**entry, "shape": [t if isinstance(t, int) else o for t, o in zip(shape, entry["shape"])]}
        for entry, (_, shape, _) in zip(sig, theirs)
    ]


def _check_pytorch_inputs(shown: str, theirs: list[tuple[str, list, str]], reference: Path) -> None:
    """The `.pt2` must take the ONNX model's inputs, in order (its candidates get them by position).

    Args:
        shown: the `.pt2`'s name, for messages.
        theirs: its input signature.
    Raises:
        ConversionError: a different number of inputs, a different dtype, or a different fixed
        dimension.
    """
    ours = input_signature(reference)
    hint = (
        "export the .pt2 and the ONNX from the same module with the same inputs in the same order "
        "(docs/model-card.md#pytorch-source)"
    )
    if len(theirs) != len(ours):
        raise ConversionError(
            f"{shown} takes {len(theirs)} input(s) ({', '.join(n for n, _, _ in theirs)}), "
            f"the ONNX model {len(ours)} ({', '.join(n for n, _, _ in ours)})",
            hint,
        )
    for (tname, tshape, tdtype), (oname, oshape, odtype) in zip(theirs, ours):
        fixed_differs = len(tshape) != len(oshape) or any(
            isinstance(a, int) and isinstance(b, int) and b > 0 and a != b
            for a, b in zip(tshape, oshape)
        )
        if tdtype != np.dtype(odtype).name or fixed_differs:
            raise ConversionError(
                f"{shown}: input '{tname}' is {tdtype} {tshape}, but the ONNX model's input "
                f"'{oname}' is {np.dtype(odtype).name} {oshape}",
                hint,
            )


def _onnx_header(path: Path):
    """The IR version and opsets of an ONNX file, read without loading its tensors."""
    import mmap

    from registry.formats import onnx_wire

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return onnx_wire.read_header(buf)


def _stage(prepared: Path, staged: Path, block: DescriptionBlock) -> None:
    """Write the model a converter starts from: the prepared ONNX with the block in its
    metadata, copied file to file (the model is never loaded, so its size costs no memory)."""
    from registry.formats import onnx_wire

    staged.unlink(missing_ok=True)
    onnx_wire.copy_with_metadata(
        prepared, staged, METADATA_KEY, block.model_dump_json(exclude_none=False)
    )


def _block(
    source: ModelSource, ref: str, target: Target, converter: str, prep: Prepared, model
) -> DescriptionBlock:
    """The block as known before conversion; the converter's facts complete it (`_final_block`).

    `model` is the staged ONNX's header (`onnx_wire.read_header`), or None for a converter of the
    `.pt2` (whose hash is then the block's source hash: the file the conversion started from).
    """
    import onnx

    onnx_model = model is not None
    opset = next((v for d, v in model.opsets if d in ("", "ai.onnx")), None) if onnx_model else None
    started_from = source.weights if onnx_model else source.pytorch
    quantization = prep.quantization
    if quantization is not None and onnx_model:  # where its scales and zero points live
        from registry.packaging.quantization import quantization_parameters

        # the header has no graph: read the quantized model's graph (its int8 weights are a
        # quarter of the float model's bytes; external data, if any, stays on disk)
        graph_model = onnx.load(str(prep.prepared), load_external_data=False)
        operators, parameters = quantization_parameters(graph_model)
        del graph_model
        quantization = quantization.model_copy(
            update={"operators": operators, "parameters": parameters}
        )
    return DescriptionBlock(
        runtime=target.runtime,
        min_runtime_version="0",
        execution_providers=target.providers(),
        format="onnx",
        opset=opset,
        ir_version=model.ir_version if onnx_model else None,
        weight_dtype="int8" if prep.precision == "int8" else "float32",
        quantized=prep.quantization is not None,
        quantization=quantization,
        optimized=prep.optimized
        if onnx_model
        else None,  # ONNX Runtime's optimiser never saw a .pt2
        processing=prep.steps,
        source_model=ref,
        source_sha256=member_sha256(started_from),
        target=target.name,
        converter=converter,
        tools={"registry": __version__, **({"onnx": onnx.__version__} if onnx_model else {})},
    )


def _final_block(cand: Candidate, block: DescriptionBlock, target: Target) -> DescriptionBlock:
    """Complete the block with the converter's facts (runtime, format, minimum version, tools)."""
    return block.model_copy(
        update={
            "runtime": cand.runtime,
            "min_runtime_version": cand.min_runtime_version,
            "format": cand.format,
            "weight_dtype": cand.weight_dtype,
            "tools": {**block.tools, **cand.tools},
            "execution_providers": target.providers() if cand.engine == "onnxruntime" else [],
        }
    )


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder
