"""Standard: the card's device targets can be packaged (known targets, valid options, data
present)."""

from __future__ import annotations

from collections.abc import Iterable

from registry.checks import Check, Finding, ModelContext, register
from registry.core.errors import UsageError


@register
class CardTargets(Check):
    """Each `targets:` entry names a known target with valid options, steps and data files."""

    name = "card-targets"
    description = (
        "device targets are known (nearest suggested), their options and processing steps "
        "are valid, an explicit converter exists (and has the .pt2 it converts), static int8 "
        "names calibration data, and named data files exist"
    )
    order = 30

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        """One finding per problem, on the line of the offending target entry."""
        if not ctx.card.targets:
            return  # before importing packaging's tables, which a card without targets never needs
        from registry.packaging.plan import target_options
        from registry.packaging.processing import parse_steps
        from registry.packaging.targets import get_target

        for i, spec in enumerate(ctx.card.targets):
            line = ctx.line("targets", i, "name") or ctx.line("targets", i) or ctx.line("targets")
            try:
                target = get_target(spec.name)
            except UsageError as e:
                yield self.finding(
                    f"targets[{i}]: {e.message}", e.hint, path=ctx.card_path, line=line
                )
                continue
            try:
                options = target_options(target, spec, {})
                parse_steps(spec.processing)
                target.candidate_converters(options, pytorch=ctx.card.pytorch is not None)
            except UsageError as e:
                yield self.finding(
                    f"targets[{i}] ({spec.name}): {e.message}",
                    e.hint,
                    path=ctx.card_path,
                    line=ctx.line("targets", i, "options") or line,
                )
                continue
            if options.quantize == "static" and not options.calibration:
                yield self.finding(
                    f"targets[{i}] ({spec.name}): static int8 needs calibration data",
                    "add 'calibration: <file>.npz' (inputs keyed by name), or use "
                    "'quantize: dynamic'",
                    path=ctx.card_path,
                    line=line,
                )
            for key in ("calibration", "inputs"):
                rel = getattr(spec, key) or (options.calibration if key == "calibration" else None)
                if not rel:
                    continue
                path = f"{ctx.folder}/{rel}"
                if ctx.head.read(path) is None and ctx.head.read(path + ".dvc") is None:
                    yield self.finding(
                        f"targets[{i}] ({spec.name}): {key} file {rel} is not in the model folder",
                        f"add {path} (in git, or DVC-tracked as {path}.dvc)",
                        path=ctx.card_path,
                        line=ctx.line("targets", i, key) or line,
                    )
