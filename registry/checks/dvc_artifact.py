"""Check: the model is declared as a DVC artifact in the root dvc.yaml, as its card says.

`dvc artifacts get <repo> <name> --rev v<version>` and GTO find a model's weights through that
declaration at the version's tag, so the pull request that adds or changes a model must carry it.
A registry that declares no artifacts at all (no `artifacts:` in dvc.yaml) has opted out and the
check stays silent.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.cards.artifacts import DVC_YAML, artifact_entry
from registry.checks import Check, Finding, ModelContext, Severity, register
from registry.core.bounded import BoundedParseError, parse_yaml

_FIX = "run `registry sync-artifacts` and commit dvc.yaml"


@register
class DvcArtifactCheck(Check):
    """The model is declared in dvc.yaml's `artifacts:` with the path and type its card implies."""

    name = "dvc-artifact"
    description = (
        "the model is declared in dvc.yaml's artifacts (path, type) so DVC and GTO can fetch it"
    )
    needs_card = False
    order = 80

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        # read and parsed once per run: every model of `check --all` looks in the same file
        key = ("dvc.yaml", ctx.head.rev)
        if key not in ctx.cache:
            raw = ctx.head.read(DVC_YAML)
            try:
                parsed = None if raw is None else (parse_yaml(raw, what="dvc.yaml") or {}, None)
            except BoundedParseError as e:
                parsed = (None, e)
            ctx.cache[key] = parsed
        if ctx.cache[key] is None:
            return
        data, error = ctx.cache[key]
        if error is not None:
            yield self.finding(
                f"dvc.yaml: {error.message}",
                error.hint or "fix dvc.yaml",
                path=DVC_YAML,
                line=error.line,
            )
            return
        declared = data.get("artifacts") if isinstance(data, dict) else None
        if not isinstance(declared, dict):
            return
        entry = declared.get(ctx.name)
        if ctx.deleted:
            if entry is not None:
                yield self.finding(
                    f"dvc.yaml still declares the deleted model '{ctx.name}'", _FIX, path=DVC_YAML
                )
            return
        if ctx.card is None:
            return
        want = artifact_entry(ctx.card)
        if not isinstance(entry, dict):
            yield self.finding(
                f"dvc.yaml does not declare '{ctx.name}' as an artifact, so "
                f"`dvc artifacts get` cannot fetch it",
                _FIX,
                path=DVC_YAML,
            )
            return
        for key in ("path", "type"):
            if entry.get(key) != want[key]:
                yield self.finding(
                    f"dvc.yaml declares '{ctx.name}' with {key} {entry.get(key)!r}, "
                    f"the card says {want[key]!r}",
                    _FIX,
                    path=DVC_YAML,
                )
        for key in ("desc", "labels"):
            if entry.get(key) != want[key]:
                yield self.finding(
                    f"dvc.yaml's {key} for '{ctx.name}' differs from the card",
                    _FIX,
                    path=DVC_YAML,
                    severity=Severity.warning,
                )
