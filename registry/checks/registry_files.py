"""Standard: a pull request changes only the registry's content; registry-wide files are the
maintainers'.

The bot judges a pull request by its models, but a pull request can carry more: a new remote URL
in `.dvc/config` (publish would copy weights there), a workflow under `.github/`, a
`.gitattributes` filter, a submodule, code the next publish runs. None of that is a model's
business, so any of it fails the check with a finding that says a maintainer must review it:

- every path outside the content folders (`models/`, `datasets/`, `training/`);
- `.gitattributes` and `.gitmodules` anywhere, any submodule (gitlink) anywhere, and a symbolic
  link outside a model folder (inside one, `model-files` refuses it);
- `dvc.yaml`, unless the change is confined to the `artifacts:` entries of the models the
  pull request itself changes (what `registry sync-artifacts` writes);
- `.github/CODEOWNERS`, unless it is exactly what `registry codeowners` writes from the pull
  request's cards with the base's maintainers.

It runs once per check run with `--base` (not once per model), and reports under the name
`(registry)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from registry.cards.artifacts import DVC_YAML
from registry.cards.codeowners import FILE as CODEOWNERS_FILE
from registry.cards.schema import MODELS_DIR
from registry.checks import Check, Finding, ModelContext, register
from registry.core.bounded import BoundedParseError, parse_yaml

CONTENT_FOLDERS = (f"{MODELS_DIR}/", "datasets/", "training/")
MAINTAINERS_ONLY = (".gitattributes", ".gitmodules")
REPORT_NAME = "(registry)"
MAX_LISTED = 20
_REVIEW = (
    "a maintainer must review this change: registry-wide files are the maintainers'; move it to "
    "its own "
    "pull request for them to review and merge, and keep model pull requests to models/"
)


@register
class RegistryFiles(Check):
    """Only content folders change; `.dvc/config`, `.github/`, `.gitattributes`, submodules and the
    rest
    of the repository need a maintainer."""

    name = "registry-files"
    description = (
        "a pull request changes only models/, datasets/ and training/ (and its own models' entries "
        "in dvc.yaml); .dvc/config, .github/, .gitattributes, submodules and every other file "
        "outside them need a maintainer's review"
    )
    needs_card = False
    scope: ClassVar[str] = "registry"
    order = 5

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        if ctx.base is None or ctx.repo is None:
            return
        changed = ctx.repo.changed_paths(ctx.base.rev, ctx.head.rev)
        models = {
            p.path.split("/")[1]
            for p in changed
            if p.path.startswith(f"{MODELS_DIR}/") and p.path.count("/") >= 2
        }
        listed = 0
        for p in changed:
            finding = self._judge(ctx, p, models)
            if finding is None:
                continue
            listed += 1
            if listed <= MAX_LISTED:
                yield finding
        if listed > MAX_LISTED:
            yield self.finding(
                f"… and {listed - MAX_LISTED} more registry-wide files changed", _REVIEW
            )

    def _judge(self, ctx: ModelContext, p, models: set[str]) -> Finding | None:
        base_name = p.path.rsplit("/", 1)[-1]
        if p.gitlink:
            return self.finding(
                "the pull request adds or changes a git submodule (gitlink); "
                "the registry holds no submodules",
                _REVIEW,
                path=p.path,
            )
        if p.symlink and not (p.path.startswith(f"{MODELS_DIR}/") and p.path.count("/") >= 2):
            # links inside a model folder are the model-files check's; anywhere else they are
            # refused here
            return self.finding(
                "the pull request adds a symbolic link; the registry's content is plain files",
                _REVIEW,
                path=p.path,
            )
        if base_name in MAINTAINERS_ONLY:
            return self.finding(
                f"{base_name} changes how git treats files; it is a registry-wide file",
                _REVIEW,
                path=p.path,
            )
        if p.path == DVC_YAML:
            return self._dvc_yaml(ctx, models)
        if p.path == CODEOWNERS_FILE and p.status != "D" and not p.symlink:
            from registry.checks.codeowners import expected_codeowners

            expected = expected_codeowners(ctx)
            if expected is not None and ctx.head.read_text(CODEOWNERS_FILE) == expected:
                return None  # exactly what `registry codeowners` writes, maintainers as on the base
        if p.path.startswith(CONTENT_FOLDERS):
            return None
        what = {
            ".dvc/": "the DVC configuration (remote URLs)",
            ".github/": "the workflows and code owners",
        }
        kind = next((v for k, v in what.items() if p.path.startswith(k)), "a registry-wide file")
        verb = {"A": "adds", "D": "deletes"}.get(p.status, "changes")
        return self.finding(
            f"the pull request {verb} {kind}, outside models/, datasets/ and training/",
            _REVIEW,
            path=p.path,
        )

    def _dvc_yaml(self, ctx: ModelContext, models: set[str]) -> Finding | None:
        """dvc.yaml may change only in the artifacts entries of the pull request's own models."""
        merge_base = (
            ctx.repo.snapshot(ctx.repo.merge_base(ctx.base.rev, ctx.head.rev))
            if ctx.head.rev
            else ctx.base
        )
        try:
            old = _without(parse_yaml(merge_base.read(DVC_YAML) or b"", what="dvc.yaml"), models)
        except BoundedParseError:
            old = None
        try:
            new = _without(parse_yaml(ctx.head.read(DVC_YAML) or b"", what="dvc.yaml"), models)
        except BoundedParseError as e:
            return self.finding(e.message, e.hint, path=DVC_YAML, line=e.line)
        if old == new:
            return None
        return self.finding(
            "the pull request changes more than the artifacts entries of its own models ("
            + (", ".join(sorted(models)) or "none")
            + ")",
            _REVIEW,
            path=DVC_YAML,
        )


def _without(data: Any, models: set[str]) -> Any:
    """dvc.yaml's content less the artifacts entries of `models`; no file, an empty one and one left
    with an empty `artifacts:` are all the same (a pull request adding the first model makes it)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        return data
    data = dict(data)
    artifacts = data.get("artifacts")
    if isinstance(artifacts, dict):
        rest = {k: v for k, v in artifacts.items() if k not in models}
        if rest:
            data["artifacts"] = rest
        else:
            del data["artifacts"]
    return data
