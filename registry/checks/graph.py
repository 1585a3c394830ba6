"""Standard: the model's structure can be opened and visualised.

The weights are fetched (the working-tree file when it matches its pointer, else the `staging`
remote, verified by md5), loaded without running any code from them, checked with
`onnx.checker` (full check), run once in onnxruntime, summarised and drawn. The summary, its
text and the SVG picture go to the report's artifacts: `graph`, `graph_text`, `graph_svg`.
A PyTorch source (`pytorch:`, a `.pt2`) is fetched the same way and inspected without loading
(`registry.formats.pt2.inspect_pt2`: the PT2 archive format, plain tensors, no pickles or
compiled code).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from registry.checks import Check, Finding, ModelContext, Severity, register
from registry.checks.weights_storage import WeightsLocation, locate_weights
from registry.core.errors import ModelFormatError
from registry.core.repo import PathEscapeError, WorkTree
from registry.core.storage import (
    STAGING,
    ObjectCorruptError,
    ObjectMissingError,
    PointerError,
    file_md5,
    parse_pointer,
)


class _Skip(Exception):
    """Stop the check with the findings gathered so far."""


@register
class Graph(Check):
    """The weights load safely, pass the format's checker, run once, and render to a picture."""

    name = "graph"
    description = (
        "the weights load without unpickling (ONNX or safetensors), pass onnx.checker (full "
        "check), run once in onnxruntime on generated inputs, and render to an SVG and a text "
        "summary; "
        "a pytorch .pt2 is a PT2 archive with no pickled or compiled entries (warning: one whose "
        "batch is fixed while the ONNX model's is not)"
    )
    reads_content = True
    order = 40

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        findings: list[Finding] = []
        try:
            self._run(ctx, findings)
        except _Skip:
            pass
        try:
            self._pytorch(ctx, findings)
        except _Skip:
            pass
        return findings

    def _pytorch(self, ctx: ModelContext, findings: list[Finding]) -> None:
        """The card's `.pt2`, inspected without loading it."""
        from registry.formats.pt2 import inspect_pt2

        loc = locate_weights(self, ctx, "pytorch")
        if loc is None or loc.pointer is None:
            return  # weights-storage reports the missing or broken pointer
        rel = PurePosixPath(loc.weights_path).relative_to(ctx.folder).as_posix()
        local = self._fetch(
            ctx,
            loc.weights_path,
            loc.pointer.md5,
            ctx.workdir / "pytorch" / rel,
            findings,
            pointer_path=loc.pointer_path,
        )
        try:
            archive = inspect_pt2(local, loc.weights_path)
        except ModelFormatError as e:
            findings.append(
                self.finding(e.message, e.hint, path=ctx.card_path, line=ctx.line("pytorch"))
            )
            return
        graph = ctx.artifacts.get("graph")  # the ONNX model's summary, when it was read
        if not graph or not ctx.card.weights.lower().endswith(".onnx"):
            return
        from registry.formats.pt2 import FIXED_BATCH_HINT, fixed_batch, fixed_batch_warning

        onnx_inputs = [(t["name"], t.get("shape") or []) for t in graph.get("inputs", [])]
        found = fixed_batch(archive.inputs, onnx_inputs)
        if found:
            weights = f"{ctx.folder}/{ctx.card.weights}"
            findings.append(
                self.finding(
                    fixed_batch_warning(loc.weights_path, weights, found),
                    FIXED_BATCH_HINT,
                    path=ctx.card_path,
                    line=ctx.line("pytorch"),
                    severity=Severity.warning,
                )
            )

    # The steps append to `findings` and raise _Skip when nothing more can be checked.
    def _run(self, ctx: ModelContext, findings: list[Finding]) -> None:
        from registry.formats.onnx_run import run_once
        from registry.formats.summary import summarize_onnx, summarize_safetensors
        from registry.formats.svg import render_svg
        from registry.formats.weights import (
            WeightsFormat,
            check_external_data,
            detect_format,
            external_data_locations,
            load_onnx,
        )

        loc = locate_weights(self, ctx)
        if loc is None or loc.pointer is None:
            return  # weights-storage reports the missing or broken pointer
        line = ctx.line("weights")
        rel = PurePosixPath(loc.weights_path).relative_to(ctx.folder).as_posix()
        model_root = ctx.workdir / "model"
        local = self._fetch(
            ctx,
            loc.weights_path,
            loc.pointer.md5,
            model_root / rel,
            findings,
            pointer_path=loc.pointer_path,
        )

        def fail(e: ModelFormatError) -> None:
            # the loaders name the local copy (a cache entry is named by its hash): name the
            # repository file instead
            msg = e.message
            if msg.startswith(local.name):
                msg = loc.weights_path + msg[len(local.name) :]
            elif not msg.startswith(loc.weights_path):
                msg = f"{loc.weights_path}: {msg}"
            findings.append(self.finding(msg, e.hint, path=ctx.card_path, line=line))
            raise _Skip

        try:
            fmt = detect_format(local)
        except ModelFormatError as e:
            fail(e)
        if fmt is WeightsFormat.safetensors:
            try:
                summary = summarize_safetensors(local)
            except ModelFormatError as e:
                fail(e)
            self._publish(ctx, summary, None)
            findings.append(
                self.finding(
                    f"{loc.weights_path} is safetensors: tensors only, no graph, so it cannot be "
                    f"run or drawn",
                    "register an ONNX export of the model to get a graph picture and a test run",
                    path=ctx.card_path,
                    line=line,
                    severity=Severity.notice,
                )
            )
            return
        try:
            model = load_onnx(local, load_external=False)
        except ModelFormatError as e:
            fail(e)
        locations = external_data_locations(model)
        if locations:
            local = self._gather_external(ctx, loc, local, model_root / rel, locations, findings)
            try:
                check_external_data(locations, local.parent, model_root, loc.weights_path)
            except ModelFormatError as e:
                fail(e)
        self._check(ctx, local, findings, line, loc.weights_path)
        try:
            outputs = run_once(local)
        except ModelFormatError as e:
            fail(e)
        summary = summarize_onnx(local)
        ctx.artifacts["graph_run"] = outputs
        self._publish(ctx, summary, render_svg(model))

    def _publish(self, ctx: ModelContext, summary, svg: str | None) -> None:
        from registry.formats.summary import summary_text

        ctx.artifacts["graph"] = summary.model_dump(mode="json")
        ctx.artifacts["graph_text"] = summary_text(summary)
        if svg is not None:
            ctx.artifacts["graph_svg"] = svg

    def _check(
        self,
        ctx: ModelContext,
        local: Path,
        findings: list[Finding],
        line: int | None,
        weights_path: str,
    ) -> None:
        import onnx

        try:
            onnx.checker.check_model(str(local), full_check=True)
        except Exception as e:  # checker and shape-inference errors alike: the model's fault
            text = str(e).strip().splitlines()
            findings.append(
                self.finding(
                    f"{weights_path} fails the ONNX checker: "
                    f"{text[0][:400] if text else type(e).__name__}",
                    "export the model again with a current exporter and check it with "
                    "onnx.checker.check_model(path, full_check=True)",
                    path=ctx.card_path,
                    line=line,
                )
            )
            raise _Skip from None

    def _fetch(
        self,
        ctx: ModelContext,
        repo_path: str,
        md5: str,
        dest: Path,
        findings: list[Finding],
        pointer_path: str,
    ) -> Path:
        """A local copy of an object: the working-tree file or the DVC cache when its md5 matches,
        else a verified download from staging into `dest`."""
        candidates = []
        if ctx.repo is not None:
            candidates.append(ctx.repo.root / repo_path)
            candidates.append(ctx.storage.cache_path(md5))
        for i, cand in enumerate(candidates):
            if cand.is_file():
                if file_md5(cand) == md5:
                    return cand
                if i == 0 and isinstance(ctx.head, WorkTree):
                    findings.append(
                        self.finding(
                            f"{repo_path} in the working tree differs from what {pointer_path} "
                            f"records",
                            f"if the file changed on purpose: dvc add {repo_path} && dvc push -r "
                            f"{STAGING}",
                            path=pointer_path,
                            severity=Severity.warning,
                        )
                    )
        try:
            return ctx.storage.remote(STAGING).download(md5, dest)
        except ObjectMissingError:
            findings.append(
                self.finding(
                    f"{repo_path} was not checked: its object {md5} is not in the '{STAGING}' "
                    f"remote",
                    f"dvc push -r {STAGING} {pointer_path}",
                    path=pointer_path,
                    severity=Severity.notice,
                )
            )
            raise _Skip from None
        except ObjectCorruptError as e:
            findings.append(
                self.finding(
                    f"the '{STAGING}' copy of {repo_path} is corrupt: {e.message}",
                    f"push the right file again: dvc push -r {STAGING} {pointer_path} (check that "
                    f"{pointer_path} was made by dvc add from this file)",
                    path=pointer_path,
                )
            )
            raise _Skip from None

    def _gather_external(
        self,
        ctx: ModelContext,
        loc: WeightsLocation,
        local: Path,
        dest: Path,
        locations: list[str],
        findings: list[Finding],
    ) -> Path:
        """Put the model and its external-data files side by side under the work folder.

        Each file comes from git (small ones may be committed) or from its own `.dvc` pointer.
        Locations that leave the folder are not fetched; `check_external_data` reports them.
        """
        from registry.formats.weights import relative_inside

        dest.parent.mkdir(parents=True, exist_ok=True)
        if local != dest:
            shutil.copyfile(local, dest)
        model_dir = PurePosixPath(loc.weights_path).parent
        for location in locations:
            if location.startswith(("/", "\\")):
                continue
            rel = relative_inside(PurePosixPath(model_dir.relative_to(ctx.folder)) / location)
            if rel is None:
                continue
            try:
                repo_path = ctx.head.resolve_inside(ctx.folder, rel)
            except PathEscapeError as e:
                findings.append(
                    self.finding(
                        f"{loc.weights_path}: external data '{location}': {e}",
                        "keep external data files inside the model folder",
                        path=ctx.card_path,
                        line=ctx.line("weights"),
                    )
                )
                raise _Skip from None
            target = ctx.workdir / "model" / rel
            data = ctx.head.read(repo_path)
            if data is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                continue
            try:
                pointer_path = ctx.head.resolve_inside(
                    ctx.folder, repo_path[len(ctx.folder) + 1 :] + ".dvc"
                )
            except PathEscapeError as e:
                findings.append(
                    self.finding(
                        f"{loc.weights_path}: external data '{location}': {e}",
                        "keep external data files inside the model folder",
                        path=ctx.card_path,
                        line=ctx.line("weights"),
                    )
                )
                raise _Skip from None
            pointer_text = ctx.head.read(pointer_path)
            if pointer_text is None:
                continue  # reported as missing by check_external_data
            try:
                pointer = parse_pointer(pointer_text)
            except PointerError as e:
                findings.append(
                    self.finding(
                        f"DVC pointer {pointer_path} is unusable: {e}",
                        f"recreate it: dvc add {repo_path}",
                        path=pointer_path,
                    )
                )
                raise _Skip from None
            got = self._fetch(ctx, repo_path, pointer.md5, target, findings, pointer_path)
            if got != target:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(got, target)
        return dest
