"""The API of `registry compress`: make a model lighter, method after method, until the target
(size, metric drop, latency) is met.

Owns the request and the choice of source: a published version (its card at the tag, its
weights and data from a remote) or local files (an ONNX file and its card), and where the new
model folder goes. The chain itself is `registry.compression.chain`, whose `CompressRequest` this
module builds.

May import: any subpackage below the API. Must not import the CLI.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registry.core.errors import UsageError

if TYPE_CHECKING:
    from registry.cards.schema import ModelCard
    from registry.compression.chain import CompressReport
    from registry.compression.methods import Method

__all__ = ["CompressModelRequest", "compress", "list_methods"]


def list_methods() -> dict[str, type[Method]]:
    """Every method by name, cheapest first, with its settings
    (`registry compress --list-methods`)."""
    from registry.compression.methods import load_methods

    return load_methods()


@dataclass(frozen=True, kw_only=True)
class CompressModelRequest:
    """What to compress, towards which target, and where the result goes.

    The model is a published version (`ref`, NAME@VERSION, read in the clone `root` from the DVC
    remote `remote`) or a local ONNX file (`model`) with its card (`card`, whose folder holds the
    evaluation data). Target fields left None come from the card's `compress:` section.

    A published version is judged by the `evaluation:` (and `compress:`) section of its tagged
    card; `card` with `ref` takes them, and their data, from that card instead. When the tagged
    card has no `evaluation:` section, the working tree's card of the model is used if it has one
    (evaluation data added after publishing needs no new version). The report says which.

    Args:
        root: the registry clone: where a published version is read, and where `push` tracks the
            new weights when `output_dir` is not given.
        max_size: largest weights file (bytes or '25KB'); max_metric_drop: absolute (0.01) or
            relative ('2%'); max_latency: median single-sample latency here, in ms.
        metric: the metric of the drop (the card's evaluation metric).
        methods: the methods to try, in order (None: every method, cheapest first).
        options: settings per method ({method: {key: value}}) over the card's compress.options.
        search: `first` (stop at the first that meets the target) or `best`.
        output_name: the new model entry (default NAME-lite); as_version: a new version of the
            same model instead.
        output_dir: the folder that receives the model folder (default: models/ of the clone for a
            published version, the report folder for local files).
        report_dir: where the JSON report, the chart and a best-so-far model go.
        push: dvc add the new weights and push them to the staging remote.
        raise_unexpected: let a method's unexpected error propagate as it is (`--traceback`).
    """

    root: Path | None = None
    ref: str | None = None
    remote: str = "public"
    model: Path | None = None
    card: Path | None = None
    max_size: str | None = None
    max_metric_drop: str | None = None
    max_latency: str | None = None
    metric: str | None = None
    methods: tuple[str, ...] | None = None
    options: dict[str, dict] = field(default_factory=dict)
    search: str | None = None
    output_name: str | None = None
    as_version: str | None = None
    output_dir: Path | None = None
    report_dir: Path = Path("compress-report")
    push: bool = False
    raise_unexpected: bool = False


def compress(
    request: CompressModelRequest,
    *,
    progress: Callable[[str, float, str], None] | None = None,
    warn: Callable[[str], None] = lambda msg: None,
) -> CompressReport:
    """Run the fallback chain and write the result and its report (`registry compress`).

    `report.met` says whether the target was reached; when it was not, the best candidate so far
    is kept in the report folder.

    Args:
        progress: called as `progress(method, fraction, text)` while a method runs.
        warn: called with a warning before the run (a withdrawn version).

    Raises:
        UsageError: neither or both of `ref` and `model`, a missing card.
        CompressionError: a bad target, bad data, an unknown method.
        StorageError: the version's files are not on the remote.
    """
    from registry.cards.schema import load_card
    from registry.compression.chain import CompressRequest, open_registry_model
    from registry.compression.chain import compress as run_chain

    if bool(request.ref) == bool(request.model):
        raise UsageError("give NAME@VERSION, or --model PATH with --card PATH")
    with tempfile.TemporaryDirectory(prefix="registry-compress-in-") as tmp:
        repo_root = request.root
        if request.ref:
            opened = open_registry_model(repo_root, request.ref, Path(tmp), remote=request.remote)
            if opened.withdrawn:
                warn(
                    f"{request.ref} was withdrawn ({opened.withdrawn}); a model derived from it "
                    "inherits that: check that it is still wanted"
                )
            card, model_file, model_dir = opened.card, opened.model_path, opened.model_dir
            card, data_dir, source = _evaluation_card(request, card, model_dir)
            out_root = request.output_dir or repo_root / "models"
        else:
            if request.card is None:
                raise UsageError("--model needs --card (the card that names the evaluation data)")
            if not request.card.is_file():
                raise UsageError(f"card {request.card} does not exist")
            card = load_card(request.card.read_bytes(), str(request.card)).require()
            model_file, model_dir = request.model, request.card.parent
            data_dir, source = model_dir, str(request.card)
            out_root = request.output_dir
            if request.push and out_root is not None:
                from registry.core.git import clone_root

                repo_root = clone_root(out_root)
        chain_request = CompressRequest(
            card=card,
            model_path=model_file,
            model_dir=model_dir,
            data_dir=data_dir,
            evaluation_source=source,
            max_size=request.max_size,
            max_metric_drop=request.max_metric_drop,
            max_latency=request.max_latency,
            metric=request.metric,
            search=request.search,
            output_root=out_root,
            methods=None if request.methods is None else list(request.methods),
            options=request.options,
            output_name=request.output_name,
            as_version=request.as_version,
            report_dir=request.report_dir,
            push=request.push,
            repo_root=repo_root if request.ref or request.push else None,
            raise_unexpected=request.raise_unexpected,
        )
        return run_chain(chain_request, progress)


def _evaluation_card(
    request: CompressModelRequest, card: ModelCard, model_dir: Path
) -> tuple[ModelCard, Path, str]:
    """The tagged card with the evaluation: and compress: sections that will judge it, the folder
    of their data, and a line for the report saying where they came from.

    Raises:
        UsageError: `card` does not exist or has no evaluation: section.
        CardError: that card (or the working tree's) is invalid.
    """
    from registry.cards.schema import load_card
    from registry.core.layout import MODELS_DIR

    tagged = f"the card tagged {card.name}@v{card.version}"
    if request.card is not None:
        if not request.card.is_file():
            raise UsageError(f"card {request.card} does not exist")
        other = load_card(request.card.read_bytes(), str(request.card)).require()
        if other.evaluation is None:
            raise UsageError(
                f"{request.card} has no 'evaluation:' section",
                "add evaluation: {data: eval.npz, metric: ...} to it (docs/compress.md)",
            )
        sections = {"evaluation": other.evaluation, "compress": other.compress or card.compress}
        return card.model_copy(update=sections), request.card.parent, f"{request.card} (--card)"
    rel = f"{MODELS_DIR}/{card.name}/model.yaml"
    local = request.root / rel if request.root is not None else None
    if card.evaluation is not None or local is None or not local.is_file():
        return card, model_dir, tagged
    current = load_card(local.read_bytes(), rel).require()
    if current.evaluation is None:
        return card, model_dir, tagged
    sections = {"evaluation": current.evaluation, "compress": current.compress or card.compress}
    return (
        card.model_copy(update=sections),
        local.parent,
        f"{rel} in the working tree ({tagged} has no evaluation: section)",
    )
