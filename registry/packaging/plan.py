"""What a card asks to build: its targets mapped to runners, each target's options, the catalog.

Owns the release plan (`plan`: the release workflow's matrix), the merge of a card's target entry
with command-line overrides into the target's validated options (`target_options`), and the list
of every registered target (`target_catalog`, for `registry package --list-targets`). It reads
declarations and option schemas only (targets, and converters' names and summaries): no engine,
runtime, quantization or conversion tool is imported, so the card check that uses it
(`registry.checks.card_targets`) stays light.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry.cards.schema import ModelCard, TargetSpec
from registry.packaging.targets import Target, TargetOptions, get_target, load_all


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


def plan(card: ModelCard) -> Plan:
    """The release plan of a card: its targets with the runner each needs.

    Raises:
        UsageError: a target name that does not exist (with the nearest one).
    """
    entries = []
    for spec in card.targets:
        t = get_target(spec.name)
        entries.append(
            PlanEntry(target=t.name, runner=t.runner, os=t.os, arch=t.arch, produces=t.produces)
        )
    version = card.version or "0.0.0"
    return Plan(
        name=card.name,
        version=version,
        tag=f"{card.name}@v{version}",
        targets=entries,
        matrix={"include": [{"target": e.target, "runner": e.runner} for e in entries]},
    )


def target_catalog() -> list[dict]:
    """Every registered target with what it produces, needs and accepts (for --list-targets)."""
    from registry.packaging.converters import load_all as load_converters

    converters = load_converters()
    out = []
    for name, cls in load_all().items():
        options = {k: f.description for k, f in cls.Options.model_fields.items()}
        out.append(
            {
                "name": name,
                "summary": cls.summary,
                "produces": cls.produces,
                "converters": {c: converters[c].summary for c in cls.converters},
                "engines": list(cls.engines),
                "needs": list(cls.needs),
                "runner": cls.runner,
                "options": options,
            }
        )
    return out


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
